//! `cdrflow generate`: a synthetic dataset in the SPEC §1 layout (SPEC §6).
//!
//! Every record is a pure function of `(seed, record index)` (STYLE habit 9):
//! the same config gives the same bytes for any `threads`. The small tables
//! are built in memory (the "world"), then the CDR lines are formatted in
//! parallel chunks and written in order.
//!
//! ```text
//!  config ─► World { geography, people, roads, catalogue, weather }
//!               │ towers, stores, subscribers, loyalty, products,
//!               │ purchases, weather, roads/{nodes,edges}, *_changes
//!               ▼
//!            CdrPlan: line i = f(seed, i) ─► workers ─► cdrs.jsonl[.gz]
//! ```
//!
//! Module map:
//! - `rng`: counter-based RNG (SplitMix64 → wyrand) and stream ids.
//! - `geo`: haversine, metre offsets, the city list, calendar arithmetic.
//! - `phone`: numbers and their messy formats (all normalise alike).
//! - `world`: cities, towers (`towers.csv`), stores (`stores.csv`).
//! - `people`: subscribers (`subscribers.csv`), loyalty customers (`loyalty.csv`).
//! - `roads`: the road graph (`roads/nodes.csv`, `roads/edges.csv`).
//! - `weather`: `weather.csv`. `baskets`: `products.csv`, `purchases.csv`.
//! - `changes`: `loyalty_changes.jsonl`, `stores_changes.jsonl`.
//! - `cdr`: what line `i` is (normal, late, duplicate, malformed) and its record.
//! - `cdr_json`: writing a record as JSON, tidy or broken.
//! - `cdr_writer`: the parallel, ordered (optionally gzip) writer.
//! - `manifest`: `generator.json`, from which `run --cdr-source generator`
//!   rebuilds the world and renders the CDR lines itself.
//!
//! **Line accounting.** `cdrs` is the number of physical lines in
//! `cdrs.jsonl`, duplicates, late and malformed lines included, none blank.
//! For a SPEC §2 reader with the default `--lateness 1h` and
//! `--dedup-horizon 24h`, [`GenerateSummary`] predicts the metrics exactly:
//! `cdrs_read = cdrs`, `cdrs_dead_lettered = malformed + late`,
//! `cdrs_duplicate = duplicates`, `cdrs_unique = cdrs − malformed − late −
//! duplicates`, `cdrs_unknown_cell = unknown_cell`, and
//! `dead_letter_reasons` = `malformed_reasons` plus `late` under `late`.

mod baskets;
mod cdr;
mod cdr_json;
mod cdr_writer;
mod changes;
mod geo;
mod manifest;
mod people;
mod phone;
mod rng;
mod roads;
mod weather;
mod world;

#[cfg(test)]
mod check;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::baskets::Catalogue;
pub(crate) use self::cdr::CdrPlan;
use self::cdr_json::Reason;
use self::geo::{format_date, parse_date, DAY_S};
pub use self::manifest::{Generator, ManifestError, MANIFEST};
use self::people::People;
use self::roads::Roads;
use self::weather::Weather;
use self::world::Geography;

/// What to generate. Start from [`GenerateConfig::scale`] and override.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenerateConfig {
    /// Output directory (created if missing; existing dataset files are replaced).
    pub out: PathBuf,
    pub seed: u64,
    /// Physical lines of `cdrs.jsonl`, every kind included.
    pub cdrs: u64,
    pub subscribers: u64,
    /// CDRs spread over this many UTC days from `start_date`.
    pub days: u32,
    /// First CDR date, `YYYY-MM-DD` (UTC).
    pub start_date: String,
    pub cities: u32,
    pub towers_per_city: u32,
    /// Towers lie within this distance of their city centre.
    pub city_radius_m: f64,
    /// Spacing of the road grid.
    pub road_spacing_m: f64,
    pub stores: u32,
    /// Share of subscribers who are loyalty customers.
    pub loyalty_share: f64,
    /// Shares of CDR lines that are re-sent duplicates, late, malformed.
    pub duplicate_share: f64,
    pub late_share: f64,
    pub malformed_share: f64,
    /// Baskets (distinct `txn_id`s) in `purchases.csv`, ~5 line items each.
    pub baskets: u64,
    pub products: u32,
    /// Purchases start this many days before `start_date` and run to the
    /// end of the CDR range.
    pub purchase_history_days: u32,
    /// Worker threads for the CDRs; 0 = all cores. Never changes the bytes.
    pub threads: usize,
    /// Write `cdrs.jsonl.gz` (one gzip member) instead of `cdrs.jsonl`.
    pub gzip: bool,
    /// Write the CDR file at all; without it the dataset holds the tables
    /// and `generator.json`, for `run --cdr-source generator`.
    pub cdr_file: bool,
}

/// Names accepted by [`GenerateConfig::scale`].
pub const SCALES: [&str; 4] = ["tiny", "small", "medium", "large"];

impl GenerateConfig {
    /// A preset: `tiny` (2 000 CDRs, for tests), `small` (100 000),
    /// `medium` (10 million), `large` (100 million). `out` is left empty.
    pub fn scale(name: &str) -> Option<Self> {
        #[rustfmt::skip]
        let (cdrs, subscribers, days, cities, towers, radius, spacing, stores, baskets, products) =
            match name {
                "tiny" => (2_000, 200, 3, 2, 20, 4_000.0, 600.0, 6, 400, 48),
                "small" => (100_000, 5_000, 7, 4, 60, 6_000.0, 500.0, 40, 5_000, 150),
                "medium" => (10_000_000, 200_000, 14, 6, 150, 8_000.0, 450.0, 120, 50_000, 300),
                "large" => (100_000_000, 1_000_000, 30, 8, 300, 8_000.0, 450.0, 300, 200_000, 500),
                _ => return None,
            };
        let tiny = name == "tiny";
        Some(GenerateConfig {
            out: PathBuf::new(),
            seed: 42,
            cdrs,
            subscribers,
            days,
            start_date: "2026-11-02".to_string(),
            cities,
            towers_per_city: towers,
            city_radius_m: radius,
            road_spacing_m: spacing,
            stores,
            loyalty_share: if tiny { 0.35 } else { 0.3 },
            duplicate_share: if tiny { 0.03 } else { 0.01 },
            late_share: if tiny { 0.02 } else { 0.005 },
            malformed_share: if tiny { 0.03 } else { 0.005 },
            baskets,
            products,
            purchase_history_days: if tiny { 14 } else { 28 },
            threads: 0,
            gzip: false,
            cdr_file: true,
        })
    }

    fn validate(&self) -> Result<i64, GenerateError> {
        let bad = |m: String| Err(GenerateError::Config(m));
        let Some(day0) = parse_date(&self.start_date) else {
            return bad(format!(
                "start_date {:?} is not a YYYY-MM-DD date",
                self.start_date
            ));
        };
        let shares = [
            ("duplicate_share", self.duplicate_share),
            ("late_share", self.late_share),
            ("malformed_share", self.malformed_share),
        ];
        for (name, v) in shares {
            if !(0.0..=0.5).contains(&v) {
                return bad(format!("{name} must be in [0, 0.5], not {v}"));
            }
        }
        if shares.iter().map(|s| s.1).sum::<f64>() > 0.5 {
            return bad("duplicate + late + malformed shares exceed 0.5".into());
        }
        if !(self.loyalty_share > 0.0 && self.loyalty_share <= 1.0) {
            return bad(format!(
                "loyalty_share must be in (0, 1], not {}",
                self.loyalty_share
            ));
        }
        if !(10..=90_000_000).contains(&self.subscribers) {
            return bad(format!(
                "subscribers must be 10..=90000000, not {}",
                self.subscribers
            ));
        }
        if !(1..=3_650).contains(&self.days) {
            return bad(format!("days must be 1..=3650, not {}", self.days));
        }
        if !(1..=200).contains(&self.cities) || self.towers_per_city < 4 || self.stores == 0 {
            return bad("need 1..=200 cities, 4+ towers per city and 1+ stores".into());
        }
        if self.products < 10 {
            return bad(format!(
                "products must be at least 10, not {}",
                self.products
            ));
        }
        if !(self.city_radius_m >= 1_000.0
            && self.road_spacing_m >= 100.0
            && self.road_spacing_m <= self.city_radius_m / 2.0)
        {
            return bad(
                "need city_radius_m >= 1000 and 100 <= road_spacing_m <= radius / 2".into(),
            );
        }
        Ok(day0)
    }
}

/// What was written: counts, and the exact outcome a SPEC §2 reader should
/// report (module doc, "Line accounting").
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GenerateSummary {
    /// Lines in the CDR file (= `cdrs` requested; 0 without a CDR file,
    /// and so are the planted counts below: they are known by writing it).
    pub cdrs: u64,
    /// Re-sent copies of earlier records (valid, not unique).
    pub duplicates: u64,
    /// Lines more than 1 h behind the watermark (dead-lettered `late`).
    pub late: u64,
    /// Broken lines (dead-lettered; reasons below).
    pub malformed: u64,
    /// SPEC §2 reason token → planted count.
    pub malformed_reasons: BTreeMap<String, u64>,
    /// Unique valid CDRs on a cell absent from `towers.csv`.
    pub unknown_cell: u64,
    /// Unique valid CDRs whose `start` is an RFC 3339 string.
    pub rfc3339_start: u64,
    /// Unique valid CDRs by a qualifying loyalty customer (opted in, under
    /// the cap, in the initial `loyalty.csv`) on a tower with a store within
    /// 5 km: the requests of SPEC §3 step 4 before the change files.
    pub promotion_candidates: u64,
    /// Bytes of CDR text (before compression).
    pub cdr_bytes: u64,
    /// First and last UTC date of the CDR range (late lines may precede it).
    pub first_date: String,
    pub last_date: String,
    pub towers: u64,
    pub stores: u64,
    pub subscribers: u64,
    pub loyalty_customers: u64,
    pub products: u64,
    pub baskets: u64,
    pub purchase_rows: u64,
    pub weather_rows: u64,
    pub road_nodes: u64,
    pub road_edges: u64,
    pub loyalty_changes: u64,
    pub store_changes: u64,
    /// Files written, relative to the output directory.
    pub files: Vec<PathBuf>,
}

impl GenerateSummary {
    /// Lines a SPEC §2 reader dead-letters.
    pub fn expected_dead_lettered(&self) -> u64 {
        self.malformed + self.late
    }

    /// Valid lines (unique + duplicates).
    pub fn expected_valid(&self) -> u64 {
        self.cdrs - self.expected_dead_lettered()
    }

    /// Distinct valid records.
    pub fn expected_unique(&self) -> u64 {
        self.expected_valid() - self.duplicates
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid generator config: {0}")]
    Config(String),
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
}

/// The in-memory tables every record is drawn from.
pub(crate) struct World {
    pub(crate) geo: Geography,
    pub(crate) people: People,
    pub(crate) roads: Roads,
    pub(crate) catalogue: Catalogue,
    pub(crate) weather: Weather,
}

impl World {
    fn build(cfg: &GenerateConfig, day0: i64) -> Self {
        let geo = Geography::build(
            cfg.seed,
            cfg.cities,
            cfg.towers_per_city,
            cfg.stores,
            cfg.city_radius_m,
        );
        let people = People::build(cfg.seed, cfg.subscribers, cfg.loyalty_share, &geo);
        let roads = Roads::build(cfg.seed, &geo, cfg.road_spacing_m);
        let catalogue = Catalogue::build(cfg.seed, cfg.products);
        let first = day0 - i64::from(cfg.purchase_history_days);
        let n_days = (cfg.purchase_history_days + cfg.days + 1) as usize;
        let weather = Weather::build(cfg.seed, geo.regions(), first, n_days);
        World {
            geo,
            people,
            roads,
            catalogue,
            weather,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `out/rel`, lets `fill` write it, flushes, and records it.
fn write_csv(
    out: &Path,
    rel: &str,
    files: &mut Vec<PathBuf>,
    fill: impl FnOnce(&mut csv::Writer<BufWriter<File>>) -> csv::Result<()>,
) -> Result<(), GenerateError> {
    let path = out.join(rel);
    let file = File::create(&path).map_err(io_err(&path))?;
    let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, file));
    let csv_err = |source| GenerateError::Csv {
        path: path.clone(),
        source,
    };
    fill(&mut w).map_err(csv_err)?;
    w.flush().map_err(io_err(&path))?;
    files.push(PathBuf::from(rel));
    Ok(())
}

fn write_lines(
    out: &Path,
    rel: &str,
    lines: &[String],
    files: &mut Vec<PathBuf>,
) -> Result<(), GenerateError> {
    let path = out.join(rel);
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(io_err(&path))?;
    files.push(PathBuf::from(rel));
    Ok(())
}

/// Writes the dataset described by `cfg` into `cfg.out`; `progress` is told
/// the number of CDR lines written after each chunk (on this thread).
pub fn generate(
    cfg: &GenerateConfig,
    progress: &dyn Fn(u64),
) -> Result<GenerateSummary, GenerateError> {
    let day0 = cfg.validate()?;
    let (t0, t_end) = (day0 * DAY_S, (day0 + i64::from(cfg.days)) * DAY_S);
    let world = World::build(cfg, day0);
    let out = cfg.out.as_path();
    let roads_dir = out.join("roads");
    std::fs::create_dir_all(&roads_dir).map_err(io_err(&roads_dir))?;

    let mut files = Vec::new();
    let seed = cfg.seed;
    write_csv(out, "towers.csv", &mut files, |w| world.geo.write_towers(w))?;
    write_csv(out, "stores.csv", &mut files, |w| world.geo.write_stores(w))?;
    write_csv(out, "subscribers.csv", &mut files, |w| {
        world.people.write_subscribers(w)
    })?;
    write_csv(out, "loyalty.csv", &mut files, |w| {
        world.people.write_loyalty(w)
    })?;
    write_csv(out, "products.csv", &mut files, |w| {
        world.catalogue.write(w)
    })?;
    write_csv(out, "weather.csv", &mut files, |w| world.weather.write(w))?;
    let mut purchase_rows = 0;
    let purchase_days = (
        day0 - i64::from(cfg.purchase_history_days),
        day0 + i64::from(cfg.days),
    );
    write_csv(out, "purchases.csv", &mut files, |w| {
        purchase_rows = baskets::write_purchases(w, seed, cfg.baskets, purchase_days, &world)?;
        Ok(())
    })?;
    write_csv(out, "roads/nodes.csv", &mut files, |w| {
        world.roads.write_nodes(w)
    })?;
    write_csv(out, "roads/edges.csv", &mut files, |w| {
        world.roads.write_edges(w)
    })?;
    let loyalty_changes = changes::loyalty_changes(seed, &world, t0, t_end);
    write_lines(out, "loyalty_changes.jsonl", &loyalty_changes, &mut files)?;
    let store_changes = changes::store_changes(seed, &world, t0, t_end);
    write_lines(out, "stores_changes.jsonl", &store_changes, &mut files)?;

    // CDRs last: the big one. Remove the other variant (both present is an
    // error for readers, SPEC §1); without a CDR file, remove both, so no
    // stale file stands beside the manifest.
    let (name, stale) = if cfg.gzip {
        ("cdrs.jsonl.gz", "cdrs.jsonl")
    } else {
        ("cdrs.jsonl", "cdrs.jsonl.gz")
    };
    let stale: &[&str] = if cfg.cdr_file {
        &[stale]
    } else {
        &[name, stale]
    };
    for stale in stale.iter().map(|s| out.join(s)) {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&stale)(e)),
            _ => {}
        }
    }
    let manifest = out.join(MANIFEST);
    let text = manifest::manifest_json(cfg, cfg.cdr_file.then_some(name));
    std::fs::write(&manifest, text).map_err(io_err(&manifest))?;
    files.push(PathBuf::from(MANIFEST));
    let counts = if cfg.cdr_file {
        let path = out.join(name);
        let shares = (cfg.malformed_share, cfg.duplicate_share, cfg.late_share);
        let plan = CdrPlan::new(seed, cfg.cdrs, &world, t0, cfg.days, shares);
        let threads = match cfg.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let file = File::create(&path).map_err(io_err(&path))?;
        let mut sink = BufWriter::with_capacity(1 << 20, file);
        let counts = cdr_writer::write_cdrs(&plan, threads, cfg.gzip, &mut sink, progress)
            .map_err(io_err(&path))?;
        sink.flush().map_err(io_err(&path))?;
        files.push(PathBuf::from(name));
        counts
    } else {
        cdr_writer::CdrCounts::default()
    };

    let malformed_reasons: BTreeMap<String, u64> = counts
        .malformed
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (Reason::from_index(i).to_string(), *n))
        .collect();
    Ok(GenerateSummary {
        cdrs: counts.lines,
        duplicates: counts.duplicates,
        late: counts.late,
        malformed: counts.malformed.iter().sum(),
        malformed_reasons,
        unknown_cell: counts.unknown_cell,
        rfc3339_start: counts.rfc3339,
        promotion_candidates: counts.candidates,
        cdr_bytes: counts.bytes,
        first_date: format_date(day0),
        last_date: format_date(day0 + i64::from(cfg.days) - 1),
        towers: world.geo.towers.len() as u64,
        stores: world.geo.stores.len() as u64,
        subscribers: world.people.subs.len() as u64,
        loyalty_customers: world.people.customers.len() as u64,
        products: world.catalogue.products.len() as u64,
        baskets: cfg.baskets,
        purchase_rows,
        weather_rows: world.weather.rows() as u64,
        road_nodes: world.roads.nodes.len() as u64,
        road_edges: world.roads.edges.len() as u64,
        loyalty_changes: loyalty_changes.len() as u64,
        store_changes: store_changes.len() as u64,
        files,
    })
}
