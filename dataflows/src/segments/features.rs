//! Rolling-window features per subscriber (SPEC §5) as differential
//! collections, keyed by the packed msisdn ([`Msisdn`]), with every sum in the
//! difference ([`Sums`]): one `count_total` adds them up per subscriber.
//!
//! ```text
//! unique ─▶ (caller, from, until) Usage ┐
//!        ─▶ (caller, from, never) known ┴─window─▶ caller ─────────────────────────────┐
//!        ─▶ (caller, callee) voice/sms ──window─▶ threshold_total ─▶ caller, contacts 1 ┤
//!        ─▶ (caller, UTC date) ──────────window─▶ threshold_total ─▶ caller, a day 1 ───┼─count_total─▶ (caller, Sums) ─known > 0─▶ FeatureRow
//! subscribers ─▶ msisdn, known ─────────────────────────────────────────────────────────┘
//! subscribers ──────────────────────────────────────────────▶ passed on: demographics attached by the snapshot writer
//! ```
//!
//! Snapshots are taken at day boundaries (`as_of` = a UTC midnight), so a CDR
//! with start `s` is in the window of snapshot `as_of` exactly when
//! `s < as_of <= s + window`: it enters at the first midnight after `s`
//! (`from`) and leaves at the first midnight after `s + window` (`until`). The
//! collection at dataflow time `as_of` *is* the snapshot of the day before;
//! every update happens at a midnight, so the arrangements see one batch per
//! day. The window consolidates its updates per (key, midnight), so a
//! subscriber's CDRs of one day are one update of each arrangement: state is
//! bounded by subscribers × window days, not by CDRs.
//!
//! A row's `known` is positive exactly when the subscriber is in the snapshot
//! (SPEC §5 "Who"): listed in `subscribers.csv` (time 0), or the caller of a
//! unique CDR before `as_of` (each CDR adds 1 at its `from`, never retracted).
//! The rows carry no demographics: `subscribers.csv` is a static table, and
//! the writer looks a row's up where it builds the snapshot line
//! ([`super::subscribers::SubscriberTable`]).

use differential_dataflow::operators::{CountTotal, ThresholdTotal};
use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;

use crate::expiry::window;
use crate::model::{time_of, Cdr, CdrType, Epoch, Subscriber, Time};
use crate::msisdn::Msisdn;
use crate::time::day_start;

pub use super::sums::{Sums, Usage};

const DAY: i64 = 86_400;

/// The first midnight strictly after `t`.
pub fn next_midnight(t: Epoch) -> Epoch {
    day_start(t) + DAY
}

/// What the snapshot writer needs of one subscriber at one time. `age`,
/// the fee and the segments depend on the demographics and the snapshot
/// date, so they are computed there.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct FeatureRow {
    pub msisdn: Msisdn,
    pub usage: Usage,
    pub contacts: i64,
    pub active_days: i64,
}

/// The features' outputs: the rows, and the subscribers table the writer
/// attaches demographics from.
pub struct SegmentFeatures<'s> {
    /// Every subscriber and every caller so far, changing at midnights.
    pub rows: VecCollection<'s, Time, FeatureRow>,
    /// `subscribers.csv` as given (see the module doc).
    pub subscribers: VecCollection<'s, Time, Subscriber>,
}

/// The caller of a CDR (packed at ingest; never [`Msisdn::NONE`] for a
/// valid CDR, and such a CDR would be skipped, never a panic).
fn caller(c: &Cdr) -> Msisdn {
    c.msisdn
}

/// The callee of a CDR: [`Msisdn::NONE`] when absent (packed at ingest).
fn callee(c: &Cdr) -> Msisdn {
    c.callee
}

/// The features of every subscriber and every caller so far, over the last
/// `window_s` seconds before each midnight (see the module doc).
pub fn features<'s>(
    unique: VecCollection<'s, Time, Cdr>,
    subscribers: VecCollection<'s, Time, Subscriber>,
    window_s: i64,
) -> SegmentFeatures<'s> {
    let bounds = move |start: Epoch| {
        (
            time_of(next_midnight(start)),
            Some(time_of(next_midnight(start.saturating_add(window_s)))),
        )
    };
    let usage = window(
        unique
            .clone()
            .inner
            .flat_map(move |(c, t, r)| {
                let m = caller(&c);
                let (from, until) = bounds(c.start);
                let r = r as i64;
                let updates = [
                    ((m, from, until), t, Sums::usage(Usage::of(&c).times(r))),
                    ((m, from, None), t, Sums::known(r)),
                ];
                updates.into_iter().filter(move |_| !m.is_none())
            })
            .as_collection(),
        |(_, from, until)| (*from, *until),
    )
    .map(|(m, _, _)| m);
    let contacts = window(
        unique.clone().flat_map(move |c| {
            let (m, to) = (caller(&c), callee(&c));
            let counted = matches!(c.kind, CdrType::Voice | CdrType::Sms);
            (counted && !m.is_none() && !to.is_none()).then(|| ((m, to), bounds(c.start)))
        }),
        |(_, b)| *b,
    )
    .map(|(pair, _)| pair)
    .threshold_total(|_, _| Sums::contacts(1))
    .map(|(m, _)| m);
    let days = window(
        unique.flat_map(move |c| {
            let m = caller(&c);
            (!m.is_none()).then(|| ((m, day_start(c.start)), bounds(c.start)))
        }),
        |(_, b)| *b,
    )
    .map(|(pair, _)| pair)
    .threshold_total(|_, _| Sums::active_days(1))
    .map(|(m, _)| m);
    let listed = subscribers
        .clone()
        .inner
        .flat_map(|(s, t, r)| Msisdn::pack(&s.msisdn).map(|m| (m, t, Sums::known(r as i64))))
        .as_collection();
    let rows = usage
        .concatenate([contacts, days, listed])
        .count_total()
        .flat_map(|(msisdn, s)| {
            (s.known > 0).then_some(FeatureRow {
                msisdn,
                usage: s.usage,
                contacts: s.contacts,
                active_days: s.active_days,
            })
        });
    SegmentFeatures { rows, subscribers }
}
