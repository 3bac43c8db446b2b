//! Test-only: an independent SPEC §2 reader of `cdrs.jsonl`, to check that
//! the generator's predicted outcome of every line is the one a careful
//! reader finds. Deliberately written from the SPEC, not from the generator.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::geo::{civil_from_days, days_from_civil};
use super::phone::normalise;

/// A JSON object's entries in order, duplicates kept (serde_json's `Map`
/// would silently keep the last).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry::<String, Value>()? {
                    v.push(e);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// `YYYY-MM-DDTHH:MM:SS` then `Z` or `±HH:MM`, as epoch seconds.
fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let day = days_from_civil(y, mo as u32, d as u32);
    if civil_from_days(day) != (y, mo as u32, d as u32) {
        return None;
    }
    let off = match &s[19..] {
        "Z" => 0,
        t if t.len() == 6 && (t.starts_with('+') || t.starts_with('-')) && &t[3..4] == ":" => {
            let m = num(20..22)? * 60 + num(23..25)?;
            if t.starts_with('-') {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    Some(day * 86_400 + h * 3600 + mi * 60 + se - off * 60)
}

fn uint(v: &Value) -> Option<u64> {
    v.as_u64().filter(|&n| n <= i64::MAX as u64)
}

/// A valid CDR's fields that matter here.
pub(crate) struct Valid {
    pub(crate) record_id: String,
    pub(crate) start: i64,
    pub(crate) cell_id: String,
}

/// The SPEC §2 verdict on one line, except lateness and duplicates.
pub(crate) fn classify(line: &str) -> Result<Valid, String> {
    let malformed = || "malformed_json".to_string();
    let Entries(entries) = serde_json::from_str::<Entries>(line).map_err(|_| malformed())?;
    let keys: BTreeSet<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    if keys.len() != entries.len() {
        return Err(malformed());
    }
    let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    for f in ["record_id", "msisdn", "type", "start", "cell_id"] {
        if get(f).is_none() {
            return Err(format!("missing_field:{f}"));
        }
    }
    let bad = |f: &str| Err(format!("bad_value:{f}"));
    let record_id = match get("record_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return bad("record_id"),
    };
    if get("msisdn")
        .and_then(Value::as_str)
        .and_then(normalise)
        .is_none()
    {
        return bad("msisdn");
    }
    let kind = get("type").and_then(Value::as_str).unwrap_or("");
    if !matches!(kind, "voice" | "sms" | "data") {
        return bad("type");
    }
    let start = match get("start") {
        Some(Value::String(s)) => rfc3339(s),
        Some(v) => uint(v).map(|n| n as i64),
        None => None,
    };
    let Some(start) = start else {
        return bad("start");
    };
    let cell_id = match get("cell_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return bad("cell_id"),
    };
    match get("callee") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if normalise(s).is_some() => {}
        Some(_) => return bad("callee"),
    }
    for f in ["duration_s", "bytes", "charge_cents"] {
        if get(f).is_some_and(|v| uint(v).is_none()) {
            return bad(f);
        }
    }
    if get("roaming").is_some_and(|v| !v.is_boolean()) {
        return bad("roaming");
    }
    Ok(Valid {
        record_id,
        start,
        cell_id,
    })
}

/// What a SPEC §2 reader reports for a whole file.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) read: u64,
    pub(crate) duplicate: u64,
    pub(crate) unique: u64,
    pub(crate) late: u64,
    pub(crate) unknown_cell: u64,
    pub(crate) reasons: BTreeMap<String, u64>,
}

pub(crate) fn read_cdrs(text: &str, towers: &BTreeSet<String>, lateness: i64) -> Metrics {
    let mut m = Metrics::default();
    let mut max_start = i64::MIN;
    let mut seen = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        m.read += 1;
        match classify(line) {
            Err(reason) => *m.reasons.entry(reason).or_default() += 1,
            Ok(v) if max_start != i64::MIN && v.start < max_start - lateness => {
                m.late += 1;
                *m.reasons.entry("late".into()).or_default() += 1;
            }
            Ok(v) => {
                max_start = max_start.max(v.start);
                if seen.insert(v.record_id) {
                    m.unique += 1;
                    m.unknown_cell += u64::from(!towers.contains(&v.cell_id));
                } else {
                    m.duplicate += 1;
                }
            }
        }
    }
    m
}
