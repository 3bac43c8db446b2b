//! The whole CDR pipeline from its inputs: the one place that wires the
//! fragments together, used by the runtime (`src/run.rs`) and by the oracle
//! property test, so both run exactly the same dataflow.
//!
//! ```text
//! cdrs ─dedup─▶ unique ─┬─▶ promotions (view, requests, router calls) ─with_picks─freeze─▶ promotions + product
//!                       └─▶ counts (pre-summed per message): cdrs_unique, cdrs_unknown_cell, requests, router_calls,
//!                                   funnel (loyalty_matches, requests_routed, requests_within_drive_limit)
//! unique ─▶ segment features (window sums, contacts, active days) per subscriber, per midnight
//! purchases, weather ─▶ market basket ─▶ rules, recommendations ──────────▲
//! stores, loyalty: upsert streams ─arrange_from_upsert─▶ current tables
//! ```

use differential_dataflow::consolidation::consolidate_updates;
use differential_dataflow::operators::arrange::upsert::arrange_from_upsert;
use differential_dataflow::trace::implementations::{ValBuilder, ValSpine};
use differential_dataflow::{AsCollection, ExchangeData, VecCollection};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::Stream;

use crate::basket::{
    market_basket, with_picks, BasketParams, Pick, PurchaseRow, Recommendation, Rule, WeatherRow,
};
use crate::dedup::dedup;
use crate::drive_cache::SharedRouter;
use crate::expiry::freeze;
use crate::model::{time_of, Cdr, Epoch, Loyalty, Store, Subscriber, Time, Tower};
use crate::promotions::{promotions, Promotion, PromotionParams};
use crate::segments::features::{features, SegmentFeatures};
use crate::time::day_start;

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

/// The inputs of the pipeline.
pub struct PipelineInputs<'s> {
    pub cdrs: VecCollection<'s, Time, Cdr>,
    pub towers: VecCollection<'s, Time, Tower>,
    pub stores: Upserts<'s, Store>,
    pub loyalty: Upserts<'s, Loyalty>,
    pub purchases: VecCollection<'s, Time, PurchaseRow>,
    pub weather: VecCollection<'s, Time, WeatherRow>,
    pub subscribers: VecCollection<'s, Time, Subscriber>,
}

/// The flags of the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineParams {
    pub promotion: PromotionParams,
    pub basket: BasketParams,
    /// Seconds of event time.
    pub dedup_horizon: u64,
    /// The segment features' window (SPEC §5 `--window`), seconds.
    pub window: i64,
}

/// What the pipeline produces.
pub struct PipelineOutputs<'s> {
    pub unique: VecCollection<'s, Time, Cdr>,
    /// The promotions view with each promotion's product (final rows frozen).
    pub promotions: VecCollection<'s, Time, (Promotion, Pick)>,
    pub rules: VecCollection<'s, Time, Rule>,
    pub recommendations: VecCollection<'s, Time, Recommendation>,
    /// Segment features per subscriber, changing at midnights (the state at
    /// midnight `m` is the snapshot of the day before `m`), and the
    /// subscribers table their demographics come from.
    pub features: SegmentFeatures<'s>,
    /// The UTC dates (midnights) of the unique CDRs: the snapshot range.
    pub cdr_days: VecCollection<'s, Time, Epoch>,
    /// Named counts (the count in the difference): `cdrs_unique`,
    /// `cdrs_unknown_cell`, `requests`, `router_calls`, the funnel's
    /// `loyalty_matches`, `requests_routed`, `requests_within_drive_limit`, `baskets`,
    /// `rules`, `recommendations`.
    pub counts: VecCollection<'s, Time, String>,
}

/// Wires dedup, the promotions view, the market basket and their counts.
pub fn pipeline<'s>(
    inputs: PipelineInputs<'s>,
    router: SharedRouter,
    params: &PipelineParams,
) -> PipelineOutputs<'s> {
    let PipelineInputs {
        cdrs,
        towers,
        stores,
        loyalty,
        purchases,
        weather,
        subscribers,
    } = inputs;
    let stores = table_from_upserts(stores, "Stores");
    let loyalty = table_from_upserts(loyalty, "Loyalty");
    let unique = dedup(cdrs, params.dedup_horizon);
    let basket = market_basket(
        purchases,
        weather.clone(),
        stores.clone(),
        loyalty.clone(),
        &params.basket,
    );
    let out = promotions(
        unique.clone(),
        towers.clone(),
        stores,
        loyalty,
        router,
        &params.promotion,
    );
    let retention = params.promotion.view_retention;
    let promotions = freeze(
        with_picks(out.promotions, weather, basket.recommendations.clone()),
        move |(row, _)| time_of(row.start + retention) + 1,
    );
    // Unknown cells: the arrangement holds one entry per cell, not per CDR.
    let unknown_cell = presum(unique.clone().map(|c| c.cell_id))
        .map(|c| (c, ()))
        .antijoin(towers.map(|t| t.cell_id));
    let counts = count("cdrs_unique", unique.clone()).concatenate([
        count("cdrs_unknown_cell", unknown_cell),
        count("requests", out.requests),
        count("router_calls", out.router_calls),
        count("loyalty_matches", out.loyalty_matches),
        count("requests_routed", out.routed),
        count("requests_within_drive_limit", out.within_drive_limit),
        // The count rides in the difference: one update per change of n.
        basket
            .sizes
            .filter(|(s, _)| s.is_none())
            .inner
            .map(|((_, n), t, r)| ("baskets".to_string(), t, r * n as isize))
            .as_collection(),
        count("rules", basket.rules.clone()),
        count("recommendations", basket.recommendations.clone()),
    ]);
    let features = features(unique.clone(), subscribers, params.window);
    let cdr_days = presum(unique.clone().map(|c| day_start(c.start))).distinct();
    PipelineOutputs {
        features,
        cdr_days,
        unique,
        promotions,
        rules: basket.rules,
        recommendations: basket.recommendations,
        counts,
    }
}

/// Consolidates the updates of each message where they are (no arrangement,
/// no state), so an operator downstream that arranges sees one update per
/// distinct (record, time) of a message instead of one per input record.
fn presum<'s, D: differential_dataflow::Data>(
    c: VecCollection<'s, Time, D>,
) -> VecCollection<'s, Time, D> {
    c.inner
        .unary(Pipeline, "Presum", |_, _| {
            move |input, output| {
                input.for_each(|time, data| {
                    consolidate_updates(data);
                    output.session(&time).give_container(data);
                });
            }
        })
        .as_collection()
}

/// The count of `c` under `name`: the count rides in the difference, one
/// pre-summed update per message and time (not a `String` per record).
fn count<'s, D: differential_dataflow::Data>(
    name: &'static str,
    c: VecCollection<'s, Time, D>,
) -> VecCollection<'s, Time, String> {
    presum(c.inner.map(|(_, t, r)| ((), t, r)).as_collection()).map(move |()| name.to_string())
}
