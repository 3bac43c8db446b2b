//! Loading a [`Snapshot`] from a run's output directory (README "Running it"):
//!
//! ```text
//! OUT/segments/date=D/features.csv  ─┐ D = the latest date directory
//! OUT/segments/date=D/segments.csv  ─┤
//! OUT/promotions.csv                ─┼▶ SnapshotBuilder ─▶ Snapshot
//! DATA/loyalty.csv (with --data)    ─┤
//! DATA/loyalty_changes.jsonl        ─┘ the changes the run applied: `at` ≤ its
//!                                      final watermark (OUT/metrics.json)
//! ```
//!
//! The run's own outputs must be whole: a missing file, a missing column or a
//! row that does not parse is a [`ServeError`] naming the file (and line).
//! `loyalty.csv` is the operator's input: a row the run dead-letters (SPEC §2)
//! is skipped here too and counted in [`Loaded::loyalty_skipped`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cdrflow_dataflows::model::{Change, Epoch, Loyalty, Reason};
use cdrflow_dataflows::time::parse_date;

use super::rows::{FeatureValue, PromotionRow, RowError};
use super::store::{Snapshot, SnapshotBuilder};
use super::ServeError;
use crate::monitor::{from_files, MonitorState};
use crate::sink::files::PROMOTION_COLUMNS;
use crate::sink::snapshots::FEATURE_COLUMNS;
use crate::source::changes::read_changes;
use crate::source::csv_table::{field, read_csv, Table};
use crate::source::tables::{loyalty_row, LOYALTY_COLUMNS};

/// A snapshot read from disk, with where it came from.
pub struct Loaded {
    pub snapshot: Snapshot,
    /// The `segments/date=…` directory it was read from.
    pub dir: PathBuf,
    /// Rows of `loyalty.csv` left out (the run dead-letters them).
    pub loyalty_skipped: usize,
}

/// Reads the latest snapshot of the run output `out`, its promotions, and the
/// loyalty customers of `data/loyalty.csv` when `data` is given.
pub fn from_dir(out: &Path, data: Option<&Path>) -> Result<Loaded, ServeError> {
    let (date, dir) = latest_date(&out.join("segments"))?;
    let names = FEATURE_COLUMNS[1..].iter().map(|s| s.to_string()).collect();
    let mut b = SnapshotBuilder::new(date, names);
    read_features(&mut b, &dir)?;
    read_segments(&mut b, &dir)?;
    read_promotions(&mut b, out)?;
    let loyalty_skipped = match data {
        Some(data) => read_loyalty(&mut b, data, run_watermark(out)?)?,
        None => 0,
    };
    Ok(Loaded {
        snapshot: b.build(),
        dir,
        loyalty_skipped,
    })
}

/// The greatest `date=YYYY-MM-DD` directory under `segments` (other entries
/// are ignored) and its date's midnight.
fn latest_date(segments: &Path) -> Result<(i64, PathBuf), ServeError> {
    let io = |source| ServeError::Io {
        path: segments.to_path_buf(),
        source,
    };
    let mut best: Option<(i64, PathBuf)> = None;
    for entry in std::fs::read_dir(segments).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(date) = name
            .to_str()
            .and_then(|n| n.strip_prefix("date="))
            .and_then(parse_date)
        else {
            continue;
        };
        if entry.path().is_dir() && best.as_ref().is_none_or(|(d, _)| date > *d) {
            best = Some((date, entry.path()));
        }
    }
    best.ok_or_else(|| ServeError::NoSnapshot {
        path: segments.to_path_buf(),
    })
}

/// Fails on the first rejected row of a table the run wrote itself.
fn whole<T>(dir: &Path, rel: &str, table: Table<T>) -> Result<Vec<(u64, T)>, ServeError> {
    match table.dead.first() {
        Some(d) => Err(invalid(dir, rel, d.line, d.reason.to_string())),
        None => Ok(table.rows),
    }
}

fn invalid(dir: &Path, rel: &str, line: u64, message: String) -> ServeError {
    ServeError::Invalid {
        path: dir.join(rel),
        line,
        message,
    }
}

fn row_error<'a>(dir: &'a Path, rel: &'a str, line: u64) -> impl Fn(RowError) -> ServeError + 'a {
    move |e| invalid(dir, rel, line, e.to_string())
}

fn read_features(b: &mut SnapshotBuilder, dir: &Path) -> Result<(), ServeError> {
    let rel = "features.csv";
    let table = read_csv(dir, rel, &FEATURE_COLUMNS, |r| {
        let token = field::required(r.get(0), "subscriber_token")?.to_string();
        let features = (1..FEATURE_COLUMNS.len())
            .map(|i| {
                FeatureValue::parse(r.get(i))
                    .ok_or_else(|| Reason::BadValue(FEATURE_COLUMNS[i].into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((token, features))
    })?;
    for (line, (token, features)) in whole(dir, rel, table)? {
        b.subscriber(&token, features)
            .map_err(row_error(dir, rel, line))?;
    }
    Ok(())
}

fn read_segments(b: &mut SnapshotBuilder, dir: &Path) -> Result<(), ServeError> {
    let rel = "segments.csv";
    let table = read_csv(dir, rel, &["subscriber_token", "segment"], |r| {
        Ok((
            field::required(r.get(0), "subscriber_token")?.to_string(),
            field::required(r.get(1), "segment")?.to_string(),
        ))
    })?;
    for (line, (token, segment)) in whole(dir, rel, table)? {
        b.segment(&token, &segment)
            .map_err(row_error(dir, rel, line))?;
    }
    Ok(())
}

fn read_promotions(b: &mut SnapshotBuilder, out: &Path) -> Result<(), ServeError> {
    let rel = "promotions.csv";
    let optional = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let table = read_csv(out, rel, &PROMOTION_COLUMNS, |r| {
        let text = |i: usize| field::required(r.get(i), PROMOTION_COLUMNS[i]).map(String::from);
        Ok(PromotionRow {
            date: parse_date(r.get(0)).ok_or_else(|| Reason::BadValue("date".into()))?,
            customer_id: text(1)?,
            subscriber_token: text(2)?,
            record_id: text(3)?,
            start: field::int(r.get(4), "start")?,
            cell_id: text(5)?,
            store_id: text(6)?,
            haversine_m: field::int(r.get(7), "haversine_m")?,
            drive_m: field::int(r.get(8), "drive_m")?,
            product_id: optional(r.get(9)),
            source: optional(r.get(10)),
        })
    })?;
    for (line, row) in whole(out, rel, table)? {
        b.promotion(row).map_err(row_error(out, rel, line))?;
    }
    Ok(())
}

/// The `metrics.json` of the run that wrote `out` (`Null` when missing).
fn run_metrics(out: &Path) -> Result<serde_json::Value, ServeError> {
    let path = out.join("metrics.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(serde_json::Value::Null),
        Err(source) => return Err(ServeError::Io { path, source }),
    };
    serde_json::from_str(&text).map_err(|e| ServeError::Invalid {
        path: path.clone(),
        line: e.line() as u64,
        message: e.to_string(),
    })
}

/// The final event-time watermark of the run that wrote `out` (its
/// `metrics.json`), `None` when the file does not say.
fn run_watermark(out: &Path) -> Result<Option<Epoch>, ServeError> {
    Ok(run_metrics(out)?
        .get("watermark")
        .and_then(serde_json::Value::as_i64))
}

/// The monitor's state of a finished run: its `metrics.json`, and the
/// breakdowns computed from its output files.
pub fn monitor_state(out: &Path) -> Result<MonitorState, ServeError> {
    let metrics = run_metrics(out)?;
    let now = crate::monitor::now_ms();
    let io = |source| ServeError::Io {
        path: out.to_path_buf(),
        source,
    };
    Ok(MonitorState {
        history: vec![crate::monitor::Sample::of(&metrics, now)],
        metrics,
        live: false,
        updated_ms: now,
        breakdown: from_files::breakdown(out).map_err(io)?,
        segments: from_files::segment_counts(out).map_err(io)?,
        ..MonitorState::default()
    })
}

/// Adds the loyalty customers as the run saw them at its end: the valid rows
/// of `data/loyalty.csv` (a repeated customer_id: the last row), then the
/// valid changes of `data/loyalty_changes.jsonl` with `at ≤ watermark`, in
/// `at` order (none without a watermark). Returns how many rows were skipped.
fn read_loyalty(
    b: &mut SnapshotBuilder,
    data: &Path,
    watermark: Option<Epoch>,
) -> Result<usize, ServeError> {
    let table = read_csv(data, "loyalty.csv", &LOYALTY_COLUMNS, |r| {
        loyalty_row(&|i| r.get(i))
    })?;
    let mut skipped = table.dead.len();
    let mut customers: BTreeMap<String, Loyalty> = table
        .rows
        .into_iter()
        .map(|(_, row)| (row.customer_id.clone(), row))
        .collect();
    let rel = "loyalty_changes.jsonl";
    let (changes, dead) =
        read_changes(data, rel, &LOYALTY_COLUMNS, loyalty_row).map_err(|source| {
            ServeError::Io {
                path: data.join(rel),
                source,
            }
        })?;
    skipped += dead.len();
    for change in changes {
        if watermark.is_none_or(|w| change.at() > w) {
            break;
        }
        match change {
            Change::Upsert { key, value, .. } => customers.insert(key, value),
            Change::Delete { key, .. } => customers.remove(&key),
        };
    }
    for row in customers.values() {
        if b.loyalty(&row.msisdn, row.into()).is_err() {
            skipped += 1;
        }
    }
    Ok(skipped)
}
