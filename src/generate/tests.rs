//! Tests of the whole generator: determinism, the SPEC §1 layout, the
//! planted CDR outcomes (checked by an independent reader, `check`), and
//! that the data makes promotions fire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::check::read_cdrs;
use super::geo::{haversine_m, parse_date, DAY_S};
use super::*;

fn tiny(dir: &Path, seed: u64, threads: usize) -> GenerateConfig {
    GenerateConfig {
        out: dir.to_path_buf(),
        seed,
        threads,
        ..GenerateConfig::scale("tiny").unwrap()
    }
}

fn run(cfg: &GenerateConfig) -> GenerateSummary {
    generate(cfg, &|_| {}).expect("generate")
}

fn files(dir: &Path, summary: &GenerateSummary) -> BTreeMap<PathBuf, Vec<u8>> {
    summary
        .files
        .iter()
        .map(|f| (f.clone(), std::fs::read(dir.join(f)).unwrap()))
        .collect()
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[test]
fn same_seed_same_bytes_for_any_thread_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = run(&tiny(a.path(), 7, 1));
    let sb = run(&tiny(b.path(), 7, 3));
    assert_eq!(sa, sb);
    assert_eq!(sa.files.len(), 13);
    assert_eq!(files(a.path(), &sa), files(b.path(), &sb));
}

#[test]
fn different_seeds_differ() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fa = files(a.path(), &run(&tiny(a.path(), 1, 2)));
    let fb = files(b.path(), &run(&tiny(b.path(), 2, 2)));
    for (name, bytes) in &fa {
        assert_ne!(
            Some(bytes),
            fb.get(name),
            "{} is the same for two seeds",
            name.display()
        );
    }
}

#[test]
fn gzip_is_one_member_and_thread_independent_across_chunks() {
    use std::io::Read;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let cfg = |i: usize, threads, gzip| GenerateConfig {
        cdrs: 2 * cdr_writer::CHUNK_LINES + 1_234,
        gzip,
        ..tiny(dirs[i].path(), 5, threads)
    };
    run(&cfg(0, 1, true));
    run(&cfg(1, 3, true));
    run(&cfg(2, 2, false));
    let gz = |i: usize| std::fs::read(dirs[i].path().join("cdrs.jsonl.gz")).unwrap();
    assert_eq!(gz(0), gz(1));
    // A single-member decoder must see everything.
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz(0)[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(
        plain,
        std::fs::read(dirs[2].path().join("cdrs.jsonl")).unwrap()
    );
    // Switching format removes the stale variant.
    run(&cfg(2, 2, true));
    assert!(!dirs[2].path().join("cdrs.jsonl").exists());
}

#[test]
fn every_file_has_the_spec_columns_and_values() {
    let dir = tempfile::tempdir().unwrap();
    run(&tiny(dir.path(), 3, 2));
    // (file, required columns, columns that may be empty)
    let tables: [(&str, &[&str], &[&str]); 9] = [
        ("towers.csv", &["cell_id", "lat", "lon"], &[]),
        (
            "stores.csv",
            &["store_id", "name", "lat", "lon", "region"],
            &[],
        ),
        (
            "loyalty.csv",
            &[
                "customer_id",
                "msisdn",
                "loyalty_points",
                "opt_in",
                "gender",
                "birth_year",
                "region",
            ],
            &["gender", "birth_year"],
        ),
        (
            "products.csv",
            &["product_id", "name", "category", "price_cents"],
            &[],
        ),
        (
            "purchases.csv",
            &[
                "txn_id",
                "customer_id",
                "store_id",
                "ts",
                "product_id",
                "quantity",
                "amount_cents",
            ],
            &[],
        ),
        (
            "weather.csv",
            &["region", "date", "condition", "temp_c"],
            &[],
        ),
        (
            "subscribers.csv",
            &[
                "msisdn",
                "gender",
                "birth_year",
                "plan",
                "monthly_fee_cents",
            ],
            &["gender", "birth_year", "plan", "monthly_fee_cents"],
        ),
        ("roads/nodes.csv", &["node_id", "lat", "lon"], &[]),
        (
            "roads/edges.csv",
            &["from_node", "to_node", "length_m"],
            &[],
        ),
    ];
    for (file, required, optional) in tables {
        let (header, rows) = read_csv(&dir.path().join(file));
        assert!(!rows.is_empty(), "{file} has no rows");
        for col in required {
            let i = header.iter().position(|h| h == col);
            let i = i.unwrap_or_else(|| panic!("{file} lacks column {col}"));
            if !optional.contains(col) {
                assert!(rows.iter().all(|r| !r[i].is_empty()), "{file}: empty {col}");
            }
        }
    }
    let (_, subs) = read_csv(&dir.path().join("subscribers.csv"));
    assert!(subs.iter().any(|r| r[1].is_empty()), "some unknown gender");
    let (_, loyalty) = read_csv(&dir.path().join("loyalty.csv"));
    for msisdn in subs
        .iter()
        .chain(&loyalty)
        .map(|r| &r[if r.len() == 5 { 0 } else { 1 }])
    {
        assert!(phone::normalise(msisdn).is_some(), "{msisdn}");
    }
    let (_, weather) = read_csv(&dir.path().join("weather.csv"));
    assert!(weather
        .iter()
        .all(|r| weather::CONDITIONS.contains(&r[2].as_str())));
}

#[test]
fn planted_cdr_outcomes_are_what_a_spec_reader_finds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GenerateConfig {
        cdrs: 20_000,
        ..tiny(dir.path(), 11, 2)
    };
    let s = run(&cfg);
    let text = std::fs::read_to_string(dir.path().join("cdrs.jsonl")).unwrap();
    assert_eq!(text.lines().count() as u64, cfg.cdrs);
    assert_eq!(s.cdrs, cfg.cdrs);
    let (_, towers) = read_csv(&dir.path().join("towers.csv"));
    let cells: BTreeSet<String> = towers.into_iter().map(|r| r[0].clone()).collect();
    let m = read_cdrs(&text, &cells, 3_600);
    assert_eq!(m.read, s.cdrs);
    assert_eq!(m.late, s.late);
    assert_eq!(m.duplicate, s.duplicates);
    assert_eq!(m.unique, s.expected_unique());
    assert_eq!(m.unknown_cell, s.unknown_cell);
    let mut expected = s.malformed_reasons.clone();
    expected.insert("late".into(), s.late);
    assert_eq!(m.reasons, expected);
    // Every kind of reason shows up, and the shares are as configured.
    assert!(s.malformed_reasons.len() >= 12, "{:?}", s.malformed_reasons);
    let share = |n: u64| n as f64 / s.cdrs as f64;
    assert!(
        (share(s.malformed) - cfg.malformed_share).abs() < 0.006,
        "{s:?}"
    );
    assert!(
        (share(s.duplicates) - cfg.duplicate_share).abs() < 0.008,
        "{s:?}"
    );
    assert!((share(s.late) - cfg.late_share).abs() < 0.006, "{s:?}");
    assert!(s.rfc3339_start > 0 && s.unknown_cell > 0);
}

#[test]
fn change_files_are_in_at_order_inside_the_cdr_range() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(dir.path(), 9, 1);
    run(&cfg);
    let t0 = parse_date(&cfg.start_date).unwrap() * DAY_S;
    let t_end = t0 + i64::from(cfg.days) * DAY_S;
    for (file, key) in [
        ("loyalty_changes.jsonl", "customer_id"),
        ("stores_changes.jsonl", "store_id"),
    ] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() >= 3, "{file}");
        let ats: Vec<i64> = lines.iter().map(|v| v["at"].as_i64().unwrap()).collect();
        assert!(
            ats.windows(2).all(|w| w[0] <= w[1]),
            "{file} not in at order"
        );
        assert!(
            ats.iter().all(|&a| (t0..t_end).contains(&a)),
            "{file} outside the range"
        );
        for v in &lines {
            assert!(v[key].is_string());
            match v["op"].as_str().unwrap() {
                "delete" => {}
                "upsert" if key == "customer_id" => {
                    for col in [
                        "msisdn",
                        "loyalty_points",
                        "opt_in",
                        "gender",
                        "birth_year",
                        "region",
                    ] {
                        assert!(!v[col].is_null(), "{file}: upsert without {col}");
                    }
                    assert!(v["opt_in"].is_boolean());
                }
                "upsert" => {
                    for col in ["name", "lat", "lon", "region"] {
                        assert!(!v[col].is_null(), "{file}: upsert without {col}");
                    }
                }
                op => panic!("unknown op {op}"),
            }
        }
    }
}

#[test]
fn roads_have_twins_an_island_and_honest_lengths() {
    let dir = tempfile::tempdir().unwrap();
    run(&tiny(dir.path(), 4, 1));
    let (_, nodes) = read_csv(&dir.path().join("roads/nodes.csv"));
    let (_, edges) = read_csv(&dir.path().join("roads/edges.csv"));
    let pos: BTreeMap<&str, (f64, f64)> = nodes
        .iter()
        .map(|r| {
            (
                r[0].as_str(),
                (r[1].parse().unwrap(), r[2].parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(pos.len(), nodes.len(), "node ids are unique");
    let coords: BTreeSet<(String, String)> =
        nodes.iter().map(|r| (r[1].clone(), r[2].clone())).collect();
    assert!(
        coords.len() < nodes.len(),
        "some twin nodes share coordinates"
    );
    let mut pairs = BTreeSet::new();
    let mut parallel = 0;
    for e in &edges {
        let (a, b) = (pos[e[0].as_str()], pos[e[1].as_str()]);
        let len: f64 = e[2].parse().unwrap();
        assert!(len >= haversine_m(a.0, a.1, b.0, b.1) - 0.05, "{e:?}");
        parallel += usize::from(!pairs.insert((e[0].clone(), e[1].clone())));
    }
    assert!(parallel > 0, "some parallel edges");
    let one_way = pairs
        .iter()
        .filter(|(a, b)| !pairs.contains(&(b.clone(), a.clone())))
        .count();
    assert!(one_way > 0, "some one-way streets");
}

#[test]
fn baskets_reference_known_rows_and_have_about_five_items() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(&tiny(dir.path(), 6, 1));
    let ids = |file: &str| -> BTreeSet<String> {
        read_csv(&dir.path().join(file))
            .1
            .into_iter()
            .map(|r| r[0].clone())
            .collect()
    };
    let (customers, stores, products) =
        (ids("loyalty.csv"), ids("stores.csv"), ids("products.csv"));
    let (_, rows) = read_csv(&dir.path().join("purchases.csv"));
    let mut per_txn: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        assert!(customers.contains(&r[1]) && stores.contains(&r[2]) && products.contains(&r[4]));
        *per_txn.entry(&r[0]).or_default() += 1;
    }
    assert_eq!(per_txn.len() as u64, s.baskets);
    let mean = rows.len() as f64 / per_txn.len() as f64;
    assert!((3.5..7.0).contains(&mean), "{mean} items per basket");
}

/// SPEC §3 steps 1–3 and 5 over the in-memory world with a reference router.
#[test]
fn loyalty_customers_near_stores_get_promotions() {
    for scale in ["tiny", "small"] {
        let cfg = GenerateConfig::scale(scale).unwrap();
        let day0 = cfg.validate().unwrap();
        let world = World::build(&cfg, day0);
        let geo = &world.geo;
        let plan = CdrPlan::new(
            cfg.seed,
            cfg.cdrs,
            &world,
            day0 * DAY_S,
            cfg.days,
            (0.0, 0.0, 0.0),
        );
        // Drive distance tower → nearest store within 5 km, per tower.
        let mut drive: BTreeMap<u32, Option<f64>> = BTreeMap::new();
        let mut promos = BTreeSet::new();
        let (mut requests, mut routed) = (0, 0);
        for i in 0..cfg.cdrs {
            let (cdr, _) = plan.record(i, None);
            let (Some(k), cdr::Cell::Tower(t)) = (cdr.caller_sub, cdr.cell) else {
                continue;
            };
            let tower = &geo.towers[t as usize];
            if !world.people.subs[k as usize].qualifies || tower.nearest_store_m > 5_000.0 {
                continue;
            }
            requests += 1;
            let d = *drive.entry(t).or_insert_with(|| {
                let store = &geo.stores[tower.nearest_store as usize];
                let from = world.roads.snap(tower.lat, tower.lon);
                let to = world.roads.snap(store.lat, store.lon);
                let d = world.roads.distances_from(from)[to as usize];
                d.is_finite().then_some(d)
            });
            if d.is_some_and(|d| d <= 8_000.0) {
                routed += 1;
                promos.insert((k, cdr.start.div_euclid(DAY_S)));
            }
        }
        let no_route = drive.values().filter(|d| d.is_none()).count();
        let loyal = world.people.subs.iter().filter(|s| s.qualifies).count();
        eprintln!(
            "{scale}: {requests} requests of {} CDRs, {routed} within 8 km, {} promotions \
             ({loyal} qualifying subscribers), {no_route}/{} towers without route",
            cfg.cdrs,
            promos.len(),
            drive.len()
        );
        assert!(
            requests as f64 > 0.15 * cfg.cdrs as f64,
            "{scale}: {requests} requests"
        );
        assert!(
            routed as f64 > 0.6 * requests as f64,
            "{scale}: {routed}/{requests} routed"
        );
        assert!(
            promos.len() as f64 > 0.5 * loyal as f64,
            "{scale}: {} promotions",
            promos.len()
        );
        assert!(
            no_route >= 1,
            "{scale}: the island makes some requests unroutable"
        );
    }
}
