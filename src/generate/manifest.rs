//! `generator.json`: what `cdrflow generate` was asked for, so that
//! `cdrflow run --cdr-source generator` can rebuild the same [`World`] and
//! [`CdrPlan`] and render the CDR lines itself instead of reading them.
//!
//! Every parameter that shapes a record is here; the output directory, the
//! thread count and gzip are not (they never change a line). Floats are
//! stored as the string Rust's `Display` gives (the shortest that parses
//! back to the same bits) and read with `str::parse::<f64>`, which is exact:
//! a JSON number would go through serde_json's float parser, which is not
//! guaranteed to round-trip.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cdr::CdrPlan;
use super::geo::DAY_S;
use super::{GenerateConfig, GenerateError, World};

/// The manifest's file name in the dataset directory.
pub const MANIFEST: &str = "generator.json";

/// The manifest's format version.
const FORMAT: u32 = 1;

/// `generator.json`, field for field (floats as exact strings).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    seed: u64,
    cdrs: u64,
    subscribers: u64,
    days: u32,
    start_date: String,
    cities: u32,
    towers_per_city: u32,
    city_radius_m: String,
    road_spacing_m: String,
    stores: u32,
    loyalty_share: String,
    duplicate_share: String,
    late_share: String,
    malformed_share: String,
    baskets: u64,
    products: u32,
    purchase_history_days: u32,
    /// The CDR file written beside it, if any (`cdrs.jsonl`, `cdrs.jsonl.gz`).
    cdr_file: Option<String>,
}

/// The manifest's text for `cfg` (`cdr_file`: the CDR file written, if any).
pub(crate) fn manifest_json(cfg: &GenerateConfig, cdr_file: Option<&str>) -> String {
    let m = Manifest {
        format: FORMAT,
        seed: cfg.seed,
        cdrs: cfg.cdrs,
        subscribers: cfg.subscribers,
        days: cfg.days,
        start_date: cfg.start_date.clone(),
        cities: cfg.cities,
        towers_per_city: cfg.towers_per_city,
        city_radius_m: cfg.city_radius_m.to_string(),
        road_spacing_m: cfg.road_spacing_m.to_string(),
        stores: cfg.stores,
        loyalty_share: cfg.loyalty_share.to_string(),
        duplicate_share: cfg.duplicate_share.to_string(),
        late_share: cfg.late_share.to_string(),
        malformed_share: cfg.malformed_share.to_string(),
        baskets: cfg.baskets,
        products: cfg.products,
        purchase_history_days: cfg.purchase_history_days,
        cdr_file: cdr_file.map(String::from),
    };
    let mut text = serde_json::to_string_pretty(&m).expect("a manifest serialises");
    text.push('\n');
    text
}

/// The config a manifest describes (`out` empty, `threads` 0, no gzip).
/// Only the fields that shape a line matter to the generator.
fn config_of(text: &str) -> Result<GenerateConfig, String> {
    let m: Manifest = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if m.format != FORMAT {
        return Err(format!("format {} (this cdrflow reads {FORMAT})", m.format));
    }
    let float = |name: &str, v: &str| {
        v.parse::<f64>()
            .map_err(|_| format!("{name}: {v:?} is not a number"))
    };
    Ok(GenerateConfig {
        out: PathBuf::new(),
        seed: m.seed,
        cdrs: m.cdrs,
        subscribers: m.subscribers,
        days: m.days,
        start_date: m.start_date,
        cities: m.cities,
        towers_per_city: m.towers_per_city,
        city_radius_m: float("city_radius_m", &m.city_radius_m)?,
        road_spacing_m: float("road_spacing_m", &m.road_spacing_m)?,
        stores: m.stores,
        loyalty_share: float("loyalty_share", &m.loyalty_share)?,
        duplicate_share: float("duplicate_share", &m.duplicate_share)?,
        late_share: float("late_share", &m.late_share)?,
        malformed_share: float("malformed_share", &m.malformed_share)?,
        baskets: m.baskets,
        products: m.products,
        purchase_history_days: m.purchase_history_days,
        threads: 0,
        gzip: false,
        cdr_file: m.cdr_file.is_some(),
    })
}

/// The generator of a dataset's CDR lines, rebuilt from its manifest: the
/// world once per process, shared by the workers, each of which makes its
/// own [`CdrPlan`] ([`Generator::plan`]).
pub struct Generator {
    cfg: GenerateConfig,
    world: World,
    t0: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{} is missing: --cdr-source generator needs a dataset written by `cdrflow generate` (which writes it)",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl Generator {
    /// The generator of `dir/generator.json`; `cdrs` overrides its count
    /// (the tables do not depend on it, so the lines are those of
    /// `generate --cdrs N` with the same flags).
    pub fn load(dir: &Path, cdrs: Option<u64>) -> Result<Generator, ManifestError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ManifestError::Missing { path: path.clone() }
            } else {
                ManifestError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        let invalid = |message: String| ManifestError::Invalid {
            path: path.clone(),
            message,
        };
        let mut cfg = config_of(&text).map_err(invalid)?;
        if let Some(n) = cdrs {
            cfg.cdrs = n;
        }
        Generator::new(cfg).map_err(|e| invalid(e.to_string()))
    }

    /// The generator of `cfg` (validated).
    pub(crate) fn new(cfg: GenerateConfig) -> Result<Generator, GenerateError> {
        let day0 = cfg.validate()?;
        let world = World::build(&cfg, day0);
        Ok(Generator {
            t0: day0 * DAY_S,
            cfg,
            world,
        })
    }

    /// CDR lines in the plan.
    pub fn cdrs(&self) -> u64 {
        self.cfg.cdrs
    }

    /// The plan of every line; `write_line(i)` renders line `i`.
    pub(crate) fn plan(&self) -> CdrPlan<'_> {
        let c = &self.cfg;
        let shares = (c.malformed_share, c.duplicate_share, c.late_share);
        CdrPlan::new(c.seed, c.cdrs, &self.world, self.t0, c.days, shares)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_gives_back_the_config_bit_for_bit() {
        let mut cfg = GenerateConfig::scale("medium").unwrap();
        // Floats whose shortest decimal is long, and one JSON parsers round.
        cfg.loyalty_share = 0.1 + 0.2;
        cfg.duplicate_share = 1.0 / 3.0 * 0.1;
        cfg.late_share = 2.225_073_858_507_201e-308;
        cfg.malformed_share = f64::from_bits(0.005f64.to_bits() + 1);
        cfg.city_radius_m = f64::from_bits(8_000f64.to_bits() + 1);
        cfg.road_spacing_m = 450.0 + 1.0 / 7.0;
        cfg.days = 100;
        cfg.subscribers = 1_000_000;
        let back = config_of(&manifest_json(&cfg, Some("cdrs.jsonl"))).unwrap();
        let bits = |c: &GenerateConfig| {
            [
                c.loyalty_share,
                c.duplicate_share,
                c.late_share,
                c.malformed_share,
                c.city_radius_m,
                c.road_spacing_m,
            ]
            .map(f64::to_bits)
        };
        assert_eq!(bits(&back), bits(&cfg));
        let out = cfg.out.clone();
        assert_eq!(back, GenerateConfig { out, ..cfg });
    }

    #[test]
    fn a_manifest_of_another_format_or_with_unknown_fields_is_refused() {
        let cfg = GenerateConfig::scale("tiny").unwrap();
        let text = manifest_json(&cfg, Some("cdrs.jsonl"));
        let other = text.replace("\"format\": 1", "\"format\": 2");
        assert!(config_of(&other).unwrap_err().contains("format 2"));
        let extra = text.replace("\"seed\"", "\"colour\": 1, \"seed\"");
        assert!(config_of(&extra).is_err());
    }
}
