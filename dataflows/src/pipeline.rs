//! The whole CDR pipeline from its inputs: the one place that wires the
//! fragments together, used by the runtime (`src/run.rs`) and by the oracle
//! property test, so both run exactly the same dataflow.
//!
//! ```text
//! cdrs ─dedup─▶ unique ─┬─▶ promotions (view, requests, router calls)
//!                       └─▶ counts: cdrs_unique, cdrs_unknown_cell, requests, router_calls
//! stores, loyalty: upsert streams ─arrange_from_upsert─▶ current tables
//! ```

use differential_dataflow::operators::arrange::upsert::arrange_from_upsert;
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use differential_dataflow::{ExchangeData, VecCollection};
use timely::dataflow::Stream;

use crate::dedup::dedup;
use crate::drive_cache::SharedRouter;
use crate::model::{Cdr, Loyalty, Store, Time, Tower};
use crate::promotions::{promotions, PromotionOutputs, PromotionParams};

/// Upserts of a keyed table: `(key, Some(row))` sets, `(key, None)` deletes.
pub type Upserts<'s, V> = Stream<'s, Time, Vec<(String, Option<V>, Time)>>;

/// The current rows of a table given as upserts (an arrangement by key).
pub fn table_from_upserts<'s, V: ExchangeData>(
    upserts: Upserts<'s, V>,
    name: &str,
) -> VecCollection<'s, Time, V> {
    arrange_from_upsert::<ValBuilder<String, V, Time, isize>, ValSpine<String, V, Time, isize>, _, _>(upserts, name)
        .as_collection(|_, v| v.clone())
}

/// What the pipeline produces.
pub struct PipelineOutputs<'s> {
    pub unique: VecCollection<'s, Time, Cdr>,
    pub promotions: PromotionOutputs<'s>,
    /// Named counts (one element per counted thing): `cdrs_unique`,
    /// `cdrs_unknown_cell`, `requests`, `router_calls`.
    pub counts: VecCollection<'s, Time, String>,
}

/// Wires dedup, the promotions view and its counts.
pub fn pipeline<'s>(
    cdrs: VecCollection<'s, Time, Cdr>,
    towers: VecCollection<'s, Time, Tower>,
    stores: Upserts<'s, Store>,
    loyalty: Upserts<'s, Loyalty>,
    router: SharedRouter,
    params: &PromotionParams,
    dedup_horizon: u64,
) -> PipelineOutputs<'s> {
    let stores = table_from_upserts(stores, "Stores");
    let loyalty = table_from_upserts(loyalty, "Loyalty");
    let unique = dedup(cdrs, dedup_horizon);
    let out = promotions(
        unique.clone(),
        towers.clone(),
        stores,
        loyalty,
        router,
        params,
    );
    // Unknown cells: the arrangement holds one entry per cell, not per CDR.
    let unknown_cell = unique
        .clone()
        .map(|c| (c.cell_id, ()))
        .antijoin(towers.map(|t| t.cell_id))
        .map(|_| "cdrs_unknown_cell".to_string());
    let counts = unique
        .clone()
        .map(|_| "cdrs_unique".to_string())
        .concatenate([
            unknown_cell,
            out.requests.clone().map(|_| "requests".to_string()),
            out.router_calls.clone().map(|_| "router_calls".to_string()),
        ]);
    PipelineOutputs {
        unique,
        promotions: out,
        counts,
    }
}
