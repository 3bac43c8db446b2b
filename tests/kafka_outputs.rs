//! `run --sink-topic-prefix P`: every output as an upsert topic on
//! librdkafka's mock cluster. Each topic compacted by key equals its file.

use std::collections::BTreeMap;
use std::path::Path;

use rdkafka::mocking::MockCluster;
use serde_json::Value;

use cdrflow::kafka::KafkaSettings;

use crate::kafka::{assert_numbered, compact, read_all};
use crate::util::{generate, read, run_pipeline};

/// A CSV file as JSON objects of its columns (strings), keyed by `key`.
fn csv_rows(path: &Path, key: impl Fn(&Value) -> String) -> BTreeMap<String, Value> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let obj: serde_json::Map<String, Value> = headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
                .collect();
            let v = Value::Object(obj);
            (key(&v), v)
        })
        .collect()
}

fn topic_rows(settings: &KafkaSettings, topic: &str) -> BTreeMap<String, Value> {
    let read = read_all(settings, topic);
    compact(&read)
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_str(&v).unwrap()))
        .collect()
}

/// Asserts two keyed tables are equal, naming the first few differences.
fn assert_same(what: &str, got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>) {
    let mut diffs = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => diffs.push(format!("missing {k}: {v}")),
            Some(g) if g != v => diffs.push(format!("{k}: topic {g} vs file {v}")),
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("extra {k}: {}", got[k]));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences ({} in topic, {} in file), first: {:#?}",
        diffs.len(),
        got.len(),
        want.len(),
        &diffs[..diffs.len().min(5)]
    );
}

fn field(v: &Value, name: &str) -> String {
    v[name].as_str().unwrap().to_string()
}

#[test]
fn every_topic_compacts_to_its_file() {
    let data = generate("tiny", 31, Some(3000));
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let out = tempfile::tempdir().unwrap();
    run_pipeline(
        data.path(),
        out.path(),
        &[
            "--kafka-brokers",
            &brokers,
            "--sink-topic-prefix",
            "cdr",
            "--sink-exactly-once",
            "-w",
            "2",
        ],
    );
    let settings = KafkaSettings::new(brokers);
    let out = out.path();

    let want = csv_rows(&out.join("promotions.csv"), |v| {
        format!("{}|{}", field(v, "customer_id"), field(v, "date"))
    });
    assert!(!want.is_empty(), "the dataset has promotions");
    assert_same(
        "promotions",
        &topic_rows(&settings, "cdr.promotions"),
        &want,
    );

    let want = csv_rows(&out.join("rules.csv"), |v| {
        format!(
            "{}|{}|{}",
            field(v, "context"),
            field(v, "antecedent"),
            field(v, "consequent")
        )
    });
    assert!(!want.is_empty(), "the dataset has rules");
    assert_same("rules", &topic_rows(&settings, "cdr.rules"), &want);

    let want = csv_rows(&out.join("recommendations.csv"), |v| {
        format!("{}|{}", field(v, "customer_id"), field(v, "context"))
    });
    assert_same(
        "recommendations",
        &topic_rows(&settings, "cdr.recommendations"),
        &want,
    );

    let want: BTreeMap<String, Value> = read(out.join("dead_letter.jsonl"))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (format!("{}|{}", field(&v, "source"), v["line"]), v)
        })
        .collect();
    assert!(!want.is_empty(), "the dataset has dead letters");
    assert_same(
        "dead letters",
        &topic_rows(&settings, "cdr.dead_letter"),
        &want,
    );

    let metrics: Value = serde_json::from_str(&read(out.join("metrics.json"))).unwrap();
    assert_eq!(
        topic_rows(&settings, "cdr.metrics"),
        BTreeMap::from([("metrics".to_string(), metrics)])
    );

    // Segments: the latest snapshot, subscriber by subscriber.
    let latest = std::fs::read_dir(out.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let features = csv_rows(&latest.join("features.csv"), |v| {
        field(v, "subscriber_token")
    });
    let mut segments: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, v) in csv_rows(&latest.join("segments.csv"), |v| {
        format!("{}|{}", field(v, "subscriber_token"), field(v, "segment"))
    }) {
        segments
            .entry(field(&v, "subscriber_token"))
            .or_default()
            .push(field(&v, "segment"));
    }
    let topic = topic_rows(&settings, "cdr.segments");
    assert_eq!(
        topic.keys().collect::<Vec<_>>(),
        features.keys().collect::<Vec<_>>()
    );
    let date = latest
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("date=");
    let midnight = cdrflow::dataflows::time::parse_date(date).unwrap();
    let as_of = cdrflow::dataflows::time::format_rfc3339(midnight + 86_400);
    for (token, f) in &features {
        let v = &topic[token];
        assert_eq!(v["subscriber_token"], Value::String(token.clone()));
        assert_eq!(v["as_of"], Value::String(as_of.clone()), "{token}");
        let want: Vec<Value> = segments
            .get(token)
            .into_iter()
            .flatten()
            .map(|s| Value::String(s.clone()))
            .collect();
        assert_eq!(v["segments"], Value::Array(want), "{token}");
        for (name, text) in f.as_object().unwrap() {
            if name == "subscriber_token" {
                continue;
            }
            let got = &v["features"][name];
            let text = text.as_str().unwrap();
            let same = match got {
                Value::Null => text.is_empty(),
                // serde_json parses floats to within an ulp (no
                // float_roundtrip feature here): compare as numbers.
                Value::Number(n) => match (text.parse::<f64>(), n.as_f64()) {
                    (Ok(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                    _ => false,
                },
                _ => false,
            };
            assert!(same, "{token} {name}: topic {got} vs file {text:?}");
        }
    }

    // Exactly once: every message carries its (time, seq), numbered per partition.
    for t in [
        "promotions",
        "rules",
        "recommendations",
        "segments",
        "dead_letter",
        "metrics",
    ] {
        assert_numbered(&read_all(&settings, &format!("cdr.{t}")));
    }
}
