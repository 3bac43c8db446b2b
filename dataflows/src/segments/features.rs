//! Rolling-window features per subscriber (SPEC §5) as differential
//! collections.
//!
//! ```text
//! unique ─▶ (msisdn, window bounds) with Usage in the diff ─window─▶ count_total ─▶ usage per msisdn ─┐
//!        ─▶ (msisdn, callee)  voice/sms                   ─window─▶ distinct ─count─▶ contacts ───────┤
//!        ─▶ (msisdn, day)                                 ─window─▶ distinct ─count─▶ active days ────┼─reduce(msisdn)─▶ FeatureRow
//!        ─▶ msisdn                                        ─from first boundary, never retracted─▶ callers ┤
//! subscribers ────────────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Snapshots are taken at day boundaries (`as_of` = a UTC midnight), so a CDR
//! with start `s` is in the window of snapshot `as_of` exactly when
//! `s < as_of <= s + window`: it enters at the first midnight after `s` and
//! leaves at the first midnight after `s + window`. The collection at dataflow
//! time `as_of` *is* the snapshot of the day before; every update happens at a
//! midnight, so the arrangements see one batch per day. Sums ride in the
//! difference ([`Usage`]), consolidated per (subscriber, bounds), so state is
//! bounded by subscribers × window days, not by CDRs.

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Semigroup};
use differential_dataflow::operators::CountTotal;
use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;

use crate::expiry::window;
use crate::model::{time_of, Cdr, CdrType, Epoch, Msisdn, Subscriber, Text, Time};
use crate::time::{day_start, hour_of_day, weekday};

const DAY: i64 = 86_400;

/// The first midnight strictly after `t`.
pub fn next_midnight(t: Epoch) -> Epoch {
    day_start(t) + DAY
}

/// Additive usage of a set of CDRs: the difference type of the window sums.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Usage {
    pub events: i64,
    /// Sums of i64 fields: i128, so no sum of valid CDRs overflows.
    pub voice_seconds: i128,
    pub sms_count: i64,
    pub data_bytes: i128,
    pub charge_cents: i128,
    pub night: i64,
    pub weekend: i64,
    pub roaming: i64,
}

impl Usage {
    /// One CDR's contribution (SPEC §5): night is UTC hour 22, 23 or 0–5,
    /// weekend UTC Saturday or Sunday.
    pub fn of(c: &Cdr) -> Usage {
        let hour = hour_of_day(c.start);
        let day = weekday(c.start);
        Usage {
            events: 1,
            voice_seconds: if c.kind == CdrType::Voice {
                c.duration_s as i128
            } else {
                0
            },
            sms_count: (c.kind == CdrType::Sms) as i64,
            data_bytes: c.bytes as i128,
            charge_cents: c.charge_cents as i128,
            night: (!(6..22).contains(&hour)) as i64,
            weekend: is_weekend(day) as i64,
            roaming: c.roaming as i64,
        }
    }
}

/// `weekday` numbers days from Monday = 0 (see `time::weekday`).
fn is_weekend(weekday: u32) -> bool {
    weekday >= 5
}

impl Usage {
    /// `r` copies (a negative `r` retracts).
    pub fn times(self, r: i64) -> Usage {
        Usage {
            events: self.events * r,
            voice_seconds: self.voice_seconds * r as i128,
            sms_count: self.sms_count * r,
            data_bytes: self.data_bytes * r as i128,
            charge_cents: self.charge_cents * r as i128,
            night: self.night * r,
            weekend: self.weekend * r,
            roaming: self.roaming * r,
        }
    }
}

impl IsZero for Usage {
    fn is_zero(&self) -> bool {
        *self == Usage::default()
    }
}

impl Semigroup for Usage {
    fn plus_equals(&mut self, r: &Self) {
        self.events += r.events;
        self.voice_seconds += r.voice_seconds;
        self.sms_count += r.sms_count;
        self.data_bytes += r.data_bytes;
        self.charge_cents += r.charge_cents;
        self.night += r.night;
        self.weekend += r.weekend;
        self.roaming += r.roaming;
    }
}

impl Monoid for Usage {
    fn zero() -> Self {
        Usage::default()
    }
}

impl Abelian for Usage {
    fn negate(&mut self) {
        *self = Usage {
            events: -self.events,
            voice_seconds: -self.voice_seconds,
            sms_count: -self.sms_count,
            data_bytes: -self.data_bytes,
            charge_cents: -self.charge_cents,
            night: -self.night,
            weekend: -self.weekend,
            roaming: -self.roaming,
        }
    }
}

/// What the snapshot writer needs of one subscriber at one time. `age` and
/// the segments depend on the snapshot date, so they are computed there.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeatureRow {
    pub msisdn: Text,
    pub usage: Usage,
    pub contacts: i64,
    pub active_days: i64,
    /// From `subscribers.csv`; `None` for a caller it does not list.
    pub subscriber: Option<Subscriber>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Fact {
    Subscriber(Subscriber),
    Caller,
    Usage(Usage),
    Contacts(i64),
    Days(i64),
}

/// The features of every subscriber and every caller so far, over the last
/// `window` seconds before each midnight (see the module doc).
pub fn features<'s>(
    unique: VecCollection<'s, Time, Cdr>,
    subscribers: VecCollection<'s, Time, Subscriber>,
    window_s: i64,
) -> VecCollection<'s, Time, FeatureRow> {
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
            .map(move |(c, t, r)| {
                let u = Usage::of(&c).times(r as i64);
                ((c.msisdn, bounds(c.start)), t, u)
            })
            .as_collection(),
        |(_, b)| *b,
    )
    .map(|(m, _)| m)
    .count_total()
    .map(|(m, u)| (m, Fact::Usage(u)));
    let contacts = window(
        unique.clone().flat_map(move |c| {
            let counted = matches!(c.kind, CdrType::Voice | CdrType::Sms) && !c.callee.is_none();
            counted.then(|| ((c.msisdn, c.callee), bounds(c.start)))
        }),
        |(_, b)| *b,
    )
    .map(|(pair, _)| pair)
    .distinct()
    .map(|(m, _)| m)
    .count()
    .map(|(m, n)| (m, Fact::Contacts(n as i64)));
    let days = window(
        unique
            .clone()
            .map(move |c| ((c.msisdn, day_start(c.start)), bounds(c.start))),
        |(_, b)| *b,
    )
    .map(|(pair, _)| pair)
    .distinct()
    .map(|(m, _)| m)
    .count()
    .map(|(m, n)| (m, Fact::Days(n as i64)));
    let callers = window(
        unique.map(|c| (c.msisdn, time_of(next_midnight(c.start)))),
        |(_, from)| (*from, None),
    )
    .map(|(m, _)| m)
    .distinct()
    .map(|m| (m, Fact::Caller));
    subscribers
        // Subscriber numbers are normalised when the table is read (they pack).
        .flat_map(|s| Some((Msisdn::pack(&s.msisdn)?, Fact::Subscriber(s))))
        .concatenate([callers, usage, contacts, days])
        .reduce_named("Features", |msisdn, facts, out| {
            let mut row = FeatureRow {
                msisdn: Text::from(msisdn.to_text()),
                ..FeatureRow::default()
            };
            let mut known = false;
            for (fact, n) in facts {
                if *n <= 0 {
                    continue;
                }
                match fact {
                    Fact::Subscriber(s) => {
                        row.subscriber = Some(s.clone());
                        known = true;
                    }
                    Fact::Caller => known = true,
                    Fact::Usage(u) => row.usage = *u,
                    Fact::Contacts(c) => row.contacts = *c,
                    Fact::Days(d) => row.active_days = *d,
                }
            }
            if known {
                out.push((row, 1));
            }
        })
        .map(|(_, row)| row)
}
