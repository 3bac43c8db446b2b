//! The output directory (SPEC §2–4): `promotions.csv`,
//! `promotions.changes.jsonl`, `rules.csv`, `recommendations.csv`,
//! `dead_letter.jsonl`, `metrics.json`.
//!
//! Delivery contract: files are written once the dataflow has drained, each to
//! a temporary name and renamed into place, so a reader never sees half a file.
//! Every file is sorted as the SPEC says, so the bytes do not depend on the
//! number of workers or processes.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use cdrflow_dataflows::basket::{scope_name, Catalogue, Pick, Recommendation, Rule};
use cdrflow_dataflows::model::{DeadLetter, Time};
use cdrflow_dataflows::promotions::Promotion;
use cdrflow_dataflows::spatial::round_half_up;
use cdrflow_dataflows::time::date_string;
use cdrflow_dataflows::token::Tokenizer;
use serde_json::{json, Map, Value};

use super::collect::consolidated;
use crate::serve::PromotionRow;

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Writes `path` through a temporary file and a rename.
pub fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp~");
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    body(&mut w).map_err(err)?;
    w.flush().map_err(err)?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(err)
}

pub const PROMOTION_COLUMNS: [&str; 11] = [
    "date",
    "customer_id",
    "subscriber_token",
    "record_id",
    "start",
    "cell_id",
    "store_id",
    "haversine_m",
    "drive_m",
    "product_id",
    "source",
];

/// A pick's `product_id` and `source` columns (both empty when there is no
/// basket to recommend from).
fn pick_fields(pick: &Pick, catalogue: &Catalogue) -> [String; 2] {
    match pick.product {
        Some(p) => [catalogue.name(p).to_string(), pick.source.to_string()],
        None => [String::new(), String::new()],
    }
}

/// The row of a promotion and its pick (SPEC §3): distances rounded half up
/// to whole metres; `product_id` and `source` empty (`None`) when there is no
/// basket to recommend from.
pub fn promotion_row(
    (p, pick): &(Promotion, Pick),
    tokens: &Tokenizer,
    catalogue: &Catalogue,
) -> PromotionRow {
    let [product_id, source] = pick_fields(pick, catalogue).map(|f| (!f.is_empty()).then_some(f));
    PromotionRow {
        date: p.date,
        customer_id: p.customer_id.to_string(),
        subscriber_token: tokens.token(&p.msisdn.to_text()),
        record_id: p.record_id.to_string(),
        start: p.start,
        cell_id: p.cell_id.to_string(),
        store_id: p.store_id.to_string(),
        haversine_m: round_half_up(p.haversine_m.0),
        drive_m: round_half_up(p.drive_m.0),
        product_id,
        source,
    }
}

/// The CSV fields of a promotion row.
pub fn promotion_fields(r: &PromotionRow) -> [String; 11] {
    [
        date_string(r.date),
        r.customer_id.clone(),
        r.subscriber_token.clone(),
        r.record_id.clone(),
        r.start.to_string(),
        r.cell_id.clone(),
        r.store_id.clone(),
        r.haversine_m.to_string(),
        r.drive_m.to_string(),
        r.product_id.clone().unwrap_or_default(),
        r.source.clone().unwrap_or_default(),
    ]
}

/// `promotions.csv`: the final view, sorted by (date, customer_id).
pub fn write_promotions(
    out: &Path,
    updates: &[((Promotion, Pick), Time, isize)],
    tokens: &Tokenizer,
    catalogue: &Catalogue,
) -> Result<usize, WriteError> {
    let rows = consolidated(updates);
    let mut count = 0;
    write_atomic(&out.join("promotions.csv"), |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(PROMOTION_COLUMNS)?;
        for (row, n) in &rows {
            for _ in 0..(*n).max(0) {
                csv.write_record(promotion_fields(&promotion_row(row, tokens, catalogue)))?;
                count += 1;
            }
        }
        csv.flush()
    })?;
    Ok(count)
}

pub const RULE_COLUMNS: [&str; 6] = [
    "context",
    "antecedent",
    "consequent",
    "support",
    "confidence",
    "lift",
];

/// The CSV fields of a rule (antecedent products joined by `|`).
pub fn rule_fields(r: &Rule, catalogue: &Catalogue) -> [String; 6] {
    let antecedent: Vec<&str> = r.antecedent.iter().map(|p| catalogue.name(*p)).collect();
    [
        scope_name(&r.scope).to_string(),
        antecedent.join("|"),
        catalogue.name(r.consequent).to_string(),
        r.support().to_string(),
        r.confidence().to_string(),
        r.lift().to_string(),
    ]
}

pub const RECOMMENDATION_COLUMNS: [&str; 4] = ["customer_id", "context", "product_id", "source"];

/// The CSV fields of a recommendation.
pub fn recommendation_fields(r: &Recommendation, catalogue: &Catalogue) -> [String; 4] {
    let [product_id, source] = pick_fields(&r.pick, catalogue);
    [
        r.customer_id.to_string(),
        scope_name(&r.context).to_string(),
        product_id,
        source,
    ]
}

/// `rules.csv`: `context,antecedent,consequent,support,confidence,lift`,
/// sorted by context name, antecedent (element by element, a prefix first)
/// and consequent; products by their `product_id` bytes.
pub fn write_rules(
    out: &Path,
    updates: &[(Rule, Time, isize)],
    catalogue: &Catalogue,
) -> Result<usize, WriteError> {
    let rows = consolidated(updates);
    let mut rules: Vec<&Rule> = rows
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, _)| r)
        .collect();
    rules.sort_by(|a, b| {
        (scope_name(&a.scope), &a.antecedent, a.consequent).cmp(&(
            scope_name(&b.scope),
            &b.antecedent,
            b.consequent,
        ))
    });
    write_atomic(&out.join("rules.csv"), |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(RULE_COLUMNS)?;
        for r in &rules {
            csv.write_record(rule_fields(r, catalogue))?;
        }
        csv.flush()
    })?;
    Ok(rules.len())
}

/// `recommendations.csv`: `customer_id,context,product_id,source`, sorted by
/// customer and context name.
pub fn write_recommendations(
    out: &Path,
    updates: &[(Recommendation, Time, isize)],
    catalogue: &Catalogue,
) -> Result<usize, WriteError> {
    let rows = consolidated(updates);
    let mut recs: Vec<&Recommendation> = rows
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, _)| r)
        .collect();
    recs.sort_by(|a, b| {
        (&a.customer_id, scope_name(&a.context)).cmp(&(&b.customer_id, scope_name(&b.context)))
    });
    write_atomic(&out.join("recommendations.csv"), |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(RECOMMENDATION_COLUMNS)?;
        for r in &recs {
            csv.write_record(recommendation_fields(r, catalogue))?;
        }
        csv.flush()
    })?;
    Ok(recs.len())
}

/// One line of `dead_letter.jsonl`, fields in the SPEC's order: `line` for
/// a file, `offset` for a Kafka partition (source `kafka:TOPIC/PARTITION`).
#[derive(serde::Serialize)]
pub struct DeadLine<'a> {
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    reason: String,
    raw: &'a str,
}

impl<'a> DeadLine<'a> {
    pub fn new(d: &'a DeadLetter) -> Self {
        let kafka = d.source.starts_with("kafka:");
        DeadLine {
            source: &d.source,
            line: (!kafka).then_some(d.line),
            offset: kafka.then_some(d.line),
            reason: d.reason.to_string(),
            raw: &d.raw,
        }
    }
}

/// `dead_letter.jsonl`, sorted by source and line.
pub fn write_dead_letters(
    out: &Path,
    updates: &[(DeadLetter, Time, isize)],
) -> Result<(), WriteError> {
    let mut dead: Vec<&DeadLetter> = updates
        .iter()
        .filter(|(_, _, r)| *r > 0)
        .map(|(d, _, _)| d)
        .collect();
    dead.sort();
    write_atomic(&out.join("dead_letter.jsonl"), |w| {
        for d in dead {
            serde_json::to_writer(&mut *w, &DeadLine::new(d))?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// `metrics.json` from the summed counts. Names with a `/` are grouped:
/// `dead_letter_reasons/late` becomes `"dead_letter_reasons": {"late": …}`.
pub fn metrics_json(counts: &BTreeMap<String, i64>, promotions: usize) -> Value {
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    let mut obj = Map::new();
    let valid = get("cdrs_valid");
    let unique = get("cdrs_unique");
    let requests = get("requests");
    let calls = get("router_calls");
    for (k, v) in [
        ("cdrs_read", get("cdrs_read")),
        ("cdrs_valid", valid),
        ("cdrs_dead_lettered", get("cdrs_dead_lettered")),
        ("cdrs_late", get("cdrs_late")),
        ("cdrs_duplicate", valid - unique),
        ("cdrs_unique", unique),
        ("cdrs_unknown_cell", get("cdrs_unknown_cell")),
        ("loyalty_matches", get("loyalty_matches")),
        ("router_requests", requests),
        ("requests_routed", get("requests_routed")),
        (
            "requests_within_drive_limit",
            get("requests_within_drive_limit"),
        ),
        ("router_calls", calls),
        ("cache_hits", requests - calls),
        ("promotions", promotions as i64),
        ("baskets", get("baskets")),
        ("rules", get("rules")),
        ("recommendations", get("recommendations")),
        ("snapshots", get("snapshots")),
        ("watermark", get("watermark")),
    ] {
        obj.insert(k.into(), json!(v));
    }
    let mut groups: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for group in [
        "dead_letter_reasons",
        "csv_dead_lettered",
        "csv_dead_lettered_by_reason",
    ] {
        groups.insert(group, Map::new());
    }
    for (k, v) in counts {
        if let Some((group, name)) = k.split_once('/') {
            groups
                .entry(group)
                .or_default()
                .insert(name.into(), json!(v));
        }
    }
    for (group, map) in groups {
        obj.insert(group.into(), Value::Object(map));
    }
    Value::Object(obj)
}

pub fn write_metrics(out: &Path, metrics: &Value) -> Result<(), WriteError> {
    write_atomic(&out.join("metrics.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, metrics)?;
        w.write_all(b"\n")
    })
}
