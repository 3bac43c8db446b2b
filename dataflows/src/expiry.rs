//! Releasing state as event time passes: the temporal-filter idiom.
//!
//! * [`expire`]: a record leaves the collection at a time computed from its
//!   content, so every arrangement downstream forgets it then (bounded memory on
//!   an endless stream).
//! * [`freeze`]: the *view* a sink sees stops changing for a record once its
//!   time is up: updates at or after that time are dropped, so the retraction
//!   that [`expire`] causes downstream never reaches the output. What was shown
//!   stays shown ("final", SPEC §3 view retention; "never retracts the copy that
//!   was kept", SPEC §2 dedup horizon).

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Filter;
use timely::dataflow::operators::Capability;

use crate::model::Time;

/// Each update `(d, t, r)` is followed, at `max(until(d), t+1)`, by `(d, -r)`.
///
/// The retraction is issued when the input frontier reaches that time, not
/// sent ahead as a future-dated update: future updates would sit in every
/// downstream batcher and be re-merged on each batch until due (measured:
/// superlinear time on long runs). The operator holds the pending retractions
/// ordered by time and one capability for the earliest.
pub fn expire<'s, D>(
    c: VecCollection<'s, Time, D>,
    until: impl Fn(&D) -> Time + 'static,
) -> VecCollection<'s, Time, D>
where
    D: differential_dataflow::Data,
{
    c.inner
        .unary_frontier(Pipeline, "Expire", move |_initial, _info| {
            let mut pending: BTreeMap<Time, Vec<(D, isize)>> = BTreeMap::new();
            let mut held: Option<Capability<Time>> = None;
            move |(input, frontier), output| {
                input.for_each(|time, data| {
                    let mut session = output.session(&time);
                    for (d, t, r) in data.drain(..) {
                        let end = until(&d).max(t + 1);
                        if held.as_ref().is_none_or(|h| *h.time() > end) {
                            held = Some(time.delayed(&end, 0));
                        }
                        pending.entry(end).or_default().push((d.clone(), -r));
                        session.give((d, t, r));
                    }
                });
                let reached = frontier.frontier().iter().min().copied();
                while let Some(entry) = pending.first_entry() {
                    let due = *entry.key();
                    if reached.is_some_and(|f| f < due) {
                        break;
                    }
                    let retractions = entry.remove();
                    let cap = held
                        .as_ref()
                        .expect("a capability covers every pending time")
                        .delayed(&due);
                    output
                        .session(&cap)
                        .give_iterator(retractions.into_iter().map(|(d, r)| (d, due, r)));
                }
                match pending.keys().next() {
                    Some(next) => {
                        if let Some(h) = held.as_mut() {
                            h.downgrade(next);
                        }
                    }
                    None => held = None,
                }
            }
        })
        .as_collection()
}

/// Drops every update `(d, t, r)` with `t >= until(d)`.
pub fn freeze<'s, D>(
    c: VecCollection<'s, Time, D>,
    until: impl Fn(&D) -> Time + 'static,
) -> VecCollection<'s, Time, D>
where
    D: differential_dataflow::Data,
{
    c.inner
        .filter(move |(d, t, _)| *t < until(d))
        .as_collection()
}

/// A sliding window by content: each update `(d, t, r)` is held until the
/// frontier reaches `from(d)` and shown there (`(d, max(from, t), r)`), then
/// retracted at `until(d)` (`(d, until, -r)`; `None` never). Both are issued
/// when the input frontier reaches them, like [`expire`], never sent ahead as
/// future-dated updates.
///
/// Pending updates are consolidated per time, so the state held is at most
/// one entry per distinct record per pending time: with `d` a per-day
/// aggregate key (subscriber, day), it is bounded by subscribers × window
/// days, not by the CDRs in the window.
pub fn window<'s, D, R>(
    c: VecCollection<'s, Time, D, R>,
    bounds: impl Fn(&D) -> (Time, Option<Time>) + 'static,
) -> VecCollection<'s, Time, D, R>
where
    D: differential_dataflow::Data,
    R: differential_dataflow::difference::Abelian + differential_dataflow::Data,
{
    type Pending<D, R> = BTreeMap<Time, (Vec<(D, R)>, usize)>;
    fn hold<D: Ord, R: differential_dataflow::difference::Semigroup>(
        pending: &mut Pending<D, R>,
        at: Time,
        d: D,
        r: R,
    ) {
        let (vec, clean) = pending.entry(at).or_insert_with(|| (Vec::new(), 0));
        vec.push((d, r));
        // Amortised: consolidate when the bucket doubled since the last time.
        if vec.len() >= 2 * (*clean).max(1024) {
            differential_dataflow::consolidation::consolidate(vec);
            *clean = vec.len();
        }
    }
    c.inner
        .unary_frontier(Pipeline, "Window", move |_initial, _info| {
            // Time → updates to show then (insertions and retractions alike).
            let mut pending: Pending<D, R> = BTreeMap::new();
            let mut held: Option<Capability<Time>> = None;
            move |(input, frontier), output| {
                input.for_each(|time, data| {
                    for (d, t, r) in data.drain(..) {
                        let (from, until) = bounds(&d);
                        let from = from.max(t);
                        if let Some(until) = until {
                            if until <= from {
                                continue; // never inside its window
                            }
                            let mut minus = r.clone();
                            minus.negate();
                            hold(&mut pending, until, d.clone(), minus);
                        }
                        if held.as_ref().is_none_or(|h| *h.time() > from) {
                            held = Some(time.delayed(&from, 0));
                        }
                        hold(&mut pending, from, d, r);
                    }
                });
                let reached = frontier.frontier().iter().min().copied();
                while let Some(entry) = pending.first_entry() {
                    let due = *entry.key();
                    if reached.is_some_and(|f| f < due) {
                        break;
                    }
                    let (mut updates, _) = entry.remove();
                    differential_dataflow::consolidation::consolidate(&mut updates);
                    let cap = held
                        .as_ref()
                        .expect("a capability covers every pending time")
                        .delayed(&due);
                    output
                        .session(&cap)
                        .give_iterator(updates.into_iter().map(|(d, r)| (d, due, r)));
                }
                match pending.keys().next() {
                    Some(next) => {
                        if let Some(h) = held.as_mut() {
                            h.downgrade(next);
                        }
                    }
                    None => held = None,
                }
            }
        })
        .as_collection()
}
