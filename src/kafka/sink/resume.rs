//! Where a previous exactly-once run stopped: the `(time, seq)` headers of the
//! last message of each partition.
//!
//! The idempotent producer writes each partition as a prefix of what it was
//! given (the broker discards retried duplicates and refuses a sequence with a
//! gap), so the last message tells exactly which prefix a killed run got in.
//! The exception, a message that timed out followed by one that got through,
//! is reported by the failed run as a hole (see the sink's delivery contract). Unchecked assumption: that last record is still in the log. Compaction
//! keeps it (it is the newest record of its key, and the cleaner keeps each
//! producer's last batch) unless it is a tombstone older than the topic's
//! `delete.retention.ms`; reading it then times out with [`SinkError::Resume`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedHeaders, Header, Headers, OwnedHeaders};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{ResumePoint, SinkError};
use crate::kafka::KafkaSettings;

/// Header: the dataflow timestamp of the change, in decimal.
pub const TIME_HEADER: &str = "cdrflow-time";
/// Header: the message's number within its timestamp on its partition, from 0.
pub const SEQ_HEADER: &str = "cdrflow-seq";

pub(crate) fn headers(time: u64, seq: u64) -> OwnedHeaders {
    let time = time.to_string();
    let seq = seq.to_string();
    OwnedHeaders::new_with_capacity(2)
        .insert(Header {
            key: TIME_HEADER,
            value: Some(time.as_bytes()),
        })
        .insert(Header {
            key: SEQ_HEADER,
            value: Some(seq.as_bytes()),
        })
}

/// `(time, seq)` from a message's headers (the last occurrence of each wins).
pub fn parse_headers(headers: Option<&BorrowedHeaders>) -> Result<(u64, u64), String> {
    let (mut time, mut seq) = (None, None);
    for h in headers.into_iter().flat_map(|h| h.iter()) {
        let slot = match h.key {
            TIME_HEADER => &mut time,
            SEQ_HEADER => &mut seq,
            _ => continue,
        };
        let text = h.value.and_then(|v| std::str::from_utf8(v).ok());
        *slot = Some(
            text.and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| format!("header {} is not a decimal u64: {text:?}", h.key))?,
        );
    }
    match (time, seq) {
        (Some(t), Some(s)) => Ok((t, s)),
        _ => Err(format!(
            "no {TIME_HEADER}/{SEQ_HEADER} headers: it was not written by an exactly-once cdrflow sink"
        )),
    }
}

/// Reads the last message of every partition of `topics` (name, partition
/// count if known; else learnt from metadata, a topic the cluster does not
/// have counting as empty); empty partitions have no entry. Waits at most
/// `timeout` in all.
pub(crate) fn read_last(
    settings: &KafkaSettings,
    topics: &[(&str, Option<i32>)],
    timeout: Duration,
) -> Result<ResumePoint, SinkError> {
    let deadline = Instant::now() + timeout;
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let consumer: BaseConsumer =
        settings
            .consumer_config()
            .create()
            .map_err(|source| SinkError::Client {
                what: "creating the resume reader (consumer)",
                source,
            })?;
    let error = |topic: &str, partition: i32, reason: String| SinkError::Resume {
        topic: topic.to_string(),
        partition,
        reason,
    };
    // (topic, partition) → offset of its last message.
    let mut wanted: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for &(topic, count) in topics {
        let count = match count {
            Some(n) => n,
            // A consumer's metadata request does not auto-create the topic.
            None => consumer
                .fetch_metadata(Some(topic), remaining())
                .map_err(|e| error(topic, -1, format!("metadata: {e}")))?
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len() as i32),
        };
        for partition in 0..count {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, remaining())
                .map_err(|e| error(topic, partition, format!("watermarks: {e}")))?;
            if high > low {
                wanted.insert((topic.to_string(), partition), high - 1);
            }
        }
    }
    let mut found = ResumePoint::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in &wanted {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| error(topic, *partition, e.to_string()))?;
    }
    consumer.assign(&list).map_err(|source| SinkError::Client {
        what: "assigning partitions to the resume reader",
        source,
    })?;
    let mut last_error = None;
    while found.len() < wanted.len() {
        let left = remaining();
        if left.is_zero() {
            let ((topic, partition), offset) = wanted
                .iter()
                .find(|(k, _)| !found.contains_key(*k))
                .expect("a partition is still missing");
            let why = last_error.map_or(String::new(), |e| format!(" (last error: {e})"));
            return Err(error(
                topic,
                *partition,
                format!("no message at offset {offset} within {timeout:?}{why}"),
            ));
        }
        match consumer.poll(left.min(Duration::from_millis(100))) {
            None => {}
            Some(Err(e)) => last_error = Some(e),
            Some(Ok(m)) => {
                let key = (m.topic().to_string(), m.partition());
                let Some(&offset) = wanted.get(&key) else {
                    continue;
                };
                if m.offset() >= offset && !found.contains_key(&key) {
                    let at = parse_headers(m.headers()).map_err(|reason| {
                        error(&key.0, key.1, format!("offset {}: {reason}", m.offset()))
                    })?;
                    found.insert(key, at);
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let h = headers(1_700_000_000, 7);
        assert_eq!(parse_headers(Some(h.as_borrowed())), Ok((1_700_000_000, 7)));
        assert!(parse_headers(None).unwrap_err().contains("no cdrflow-time"));
        let bad = OwnedHeaders::new()
            .insert(Header {
                key: TIME_HEADER,
                value: Some("x"),
            })
            .insert(Header {
                key: SEQ_HEADER,
                value: Some("0"),
            });
        assert!(parse_headers(Some(bad.as_borrowed()))
            .unwrap_err()
            .contains("not a decimal"));
    }
}
