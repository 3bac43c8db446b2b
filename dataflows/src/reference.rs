//! A naive batch implementation of SPEC §2 (dedup) and §3 steps 1–5
//! (promotions, without the product of step 6) plus the drive-cache counts of
//! §3.4: the oracle the property tests hold the incremental dataflow against
//! (STYLE habit 8).
//!
//! ```text
//! valid ─dedup─▶ unique ─1 loyalty─2 nearest store─▶ requests ─4 cache entries─3 drive─5 daily cap─▶ promotions
//! ```
//!
//! Written from the SPEC text, not from the dataflow: plain loops over the
//! current tables (every CDR scans every loyalty row, every tower, every store),
//! so it is slow on purpose and easy to check by eye. It computes the query over
//! *the current state*: the view the dataflow must show once its inputs have
//! reached that state.
//!
//! What it leaves out, and so what a test comparing with it must avoid:
//!
//! * **No horizons.** Every copy of a `record_id` counts as one record, as if
//!   all copies arrived within one `--dedup-horizon`; nothing is ever final
//!   (`--view-retention`) and no state is released. Tests keep both horizons
//!   larger than the event time they span.
//! * **No lateness**: `valid` are the CDRs that passed parsing and the late check.
//! * **Tables are the current rows**, one per key (`store_id`, `customer_id`);
//!   towers: one row per `cell_id` (with several, the first is used).
//!
//! It reads the engine's records (packed msisdns and cells) but converts every
//! packed field back to its text before comparing, so it compares strings as
//! the SPEC says and checks the packings' order along the way.
//!
//! Unchecked assumption: the router is a function of its two points (same
//! answer for the same question), as the dataflow's cache requires anyway.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::model::{Cdr, Deg, Epoch, Loyalty, Store, Tower};
use crate::promotions::{Promotion, PromotionParams};
use crate::route::Router;
use crate::spatial::haversine_m;

const DAY: Epoch = 86_400;

/// The counts of SPEC §2–3 that `metrics.json` reports for the final view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `cdrs_unique`: distinct `record_id`s among the valid CDRs.
    pub unique: usize,
    /// `cdrs_unknown_cell`: unique CDRs whose `cell_id` no tower has.
    pub unknown_cell: usize,
    /// Unique CDRs that pass steps 1 and 2 (a qualifying customer, a store in range).
    pub requests: usize,
    /// `router_calls`: drive-cache entries (SPEC §3.4).
    pub router_calls: usize,
    /// `cache_hits` = requests − router calls.
    pub cache_hits: usize,
    /// Unique CDRs of a qualifying customer (step 1), whatever their cell.
    pub loyalty_matches: usize,
    /// Requests the router found a road for (its answer or the cached one).
    pub routed: usize,
    /// Routed requests within the drive limit (before the daily cap).
    pub within_drive_limit: usize,
}

/// What the reference computes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// The unique CDRs, sorted by `record_id`.
    pub unique: Vec<Cdr>,
    /// The promotions view, sorted (by `date`, `customer_id`, …: `Promotion`'s order).
    pub promotions: Vec<Promotion>,
    pub counts: Counts,
}

/// SPEC §2 dedup without a horizon: per `record_id` the copy that is smallest by
/// (`start`, `msisdn`, `callee`, `type`, `duration_s`, `bytes`, `cell_id`,
/// `charge_cents`, `roaming`), numbers as numbers, strings as byte strings.
/// Sorted by `record_id`.
pub fn dedup(valid: &[Cdr]) -> Vec<Cdr> {
    let mut kept: BTreeMap<&str, &Cdr> = BTreeMap::new();
    for c in valid {
        let keep = match kept.get(&*c.record_id) {
            None => true,
            Some(old) => tie_break(c, old) == Ordering::Less,
        };
        if keep {
            kept.insert(&c.record_id, c);
        }
    }
    kept.into_values().cloned().collect()
}

/// The SPEC §2 tie-break order between two copies, spelled out field by field,
/// on the texts.
fn tie_break(a: &Cdr, b: &Cdr) -> Ordering {
    let text = |m: crate::model::Msisdn| m.to_text();
    a.start
        .cmp(&b.start)
        .then_with(|| text(a.msisdn).as_bytes().cmp(text(b.msisdn).as_bytes()))
        .then_with(|| text(a.callee).as_bytes().cmp(text(b.callee).as_bytes()))
        .then_with(|| a.kind.as_str().cmp(b.kind.as_str()))
        .then_with(|| a.duration_s.cmp(&b.duration_s))
        .then_with(|| a.bytes.cmp(&b.bytes))
        .then_with(|| {
            let (ca, cb) = (a.cell_id.to_string(), b.cell_id.to_string());
            ca.as_bytes().cmp(cb.as_bytes())
        })
        .then_with(|| a.charge_cents.cmp(&b.charge_cents))
        .then_with(|| a.roaming.cmp(&b.roaming))
}

/// A unique CDR that passed steps 1 and 2.
struct Request<'a> {
    cdr: &'a Cdr,
    customer_id: &'a str,
    tower: &'a Tower,
    store: &'a Store,
    haversine_m: f64,
    /// Filled by step 4: the distance of the cache entry serving this request.
    drive_m: Option<f64>,
}

/// SPEC §2 dedup, then §3 steps 1–5 over the current tables. `valid` in any order.
pub fn promotions(
    valid: &[Cdr],
    towers: &[Tower],
    stores: &[Store],
    loyalty: &[Loyalty],
    router: &dyn Router,
    p: &PromotionParams,
) -> Output {
    let unique = dedup(valid);
    let mut counts = Counts {
        unique: unique.len(),
        ..Counts::default()
    };

    // Steps 1 and 2: the requests.
    let mut requests: Vec<Request> = Vec::new();
    for cdr in &unique {
        let cell = cdr.cell_id.to_string();
        let tower = towers.iter().find(|t| t.cell_id.to_string() == cell);
        if tower.is_none() {
            counts.unknown_cell += 1;
        }
        // 1. The smallest customer_id among the qualifying customers of the number.
        let mut customer: Option<&str> = None;
        let msisdn = cdr.msisdn.to_text();
        for l in loyalty {
            let qualifies = l.msisdn == msisdn && l.opt_in && l.loyalty_points <= p.max_points;
            if qualifies && customer.is_none_or(|c| l.customer_id.as_str() < c) {
                customer = Some(&l.customer_id);
            }
        }
        if customer.is_some() {
            counts.loyalty_matches += 1;
        }
        let (Some(customer_id), Some(tower)) = (customer, tower) else {
            continue;
        };
        // 2. The nearest store within the radius, ties to the smallest store_id.
        let mut nearest: Option<(f64, &Store)> = None;
        for s in stores {
            let d = haversine_m(tower.at, s.at);
            if d > p.radius_m {
                continue;
            }
            let better = match nearest {
                None => true,
                Some((best, b)) => d < best || (d == best && s.store_id < b.store_id),
            };
            if better {
                nearest = Some((d, s));
            }
        }
        if let Some((d, store)) = nearest {
            requests.push(Request {
                cdr,
                customer_id,
                tower,
                store,
                haversine_m: d,
                drive_m: None,
            });
        }
    }
    counts.requests = requests.len();

    // 4. The drive-distance cache: per (tower, store) pair, requests in start
    // order; the first request, and the first at or after t0 + ttl, call the
    // router (a new entry); the others reuse the entry's answer. 3. The answer
    // is the router's on-road distance (None = no route, cached alike).
    let mut by_pair: BTreeMap<(String, &str), Vec<usize>> = BTreeMap::new();
    for (i, r) in requests.iter().enumerate() {
        by_pair
            .entry((r.tower.cell_id.to_string(), &r.store.store_id))
            .or_default()
            .push(i);
    }
    for (_, mut members) in by_pair {
        members.sort_by_key(|&i| requests[i].cdr.start);
        let mut entry: Option<(Epoch, Option<f64>)> = None;
        for i in members {
            let start = requests[i].cdr.start;
            let new_entry = match entry {
                None => true,
                Some((t0, _)) => start >= t0 + p.cache_ttl,
            };
            if new_entry {
                let r = &requests[i];
                entry = Some((start, router.distance_m(r.tower.at, r.store.at)));
                counts.router_calls += 1;
            }
            requests[i].drive_m = entry.and_then(|(_, d)| d);
        }
    }
    counts.cache_hits = counts.requests - counts.router_calls;
    counts.routed = requests.iter().filter(|r| r.drive_m.is_some()).count();
    counts.within_drive_limit = requests
        .iter()
        .filter(|r| r.drive_m.is_some_and(|d| d <= p.max_drive_m))
        .count();

    // 5. Daily cap: per (customer, UTC date of start), among the requests with a
    // route within the drive limit, the smallest (start, record_id).
    let mut best: BTreeMap<(&str, Epoch), &Request> = BTreeMap::new();
    for r in &requests {
        let Some(drive) = r.drive_m else { continue };
        if drive > p.max_drive_m {
            continue;
        }
        let date = r.cdr.start.div_euclid(DAY) * DAY;
        let key = (r.customer_id, date);
        let wins = match best.get(&key) {
            None => true,
            Some(b) => {
                (r.cdr.start, r.cdr.record_id.as_bytes())
                    < (b.cdr.start, b.cdr.record_id.as_bytes())
            }
        };
        if wins {
            best.insert(key, r);
        }
    }
    let mut promotions: Vec<Promotion> = best
        .into_iter()
        .map(|((customer_id, date), r)| Promotion {
            date,
            customer_id: customer_id.into(),
            record_id: r.cdr.record_id.clone(),
            start: r.cdr.start,
            cell_id: r.tower.cell_id.clone(),
            store_id: r.store.store_id.as_str().into(),
            region: r.store.region.as_str().into(),
            haversine_m: Deg(r.haversine_m),
            drive_m: Deg(r.drive_m.unwrap_or(f64::NAN)),
            msisdn: r.cdr.msisdn,
        })
        .collect();
    promotions.sort();
    Output {
        unique,
        promotions,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CdrType, Point};

    struct Straight;
    impl Router for Straight {
        fn distance_m(&self, from: Point, to: Point) -> Option<f64> {
            Some(haversine_m(from, to))
        }
    }

    fn cdr(record_id: &str, msisdn: &str, start: Epoch, cell_id: &str) -> Cdr {
        Cdr {
            start,
            msisdn: crate::model::Msisdn::pack(msisdn).unwrap(),
            callee: crate::model::Msisdn::NONE,
            kind: CdrType::Voice,
            duration_s: 60,
            bytes: 0,
            cell_id: cell_id.into(),
            charge_cents: 0,
            roaming: false,
            record_id: record_id.into(),
        }
    }

    fn params() -> PromotionParams {
        PromotionParams {
            max_points: 9000,
            radius_m: 5000.0,
            max_drive_m: 8000.0,
            cache_ttl: 3 * 3600,
            view_retention: 7 * DAY,
        }
    }

    /// Hand-computed: dedup keeps the smaller copy, the cap keeps the earliest
    /// CDR of the day, the tie between mirrored stores goes to the smaller id,
    /// the cache serves requests within the TTL.
    #[test]
    fn hand_computed() {
        let tower = Tower {
            cell_id: "T".into(),
            at: Point::new(50.0, 8.0),
        };
        let store = |id: &str, lon: f64| Store {
            store_id: id.into(),
            name: id.into(),
            at: Point::new(50.0, lon),
            region: "r".into(),
        };
        // Mirrored: exactly the same distance; "A" < "B".
        let stores = [store("B", 8.0 + 1.0 / 64.0), store("A", 8.0 - 1.0 / 64.0)];
        let loyalty = [Loyalty {
            customer_id: "c1".into(),
            msisdn: "+491111111111".into(),
            loyalty_points: 9000,
            opt_in: true,
            gender: String::new(),
            birth_year: None,
            region: "r".into(),
        }];
        let day = 20_000 * DAY;
        let mut late_copy = cdr("r1", "+491111111111", day + 100, "T");
        late_copy.duration_s = 1; // differs, but start decides first
        let valid = [
            cdr("r1", "+491111111111", day + 50, "T"),
            late_copy,
            cdr("r2", "+491111111111", day + 50 + 3 * 3600, "T"), // new entry
            cdr("r3", "+491111111111", day + 60, "T"),            // hit
            cdr("r4", "+499999999999", day + 60, "T"),            // no customer
            cdr("r5", "+491111111111", day + 70, "X"),            // unknown cell
        ];
        let out = promotions(&valid, &[tower], &stores, &loyalty, &Straight, &params());
        assert_eq!(
            out.counts,
            Counts {
                unique: 5,
                unknown_cell: 1,
                requests: 3,
                router_calls: 2,
                cache_hits: 1,
                // r1, r2, r3 and r5 (its customer qualifies; its cell is unknown).
                loyalty_matches: 4,
                routed: 3,
                within_drive_limit: 3,
            }
        );
        assert_eq!(out.unique[0].start, day + 50);
        assert_eq!(out.promotions.len(), 1);
        let p = &out.promotions[0];
        assert_eq!((&*p.record_id, &*p.store_id), ("r1", "A"));
        assert_eq!((p.date, &*p.customer_id), (day, "c1"));
        assert_eq!(p.haversine_m, p.drive_m);

        // Over the cap or opted out: nothing.
        let mut l = loyalty.clone();
        l[0].loyalty_points = 9001;
        let none = promotions(&valid, &[], &stores, &l, &Straight, &params());
        assert!(none.promotions.is_empty());
        assert_eq!(none.counts.requests, 0);
    }
}
