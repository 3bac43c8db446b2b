//! The monitor of a finished run (`serve --snapshots OUT [--data DATA]`):
//! the same breakdowns a live run publishes, computed from its output files,
//! and the map's towers and stores from its dataset.
//!
//! | panel | from |
//! |---|---|
//! | promotions by store, source, hour, cell | `OUT/promotions.csv` |
//! | promotions retracted | the `"diff":-1` lines of `OUT/promotions.changes.jsonl` |
//! | rules per context | `OUT/rules.csv` |
//! | subscribers per segment, latest and day before | the last two `OUT/segments/date=*/segments.csv` |
//! | towers, stores | `DATA/towers.csv`, `DATA/stores.csv` (+ stores opened in `stores_changes.jsonl`) |
//!
//! A missing file leaves its panel empty; rows that do not parse are skipped
//! (the run already dead-lettered what was bad in its input).

use std::collections::BTreeMap;
use std::path::Path;

use cdrflow_dataflows::time::format_rfc3339;

use super::{Breakdown, Geo, SegmentCounts};

/// Reads a CSV file with headers; `None` when it does not exist or lacks a
/// column of `columns`. Rows are given as their fields in `columns` order.
fn rows(path: &Path, columns: &[&str], mut each: impl FnMut(&[&str])) -> std::io::Result<bool> {
    let mut reader = match csv::Reader::from_path(path) {
        Ok(r) => r,
        Err(e) => {
            return match e.kind() {
                csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound => Ok(false),
                _ => Err(std::io::Error::other(e.to_string())),
            }
        }
    };
    let headers = reader
        .headers()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .clone();
    let Some(idx): Option<Vec<usize>> = columns
        .iter()
        .map(|c| headers.iter().position(|h| h == *c))
        .collect()
    else {
        return Ok(false);
    };
    for record in reader.records() {
        let Ok(record) = record else { continue };
        // A short row: skipped.
        if let Some(fields) = idx
            .iter()
            .map(|i| record.get(*i))
            .collect::<Option<Vec<_>>>()
        {
            each(&fields);
        }
    }
    Ok(true)
}

/// The breakdowns of the run that wrote `out`.
pub fn breakdown(out: &Path) -> std::io::Result<Breakdown> {
    let mut b = Breakdown::default();
    rows(
        &out.join("promotions.csv"),
        &["start", "cell_id", "store_id", "source"],
        |f| {
            let Ok(start) = f[0].parse::<i64>() else {
                return;
            };
            *b.promotions_by_store.entry(f[2].to_string()).or_default() += 1;
            let source = if f[3].is_empty() { "none" } else { f[3] };
            *b.promotions_by_source
                .entry(source.to_string())
                .or_default() += 1;
            let hour = format_rfc3339(start - start.rem_euclid(3600));
            *b.promotions_by_hour
                .entry(hour[..13].to_string())
                .or_default() += 1;
            *b.promotions_by_cell.entry(f[1].to_string()).or_default() += 1;
        },
    )?;
    rows(&out.join("rules.csv"), &["context"], |f| {
        *b.rules_by_context.entry(f[0].to_string()).or_default() += 1;
    })?;
    match std::fs::read_to_string(out.join("promotions.changes.jsonl")) {
        Ok(text) => {
            b.promotions_retracted = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|v| v.get("diff").and_then(serde_json::Value::as_i64) == Some(-1))
                .count() as u64;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(b)
}

/// Subscribers per segment in the last two snapshots under `out/segments`.
pub fn segment_counts(out: &Path) -> std::io::Result<SegmentCounts> {
    let dir = out.join("segments");
    let mut dates: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let date = name.strip_prefix("date=")?;
                (date.len() == 10).then(|| date.to_string())
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    dates.sort();
    let count = |date: &String| -> std::io::Result<(String, BTreeMap<String, u64>)> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        rows(
            &dir.join(format!("date={date}")).join("segments.csv"),
            &["segment"],
            |f| *counts.entry(f[0].to_string()).or_default() += 1,
        )?;
        Ok((date.clone(), counts))
    };
    let mut last = dates.iter().rev().take(2);
    let latest = last.next().map(count).transpose()?;
    let previous = last.next().map(count).transpose()?;
    Ok(SegmentCounts { latest, previous })
}

/// The towers and stores of the dataset in `data`.
pub fn geo(data: &Path) -> std::io::Result<Geo> {
    let mut geo = Geo::default();
    let coords = |f: &[&str]| Some((f[1].parse::<f64>().ok()?, f[2].parse::<f64>().ok()?));
    rows(&data.join("towers.csv"), &["cell_id", "lat", "lon"], |f| {
        if let Some(at) = coords(f) {
            geo.towers.insert(f[0].to_string(), at);
        }
    })?;
    rows(&data.join("stores.csv"), &["store_id", "lat", "lon"], |f| {
        if let Some(at) = coords(f) {
            geo.stores.insert(f[0].to_string(), at);
        }
    })?;
    match std::fs::read_to_string(data.join("stores_changes.jsonl")) {
        Ok(text) => {
            for v in text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            {
                let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
                if let (Some(id), Some(lat), Some(lon)) = (
                    v.get("store_id").and_then(|s| s.as_str()),
                    num("lat"),
                    num("lon"),
                ) {
                    geo.stores.entry(id.to_string()).or_insert((lat, lon));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(geo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakdowns_from_hand_written_files() {
        let dir =
            std::env::temp_dir().join(format!("cdrflow-monitor-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("segments/date=2026-03-01")).unwrap();
        std::fs::create_dir_all(dir.join("segments/date=2026-03-02")).unwrap();
        std::fs::write(
            dir.join("promotions.csv"),
            "date,customer_id,subscriber_token,record_id,start,cell_id,store_id,haversine_m,drive_m,product_id,source\n\
             2026-03-02,C1,t1,r1,1772445600,A,S1,10,20,P1,rule:global\n\
             2026-03-02,C2,t2,r2,1772449300,A,S2,10,20,,\n",
        )
        .unwrap();
        std::fs::write(dir.join("rules.csv"), "context,antecedent,consequent,support,confidence,lift\nglobal,a,b,1,1,1\nrain,a,b,1,1,1\nglobal,b,a,1,1,1\n").unwrap();
        std::fs::write(
            dir.join("promotions.changes.jsonl"),
            "{\"diff\":1,\"time\":1}\n{\"diff\":-1,\"time\":2}\n{\"diff\":1,\"time\":3}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("segments/date=2026-03-01/segments.csv"),
            "subscriber_token,segment\nt1,heavy\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("segments/date=2026-03-02/segments.csv"),
            "subscriber_token,segment\nt1,heavy\nt2,heavy\nt2,night\n",
        )
        .unwrap();

        let b = breakdown(&dir).unwrap();
        assert_eq!(
            b.promotions_by_store,
            [("S1".into(), 1), ("S2".into(), 1)].into()
        );
        assert_eq!(
            b.promotions_by_source,
            [("none".into(), 1), ("rule:global".into(), 1)].into()
        );
        // 1772445600 = 2026-03-02T10:00Z; 1772449300 is 11:01.
        assert_eq!(
            b.promotions_by_hour,
            [("2026-03-02T10".into(), 1), ("2026-03-02T11".into(), 1)].into()
        );
        assert_eq!(b.promotions_by_cell, [("A".into(), 2)].into());
        assert_eq!(
            b.rules_by_context,
            [("global".into(), 2), ("rain".into(), 1)].into()
        );
        assert_eq!(b.promotions_retracted, 1);
        let s = segment_counts(&dir).unwrap();
        assert_eq!(
            s.latest,
            Some((
                "2026-03-02".into(),
                [("heavy".into(), 2), ("night".into(), 1)].into()
            ))
        );
        assert_eq!(
            s.previous,
            Some(("2026-03-01".into(), [("heavy".into(), 1)].into()))
        );
        // Nothing there: empty, not an error.
        assert_eq!(
            breakdown(&dir.join("nothing")).unwrap(),
            Breakdown::default()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
