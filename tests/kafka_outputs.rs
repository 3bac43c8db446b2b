//! `run --sink-topic-prefix P`: every output as an upsert topic on
//! librdkafka's mock cluster. Each topic compacted by key equals its file.

use std::collections::BTreeMap;
use std::path::Path;

use rdkafka::mocking::MockCluster;
use serde_json::Value;

use cdrflow::kafka::KafkaSettings;
use cdrflow::sink::kafka::TOPICS;

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

/// Messages on every partition of `topic` so far (0 when it does not exist).
fn count(settings: &KafkaSettings, topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = settings.consumer_config().create().unwrap();
    let wait = std::time::Duration::from_secs(10);
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), wait) else {
        return 0;
    };
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions
        .into_iter()
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, wait)
                .map_or(0, |(_, h)| h)
        })
        .sum()
}

/// Polls `cond` (every 50 ms) until it holds, for at most 90 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 90 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn spawn_run(data: &Path, out: &Path, extra: &[&str]) -> std::process::Child {
    crate::util::bin()
        .args(["run", "-q", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Exactly once across a crash: a run killed with SIGKILL part-way and
/// restarted with the same input and flags leaves every topic holding
/// exactly the messages, in the same order per partition with the same
/// headers, that one uninterrupted run writes.
#[test]
fn a_killed_and_restarted_run_writes_what_one_run_writes() {
    let data = generate("tiny", 37, Some(6000));
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let settings = KafkaSettings::new(brokers.clone());
    let flags = |prefix: &'static str| {
        vec![
            "--kafka-brokers".to_string(),
            brokers.clone(),
            "--sink-topic-prefix".into(),
            prefix.into(),
            "--sink-exactly-once".into(),
            "--block-size".into(),
            "16384".into(),
        ]
    };
    let one = tempfile::tempdir().unwrap();
    let args: Vec<String> = flags("one");
    run_pipeline(
        data.path(),
        one.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // The killed and restarted run uses two workers: the messages do not
    // depend on the worker count.
    let mut args: Vec<String> = flags("two");
    args.extend(["-w".to_string(), "2".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let two = tempfile::tempdir().unwrap();
    let mut child = spawn_run(data.path(), two.path(), &args);
    wait_for("the first rules on two.rules", || {
        count(&settings, "two.rules") > 0
    });
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!finished_early, "the run ended before it could be killed");
    let partial: i64 = TOPICS
        .iter()
        .map(|t| count(&settings, &format!("two.{t}")))
        .sum();
    let whole: i64 = TOPICS
        .iter()
        .map(|t| count(&settings, &format!("one.{t}")))
        .sum();
    assert!(
        partial < whole,
        "killed part-way: {partial} of {whole} messages"
    );

    run_pipeline(data.path(), two.path(), &args);
    for t in TOPICS {
        let a = read_all(&settings, &format!("one.{t}"));
        let b = read_all(&settings, &format!("two.{t}"));
        assert_eq!(a.len(), b.len(), "{t}: message counts");
        assert!(a == b, "{t}: the restarted run's messages differ");
    }
}

/// A `--follow` run with Kafka sinks `PREFIX.*` over the first half of a
/// generated dataset's CDRs, started and past its first metrics message,
/// with the broker then taken down and the second half appended.
struct LiveRunDuringOutage {
    _data: tempfile::TempDir,
    out: tempfile::TempDir,
    cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    settings: KafkaSettings,
    child: std::process::Child,
    /// Non-blank CDR lines in all.
    total: i64,
}

impl LiveRunDuringOutage {
    fn start(seed: u64, cdrs: u64, prefix: &str, sink_flags: &[&str]) -> Self {
        let fixture = generate("tiny", seed, Some(cdrs));
        let data = crate::follow::copy_dataset(fixture.path());
        let text = read(fixture.path().join("cdrs.jsonl"));
        let lines: Vec<&str> = text.lines().collect();
        let (first, rest) = lines.split_at(lines.len() / 2);
        std::fs::write(data.path().join("cdrs.jsonl"), first.join("\n") + "\n").unwrap();
        let cluster = MockCluster::new(1).expect("mock cluster");
        let brokers = cluster.bootstrap_servers();
        let settings = KafkaSettings::new(brokers.clone());
        let out = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--follow",
            "--flush-interval",
            "0s",
            "--kafka-brokers",
            &brokers,
            "--sink-topic-prefix",
            prefix,
        ];
        args.extend_from_slice(sink_flags);
        let child = spawn_run(data.path(), out.path(), &args);
        wait_for("the first metrics", || {
            count(&settings, &format!("{prefix}.metrics")) > 0
        });
        cluster.broker_down(1).unwrap();
        crate::follow::append(&data.path().join("cdrs.jsonl"), &(rest.join("\n") + "\n"));
        LiveRunDuringOutage {
            _data: data,
            out,
            cluster,
            settings,
            child,
            total: lines.iter().filter(|l| !l.trim().is_empty()).count() as i64,
        }
    }
}

/// A broker that goes away mid-run and comes back within `--sink-timeout`
/// is waited out: every topic still compacts to its file and no change is
/// delivered twice (each (time, seq) header once per partition, in order).
#[test]
fn a_broker_outage_within_the_timeout_loses_and_duplicates_nothing() {
    let run = LiveRunDuringOutage::start(
        41,
        4000,
        "c",
        &["--sink-exactly-once", "--sink-timeout", "60s"],
    );
    // The outage lasts two seconds (the scenario, not a synchronisation).
    std::thread::sleep(std::time::Duration::from_secs(2));
    run.cluster.broker_up(1).unwrap();
    let (out, settings, total) = (run.out.path(), &run.settings, run.total);
    wait_for("every CDR in metrics.json", || {
        std::fs::read_to_string(out.join("metrics.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|m| m["cdrs_read"].as_i64() == Some(total))
    });
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &run.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let LiveRunDuringOutage { child, out, .. } = run;
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let want = csv_rows(&out.path().join("promotions.csv"), |v| {
        format!("{}|{}", field(v, "customer_id"), field(v, "date"))
    });
    assert_same("promotions", &topic_rows(settings, "c.promotions"), &want);
    for t in TOPICS {
        assert_numbered(&read_all(settings, &format!("c.{t}")));
    }
}

/// A broker that never comes back: past `--sink-timeout` the run exits
/// non-zero naming a topic and the undelivered count.
#[test]
fn a_broker_that_never_returns_fails_the_run_with_the_count() {
    let mut run = LiveRunDuringOutage::start(43, 2000, "d", &["--sink-timeout", "3s"]);
    wait_for("the run to give up", || {
        run.child.try_wait().unwrap().is_some()
    });
    let output = run.child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("undelivered after 3 s") && err.contains("to topic d."),
        "{err}"
    );
}
