//! Topics: create them compacted when we can, and learn how many partitions
//! each has (the sink partitions by itself, so it must know).
//!
//! Creation is best effort: a topic that exists, a broker without CreateTopics
//! (librdkafka's mock cluster), or one that refuses, all fall back to the
//! broker's auto-creation, which the producer's metadata request triggers.
//! Either way the topic then has to show up in metadata with its partitions,
//! within the sink timeout.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication, TopicResult};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer};

use super::{SinkError, Tally};
use crate::kafka::KafkaSettings;

/// The longest the sink waits for a CreateTopics answer. A broker that has
/// the API answers in milliseconds; librdkafka's mock cluster never answers
/// (its metadata names no live controller), so each wait there costs this.
const CREATE_WAIT: Duration = Duration::from_secs(5);

/// Asks the cluster to create those of `topics` that its metadata does not
/// list, with `cleanup.policy=compact` and the broker's default partition
/// count and replication. Returns each outcome, or the error of the whole
/// request; callers may ignore both (see the module doc).
pub(crate) fn create_compacted(
    settings: &KafkaSettings,
    topics: &[&str],
    timeout: Duration,
) -> Result<Vec<TopicResult>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = settings.admin_config().create()?;
    // All topics: a request naming none never auto-creates one.
    let metadata = admin.inner().fetch_metadata(None, timeout)?;
    let missing: Vec<&str> = topics
        .iter()
        .copied()
        .filter(|t| {
            !metadata
                .topics()
                .iter()
                .any(|m| m.name() == *t && m.error().is_none())
        })
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let new: Vec<NewTopic> = missing
        .iter()
        .map(|t| NewTopic::new(t, -1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact"))
        .collect();
    // No operation timeout: the controller answers once creation has begun,
    // and partition_count waits for the topic to show up.
    let options = AdminOptions::new().request_timeout(Some(timeout.min(CREATE_WAIT)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| KafkaError::AdminOpCreation(format!("runtime: {e}")))?;
    // The admin client's own thread completes the future; the request timeout bounds it.
    runtime.block_on(admin.create_topics(&new, &options))
}

/// Waits (at most `timeout`) until metadata shows `topic` with its partitions,
/// and returns their count. The producer's metadata request lets the broker
/// auto-create the topic.
pub(crate) fn partition_count(
    producer: &BaseProducer<Tally>,
    topic: &str,
    timeout: Duration,
) -> Result<i32, SinkError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(metadata) = producer.client().fetch_metadata(Some(topic), left) {
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len());
            if partitions > 0 {
                return Ok(i32::try_from(partitions).expect("Kafka counts partitions in an i32"));
            }
        }
        if Instant::now() >= deadline {
            return Err(SinkError::TopicUnavailable {
                topic: topic.to_string(),
                waited: timeout,
            });
        }
        // Back off before asking again (also serves delivery reports).
        producer.poll(
            deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        );
    }
}
