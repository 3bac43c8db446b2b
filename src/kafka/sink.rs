//! The Kafka upsert sink (SPEC §6): one message per change, key = the row's
//! key, value = the row as JSON, a retraction = a tombstone (null value), so a
//! compacted topic holds the current table.
//!
//! ```text
//!  produce(&[Change])            one or more dataflow timestamps, in time order
//!    │ plan: partition = toPositive(murmur2(key)) % partitions   (as Java clients)
//!    │       order (time, topic, partition, key, value); seq per (time, partition)
//!    │       exactly once: skip (time, seq) ≤ the partition's resume point
//!    ▼
//!  librdkafka queue ──send──► broker      idempotent producer, acks=all,
//!    ▲  queue full: poll, retry  │        retries until `timeout` per message
//!    │                           ▼
//!  Tally ◄──── delivery report (ack | failure) per message
//!    │
//!  flush() / finish():  all acked ──► Ok(Delivered)
//!                       any failed ─► Err(Undelivered { topic, count })
//! ```
//!
//! Delivery contract:
//! - A message is acknowledged when every in-sync replica has it (`acks=all`).
//!   [`UpsertSink::flush`] and [`UpsertSink::finish`] return `Ok` only once
//!   every message produced so far is acknowledged; the caller reports output
//!   as written only after that.
//! - Nothing is dropped: when librdkafka's queue is full the sink serves
//!   delivery reports and retries, waiting for room.
//! - A broker that goes away and comes back within `timeout` is waited out:
//!   librdkafka retries, the idempotent producer lets the broker discard
//!   retried duplicates and keeps the order per partition, hence per key.
//! - A message still unacknowledged `timeout` after it was produced fails
//!   (librdkafka checks about once a second; the sink's own bound on a flush
//!   is `timeout` + min(`timeout`, 30 s) + 2 s). The sink then stops: it purges what it has not sent, waits for what is in
//!   flight, and returns [`SinkError::Undelivered`] naming a topic and its
//!   count; every later call returns that error again. If a later message of
//!   the same partition got through (the broker returned in that instant), the
//!   error says the partition has a hole, which a restart will not fill.
//! - Exactly once across restarts (`exactly_once`): each message carries the
//!   headers `cdrflow-time` and `cdrflow-seq`. The first time the sink meets a
//!   topic (in [`UpsertSink::ensure_topics`] or the first `produce` naming it),
//!   before producing to it, it reads the last message of each partition (see
//!   `resume`), and then suppresses every change whose `(time, seq)` is at or
//!   below that partition's. A restarted run that re-produces the same changes
//!   from the start writes exactly the messages the killed run did not.
//!   Unchecked assumptions: the same input yields the same changes at each
//!   timestamp (the dataflow is deterministic); a topic's partition count does
//!   not change between the runs; no one else writes to the topic.
//! - Without `exactly_once`, a restart writes everything again: at least once,
//!   which a compacted topic absorbs (the table is the same).
//! - Unchecked assumption: at most one change per key per timestamp (the
//!   caller consolidates). If there are more, a tombstone sorts before a
//!   value, so a retract-and-insert pair ends with the insert.

mod delivery;
mod plan;
mod resume;
mod topics;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, PurgeConfig};
use rdkafka::types::RDKafkaErrorCode;

use self::delivery::{Failure, Tally};
use self::plan::{Numbering, Planned};
use super::KafkaSettings;

pub use self::plan::{murmur2, partition_for};
pub use self::resume::{parse_headers, SEQ_HEADER, TIME_HEADER};

/// One change of an output: the row's key and its new value, `None` for a
/// retraction (a tombstone), at dataflow timestamp `time`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    pub topic: String,
    pub key: String,
    /// The row as JSON; `None` is a tombstone.
    pub value: Option<String>,
    pub time: u64,
}

/// (topic, partition) → the `(time, seq)` of the partition's last message.
pub type ResumePoint = BTreeMap<(String, i32), (u64, u64)>;

/// What the sink has done since it connected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Messages acknowledged by the broker.
    pub messages: u64,
    /// Changes not produced because a previous run had written them.
    pub suppressed: u64,
    /// Acknowledged messages per topic.
    pub by_topic: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("kafka sink: {what}: {source}")]
    Client {
        what: &'static str,
        source: KafkaError,
    },
    #[error(
        "kafka sink: {count} messages to topic {topic} undelivered after {} s ({hint}){}",
        .timeout.as_secs_f64(),
        hole_note(.hole)
    )]
    Undelivered {
        topic: String,
        count: u64,
        timeout: Duration,
        hint: String,
        /// A partition where a later message got through after one failed.
        hole: Option<i32>,
    },
    #[error(
        "kafka sink: topic {topic} has no partitions in metadata after {} s (is the broker reachable, and may topics be created?)",
        .waited.as_secs_f64()
    )]
    TopicUnavailable { topic: String, waited: Duration },
    #[error("kafka sink: the producer failed for good: {reason}")]
    Fatal { reason: String },
    #[error(
        "kafka sink: changes at time {time} after changes at time {last}: produce in time order"
    )]
    TimeWentBackwards { time: u64, last: u64 },
    #[error("kafka sink: cannot tell where topic {topic} partition {partition} ends: {reason}")]
    Resume {
        topic: String,
        partition: i32,
        reason: String,
    },
}

// The run will hand the sink to a worker thread.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<UpsertSink>();
};

fn hole_note(hole: &Option<i32>) -> String {
    hole.map_or(String::new(), |p| {
        format!("; partition {p} has a hole: later messages were delivered after one failed")
    })
}

/// How long `poll` blocks while the sink waits for acknowledgements.
const POLL: Duration = Duration::from_millis(10);

/// The upsert sink. See the module doc for its delivery contract.
pub struct UpsertSink {
    settings: KafkaSettings,
    timeout: Duration,
    exactly_once: bool,
    producer: BaseProducer<Tally>,
    /// Topic → partition count, for every topic met so far.
    partitions: BTreeMap<String, i32>,
    /// Topic → next enqueue index per partition (the delivery reports' opaque).
    enqueued: BTreeMap<String, Vec<usize>>,
    resume: ResumePoint,
    numbering: Numbering,
    suppressed: u64,
    failure: Option<Failure>,
}

impl UpsertSink {
    /// Creates the producer (librdkafka connects in the background). With
    /// `exactly_once`, each topic's resume point is read when the sink first
    /// meets the topic, before anything is produced to it.
    pub fn connect(
        settings: &KafkaSettings,
        timeout: Duration,
        exactly_once: bool,
    ) -> Result<Self, SinkError> {
        let producer = settings
            .producer_config(timeout)
            .create_with_context(Tally::default())
            .map_err(|source| SinkError::Client {
                what: "creating the producer",
                source,
            })?;
        Ok(UpsertSink {
            settings: settings.clone(),
            timeout,
            exactly_once,
            producer,
            partitions: BTreeMap::new(),
            enqueued: BTreeMap::new(),
            resume: ResumePoint::new(),
            numbering: Numbering::default(),
            suppressed: 0,
            failure: None,
        })
    }

    /// Makes sure each topic exists and learns its partition count (and, with
    /// exactly once, its resume point). Missing topics are created with
    /// `cleanup.policy=compact` when the broker allows it; otherwise (no
    /// CreateTopics, already there, refused) the broker's auto-creation makes
    /// them. Waits at most 5 s for CreateTopics (librdkafka's mock cluster
    /// never answers it), then at most the sink timeout per topic for each to
    /// appear in metadata.
    pub fn ensure_topics(&mut self, topics: &[&str]) -> Result<(), SinkError> {
        let new: Vec<&str> = topics
            .iter()
            .copied()
            .filter(|t| !self.partitions.contains_key(*t))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        // Best effort: every outcome falls back to auto-creation below.
        let _ = topics::create_compacted(&self.settings, &new, self.timeout);
        for topic in new {
            let count = topics::partition_count(&self.producer, topic, self.timeout)?;
            if self.exactly_once {
                let last =
                    resume::read_last(&self.settings, &[(topic, Some(count))], self.timeout)?;
                self.resume.extend(last);
            }
            self.partitions.insert(topic.to_string(), count);
            self.enqueued
                .insert(topic.to_string(), vec![0; count as usize]);
        }
        Ok(())
    }

    /// The partition count of a topic the sink has met.
    pub fn partitions(&self, topic: &str) -> Option<i32> {
        self.partitions.get(topic).copied()
    }

    /// The resume points in force (empty without exactly once).
    pub fn resumed_from(&self) -> &ResumePoint {
        &self.resume
    }

    /// Reads, now, the `(time, seq)` of the last message of every partition
    /// of `topics` (empty partitions and topics the cluster lacks have no
    /// entry; nothing is created), waiting at most the sink timeout. An error
    /// if such a message lacks the exactly-once headers.
    pub fn resume_point(&self, topics: &[&str]) -> Result<ResumePoint, SinkError> {
        let counted: Vec<(&str, Option<i32>)> =
            topics.iter().map(|&t| (t, self.partitions(t))).collect();
        resume::read_last(&self.settings, &counted, self.timeout)
    }

    /// Hands `changes` (one or more timestamps, not below any produced before)
    /// to librdkafka in the sink's order. Returns once they are queued, not
    /// acknowledged: call [`flush`](Self::flush) for that.
    pub fn produce(&mut self, changes: &[Change]) -> Result<(), SinkError> {
        self.check()?;
        let new: Vec<&str> = changes
            .iter()
            .map(|c| c.topic.as_str())
            .filter(|t| !self.partitions.contains_key(*t))
            .collect();
        self.ensure_topics(&new)?;
        let plan = self
            .numbering
            .plan(changes, &self.partitions, &self.resume)?;
        for p in plan {
            if p.suppressed {
                self.suppressed += 1;
            } else {
                self.send(&p)?;
            }
        }
        self.producer.poll(Duration::ZERO);
        self.check()
    }

    fn send(&mut self, p: &Planned<'_>) -> Result<(), SinkError> {
        let c = p.change;
        let slot = &mut self.enqueued.get_mut(&c.topic).expect("topic met")[p.partition as usize];
        let index = *slot;
        *slot += 1;
        let mut record = BaseRecord::<str, str, usize>::with_opaque_to(&c.topic, index)
            .partition(p.partition)
            .key(c.key.as_str());
        if let Some(value) = &c.value {
            record = record.payload(value.as_str());
        }
        if self.exactly_once {
            record = record.headers(resume::headers(c.time, p.seq));
        }
        self.producer.context().enqueued(&c.topic);
        let deadline = Instant::now() + self.timeout + self.grace();
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(POLL);
                    let (_, failed) = self.producer.context().sums();
                    if failed == 0 && Instant::now() < deadline {
                        continue;
                    }
                    let full = KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
                    return Err(self.give_up(c, p.partition, index, &full));
                }
                Err((error, _)) => return Err(self.give_up(c, p.partition, index, &error)),
            }
        }
    }

    /// A message that never got into librdkafka's queue: it counts as
    /// undelivered (the first failure's reason is the one reported), and the
    /// sink stops.
    fn give_up(
        &mut self,
        c: &Change,
        partition: i32,
        index: usize,
        error: &KafkaError,
    ) -> SinkError {
        self.producer
            .context()
            .settle(&c.topic, partition, index, Some(error));
        self.stop().expect("a failed message is undelivered")
    }

    /// Waits until every message produced so far is acknowledged (at most the
    /// sink timeout plus a request timeout), and returns the counts so far.
    pub fn flush(&mut self) -> Result<Delivered, SinkError> {
        self.check()?;
        let deadline = Instant::now() + self.timeout + self.grace();
        loop {
            self.producer.poll(POLL);
            self.check()?;
            let (pending, _) = self.producer.context().sums();
            if pending == 0 {
                return Ok(self.delivered());
            }
            if Instant::now() >= deadline {
                return match self.stop() {
                    Some(e) => Err(e),
                    None => Ok(self.delivered()),
                };
            }
        }
    }

    /// Serves delivery reports for `wait` (between timestamps, say) and
    /// returns the counts so far; an error once something failed.
    pub fn poll(&mut self, wait: Duration) -> Result<Delivered, SinkError> {
        self.check()?;
        self.producer.poll(wait);
        self.check()?;
        Ok(self.delivered())
    }

    /// [`flush`](Self::flush), then closes the producer.
    pub fn finish(mut self) -> Result<Delivered, SinkError> {
        self.flush()
    }

    /// Counts so far, without waiting.
    pub fn delivered(&self) -> Delivered {
        let by_topic = self.producer.context().delivered();
        Delivered {
            messages: by_topic.values().sum(),
            suppressed: self.suppressed,
            by_topic,
        }
    }

    /// Err if the sink has stopped, the producer hit a fatal error, or a
    /// delivery report brought a failure (which stops the sink).
    fn check(&mut self) -> Result<(), SinkError> {
        if let Some(f) = &self.failure {
            return Err(self.undelivered(f.clone()));
        }
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            return Err(SinkError::Fatal {
                reason: format!("{code}: {reason}"),
            });
        }
        match self.producer.context().sums() {
            (_, 0) => Ok(()),
            _ => Err(self.stop().expect("a failed message is undelivered")),
        }
    }

    /// Stops producing: purges what librdkafka has not sent, waits (bounded)
    /// for what is in flight, and records the failure. `None` if, after all,
    /// nothing is undelivered.
    fn stop(&mut self) -> Option<SinkError> {
        self.producer.purge(PurgeConfig::default().queue());
        let deadline = Instant::now() + self.grace();
        while self.producer.context().sums().0 > 0 && Instant::now() < deadline {
            self.producer.poll(POLL);
        }
        let failure = self.producer.context().failure()?;
        self.failure = Some(failure.clone());
        Some(self.undelivered(failure))
    }

    fn undelivered(&self, f: Failure) -> SinkError {
        SinkError::Undelivered {
            topic: f.topic,
            count: f.count,
            timeout: self.timeout,
            hint: f.hint,
            hole: f.hole,
        }
    }

    /// Slack past the message timeout: an in-flight request may take up to
    /// its request timeout to fail, and librdkafka scans for timeouts each second.
    fn grace(&self) -> Duration {
        self.timeout.min(Duration::from_secs(30)) + Duration::from_secs(2)
    }
}
