//! The proximity-promotions view (SPEC §3), wired from the fragments.
//!
//! ```text
//! unique ─expire(retention)─map(msisdn)─join(qualifying customer)─join(cell: nearest store)─▶ requests
//! requests ─cache_entries─drive_distances─▶ drive per (pair, start)
//! requests ⋈ drive ─filter(drive ≤ max)─reduce((customer, date): min (start, record_id))─freeze─▶ promotions
//! ```
//!
//! The view is retroactive: every join uses the current loyalty and store rows,
//! whatever the CDR's time. Retroactive only so far: a promotion whose `start`
//! lies more than `view_retention` behind the watermark is final (the freeze
//! drops later updates), and the CDRs behind it leave every arrangement at the
//! end of their UTC day plus the retention, so state stays bounded.

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::operators::vec::Filter;

use crate::drive_cache::{cache_entries, drive_distances, Pair, SharedRouter};
use crate::expiry::{expire, freeze};
use crate::loyalty::qualifying_by_msisdn;
use crate::model::{time_of, Cdr, Cell, Deg, Epoch, Loyalty, Msisdn, Store, Text, Time, Tower};
use crate::stores::nearest_store;
use crate::time::day_start;

/// The flags of SPEC §3, in seconds and metres.
#[derive(Clone, Debug)]
pub struct PromotionParams {
    pub max_points: i64,
    pub radius_m: f64,
    pub max_drive_m: f64,
    pub cache_ttl: i64,
    pub view_retention: i64,
}

/// One row of the view. Field order is the output order (date, customer_id).
/// `msisdn` stays inside the engine: sinks write its token instead. Texts are
/// shared (`Text`, one allocation per loyalty or store row), the cell and the
/// number packed: copying a row copies pointers and integers.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Promotion {
    /// Midnight (UTC) of the date of `start`.
    pub date: Epoch,
    pub customer_id: Text,
    pub record_id: Text,
    pub start: Epoch,
    pub cell_id: Cell,
    pub store_id: Text,
    pub region: Text,
    pub haversine_m: Deg,
    pub drive_m: Deg,
    pub msisdn: Msisdn,
}

/// A CDR that passed steps 1 and 2: a qualifying customer, a store in range.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
struct Request {
    start: Epoch,
    msisdn: Msisdn,
    customer_id: Text,
    pair: Pair,
    region: Text,
    haversine_m: Deg,
    record_id: Text,
}

/// What the promotions dataflow produces.
pub struct PromotionOutputs<'s> {
    /// The view, not yet frozen: a row is final from `start + retention + 1`
    /// (the caller freezes it after attaching its product).
    pub promotions: VecCollection<'s, Time, Promotion>,
    /// One element per request (steps 1–2 passed), frozen like the view.
    pub requests: VecCollection<'s, Time, ()>,
    /// One element per drive-cache entry (= router call), frozen like the view.
    pub router_calls: VecCollection<'s, Time, ()>,
    /// The funnel (frozen like the requests): one element per unique CDR of a
    /// qualifying customer (step 1 passed, before the store lookup) …
    pub loyalty_matches: VecCollection<'s, Time, ()>,
    /// … per request the router found a road for …
    pub routed: VecCollection<'s, Time, ()>,
    /// … and per request within the drive limit (before the daily cap).
    pub within_drive_limit: VecCollection<'s, Time, ()>,
}

const DAY: i64 = 86_400;

pub fn promotions<'s>(
    unique: VecCollection<'s, Time, Cdr>,
    towers: VecCollection<'s, Time, Tower>,
    stores: VecCollection<'s, Time, Store>,
    loyalty: VecCollection<'s, Time, Loyalty>,
    router: SharedRouter,
    p: &PromotionParams,
) -> PromotionOutputs<'s> {
    let retention = p.view_retention;
    let ttl = p.cache_ttl;
    // A CDR leaves the arrangements when its whole UTC day is final, so a
    // (customer, date) group expires at once and the daily cap never switches
    // to a later CDR because an earlier one was released.
    let release = move |start: Epoch| time_of(day_start(start) + DAY + retention);

    // Integer key (the packed msisdn), the record id's text last in the value:
    // compared only when start and cell tie.
    let by_msisdn = expire(
        unique.map(|c| (c.msisdn, (c.start, c.cell_id, c.record_id))),
        move |(_, (start, _, _))| release(*start),
    );
    let customers = by_msisdn.join_core(
        qualifying_by_msisdn(loyalty, p.max_points).arrange_by_key(),
        |msisdn, (start, cell_id, record_id), customer_id| {
            Some((
                cell_id.clone(),
                (*start, *msisdn, customer_id.clone(), record_id.clone()),
            ))
        },
    );
    let requests = customers.clone().join_core(
        nearest_store(towers, stores, p.radius_m).arrange_by_key(),
        |cell_id, (start, msisdn, customer_id, record_id), (tower_at, near)| {
            Some(Request {
                start: *start,
                record_id: record_id.clone(),
                customer_id: customer_id.clone(),
                msisdn: *msisdn,
                pair: Pair {
                    cell_id: cell_id.clone(),
                    store_id: near.store_id.clone(),
                    from: *tower_at,
                    to: near.store_at,
                },
                region: near.region.clone(),
                haversine_m: near.haversine_m,
            })
        },
    );

    let entries = cache_entries(requests.clone().map(|r| (r.pair, r.start)), p.cache_ttl);
    let drive = drive_distances(entries.clone(), router);

    let max_drive = p.max_drive_m;
    let driven = requests
        .clone()
        .map(|r| (r.pair.clone(), r))
        .join_map(drive, |_, r, d| (r.clone(), *d));
    let funnel = |step: VecCollection<'s, Time, (Request, Option<Deg>)>| {
        freeze(step, move |(r, _)| release(r.start)).map(|_| ())
    };
    let routed = funnel(driven.clone().filter(|(_, d)| d.is_some()));
    let within_drive_limit = funnel(
        driven
            .clone()
            .filter(move |(_, d)| d.is_some_and(|d| d.0 <= max_drive)),
    );
    let promotions = driven
        .flat_map(move |(r, d)| {
            let d = d.filter(|d| d.0 <= max_drive)?;
            let date = day_start(r.start);
            Some((
                (r.customer_id.clone(), date),
                (r.start, r.record_id.clone(), r, d),
            ))
        })
        // A candidate is final with its promotion: changes after `start +
        // retention` no longer move it, so the cap of a day whose shown
        // promotion is final cannot switch to a second CDR. Only the release
        // of the whole day (all candidates at once) passes, and the freeze
        // below keeps that from the view.
        .inner
        .filter(move |((_, (start, _, _, _)), t, _)| {
            *t <= time_of(start + retention) || *t >= release(*start)
        })
        .as_collection()
        .reduce_named("DailyCap", |_key, candidates, out| {
            let (_, _, r, d) = candidates[0].0;
            let row = Promotion {
                date: day_start(r.start),
                customer_id: r.customer_id.clone(),
                record_id: r.record_id.clone(),
                start: r.start,
                cell_id: r.pair.cell_id.clone(),
                store_id: r.pair.store_id.clone(),
                region: r.region.clone(),
                haversine_m: r.haversine_m,
                drive_m: *d,
                msisdn: r.msisdn,
            };
            out.push((row, 1))
        })
        .map(|(_, row)| row);

    PromotionOutputs {
        // Frozen by the pipeline once the product is attached.
        promotions,
        requests: freeze(requests, move |r| release(r.start)).map(|_| ()),
        // An entry's chain can start in the day before (an entry made at t0 serves
        // until t0 + ttl), so when that day is released the next day's entries
        // would be recomputed: freeze them one ttl earlier so that release never
        // shows up as new router calls.
        router_calls: freeze(entries, move |(_, t0)| release(t0 - ttl)).map(|_| ()),
        loyalty_matches: freeze(customers, move |(_, (start, _, _, _))| release(*start))
            .map(|_| ()),
        routed,
        within_drive_limit,
    }
}
