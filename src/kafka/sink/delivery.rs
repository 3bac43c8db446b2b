//! Delivery reports: the producer context that counts, per topic, what is
//! pending, acknowledged and failed, and notices a hole (a message acknowledged
//! after an earlier one of the same partition failed).
//!
//! librdkafka calls [`Tally::delivery`] from `poll` on the sink's own thread,
//! once per message, with the message's enqueue index on its partition.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message};

#[derive(Default)]
pub(crate) struct Tally {
    topics: Mutex<BTreeMap<String, TopicTally>>,
}

#[derive(Default)]
struct TopicTally {
    pending: u64,
    delivered: u64,
    failed: u64,
    /// The first failure's reason, and whether it was a timeout (or a purge).
    first_error: Option<(String, bool)>,
    /// Per partition: (first failed enqueue index, last delivered enqueue index).
    order: BTreeMap<i32, (Option<usize>, Option<usize>)>,
}

/// Why a sink stopped: the topic to name and what to say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub topic: String,
    pub count: u64,
    pub hint: String,
    pub hole: Option<i32>,
}

impl ClientContext for Tally {}

impl ProducerContext for Tally {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let (message, error) = match result {
            Ok(m) => (m, None),
            Err((e, m)) => (m, Some(e)),
        };
        self.settle(message.topic(), message.partition(), index, error);
    }
}

impl Tally {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, TopicTally>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A message handed to librdkafka.
    pub fn enqueued(&self, topic: &str) {
        let mut topics = self.lock();
        match topics.get_mut(topic) {
            Some(t) => t.pending += 1,
            None => {
                let t = topics.entry(topic.to_string()).or_default();
                t.pending += 1;
            }
        }
    }

    /// A message's outcome: from a delivery report, or from a send that failed.
    pub fn settle(&self, topic: &str, partition: i32, index: usize, error: Option<&KafkaError>) {
        let mut topics = self.lock();
        let Some(t) = topics.get_mut(topic) else {
            return;
        };
        t.pending = t.pending.saturating_sub(1);
        let order = t.order.entry(partition).or_default();
        match error {
            None => {
                t.delivered += 1;
                order.1 = order.1.max(Some(index));
            }
            Some(e) => {
                t.failed += 1;
                order.0 = Some(order.0.map_or(index, |f| f.min(index)));
                // A purge is the sink giving up after its own deadline.
                let timed_out = matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::MessageTimedOut
                            | RDKafkaErrorCode::PurgeQueue
                            | RDKafkaErrorCode::PurgeInflight
                    )
                );
                t.first_error.get_or_insert((e.to_string(), timed_out));
            }
        }
    }

    /// (pending, failed) over every topic.
    pub fn sums(&self) -> (u64, u64) {
        self.lock()
            .values()
            .fold((0, 0), |(p, f), t| (p + t.pending, f + t.failed))
    }

    /// Acknowledged messages per topic.
    pub fn delivered(&self) -> BTreeMap<String, u64> {
        self.lock()
            .iter()
            .map(|(name, t)| (name.clone(), t.delivered))
            .collect()
    }

    /// The topic to blame: one with a hole first, else the one with the most
    /// undelivered (failed + still pending) messages, ties to the first name.
    /// `None` when nothing is undelivered.
    pub fn failure(&self) -> Option<Failure> {
        let topics = self.lock();
        let hole = |t: &TopicTally| {
            t.order
                .iter()
                .find(|(_, (failed, delivered))| matches!((failed, delivered), (Some(f), Some(d)) if d > f))
                .map(|(p, _)| *p)
        };
        let mut best: Option<(&String, &TopicTally)> = None;
        for (name, t) in topics.iter().filter(|(_, t)| t.failed + t.pending > 0) {
            let key = |t: &TopicTally| (hole(t).is_some(), t.failed + t.pending);
            if best.is_none_or(|(_, b)| key(t) > key(b)) {
                best = Some((name, t));
            }
        }
        let (topic, t) = best?;
        let hint = match &t.first_error {
            Some((_, true)) | None => "broker unreachable?".to_string(),
            Some((reason, false)) => reason.clone(),
        };
        Some(Failure {
            topic: topic.clone(),
            count: t.failed + t.pending,
            hint,
            hole: hole(t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_blames_the_topic_with_a_hole() {
        let tally = Tally::default();
        for _ in 0..3 {
            tally.enqueued("a");
        }
        for _ in 0..2 {
            tally.enqueued("b");
        }
        let timeout = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        tally.settle("a", 0, 0, Some(&timeout));
        tally.settle("a", 0, 1, Some(&timeout));
        tally.settle("b", 1, 0, Some(&timeout));
        tally.settle("b", 1, 1, None);
        assert_eq!(tally.sums(), (1, 3));
        assert_eq!(tally.delivered()["b"], 1);
        let f = tally.failure().unwrap();
        assert_eq!((f.topic.as_str(), f.count, f.hole), ("b", 1, Some(1)));
        assert_eq!(f.hint, "broker unreachable?");
        // Without a hole, the topic with most undelivered messages.
        let tally = Tally::default();
        tally.enqueued("a");
        tally.enqueued("b");
        tally.enqueued("b");
        let big = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        tally.settle("b", 0, 0, Some(&big));
        let f = tally.failure().unwrap();
        assert_eq!((f.topic.as_str(), f.count, f.hole), ("b", 2, None));
        assert!(f.hint.contains("too large"), "{}", f.hint);
    }
}
