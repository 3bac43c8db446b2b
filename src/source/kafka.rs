//! CDRs from a Kafka topic instead of `cdrs.jsonl` (SPEC §2, §6; issue 6).
//!
//! ```text
//! topic partitions ─ p mod W ─▶ worker's consumer (manual assign, from the low offset)
//!   per message: parse_cdr ─▶ lateness against its own partition ─▶ Outcome (+ watermark)
//!   per round:   PartitionProgress (low / high watermark of the worker's partitions)
//!                  ─ all workers ─▶ global watermark = min of the open partitions'
//!                                   (max of all once every partition is done)
//! ```
//!
//! Partition `p` is read by worker `p mod W`, with no consumer group: the
//! assignment is a function of the topic and the worker count, so it is the
//! same in every run. Without `--follow` a partition is read from its low
//! offset up to the end offset it had at start, then it is done.
//!
//! Each partition is its own input (SPEC §2): its watermark is the largest
//! valid `start` read from it so far minus the lateness, and a CDR below its
//! partition's watermark is `late`. A valid CDR enters the dataflow at its
//! partition's watermark after reading it, which depends only on that
//! partition's prefix, so the dataflow times (and every output) are the same
//! whatever the polling and the worker count. The global watermark, which
//! applies the change files and closes segment days, is the smallest
//! watermark of the partitions still being read; a partition still being read
//! that has no valid CDR yet holds it back.
//!
//! Dead letters carry `kafka:TOPIC/PARTITION` as source and the offset in
//! place of the line. A message whose payload is empty or only whitespace is
//! skipped like a blank line of the file; a message without a payload (a
//! tombstone) is `malformed_json`.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use cdrflow_dataflows::ingest::parse_cdr;
use cdrflow_dataflows::model::{DeadLetter, Epoch, Reason};

use super::cdr_file::{decide_lateness, Outcome};
use crate::kafka::KafkaSettings;

/// How long metadata and offset queries may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a partition may stay silent below its end offset.
const STALL_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("kafka source: cannot create a consumer for {brokers}: {source}")]
    Client { brokers: String, source: KafkaError },
    #[error("kafka source: cannot read the metadata of topic {topic}: {source}")]
    Metadata { topic: String, source: KafkaError },
    #[error("kafka source: topic {topic} does not exist on {brokers}")]
    NoTopic { topic: String, brokers: String },
    #[error("kafka source: {topic}/{partition}: {what}: {source}")]
    Partition {
        topic: String,
        partition: i32,
        what: &'static str,
        source: KafkaError,
    },
    #[error("kafka source: {topic}/{partition}: no message for {secs} s at offset {at}, below its end offset {end}")]
    Stalled {
        topic: String,
        partition: i32,
        at: i64,
        end: i64,
        secs: u64,
    },
}

/// The partitions of `topic` (sorted), read from the brokers.
pub fn partitions(settings: &KafkaSettings, topic: &str) -> Result<Vec<i32>, KafkaSourceError> {
    let consumer = consumer(settings)?;
    topic_partitions(&consumer, settings, topic)
}

fn consumer(settings: &KafkaSettings) -> Result<BaseConsumer, KafkaSourceError> {
    settings
        .consumer_config()
        .create()
        .map_err(|source| KafkaSourceError::Client {
            brokers: settings.brokers.clone(),
            source,
        })
}

fn topic_partitions(
    consumer: &BaseConsumer,
    settings: &KafkaSettings,
    topic: &str,
) -> Result<Vec<i32>, KafkaSourceError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), QUERY_TIMEOUT)
        .map_err(|source| KafkaSourceError::Metadata {
            topic: topic.into(),
            source,
        })?;
    let no_topic = || KafkaSourceError::NoTopic {
        topic: topic.into(),
        brokers: settings.brokers.clone(),
    };
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(no_topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(no_topic());
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// One partition this worker reads.
struct Part {
    id: i32,
    source: String,
    /// The next offset to read.
    next: i64,
    /// Read up to here (exclusive), the end offset at start.
    end: i64,
    max_start: Option<Epoch>,
    /// When the partition last delivered a message (or was assigned).
    heard: Instant,
    /// Whether it delivered a message in the last round.
    fresh: bool,
}

impl Part {
    fn done(&self) -> bool {
        self.next >= self.end
    }
}

/// Where a worker's partitions stand after a round.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Low {
    /// No partition of this worker is still being read.
    #[default]
    Idle,
    /// A partition still being read has no watermark yet.
    Blocked,
    /// The smallest watermark of the partitions still being read.
    At(Epoch),
}

/// A worker's share of a round, exchanged so every worker agrees on the
/// global watermark.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct PartitionProgress {
    pub low: Low,
    /// The largest watermark of any of its partitions.
    pub high: Option<Epoch>,
}

/// The global watermark the workers' progress allows (`None`: hold).
pub fn global_watermark(progress: impl IntoIterator<Item = PartitionProgress>) -> Option<Epoch> {
    let (mut low, mut high, mut blocked) = (None::<Epoch>, None::<Epoch>, false);
    for p in progress {
        match p.low {
            Low::Idle => {}
            Low::Blocked => blocked = true,
            Low::At(w) => low = Some(low.map_or(w, |l| l.min(w))),
        }
        high = high.max(p.high);
    }
    match (blocked, low) {
        (true, _) => None,
        (false, Some(low)) => Some(low),
        (false, None) => high,
    }
}

/// A worker's reader of its partitions of the CDR topic.
pub struct KafkaCdrs {
    topic: String,
    consumer: BaseConsumer,
    parts: Vec<Part>,
    lateness: i64,
    /// `--follow`: no end offset; a partition caught up does not hold the
    /// global watermark back.
    follow: bool,
}

impl KafkaCdrs {
    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Assigns this worker its partitions (`p mod peers == index`) from their
    /// low offsets, up to the end offsets they have now.
    pub fn open(
        settings: &KafkaSettings,
        topic: &str,
        index: usize,
        peers: usize,
        lateness: i64,
        follow: bool,
    ) -> Result<KafkaCdrs, KafkaSourceError> {
        let consumer = consumer(settings)?;
        let ids = topic_partitions(&consumer, settings, topic)?;
        let mut parts = Vec::new();
        let mut assignment = TopicPartitionList::new();
        for id in ids.into_iter().filter(|p| *p as usize % peers == index) {
            let part_err = |what| {
                move |source| KafkaSourceError::Partition {
                    topic: topic.into(),
                    partition: id,
                    what,
                    source,
                }
            };
            let (low, high) = consumer
                .fetch_watermarks(topic, id, QUERY_TIMEOUT)
                .map_err(part_err("reading its offsets"))?;
            assignment
                .add_partition_offset(topic, id, Offset::Offset(low))
                .map_err(part_err("assigning it"))?;
            parts.push(Part {
                id,
                source: format!("kafka:{topic}/{id}"),
                next: low,
                end: if follow { i64::MAX } else { high },
                max_start: None,
                heard: Instant::now(),
                fresh: true,
            });
        }
        consumer
            .assign(&assignment)
            .map_err(|source| KafkaSourceError::Partition {
                topic: topic.into(),
                partition: -1,
                what: "assigning the partitions",
                source,
            })?;
        Ok(KafkaCdrs {
            topic: topic.into(),
            consumer,
            parts,
            lateness,
            follow,
        })
    }

    /// Whether every partition of this worker is read to its end.
    pub fn done(&self) -> bool {
        self.parts.iter().all(Part::done)
    }

    /// Reads up to `budget` bytes of messages (at least one message unless
    /// done), deciding lateness per partition. Calls `emit` per message in
    /// partition order; returns the largest valid start read.
    pub fn read_round(
        &mut self,
        budget: u64,
        mut emit: impl FnMut(Outcome),
    ) -> Result<Option<Epoch>, KafkaSourceError> {
        let mut bytes = 0u64;
        let mut max_start = None;
        for part in &mut self.parts {
            part.fresh = false;
        }
        while bytes < budget && !self.done() {
            let Some(message) = self.consumer.poll(Duration::from_millis(100)) else {
                if self.follow {
                    // Caught up: the round ends; the next one polls again.
                    break;
                }
                self.check_stalls()?;
                continue;
            };
            let message = message.map_err(|source| KafkaSourceError::Partition {
                topic: self.topic.clone(),
                partition: -1,
                what: "polling",
                source,
            })?;
            let Some(part) = self.parts.iter_mut().find(|p| p.id == message.partition()) else {
                continue;
            };
            let offset = message.offset();
            if offset < part.next || part.done() {
                continue;
            }
            part.next = offset + 1;
            part.heard = Instant::now();
            part.fresh = true;
            let payload = message.payload();
            bytes += payload.map_or(0, |p| p.len() as u64) + 1;
            let text = payload.map(|p| {
                let p = p.strip_suffix(b"\n").unwrap_or(p);
                p.strip_suffix(b"\r").unwrap_or(p)
            });
            if text.is_some_and(|t| t.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            let parsed = match text {
                Some(t) => parse_cdr(t),
                None => Err(Reason::MalformedJson),
            };
            let (reason, watermark) =
                match decide_lateness(&mut part.max_start, self.lateness, parsed) {
                    Ok((cdr, w)) => {
                        max_start = max_start.max(Some(cdr.start));
                        emit(Outcome::Valid(cdr, w));
                        continue;
                    }
                    Err(dead) => dead,
                };
            emit(Outcome::Dead(
                DeadLetter {
                    source: part.source.clone(),
                    line: offset as u64,
                    reason,
                    raw: String::from_utf8_lossy(text.unwrap_or_default()).into_owned(),
                },
                watermark,
            ));
        }
        Ok(max_start)
    }

    /// The partitions' standing (see [`PartitionProgress`]).
    pub fn progress(&self) -> PartitionProgress {
        let watermark = |p: &Part| p.max_start.map(|m| m.saturating_sub(self.lateness));
        let open: Vec<Option<Epoch>> = self
            .parts
            .iter()
            .filter(|p| !(p.done() || self.follow && self.caught_up(p)))
            .map(watermark)
            .collect();
        let low = if open.is_empty() {
            Low::Idle
        } else if open.iter().any(Option::is_none) {
            Low::Blocked
        } else {
            Low::At(open.iter().flatten().copied().min().unwrap_or_default())
        };
        PartitionProgress {
            low,
            high: self.parts.iter().filter_map(watermark).max(),
        }
    }

    /// Whether a partition looks caught up (`--follow`): it delivered
    /// nothing in the last round.
    fn caught_up(&self, part: &Part) -> bool {
        !part.fresh
    }

    /// A partition below its end offset that has been silent too long is an
    /// error; one whose position passed its end (offsets without a message,
    /// e.g. transaction markers) is done.
    fn check_stalls(&mut self) -> Result<(), KafkaSourceError> {
        if let Ok(positions) = self.consumer.position() {
            for part in self.parts.iter_mut().filter(|p| !p.done()) {
                if let Some(Offset::Offset(at)) = positions
                    .find_partition(&self.topic, part.id)
                    .map(|e| e.offset())
                {
                    if at >= part.end {
                        part.next = at;
                    }
                }
            }
        }
        match self
            .parts
            .iter()
            .find(|p| !p.done() && p.heard.elapsed() > STALL_TIMEOUT)
        {
            Some(p) => Err(KafkaSourceError::Stalled {
                topic: self.topic.clone(),
                partition: p.id,
                at: p.next,
                end: p.end,
                secs: STALL_TIMEOUT.as_secs(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(w: Epoch) -> PartitionProgress {
        PartitionProgress {
            low: Low::At(w),
            high: Some(w),
        }
    }

    #[test]
    fn the_global_watermark_is_the_slowest_open_partition() {
        let idle = |high| PartitionProgress {
            low: Low::Idle,
            high,
        };
        let blocked = PartitionProgress {
            low: Low::Blocked,
            high: Some(900),
        };
        assert_eq!(
            global_watermark([at(500), at(300), idle(Some(800))]),
            Some(300)
        );
        assert_eq!(global_watermark([at(500), blocked]), None);
        // Every partition done: the largest watermark of any.
        assert_eq!(
            global_watermark([idle(Some(800)), idle(Some(900)), idle(None)]),
            Some(900)
        );
        assert_eq!(global_watermark([idle(None)]), None);
        assert_eq!(global_watermark([]), None);
    }
}
