//! The Kafka upsert sink against librdkafka's in-process mock cluster (the
//! real protocol, no CreateTopics, brokers that can be taken down and up).
//! Every wait is bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cdrflow::kafka::{parse_headers, partition_for, Change, KafkaSettings, SinkError, UpsertSink};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

const LONG: Duration = Duration::from_secs(30);

/// One message read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub key: String,
    pub value: Option<String>,
    /// (cdrflow-time, cdrflow-seq), when present.
    pub at: Option<(u64, u64)>,
}

/// Deterministic script: `times` timestamps, each changing a pseudo-random
/// subset of `keys` keys (an upsert or, for a key present, a tombstone), at
/// most one change per key per timestamp. Batches come in a scrambled order:
/// the sink must not care.
fn script(topic: &str, times: u64, keys: u64, seed: u64) -> Vec<Vec<Change>> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut live = vec![false; keys as usize];
    (0..times)
        .map(|t| {
            let time = 1_700_000_000 + 60 * t;
            let mut batch = Vec::new();
            for k in 0..keys {
                if next() % 3 != 0 {
                    continue;
                }
                let tomb = live[k as usize] && next() % 4 == 0;
                live[k as usize] = !tomb;
                batch.push(Change {
                    topic: topic.to_string(),
                    key: format!("customer-{k}|2026-11-{:02}", 1 + k % 28),
                    value: (!tomb).then(|| format!(r#"{{"k":{k},"t":{t},"v":{}}}"#, next() % 1000)),
                    time,
                });
            }
            batch.reverse();
            batch
        })
        .collect()
}

/// The table the script leaves: last value per key, tombstoned keys absent.
fn table(batches: &[Vec<Change>]) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    for c in batches.iter().flatten() {
        match &c.value {
            Some(v) => t.insert(c.key.clone(), v.clone()),
            None => t.remove(&c.key),
        };
    }
    t
}

pub fn compact(read: &[Read]) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    for r in read {
        match &r.value {
            Some(v) => t.insert(r.key.clone(), v.clone()),
            None => t.remove(&r.key),
        };
    }
    t
}

/// Every message of `topic`, by partition then offset.
pub fn read_all(settings: &KafkaSettings, topic: &str) -> Vec<Read> {
    let consumer: BaseConsumer = settings.consumer_config().create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), LONG).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut list = TopicPartitionList::new();
    let mut left = BTreeMap::new();
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, LONG).unwrap();
        assert_eq!(low, 0);
        if high > 0 {
            list.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
            left.insert(p, high);
        }
    }
    consumer.assign(&list).unwrap();
    let mut out: BTreeMap<i32, Vec<Read>> = BTreeMap::new();
    let deadline = Instant::now() + LONG;
    while !left.is_empty() {
        assert!(Instant::now() < deadline, "{topic}: still unread {left:?}");
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.unwrap();
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
        out.entry(m.partition()).or_default().push(Read {
            partition: m.partition(),
            key: text(m.key()).unwrap(),
            value: text(m.payload()),
            at: parse_headers(m.headers()).ok(),
        });
        if left.get(&m.partition()) == Some(&(m.offset() + 1)) {
            left.remove(&m.partition());
        }
    }
    out.into_values().flatten().collect()
}

/// Per partition, the `(time, seq)` headers run 0, 1, 2, … within each time,
/// times increase, and each appears once: nothing lost, duplicated or reordered.
pub fn assert_numbered(read: &[Read]) {
    let mut last: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
    for r in read {
        let (time, seq) = r.at.expect("exactly-once headers");
        match last.get(&r.partition) {
            Some(&(t, s)) if t == time => assert_eq!(seq, s + 1, "{r:?}"),
            Some(&(t, _)) => assert!(time > t && seq == 0, "{r:?}"),
            None => assert_eq!(seq, 0, "{r:?}"),
        }
        last.insert(r.partition, (time, seq));
    }
}

fn count(batches: &[Vec<Change>]) -> u64 {
    batches.iter().map(|b| b.len() as u64).sum()
}

#[test]
fn upserts_and_tombstones_compact_to_the_table() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("cdr.table", 3, 1).unwrap();
    let settings = KafkaSettings::new(cluster.bootstrap_servers());
    let batches = script("cdr.table", 12, 60, 7);
    let mut sink = UpsertSink::connect(&settings, LONG, true).unwrap();
    sink.ensure_topics(&["cdr.table"]).unwrap();
    assert_eq!(sink.partitions("cdr.table"), Some(3));
    for b in &batches {
        sink.produce(b).unwrap();
    }
    let done = sink.finish().unwrap();
    assert_eq!(done.messages, count(&batches));
    assert_eq!(done.by_topic["cdr.table"], count(&batches));

    let read = read_all(&settings, "cdr.table");
    assert_eq!(read.len() as u64, count(&batches));
    assert!(
        read.iter().any(|r| r.value.is_none()),
        "the script has tombstones"
    );
    assert_eq!(compact(&read), table(&batches));
    for r in &read {
        assert_eq!(r.partition, partition_for(r.key.as_bytes(), 3), "{r:?}");
    }
    assert_numbered(&read);
    // Order per key: the values a key took, in time order.
    let mut want: BTreeMap<&str, Vec<&Option<String>>> = BTreeMap::new();
    let mut sorted: Vec<&Change> = batches.iter().flatten().collect();
    sorted.sort_by_key(|c| c.time);
    for c in sorted {
        want.entry(&c.key).or_default().push(&c.value);
    }
    let mut got: BTreeMap<&str, Vec<&Option<String>>> = BTreeMap::new();
    for r in &read {
        got.entry(&r.key).or_default().push(&r.value);
    }
    assert_eq!(got, want);
}

#[test]
fn sink_partitions_like_librdkafkas_java_compatible_partitioner() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("by.librdkafka", 7, 1).unwrap();
    cluster.create_topic("by.sink", 7, 1).unwrap();
    let settings = KafkaSettings::new(cluster.bootstrap_servers());
    let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
    // librdkafka's murmur2_random (set by producer_config), no partition given.
    let producer: BaseProducer = settings.producer_config(LONG).create().unwrap();
    for k in &keys {
        producer
            .send(
                BaseRecord::<str, str>::to("by.librdkafka")
                    .key(k.as_str())
                    .payload("x"),
            )
            .unwrap();
    }
    producer.flush(LONG).unwrap();
    let mut sink = UpsertSink::connect(&settings, LONG, false).unwrap();
    let changes: Vec<Change> = keys
        .iter()
        .map(|k| Change {
            topic: "by.sink".into(),
            key: k.clone(),
            value: Some("x".into()),
            time: 1,
        })
        .collect();
    sink.produce(&changes).unwrap();
    sink.finish().unwrap();
    let placed = |topic| -> BTreeMap<String, i32> {
        read_all(&settings, topic)
            .into_iter()
            .map(|r| (r.key, r.partition))
            .collect()
    };
    let theirs = placed("by.librdkafka");
    assert_eq!(theirs.len(), keys.len());
    assert_eq!(placed("by.sink"), theirs);
    assert!(theirs
        .iter()
        .all(|(k, &p)| p == partition_for(k.as_bytes(), 7)));
}

#[test]
fn broker_down_and_back_within_the_timeout_loses_and_duplicates_nothing() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("cdr.outage", 3, 1).unwrap();
    let settings = KafkaSettings::new(cluster.bootstrap_servers());
    let batches = script("cdr.outage", 40, 200, 11);
    let (before, during) = batches.split_at(20);
    let mut sink = UpsertSink::connect(&settings, Duration::from_secs(60), true).unwrap();
    for b in before {
        sink.produce(b).unwrap();
    }
    assert_eq!(sink.flush().unwrap().messages, count(before));
    // Down between two produce calls (the mock's set_down is synchronous:
    // nothing is in flight), so the second half waits in librdkafka's queue.
    cluster.broker_down(-1).unwrap();
    for b in during {
        sink.produce(b).unwrap();
    }
    let outage = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < outage {
        let so_far = sink.poll(Duration::from_millis(100)).unwrap();
        assert_eq!(so_far.messages, count(before), "delivered while down");
    }
    cluster.broker_up(-1).unwrap();
    let done = sink.finish().unwrap();
    assert_eq!(done.messages, count(&batches));

    let read = read_all(&settings, "cdr.outage");
    assert_eq!(read.len() as u64, count(&batches), "exactly once");
    assert_numbered(&read);
    assert_eq!(compact(&read), table(&batches));
}

/// The broker goes away with produce requests in flight. A real broker
/// discards the idempotent producer's resent batches; librdkafka's mock
/// checks sequence numbers only for transactional producers
/// (`rd_kafka_mock_validate_records`), so here a resent batch can land twice.
/// What must hold anyway: nothing lost, and, first copies only, the order.
#[test]
fn broker_lost_with_requests_in_flight_loses_nothing_and_keeps_order() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("cdr.inflight", 3, 1).unwrap();
    let settings = KafkaSettings::new(cluster.bootstrap_servers());
    let batches = script("cdr.inflight", 40, 200, 13);
    // Small produce requests, so the first half takes many round trips.
    let small = settings.clone().with_option("batch.num.messages", "5");
    let mut sink = UpsertSink::connect(&small, Duration::from_secs(60), true).unwrap();
    for b in &batches[..20] {
        sink.produce(b).unwrap();
    }
    let deadline = Instant::now() + LONG;
    while sink.delivered().messages == 0 {
        assert!(Instant::now() < deadline, "nothing acknowledged");
        sink.poll(Duration::from_millis(1)).unwrap();
    }
    cluster.broker_down(-1).unwrap();
    for b in &batches[20..] {
        sink.produce(b).unwrap();
    }
    sink.poll(Duration::from_millis(500)).unwrap();
    cluster.broker_up(-1).unwrap();
    assert_eq!(sink.finish().unwrap().messages, count(&batches));

    let read = read_all(&settings, "cdr.inflight");
    let mut first: Vec<Read> = Vec::new();
    let mut seen: BTreeMap<(i32, (u64, u64)), &Read> = BTreeMap::new();
    for r in &read {
        match seen.get(&(r.partition, r.at.unwrap())) {
            Some(earlier) => assert_eq!(*earlier, r, "a duplicate is an exact copy"),
            None => {
                seen.insert((r.partition, r.at.unwrap()), r);
                first.push(r.clone());
            }
        }
    }
    assert_eq!(first.len() as u64, count(&batches), "nothing lost");
    assert_numbered(&first);
}

#[test]
fn broker_that_never_returns_is_reported_undelivered() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("cdr.promotions", 3, 1).unwrap();
    let settings = KafkaSettings::new(cluster.bootstrap_servers());
    let timeout = Duration::from_secs(3);
    let mut sink = UpsertSink::connect(&settings, timeout, false).unwrap();
    sink.ensure_topics(&["cdr.promotions"]).unwrap();
    cluster.broker_down(-1).unwrap();
    let batches = script("cdr.promotions", 3, 30, 3);
    for b in &batches {
        sink.produce(b).unwrap();
    }
    let started = Instant::now();
    let err = sink.finish().unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(9), "took {took:?}");
    match &err {
        SinkError::Undelivered { topic, count, .. } => {
            assert_eq!(topic, "cdr.promotions");
            assert_eq!(*count, self::count(&batches));
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "kafka sink: {} messages to topic cdr.promotions undelivered after 3 s (broker unreachable?)",
            count(&batches)
        )),
        "{text}"
    );
}

#[test]
fn a_full_queue_is_waited_out_not_dropped() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("cdr.small-queue", 2, 1).unwrap();
    let settings = KafkaSettings::new(cluster.bootstrap_servers())
        .with_option("queue.buffering.max.messages", "5");
    let changes: Vec<Change> = (0..400)
        .map(|i| Change {
            topic: "cdr.small-queue".into(),
            key: format!("k{i}"),
            value: Some(i.to_string()),
            time: 9,
        })
        .collect();
    let mut sink = UpsertSink::connect(&settings, LONG, false).unwrap();
    sink.produce(&changes).unwrap();
    assert_eq!(sink.finish().unwrap().messages, 400);
    assert_eq!(read_all(&settings, "cdr.small-queue").len(), 400);
}

#[test]
fn exactly_once_restart_writes_what_one_uninterrupted_run_writes() {
    let cluster = MockCluster::new(1).unwrap();
    let settings = KafkaSettings::new(cluster.bootstrap_servers());
    // "eo.once" is not created beforehand: the mock never answers
    // CreateTopics, so ensure_topics falls back to auto-creation (4
    // partitions on the mock). "eo.restart" is made like that one directly.
    cluster.create_topic("eo.restart", 4, 1).unwrap();
    let once = script("eo.once", 30, 80, 5);
    let again = script("eo.restart", 30, 80, 5);
    let mut sink = UpsertSink::connect(&settings, LONG, true).unwrap();
    sink.ensure_topics(&["eo.once"]).unwrap();
    assert_eq!(sink.partitions("eo.once"), Some(4));
    for b in &once {
        sink.produce(b).unwrap();
    }
    sink.finish().unwrap();

    // The killed run: 12 timestamps flushed, 6 more handed over, killed once
    // some of those are acknowledged (small batches, so the rest is still
    // queued; librdkafka purges it on drop): a prefix of each partition.
    let small = settings.clone().with_option("batch.num.messages", "3");
    let mut killed = UpsertSink::connect(&small, LONG, true).unwrap();
    for b in &again[..12] {
        killed.produce(b).unwrap();
    }
    let flushed = killed.flush().unwrap().messages;
    for b in &again[12..18] {
        killed.produce(b).unwrap();
    }
    let deadline = Instant::now() + LONG;
    while killed.delivered().messages == flushed {
        assert!(Instant::now() < deadline, "nothing acknowledged");
        killed.poll(Duration::from_millis(1)).unwrap();
    }
    drop(killed);
    let written = read_all(&settings, "eo.restart").len() as u64;
    assert!(written > flushed && written < count(&again), "{written}");

    // The restart re-produces everything; only what is missing is written.
    let mut restarted = UpsertSink::connect(&settings, LONG, true).unwrap();
    restarted.ensure_topics(&["eo.restart"]).unwrap();
    assert!(!restarted.resumed_from().is_empty());
    for b in &again {
        restarted.produce(b).unwrap();
    }
    let done = restarted.finish().unwrap();
    assert_eq!(done.suppressed, written);
    assert_eq!(done.messages + done.suppressed, count(&again));

    let one = read_all(&settings, "eo.once");
    let two = read_all(&settings, "eo.restart");
    assert_eq!(
        two, one,
        "same messages, same order per partition, same headers"
    );
    assert_numbered(&two);
    let reader = UpsertSink::connect(&settings, LONG, false).unwrap();
    let ends = |topic| -> Vec<(i32, (u64, u64))> {
        reader
            .resume_point(&[topic])
            .unwrap()
            .into_iter()
            .map(|((_, p), at)| (p, at))
            .collect()
    };
    assert_eq!(ends("eo.restart"), ends("eo.once"));
    assert!(reader.resume_point(&["absent"]).unwrap().is_empty());
}

#[test]
fn exactly_once_refuses_a_topic_written_without_its_headers() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("plain", 1, 1).unwrap();
    let settings = KafkaSettings::new(cluster.bootstrap_servers());
    let mut plain = UpsertSink::connect(&settings, LONG, false).unwrap();
    plain.produce(&script("plain", 2, 10, 1)[0]).unwrap();
    plain.finish().unwrap();
    let mut sink = UpsertSink::connect(&settings, LONG, true).unwrap();
    let err = sink.ensure_topics(&["plain"]).unwrap_err();
    assert!(
        matches!(err, SinkError::Resume { partition: 0, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("not written by an exactly-once cdrflow sink"),
        "{err}"
    );
}
