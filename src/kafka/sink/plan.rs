//! The sink's pure part: where each change goes, in which order, with which
//! `(time, seq)`, and whether a previous run already wrote it.
//!
//! - Partition = `toPositive(murmur2(key)) % partitions`, the Java client's
//!   `BuiltInPartitioner.partitionForKey`, so every Kafka client agrees on
//!   where a key lives.
//! - Order within one batch: by `(time, topic, partition, key, value)`, with a
//!   tombstone (`None`) before a value. The caller's order never matters.
//! - `seq` counts the messages of one `time` on one `(topic, partition)` from 0,
//!   continuing if a later batch carries the same `time` again.
//! - A change is suppressed when its `(time, seq)` is at or below its
//!   partition's resume point.

use std::collections::BTreeMap;

use super::{Change, ResumePoint, SinkError};

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`): 32-bit
/// MurmurHash2, seed `0x9747b28c`, little-endian words, as a signed `i32`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java producer picks for `key` among `partitions`
/// (`toPositive(murmur2(key)) % partitions`; `toPositive` clears the sign bit).
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// One change, placed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Planned<'a> {
    pub change: &'a Change,
    pub partition: i32,
    pub seq: u64,
    /// Already in the topic (at or below the partition's resume point).
    pub suppressed: bool,
}

/// The numbering state kept across batches.
#[derive(Debug, Default)]
pub(crate) struct Numbering {
    last_time: Option<u64>,
    /// (topic, partition) → (time of its latest message, next seq at that time).
    next: BTreeMap<(String, i32), (u64, u64)>,
}

impl Numbering {
    /// Places one batch. `partitions` must know every topic of the batch.
    /// Refuses a batch holding a time below one an earlier batch carried.
    pub fn plan<'a>(
        &mut self,
        changes: &'a [Change],
        partitions: &BTreeMap<String, i32>,
        resume: &ResumePoint,
    ) -> Result<Vec<Planned<'a>>, SinkError> {
        let (Some(first), Some(last)) = (
            changes.iter().map(|c| c.time).min(),
            changes.iter().map(|c| c.time).max(),
        ) else {
            return Ok(Vec::new());
        };
        if let Some(seen) = self.last_time.filter(|&seen| first < seen) {
            return Err(SinkError::TimeWentBackwards {
                time: first,
                last: seen,
            });
        }
        self.last_time = Some(last);
        let mut placed: Vec<(i32, &Change)> = changes
            .iter()
            .map(|c| (partition_for(c.key.as_bytes(), partitions[&c.topic]), c))
            .collect();
        placed.sort_by(|(pa, a), (pb, b)| {
            (a.time, &a.topic, pa, &a.key, &a.value).cmp(&(b.time, &b.topic, pb, &b.key, &b.value))
        });
        let mut out = Vec::with_capacity(placed.len());
        for (partition, change) in placed {
            let slot = self
                .next
                .entry((change.topic.clone(), partition))
                .or_insert((change.time, 0));
            if slot.0 != change.time {
                *slot = (change.time, 0);
            }
            let seq = slot.1;
            slot.1 += 1;
            let suppressed = resume
                .get(&(change.topic.clone(), partition))
                .is_some_and(|&done| (change.time, seq) <= done);
            out.push(Planned {
                change,
                partition,
                seq,
                suppressed,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(topic: &str, key: &str, value: Option<&str>, time: u64) -> Change {
        Change {
            topic: topic.into(),
            key: key.into(),
            value: value.map(str::to_string),
            time,
        }
    }

    /// Apache Kafka's `UtilsTest.testMurmur2` vectors, plus librdkafka's
    /// `unittest_murmur2` "Java murmur2 results" (`rdmurmur2.c`).
    #[test]
    fn murmur2_matches_the_java_client() {
        let java: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (key, hash) in java {
            assert_eq!(murmur2(key), hash, "{}", String::from_utf8_lossy(key));
        }
        let librdkafka: [(&str, u32); 7] = [
            ("kafka", 0xd067cf64),
            ("giberish123456789", 0x8f552b0c),
            ("1234", 0x9fc97b14),
            ("234", 0xe7c009ca),
            ("34", 0x873930da),
            ("4", 0x5a4b5ca1),
            ("", 0x106e08d9),
        ];
        for (key, hash) in librdkafka {
            assert_eq!(murmur2(key.as_bytes()), hash as i32, "{key:?}");
        }
        assert_eq!(murmur2(b""), 275646681);
    }

    #[test]
    fn partition_clears_the_sign_bit_then_takes_the_remainder() {
        // murmur2("21") = -973932308; & 0x7fffffff = 1173551340.
        assert_eq!(partition_for(b"21", 1), 0);
        assert_eq!(partition_for(b"21", 7), 1173551340 % 7);
        assert_eq!(partition_for(b"abc", 10), 479470107 % 10);
    }

    #[test]
    fn batch_is_sorted_and_numbered_per_time_and_partition() {
        let partitions = BTreeMap::from([("t".to_string(), 1)]);
        let batch = [
            change("t", "b", Some("2"), 5),
            change("t", "a", Some("1"), 5),
            change("t", "a", None, 5),
            change("t", "c", Some("3"), 4),
        ];
        let mut n = Numbering::default();
        let plan = n.plan(&batch, &partitions, &ResumePoint::new()).unwrap();
        let got: Vec<_> = plan
            .iter()
            .map(|p| {
                (
                    p.change.time,
                    p.change.key.as_str(),
                    p.change.value.clone(),
                    p.seq,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (4, "c", Some("3".into()), 0),
                (5, "a", None, 0),
                (5, "a", Some("1".into()), 1),
                (5, "b", Some("2".into()), 2),
            ]
        );
        // The same time again continues its numbering; a new time starts at 0.
        let more = [change("t", "z", None, 5), change("t", "y", None, 6)];
        let seqs: Vec<_> = n
            .plan(&more, &partitions, &ResumePoint::new())
            .unwrap()
            .iter()
            .map(|p| (p.change.time, p.seq))
            .collect();
        assert_eq!(seqs, vec![(5, 3), (6, 0)]);
        let late = [change("t", "a", None, 5)];
        let back = n.plan(&late, &partitions, &ResumePoint::new());
        assert!(matches!(
            back,
            Err(SinkError::TimeWentBackwards { time: 5, last: 6 })
        ));
    }

    #[test]
    fn resume_point_suppresses_up_to_and_including_it() {
        let partitions = BTreeMap::from([("t".to_string(), 1)]);
        let resume = ResumePoint::from([(("t".to_string(), 0), (5, 1))]);
        let batch = [
            change("t", "a", Some("1"), 4),
            change("t", "a", Some("2"), 5),
            change("t", "b", Some("2"), 5),
            change("t", "c", Some("2"), 5),
            change("t", "a", Some("3"), 6),
        ];
        let plan = Numbering::default()
            .plan(&batch, &partitions, &resume)
            .unwrap();
        let suppressed: Vec<_> = plan.iter().map(|p| p.suppressed).collect();
        assert_eq!(suppressed, vec![true, true, true, false, false]);
    }
}
