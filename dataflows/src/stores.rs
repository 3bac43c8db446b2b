//! Nearest store within the radius (SPEC §3.2), as a grid join.
//!
//! Maintains: for each tower, the store with the smallest haversine distance
//! among stores within `radius_m`, ties to the smallest `store_id`.
//!
//! ```text
//! towers ─map(grid cell)──────────────┐
//!                                     join(cell) ─filter(d ≤ r)─ reduce(cell_id, min (d, store_id))
//! stores ─flat_map(cells within r)────┘
//! ```
//!
//! Each store is copied to the few grid cells its radius touches; each tower
//! meets only the stores of its own cell, never the towers × stores product. A
//! store that opens, moves or closes changes only the towers of its cells.
//! Towers are keyed by their packed [`Cell`]; store texts are shared (`Text`).

use differential_dataflow::VecCollection;

use crate::model::{Cell, Deg, Point, Store, Text, Time, Tower};
use crate::spatial::{haversine_m, Grid};

/// A tower's nearest store. Field order is the tie-break order.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NearStore {
    pub haversine_m: Deg,
    pub store_id: Text,
    pub store_at: Point,
    pub region: Text,
}

/// `(cell_id, (tower position, nearest store))` for every tower with a store in range.
pub fn nearest_store<'s>(
    towers: VecCollection<'s, Time, Tower>,
    stores: VecCollection<'s, Time, Store>,
    radius_m: f64,
) -> VecCollection<'s, Time, (Cell, (Point, NearStore))> {
    let grid = Grid::new(radius_m);
    let store_grid = grid.clone();
    let towers = towers.map(move |t| (grid.cell_of(t.at), (t.cell_id, t.at)));
    let stores = stores.flat_map(move |s| {
        let (store_id, region) = (Text::from(s.store_id), Text::from(s.region));
        store_grid
            .cells_within(s.at, radius_m)
            .into_iter()
            .map(move |cell| (cell, (store_id.clone(), s.at, region.clone())))
    });
    towers
        .join_core(
            stores.arrange_by_key(),
            move |_cell, (cell_id, tower_at), (store_id, store_at, region)| {
                let d = haversine_m(*tower_at, *store_at);
                (d <= radius_m).then(|| {
                    let near = NearStore {
                        haversine_m: Deg(d),
                        store_id: store_id.clone(),
                        store_at: *store_at,
                        region: region.clone(),
                    };
                    (cell_id.clone(), (near, *tower_at))
                })
            },
        )
        .reduce_named("NearestStore", |_cell_id, candidates, out| {
            let (near, tower_at) = candidates[0].0;
            out.push(((*tower_at, near.clone()), 1))
        })
}
