//! The change streams (`loyalty_changes.jsonl`, `stores_changes.jsonl`):
//! a handful of upserts and deletes at times inside the CDR range, written
//! in `at` order (SPEC §1), each chosen to make a visible difference:
//!
//! - loyalty: opt-outs of active customers near stores, points pushed over
//!   the cap, deletes, an opt-out followed by an opt-in, a number change, an
//!   opt-in of a customer who had declined, and new customers;
//! - stores: openings near a city centre, moves of a few hundred metres,
//!   closures.
//!
//! Customers touched here all have a known gender and birth year, so every
//! upsert carries every loyalty column with a real value.

use super::geo::{haversine_m, offset, round6};
use super::people::POINTS_CAP;
use super::phone::FORMATS;
use super::rng::{hash, Rng, Stream};
use super::world::LAKE_RADIUS_M;
use super::World;

fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

struct Upsert<'a> {
    id: &'a str,
    msisdn: String,
    points: u32,
    opt_in: bool,
    gender: &'a str,
    birth_year: u16,
    region: &'a str,
}

fn upsert(at: i64, u: &Upsert<'_>) -> String {
    format!(
        "{{\"at\":{at},\"op\":\"upsert\",\"customer_id\":{},\"msisdn\":{},\"loyalty_points\":{},\"opt_in\":{},\"gender\":{},\"birth_year\":{},\"region\":{}}}",
        js(u.id),
        js(&u.msisdn),
        u.points,
        u.opt_in,
        js(u.gender),
        u.birth_year,
        js(u.region)
    )
}

/// Sorts `(at, line)` by time, keeping file order for equal times.
fn in_order(mut ops: Vec<(i64, String)>) -> Vec<String> {
    ops.sort_by_key(|(at, _)| *at);
    ops.into_iter().map(|(_, l)| l).collect()
}

/// Lines of `loyalty_changes.jsonl` for CDRs in `[t0, t_end)`.
pub(crate) fn loyalty_changes(seed: u64, world: &World, t0: i64, t_end: i64) -> Vec<String> {
    let people = &world.people;
    let customers = &people.customers;
    let geo = &world.geo;
    let mut rng = Rng::at(seed, Stream::Change, 0);
    let known = |i: &usize| {
        let c = &customers[*i];
        c.sub.is_some() && !c.gender.is_empty() && c.birth_year.is_some()
    };
    let mut order: Vec<usize> = (0..customers.len()).filter(known).collect();
    order.sort_by_key(|&i| hash(seed, Stream::Change, i as u64));
    let (mut active, mut declined): (Vec<usize>, Vec<usize>) = order
        .into_iter()
        .partition(|&i| customers[i].opt_in && customers[i].points <= POINTS_CAP);
    // Subscribers who are not customers yet, living near a store.
    let mut newcomers: Vec<u32> = (0..people.subs.len() as u32)
        .filter(|&k| {
            let s = &people.subs[k as usize];
            !s.loyal
                && !s.gender.is_empty()
                && s.birth_year.is_some()
                && geo.towers[s.home as usize].nearest_store_m <= 3_000.0
        })
        .collect();
    newcomers.sort_by_key(|&k| hash(seed, Stream::Change, (1 << 40) + u64::from(k)));

    let span = (t_end - 2 * 3600 - (t0 + 6 * 3600)).max(60);
    let when = |rng: &mut Rng| (t0 + 6 * 3600 + rng.below(span as u64) as i64) / 60 * 60;
    let n_ops = (6 + customers.len() / 250).min(60);
    let mut ops: Vec<(i64, String)> = Vec::new();
    let mut next_id = customers.len() + 1;
    for op in 0..n_ops {
        let fmt = rng.below(u64::from(FORMATS)) as u8;
        let at = when(&mut rng);
        let base = |i: usize| {
            let c = &customers[i];
            Upsert {
                id: &c.id,
                msisdn: c.phone.format(fmt),
                points: c.points,
                opt_in: c.opt_in,
                gender: c.gender,
                birth_year: c.birth_year.unwrap_or(1980),
                region: c.region,
            }
        };
        match op % 7 {
            0 | 4 if !active.is_empty() => {
                let i = active.pop().expect("not empty");
                ops.push((
                    at,
                    upsert(
                        at,
                        &Upsert {
                            opt_in: false,
                            ..base(i)
                        },
                    ),
                ));
                if op % 7 == 4 {
                    let back = (at + rng.range(2 * 3600, 30 * 3600))
                        .min(t_end - 3600)
                        .max(at);
                    ops.push((
                        back,
                        upsert(
                            back,
                            &Upsert {
                                opt_in: true,
                                ..base(i)
                            },
                        ),
                    ));
                }
            }
            1 if !active.is_empty() => {
                let i = active.pop().expect("not empty");
                let points = POINTS_CAP + rng.range(1, 800) as u32;
                ops.push((at, upsert(at, &Upsert { points, ..base(i) })));
            }
            3 if !active.is_empty() => {
                let i = active.pop().expect("not empty");
                let line = format!(
                    "{{\"at\":{at},\"op\":\"delete\",\"customer_id\":{}}}",
                    js(&customers[i].id)
                );
                ops.push((at, line));
            }
            5 if !active.is_empty() && !newcomers.is_empty() => {
                let i = active.pop().expect("not empty");
                let k = newcomers.pop().expect("not empty");
                let msisdn = people.subs[k as usize].phone.format(fmt);
                ops.push((at, upsert(at, &Upsert { msisdn, ..base(i) })));
            }
            6 if !declined.is_empty() => {
                let i = declined.pop().expect("not empty");
                let points = customers[i].points.min(POINTS_CAP);
                ops.push((
                    at,
                    upsert(
                        at,
                        &Upsert {
                            opt_in: true,
                            points,
                            ..base(i)
                        },
                    ),
                ));
            }
            _ if !newcomers.is_empty() => {
                let k = newcomers.pop().expect("not empty");
                let s = &people.subs[k as usize];
                let id = format!("C{next_id}");
                next_id += 1;
                let u = Upsert {
                    id: &id,
                    msisdn: s.phone.format(fmt),
                    points: rng.range(0, 5_000) as u32,
                    opt_in: true,
                    gender: s.gender,
                    birth_year: s.birth_year.unwrap_or(1980),
                    region: geo.cities[s.city as usize].region,
                };
                ops.push((at, upsert(at, &u)));
            }
            _ => {}
        }
    }
    in_order(ops)
}

/// Lines of `stores_changes.jsonl` for CDRs in `[t0, t_end)`.
pub(crate) fn store_changes(seed: u64, world: &World, t0: i64, t_end: i64) -> Vec<String> {
    let geo = &world.geo;
    let stores = &geo.stores;
    let mut rng = Rng::at(seed, Stream::Change, 1);
    let span = (t_end - 2 * 3600 - (t0 + 3 * 3600)).max(60) as u64;
    let when = |rng: &mut Rng| (t0 + 3 * 3600 + rng.below(span) as i64) / 3600 * 3600;
    let dry = |c: usize, lat: f64, lon: f64| {
        haversine_m(lat, lon, geo.lakes[c].0, geo.lakes[c].1) > LAKE_RADIUS_M + 150.0
    };
    let store_line = |at: i64, id: &str, name: &str, lat: f64, lon: f64, region: &str| {
        format!(
            "{{\"at\":{at},\"op\":\"upsert\",\"store_id\":{},\"name\":{},\"lat\":{lat:.6},\"lon\":{lon:.6},\"region\":{}}}",
            js(id),
            js(name),
            js(region)
        )
    };
    let mut ops = Vec::new();
    let n = stores.len();
    for j in 0..1 + n / 40 {
        let c = j % geo.cities.len();
        let city = &geo.cities[c];
        let (lat, lon) = loop {
            let r = geo.radius_m * 0.3 * rng.unit().sqrt();
            let a = rng.uniform(0.0, std::f64::consts::TAU);
            let (lat, lon) = offset(city.lat, city.lon, r * a.cos(), r * a.sin());
            if dry(c, lat, lon) {
                break (round6(lat), round6(lon));
            }
        };
        let at = when(&mut rng);
        let name = format!("Frischmarkt {} Neueröffnung", city.name);
        ops.push((
            at,
            store_line(at, &format!("S{}", n + 1 + j), &name, lat, lon, city.region),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&s| hash(seed, Stream::Change, (2 << 40) + s as u64));
    let changes = (1 + n / 60).min(n / 2);
    for &s in order.iter().take(changes) {
        let st = &stores[s];
        let (lat, lon) = loop {
            let d = rng.uniform(400.0, 1_500.0);
            let a = rng.uniform(0.0, std::f64::consts::TAU);
            let (lat, lon) = offset(st.lat, st.lon, d * a.cos(), d * a.sin());
            if dry(st.city as usize, lat, lon) {
                break (round6(lat), round6(lon));
            }
        };
        let at = when(&mut rng);
        ops.push((at, store_line(at, &st.id, &st.name, lat, lon, st.region)));
    }
    for &s in order.iter().skip(changes).take(changes) {
        let at = when(&mut rng);
        let line = format!(
            "{{\"at\":{at},\"op\":\"delete\",\"store_id\":{}}}",
            js(&stores[s].id)
        );
        ops.push((at, line));
    }
    in_order(ops)
}
