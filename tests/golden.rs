//! Golden fixtures: small hand-written datasets under `datasets/<name>/` whose
//! expected outputs were computed by hand (see each `datasets/<name>/README.md`).
//!
//! Each test runs the binary with `-w 1` and `-w 2` and `CDRFLOW_TOKEN_KEY=fixture-key`
//! into a temporary directory (plus the extra arguments of `datasets/<name>/flags`,
//! when that file exists: one argument per line, e.g. `--min-support=0.25`; blank
//! lines and lines starting with `#` are skipped) and checks:
//! - `promotions.csv` and `dead_letter.jsonl`: byte for byte against `expected/`;
//! - `rules.csv` and `recommendations.csv`: byte for byte, only when `expected/`
//!   has them (a fixture without them does not check them);
//! - `metrics.json`: every key present in `expected/metrics.json`. Nested objects
//!   (e.g. `dead_letter_reasons`) are compared key by key; a key the actual object
//!   has but the expected one lacks must be 0 (a reason or file not listed in the
//!   expected file means "none");
//! - `promotions.changes.jsonl` (only when `expected/retractions.csv` exists): the
//!   set of `(date, customer_id, record_id)` that occur with a negative `diff`
//!   equals the rows of `retractions.csv`;
//! - `segments/` (only when `expected/segments/` exists): the set of
//!   `date=YYYY-MM-DD` directories must match, and in each one `features.csv`
//!   and `segments.csv` byte for byte.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `product_id`/`source` come from the market-basket dataflow (issue 3), not
/// built yet: until then the expected files' last two columns are blanked
/// before comparing. The expected files keep the hand-computed values.
const PRODUCT_PENDING: bool = false;

/// The CSV text with the last two fields of every data row emptied.
fn without_product(csv: &str) -> String {
    let mut out = String::new();
    for (i, line) in csv.lines().enumerate() {
        if i == 0 {
            out.push_str(line);
        } else {
            let mut fields: Vec<&str> = line.split(',').collect();
            let n = fields.len();
            fields[n - 2] = "";
            fields[n - 1] = "";
            out.push_str(&fields.join(","));
        }
        out.push('\n');
    }
    out
}

/// How many differing lines a failure message shows at most.
const SHOW: usize = 8;

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("datasets")
        .join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The extra `cdrflow run` arguments of `datasets/<name>/flags` (none without
/// the file): one argument per line, blank lines and `#` comments skipped.
fn fixture_flags(name: &str) -> Vec<String> {
    let path = fixture_dir(name).join("flags");
    if !path.exists() {
        return Vec::new();
    }
    read(&path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Runs `cdrflow run` on the fixture; returns the temp dir holding the outputs.
fn run_fixture(name: &str, workers: u32) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("temp dir");
    let flags = fixture_flags(name);
    let output = Command::new(env!("CARGO_BIN_EXE_cdrflow"))
        .arg("run")
        .arg("--data")
        .arg(fixture_dir(name))
        .arg("--out")
        .arg(out.path())
        .arg("-w")
        .arg(workers.to_string())
        .args(&flags)
        .env("CDRFLOW_TOKEN_KEY", "fixture-key")
        .output()
        .expect("spawn cdrflow");
    assert!(
        output.status.success(),
        "fixture {name} (-w {workers}, flags {flags:?}): cdrflow run failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    out
}

/// A readable diff of two texts, or `None` when they are byte-identical.
fn text_diff(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let exp: Vec<&str> = expected.split_inclusive('\n').collect();
    let act: Vec<&str> = actual.split_inclusive('\n').collect();
    let mut msg = String::new();
    let _ = writeln!(
        msg,
        "  {} expected lines, {} actual lines",
        exp.len(),
        act.len()
    );
    // Positional: the first lines that differ, side by side.
    let mut shown = 0;
    for i in 0..exp.len().max(act.len()) {
        let (e, a) = (exp.get(i).copied(), act.get(i).copied());
        if e == a {
            continue;
        }
        if shown == SHOW {
            let _ = writeln!(msg, "  … (only the first {SHOW} differing lines shown)");
            break;
        }
        shown += 1;
        let _ = writeln!(msg, "  line {}:", i + 1);
        let _ = writeln!(msg, "    - {}", show_line(e));
        let _ = writeln!(msg, "    + {}", show_line(a));
    }
    // Rows missing or extra shift every later line: list them as sets too.
    if exp.len() != act.len() {
        let exp_set: BTreeSet<&str> = exp.iter().copied().collect();
        let act_set: BTreeSet<&str> = act.iter().copied().collect();
        let missing: Vec<&&str> = exp_set.difference(&act_set).collect();
        let extra: Vec<&&str> = act_set.difference(&exp_set).collect();
        let _ = writeln!(msg, "  only in expected ({}):", missing.len());
        for l in missing.iter().take(SHOW) {
            let _ = writeln!(msg, "    - {}", show_line(Some(l)));
        }
        let _ = writeln!(msg, "  only in actual ({}):", extra.len());
        for l in extra.iter().take(SHOW) {
            let _ = writeln!(msg, "    + {}", show_line(Some(l)));
        }
    }
    Some(msg)
}

fn show_line(line: Option<&str>) -> String {
    match line {
        None => "<no line>".to_string(),
        Some(l) => match l.strip_suffix('\n') {
            Some(body) => body.to_string(),
            None => format!("{l}<no newline at end>"),
        },
    }
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

fn values_equal(e: &Value, a: &Value) -> bool {
    match (e, a) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => e == a,
    }
}

/// Compares `expected` against `actual` at `path`, pushing one line per mismatch.
fn compare_metric(path: &str, expected: &Value, actual: Option<&Value>, out: &mut Vec<String>) {
    let Some(actual) = actual else {
        out.push(format!("  {path}: expected {expected}, missing in actual"));
        return;
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                compare_metric(&format!("{path}.{k}"), ev, a.get(k), out);
            }
            for (k, av) in a {
                if !e.contains_key(k) && !is_zero(av) {
                    out.push(format!("  {path}.{k}: expected absent (0), actual {av}"));
                }
            }
        }
        _ if values_equal(expected, actual) => {}
        _ => out.push(format!("  {path}: expected {expected}, actual {actual}")),
    }
}

fn metrics_diff(expected: &str, actual: &str) -> Option<String> {
    let e: Value = serde_json::from_str(expected).expect("expected/metrics.json is JSON");
    let a: Value = match serde_json::from_str(actual) {
        Ok(a) => a,
        Err(err) => return Some(format!("  actual metrics.json is not JSON: {err}\n")),
    };
    let Value::Object(e) = e else {
        panic!("expected/metrics.json is not an object");
    };
    let mut out = Vec::new();
    for (k, ev) in &e {
        compare_metric(k, ev, a.get(k), &mut out);
    }
    if out.is_empty() {
        None
    } else {
        Some(out.join("\n") + "\n")
    }
}

/// `(date, customer_id, record_id)` of every change-stream line with `diff < 0`.
fn actual_retractions(changes: &str) -> Result<BTreeSet<String>, String> {
    let mut set = BTreeSet::new();
    for (i, line) in changes.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("promotions.changes.jsonl line {}: {e}", i + 1))?;
        let diff = v.get("diff").and_then(Value::as_i64).unwrap_or(0);
        if diff < 0 {
            let field = |k: &str| match v.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            set.insert(format!(
                "{},{},{}",
                field("date"),
                field("customer_id"),
                field("record_id")
            ));
        }
    }
    Ok(set)
}

fn retractions_diff(expected: &str, changes: &str) -> Option<String> {
    let want: BTreeSet<String> = expected
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let got = match actual_retractions(changes) {
        Ok(got) => got,
        Err(e) => return Some(format!("  {e}\n")),
    };
    if want == got {
        return None;
    }
    let mut msg = String::new();
    for r in want.difference(&got) {
        let _ = writeln!(msg, "  expected a -1 line for {r}, none found");
    }
    for r in got.difference(&want) {
        let _ = writeln!(msg, "  unexpected -1 line for {r}");
    }
    Some(msg)
}

/// The `date=…` directory names under a `segments/` directory (none when it
/// does not exist).
fn snapshot_dates(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|e| e.expect("readable segments/ entry"))
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Compares the snapshot directories: the same `date=` set, and in each
/// `features.csv` and `segments.csv` byte for byte.
fn segments_diff(expected: &Path, actual: &Path) -> Option<String> {
    let want = snapshot_dates(expected);
    let got = snapshot_dates(actual);
    let mut msg = String::new();
    for d in want.difference(&got) {
        let _ = writeln!(msg, "  missing snapshot directory segments/{d}");
    }
    for d in got.difference(&want) {
        let _ = writeln!(msg, "  unexpected snapshot directory segments/{d}");
    }
    for date in want.intersection(&got) {
        for file in ["features.csv", "segments.csv"] {
            let path = actual.join(date).join(file);
            let Ok(got) = std::fs::read_to_string(&path) else {
                let _ = writeln!(msg, "  segments/{date}/{file}: missing");
                continue;
            };
            if let Some(d) = text_diff(&read(&expected.join(date).join(file)), &got) {
                let _ = write!(msg, "  segments/{date}/{file} (- expected, + actual):\n{d}");
            }
        }
    }
    (!msg.is_empty()).then_some(msg)
}

fn check_fixture(name: &str) {
    let dir = fixture_dir(name);
    let expected = dir.join("expected");
    let mut failures = String::new();
    for workers in [1, 2] {
        let out = run_fixture(name, workers);
        for file in ["promotions.csv", "dead_letter.jsonl"] {
            let mut want = read(&expected.join(file));
            if file == "promotions.csv" && PRODUCT_PENDING {
                want = without_product(&want);
            }
            let got = read(&out.path().join(file));
            if let Some(d) = text_diff(&want, &got) {
                let _ = write!(
                    failures,
                    "\n[{name} -w {workers}] {file} differs (- expected, + actual):\n{d}"
                );
            }
        }
        // Market-basket outputs: checked only where the fixture pins them.
        for file in ["rules.csv", "recommendations.csv"] {
            let path = expected.join(file);
            if !path.exists() {
                continue;
            }
            let got = read(&out.path().join(file));
            if let Some(d) = text_diff(&read(&path), &got) {
                let _ = write!(
                    failures,
                    "\n[{name} -w {workers}] {file} differs (- expected, + actual):\n{d}"
                );
            }
        }
        let want = read(&expected.join("metrics.json"));
        let got = read(&out.path().join("metrics.json"));
        if let Some(d) = metrics_diff(&want, &got) {
            let _ = write!(
                failures,
                "\n[{name} -w {workers}] metrics.json differs:\n{d}"
            );
        }
        let segments = expected.join("segments");
        if segments.exists() {
            if let Some(d) = segments_diff(&segments, &out.path().join("segments")) {
                let _ = write!(failures, "\n[{name} -w {workers}] segments/ differs:\n{d}");
            }
        }
        let retractions = expected.join("retractions.csv");
        if retractions.exists() {
            let got = read(&out.path().join("promotions.changes.jsonl"));
            if let Some(d) = retractions_diff(&read(&retractions), &got) {
                let _ = write!(
                    failures,
                    "\n[{name} -w {workers}] retractions in promotions.changes.jsonl differ:\n{d}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden fixture {name} (datasets/{name}/README.md explains every row):{failures}"
    );
}

#[test]
fn golden_geo_limits() {
    check_fixture("geo_limits");
}

#[test]
fn golden_drive_cache() {
    check_fixture("drive_cache");
}

#[test]
fn golden_loyalty_changes() {
    check_fixture("loyalty_changes");
}

#[test]
fn golden_store_changes() {
    check_fixture("store_changes");
}

#[test]
fn golden_messy_cdrs() {
    check_fixture("messy_cdrs");
}

#[test]
fn golden_basket_rules() {
    check_fixture("basket_rules");
}

#[test]
fn golden_segment_features() {
    check_fixture("segment_features");
}
