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
//! requests(pair, start) ─reduce(pair: greedy entries)─▶ (pair, (start, t0))
//!        entries (pair, t0) ─distinct─map(router)─▶ (pair, t0, drive) ─join─▶ ((pair, start), drive)
//! ```
//!
//! The store's position is part of the pair, so a store that moves starts new
//! entries (its old distances are invalid). State is released with the requests
//! (they expire upstream with the view retention).

use std::sync::Arc;

use differential_dataflow::VecCollection;

use crate::model::{Deg, Epoch, Point, Time};
use crate::route::Router;

/// A (tower, store) pair, positions included.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Pair {
    pub cell_id: String,
    pub store_id: String,
    pub from: Point,
    pub to: Point,
}

/// The router shared by the workers of a process.
pub type SharedRouter = Arc<dyn Router + Send + Sync>;

/// `(pair, (start, t0))`: the entry start `t0` serving each distinct request time.
pub fn cache_entries<'s>(
    requests: VecCollection<'s, Time, (Pair, Epoch)>,
    ttl: i64,
) -> VecCollection<'s, Time, (Pair, (Epoch, Epoch))> {
    requests.reduce_named("DriveCacheEntries", move |_pair, starts, out| {
        let mut t0: Option<Epoch> = None;
        for (start, _) in starts {
            let start = **start;
            if t0.is_none_or(|t0| start >= t0.saturating_add(ttl)) {
                t0 = Some(start);
            }
            out.push(((start, t0.unwrap_or(start)), 1));
        }
    })
}

/// The router calls (one per entry) and the distance each request time gets.
/// Returns `(calls, ((pair, start), drive_m))`.
#[allow(clippy::type_complexity)]
pub fn drive_distances<'s>(
    entries: VecCollection<'s, Time, (Pair, (Epoch, Epoch))>,
    router: SharedRouter,
) -> (
    VecCollection<'s, Time, (Pair, Epoch)>,
    VecCollection<'s, Time, ((Pair, Epoch), Option<Deg>)>,
) {
    let calls = entries.clone().map(|(pair, (_, t0))| (pair, t0)).distinct();
    let distances = calls.clone().map(move |(pair, t0)| {
        let d = router.distance_m(pair.from, pair.to).map(Deg);
        ((pair, t0), d)
    });
    let by_request = entries
        .map(|(pair, (start, t0))| ((pair, t0), start))
        .join_map(distances, |(pair, _t0), start, d| {
            ((pair.clone(), *start), *d)
        });
    (calls, by_request)
}
