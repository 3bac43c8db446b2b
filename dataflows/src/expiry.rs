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

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::operators::vec::{Filter, Map};

use crate::model::Time;

/// Each update `(d, t, r)` also schedules `(d, max(until(d), t+1), -r)`.
pub fn expire<'s, D>(
    c: VecCollection<'s, Time, D>,
    until: impl Fn(&D) -> Time + 'static,
) -> VecCollection<'s, Time, D>
where
    D: differential_dataflow::Data,
{
    c.inner
        .flat_map(move |(d, t, r)| {
            let end = until(&d).max(t + 1);
            [(d.clone(), t, r), (d, end, -r)]
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
