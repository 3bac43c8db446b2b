//! The real binary on a generated dataset: every CDR read is accounted for
//! (SPEC §2) and the counts equal what the generator planted.

use crate::util::*;

#[test]
fn generated_dataset_satisfies_the_accounting_identities() {
    let data = generate("tiny", 11, None);
    let out = tempfile::tempdir().unwrap();
    run_pipeline(data.path(), out.path(), &["-w", "2"]);
    let m = metrics(out.path());
    let (n_read, valid, dead) = (
        int(&m, "cdrs_read"),
        int(&m, "cdrs_valid"),
        int(&m, "cdrs_dead_lettered"),
    );
    let (unique, dup, late) = (
        int(&m, "cdrs_unique"),
        int(&m, "cdrs_duplicate"),
        int(&m, "cdrs_late"),
    );
    assert_eq!(n_read, valid + dead, "read = valid + dead_lettered: {m}");
    assert_eq!(valid, unique + dup, "valid = unique + duplicates: {m}");
    // The tiny preset writes 2000 lines and plants duplicates, late and malformed ones.
    assert_eq!(n_read, 2000);
    assert!(
        dup > 0 && late > 0 && dead > late,
        "planted bad input shows up: {m}"
    );
    // Dead letters: one line per dead-lettered CDR, with a reason counted in metrics.
    let dead_lines = read_lines(out.path().join("dead_letter.jsonl"));
    let cdr_dead: Vec<serde_json::Value> = dead_lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|d: &serde_json::Value| d["source"] == "cdrs.jsonl")
        .collect();
    assert_eq!(cdr_dead.len() as i64, dead);
    let reasons = m["dead_letter_reasons"].as_object().unwrap();
    assert_eq!(
        reasons.values().map(|v| v.as_i64().unwrap()).sum::<i64>(),
        dead
    );
    // Sorted by line, and every line number points at the raw text it carries.
    let raw_file = read(data.path().join("cdrs.jsonl"));
    let file_lines: Vec<&str> = raw_file.lines().collect();
    let mut last = 0;
    for d in &cdr_dead {
        let line = d["line"].as_u64().unwrap();
        assert!(line > last, "dead letters sorted by line");
        last = line;
        assert_eq!(
            file_lines[line as usize - 1],
            d["raw"].as_str().unwrap(),
            "line {line} raw text"
        );
    }
    // Cache accounting: every request is a call or a hit; promotions fired.
    assert_eq!(
        int(&m, "router_requests"),
        int(&m, "router_calls") + int(&m, "cache_hits")
    );
    assert!(int(&m, "promotions") > 0, "{m}");
    assert_eq!(
        int(&m, "promotions") as usize,
        read_lines(out.path().join("promotions.csv")).len() - 1
    );
}

fn read_lines(path: std::path::PathBuf) -> Vec<String> {
    read(path).lines().map(String::from).collect()
}
