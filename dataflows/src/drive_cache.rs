//! The drive-distance cache (SPEC §3.4) as dataflow state.
//!
//! Maintains, per (tower, store) pair, the cache entries of the requests of that
//! pair: requests taken in `start` order, an entry made at `t0` serves every
//! request with `t0 <= start < t0 + ttl`, the first request at or after
//! `t0 + ttl` starts a new entry. One router call per entry; the distance of an
//! entry is what every request it serves uses. "No route" is cached like a
//! distance.
//!
//! ```text
//! requests(pair, start) ─reduce(pair: greedy entries)─▶ entries (pair, t0)
//! entries ─map(router call)─distinct─▶ (pair, drive) ─join(pair)─▶ requests with drive
//! ```
//!
//! The store's position is part of the pair, so a store that moves starts new
//! entries (its old distances are invalid). State is released with the requests
//! (they expire upstream with the view retention).

use std::sync::Arc;

use differential_dataflow::VecCollection;

use crate::model::{Cell, Deg, Epoch, Point, Text, Time};
use crate::route::Router;

/// A (tower, store) pair, positions included.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Pair {
    pub cell_id: Cell,
    pub store_id: Text,
    pub from: Point,
    pub to: Point,
}

/// The router shared by the workers of a process.
pub type SharedRouter = Arc<dyn Router + Send + Sync>;

/// `(pair, t0)`: the cache entries of each pair, one per router call.
///
/// The reduce replays a pair's request times on each change, so its output is
/// kept small (entries, not one row per request).
pub fn cache_entries<'s>(
    requests: VecCollection<'s, Time, (Pair, Epoch)>,
    ttl: i64,
) -> VecCollection<'s, Time, (Pair, Epoch)> {
    requests.reduce_named("DriveCacheEntries", move |_pair, starts, out| {
        let mut t0: Option<Epoch> = None;
        for (start, _) in starts {
            let start = **start;
            if t0.is_none_or(|t0| start >= t0.saturating_add(ttl)) {
                t0 = Some(start);
                out.push((start, 1));
            }
        }
    })
}

/// The router is called once per entry; `(pair, drive_m)` is its answer.
///
/// Unchecked assumption: the router is a pure function of the pair (the
/// embedded one is), so every entry of a pair carries the same distance and a
/// request can take it by pair. A router whose answers change over time would
/// need an as-of join from each request to the entry serving it.
pub fn drive_distances<'s>(
    entries: VecCollection<'s, Time, (Pair, Epoch)>,
    router: SharedRouter,
) -> VecCollection<'s, Time, (Pair, Option<Deg>)> {
    entries
        .map(move |(pair, _t0)| {
            let d = router.distance_m(pair.from, pair.to).map(Deg);
            (pair, d)
        })
        .distinct()
}
