//! `run --kafka-brokers … --cdr-topic T` against librdkafka's in-process mock
//! cluster (the real protocol on a loopback port, reached by the child
//! process): one partition gives the file run's outputs, several partitions
//! keep the SPEC §2 identities and give the same bytes for any `-w`, and a
//! bad message is dead-lettered with its partition and offset.

use std::path::Path;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::Value;

use crate::util::{assert_same_tree, generate, int, metrics, read, run_pipeline};

/// A mock cluster with `topic` holding `messages` as `(partition, payload)`,
/// produced in order (so offsets count per partition from 0).
fn cluster_with(
    topic: &str,
    partitions: i32,
    messages: &[(i32, &str)],
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(topic, partitions, 1).expect("topic");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for (p, payload) in messages {
        let mut record = BaseRecord::<(), str>::to(topic)
            .partition(*p)
            .payload(*payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
    cluster
}

/// The non-blank lines of a dataset's `cdrs.jsonl`, with their line numbers.
fn lines(data: &Path) -> Vec<(u64, String)> {
    read(data.join("cdrs.jsonl"))
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i as u64 + 1, l.to_string()))
        .collect()
}

fn kafka_run(data: &Path, out: &Path, brokers: &str, topic: &str, extra: &[&str]) {
    let mut args = vec!["--kafka-brokers", brokers, "--cdr-topic", topic];
    args.extend_from_slice(extra);
    run_pipeline(data, out, &args);
}

/// Every output but the dead letters, which name their source differently.
fn assert_same_outputs(file: &Path, kafka: &Path) {
    for f in [
        "promotions.csv",
        "promotions.changes.jsonl",
        "rules.csv",
        "recommendations.csv",
        "metrics.json",
    ] {
        assert_eq!(read(file.join(f)), read(kafka.join(f)), "{f}");
    }
    assert_same_tree(&file.join("segments"), &kafka.join("segments"), "segments");
}

fn dead_letters(out: &Path) -> Vec<Value> {
    read(out.join("dead_letter.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn one_partition_gives_the_file_run() {
    let generated = generate("tiny", 21, Some(3000));
    for data in [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/messy_cdrs"),
        generated.path().to_path_buf(),
    ] {
        let lines = lines(&data);
        let messages: Vec<(i32, &str)> = lines.iter().map(|(_, l)| (0, l.as_str())).collect();
        let cluster = cluster_with("cdrs", 1, &messages);
        let file = tempfile::tempdir().unwrap();
        let kafka = tempfile::tempdir().unwrap();
        run_pipeline(&data, file.path(), &[]);
        kafka_run(
            &data,
            kafka.path(),
            &cluster.bootstrap_servers(),
            "cdrs",
            &["-w", "2"],
        );
        assert_same_outputs(file.path(), kafka.path());
        // The same dead letters, as partition 0 and offset instead of line.
        let offset_of = |line: u64| lines.iter().position(|(n, _)| *n == line).unwrap() as u64;
        let mut want: Vec<Value> = dead_letters(file.path())
            .into_iter()
            .filter(|d| d["source"] == "cdrs.jsonl")
            .map(|mut d| {
                let line = d["line"].as_u64().unwrap();
                let o = d.as_object_mut().unwrap();
                o.remove("line");
                o.insert("source".into(), "kafka:cdrs/0".into());
                o.insert("offset".into(), offset_of(line).into());
                d
            })
            .collect();
        let mut got: Vec<Value> = dead_letters(kafka.path())
            .into_iter()
            .filter(|d| d["source"] != "cdrs.jsonl")
            .collect();
        let key = |d: &Value| d["offset"].as_u64();
        want.sort_by_key(key);
        got.retain(|d| {
            d["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("kafka:"))
        });
        assert!(!want.is_empty(), "the dataset plants bad CDR lines");
        assert_eq!(got, want, "{}", data.display());
    }
}

#[test]
fn three_partitions_keep_the_identities_for_any_worker_count() {
    let data = generate("tiny", 23, Some(3000));
    let lines = lines(data.path());
    let mut messages: Vec<(i32, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, (_, l))| ((i % 3) as i32, l.as_str()))
        .collect();
    // A malformed message at a known place: partition 1, offset 5.
    let bad = r#"{"record_id":"x","msisdn":"+4915100000000","#;
    let fifth_of_p1 = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.0 == 1)
        .nth(5)
        .unwrap()
        .0;
    messages.insert(fifth_of_p1, (1, bad));
    let cluster = cluster_with("cdrs3", 3, &messages);
    let brokers = cluster.bootstrap_servers();
    let outs: Vec<tempfile::TempDir> = ["1", "2", "3"]
        .iter()
        .map(|w| {
            let out = tempfile::tempdir().unwrap();
            kafka_run(data.path(), out.path(), &brokers, "cdrs3", &["-w", w]);
            out
        })
        .collect();
    for other in &outs[1..] {
        assert_same_tree(outs[0].path(), other.path(), "-w 1 vs more workers");
    }
    let m = metrics(outs[0].path());
    assert_eq!(int(&m, "cdrs_read"), messages.len() as i64);
    assert_eq!(
        int(&m, "cdrs_read"),
        int(&m, "cdrs_valid") + int(&m, "cdrs_dead_lettered")
    );
    assert_eq!(
        int(&m, "cdrs_valid"),
        int(&m, "cdrs_unique") + int(&m, "cdrs_duplicate")
    );
    let dead = dead_letters(outs[0].path());
    let cdr_dead = dead
        .iter()
        .filter(|d| {
            d["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("kafka:cdrs3/"))
        })
        .count();
    assert_eq!(cdr_dead as i64, int(&m, "cdrs_dead_lettered"));
    assert!(
        dead.contains(&serde_json::json!({
            "source": "kafka:cdrs3/1", "offset": 5, "reason": "malformed_json", "raw": bad
        })),
        "{dead:?}"
    );
}

#[test]
fn a_missing_topic_is_named() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/messy_cdrs");
    let out = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--kafka-brokers",
        &cluster.bootstrap_servers(),
        "--cdr-topic",
        "no-such-topic",
        "--kafka-option",
        "allow.auto.create.topics=false",
    ];
    let o = crate::util::run(&args, false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-topic"), "{err}");
}

/// Lateness is decided per partition (SPEC §2: "within one input … a Kafka
/// partition"): a CDR far behind another partition's latest is not late; one
/// behind its own partition's watermark is.
#[test]
fn lateness_is_per_partition() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/messy_cdrs");
    let t = 1_772_452_800;
    let cdr = |id: &str, start: i64| {
        format!(
            r#"{{"record_id":"{id}","msisdn":"+4915500000001","type":"sms","start":{start},"cell_id":"T1"}}"#
        )
    };
    let lines = [
        (0, cdr("a", t)),
        (0, cdr("b", t + 10_000)),
        (1, cdr("c", t + 100)),
        (1, cdr("d", t - 5_000)),
    ];
    let messages: Vec<(i32, &str)> = lines.iter().map(|(p, l)| (*p, l.as_str())).collect();
    let cluster = cluster_with("late", 2, &messages);
    for w in ["1", "2"] {
        let out = tempfile::tempdir().unwrap();
        kafka_run(
            &data,
            out.path(),
            &cluster.bootstrap_servers(),
            "late",
            &["-w", w],
        );
        let m = metrics(out.path());
        assert_eq!(
            (int(&m, "cdrs_read"), int(&m, "cdrs_late")),
            (4, 1),
            "-w {w}"
        );
        let late: Vec<Value> = dead_letters(out.path())
            .into_iter()
            .filter(|d| d["reason"] == "late")
            .collect();
        assert_eq!(late.len(), 1);
        assert_eq!(
            (&late[0]["source"], &late[0]["offset"]),
            (&"kafka:late/1".into(), &1.into())
        );
    }
}

/// `--follow` on a topic: messages produced while the run goes on reach the
/// outputs; SIGTERM ends it with exit 0 and the outputs of the file run.
#[test]
fn following_a_topic_reads_new_messages() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/loyalty_changes");
    let lines = lines(&data);
    let (day0, later) = lines.split_at(8);
    let messages: Vec<(i32, &str)> = day0.iter().map(|(_, l)| (0, l.as_str())).collect();
    let cluster = cluster_with("live", 1, &messages);
    let brokers = cluster.bootstrap_servers();
    let out = tempfile::tempdir().unwrap();
    let mut child = crate::util::bin()
        .args(["run", "-q", "--follow", "--flush-interval", "0s", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(out.path())
        .args(["--kafka-brokers", &brokers, "--cdr-topic", "live"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let promotions = out.path().join("promotions.csv");
    let wait = |child: &mut std::process::Child, what: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while !cond() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{what}: the run exited"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: not within 90 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait(&mut child, "day 0 promotions", &|| {
        std::fs::read_to_string(&promotions).is_ok_and(|t| t.contains("2026-03-02,C1,"))
    });
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    for (_, l) in later {
        producer
            .send(
                BaseRecord::<(), str>::to("live")
                    .partition(0)
                    .payload(l.as_str()),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let file = tempfile::tempdir().unwrap();
    run_pipeline(&data, file.path(), &[]);
    let want = read(file.path().join("promotions.csv"));
    wait(&mut child, "the file run's promotions", &|| {
        std::fs::read_to_string(&promotions).is_ok_and(|t| t == want)
    });
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_same_outputs(file.path(), out.path());
}
