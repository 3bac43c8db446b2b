//! View retention (SPEC §3): a promotion more than `--view-retention` behind the
//! watermark is final, and the daily cap still holds: a later change that
//! removes the final promotion's store must not let a second CDR of the same
//! (customer, date) through.

use crate::util::*;

#[test]
fn a_final_promotion_keeps_its_day_when_its_store_moves_away() {
    // The store_changes fixture's towers, stores, roads and customers, with a
    // scenario of our own: C1 calls at 08:00 from T3 (only store in range: S5)
    // and at 12:00 from T4 (S6). S5 moves out of range at 10:30. With 1 h of
    // retention the 08:00 promotion is final by then (watermark 11:00 once the
    // 12:00 CDR is read), so it stays, and the 12:00 CDR must not become a
    // second promotion for the day.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/store_changes");
    let data = tempfile::tempdir().unwrap();
    for f in [
        "towers.csv",
        "stores.csv",
        "loyalty.csv",
        "products.csv",
        "purchases.csv",
        "weather.csv",
        "subscribers.csv",
    ] {
        std::fs::copy(fixture.join(f), data.path().join(f)).unwrap();
    }
    std::fs::create_dir(data.path().join("roads")).unwrap();
    for f in ["nodes.csv", "edges.csv"] {
        std::fs::copy(
            fixture.join("roads").join(f),
            data.path().join("roads").join(f),
        )
        .unwrap();
    }
    let midnight = 1_772_409_600; // 2026-03-02T00:00:00Z
    let cdr = |id: &str, start: i64, cell: &str| {
        format!(
            r#"{{"record_id":"{id}","msisdn":"+4915400000001","type":"voice","callee":"+4930123456","start":{start},"duration_s":30,"cell_id":"{cell}"}}"#
        )
    };
    let cdrs = [
        cdr("r-0800", midnight + 8 * 3600, "T3"),
        cdr("r-1200", midnight + 12 * 3600, "T4"),
    ]
    .join("\n");
    std::fs::write(data.path().join("cdrs.jsonl"), cdrs + "\n").unwrap();
    let moved = format!(
        r#"{{"at":{},"op":"upsert","store_id":"S5","name":"Leaving Store","lat":30.1,"lon":42.0,"region":"east"}}"#,
        midnight + 10 * 3600 + 1800
    );
    std::fs::write(data.path().join("stores_changes.jsonl"), moved + "\n").unwrap();

    // Without retention pressure the view is retroactive: the move removes the
    // 08:00 promotion and the 12:00 CDR is the day's promotion.
    let out = tempfile::tempdir().unwrap();
    run_pipeline(data.path(), out.path(), &["-w", "1"]);
    let rows: Vec<String> = read(out.path().join("promotions.csv"))
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains(",r-1200,"), "{rows:?}");

    // With 1 h retention the 08:00 promotion is final before the move applies.
    let out = tempfile::tempdir().unwrap();
    run_pipeline(
        data.path(),
        out.path(),
        &["-w", "1", "--view-retention", "1h"],
    );
    let rows: Vec<String> = read(out.path().join("promotions.csv"))
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "one promotion per (customer, date): {rows:?}"
    );
    assert!(rows[0].contains(",r-0800,"), "{rows:?}");
}
