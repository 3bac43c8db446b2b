//! Kafka connection settings and the one place that builds every rdkafka
//! [`ClientConfig`] (producer, consumer, admin), so defaults live in one file
//! and a user's `--kafka-option KEY=VALUE` reaches every client the same way.
//!
//! ```text
//!   --kafka-brokers  ─┐                       ┌─ producer_config(timeout)  (sink)
//!   --kafka-option*  ─┴─> KafkaSettings ──────┼─ consumer_config()         (source, resume)
//!                        base -> role -> user ┴─ admin_config()            (topic creation)
//! ```
//!
//! Layering: `bootstrap.servers` and `client.id`, then the role's defaults, then
//! the user's options in the order given (the last value of a key wins). User
//! options therefore override every default here, including the ones the
//! delivery contract rests on (`enable.idempotence`, `acks`): doing so is the
//! user's explicit choice.

use std::time::Duration;

use rdkafka::ClientConfig;

/// Where the cluster is and how to talk to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: `host:port[,host:port…]`.
    pub brokers: String,
    /// librdkafka properties applied last to every client, in order.
    pub options: Vec<(String, String)>,
}

/// A `--kafka-option` value that is not `KEY=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("--kafka-option {0:?}: expected KEY=VALUE")]
    NoEquals(String),
    #[error("--kafka-option {0:?}: the key before '=' is empty")]
    EmptyKey(String),
}

/// Parses one `--kafka-option KEY=VALUE`: split at the first `=`, the key
/// trimmed and non-empty, the value kept as given (it may be empty or hold `=`).
pub fn parse_option(s: &str) -> Result<(String, String), OptionError> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| OptionError::NoEquals(s.to_string()))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(OptionError::EmptyKey(s.to_string()));
    }
    Ok((key.to_string(), value.to_string()))
}

/// librdkafka's own default for `request.timeout.ms`; the producer's is capped
/// by the sink timeout so an unanswered request cannot outlast it.
const REQUEST_TIMEOUT_MS: u128 = 30_000;

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            options: Vec::new(),
        }
    }

    /// Adds one user option (applied after every default).
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }

    /// The sink's producer. `timeout` bounds how long one message may wait for
    /// the broker's acknowledgement (`message.timeout.ms`), retries included.
    ///
    /// - `enable.idempotence=true`, `acks=all`: no duplicates from retries,
    ///   order per partition kept, acknowledged only when every in-sync
    ///   replica has the message.
    /// - `compression.type=lz4`.
    /// - `partitioner=murmur2_random`: the Java client's partitioner. The sink
    ///   names the partition itself (same hash), so this only matters for
    ///   messages a user produces with these settings without one.
    pub fn producer_config(&self, timeout: Duration) -> ClientConfig {
        let message_ms = timeout.as_millis().clamp(1, i32::MAX as u128);
        let request_ms = message_ms.min(REQUEST_TIMEOUT_MS);
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", message_ms.to_string())
            .set("request.timeout.ms", request_ms.to_string());
        self.user(c)
    }

    /// A consumer for partitions it is given with `assign` (no group
    /// rebalancing, no committed offsets: the reader decides where to start).
    /// `group.id` is set only because librdkafka's consumer wants one.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", "cdrflow")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        self.user(c)
    }

    /// The admin client (topic creation).
    pub fn admin_config(&self) -> ClientConfig {
        let c = self.base();
        self.user(c)
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        // Reconnect backoff capped at 1 s (librdkafka: 10 s; the Java client:
        // 1 s): a broker that returns is used again within a second, and
        // message timeouts, which librdkafka checks between reconnect
        // attempts, fire at most about a second late.
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "cdrflow")
            .set("reconnect.backoff.max.ms", "1000");
        c
    }

    fn user(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_option_splits_at_the_first_equals() {
        assert_eq!(
            parse_option("sasl.password=a=b"),
            Ok(("sasl.password".into(), "a=b".into()))
        );
        assert_eq!(parse_option(" acks =1"), Ok(("acks".into(), "1".into())));
        assert_eq!(parse_option("debug="), Ok(("debug".into(), "".into())));
        assert_eq!(
            parse_option("acks").unwrap_err().to_string(),
            "--kafka-option \"acks\": expected KEY=VALUE"
        );
        assert_eq!(parse_option("=1"), Err(OptionError::EmptyKey("=1".into())));
    }

    #[test]
    fn producer_defaults_and_user_options_win() {
        let s = KafkaSettings::new("b:9092")
            .with_option("compression.type", "zstd")
            .with_option("linger.ms", "20");
        let c = s.producer_config(Duration::from_secs(300));
        assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("compression.type"), Some("zstd"));
        assert_eq!(c.get("linger.ms"), Some("20"));
        assert_eq!(c.get("message.timeout.ms"), Some("300000"));
        assert_eq!(c.get("request.timeout.ms"), Some("30000"));
        let short = KafkaSettings::new("b:9092").producer_config(Duration::from_secs(3));
        assert_eq!(short.get("compression.type"), Some("lz4"));
        assert_eq!(short.get("message.timeout.ms"), Some("3000"));
        assert_eq!(short.get("request.timeout.ms"), Some("3000"));
    }

    #[test]
    fn every_client_gets_the_user_options() {
        let s = KafkaSettings::new("b:9092").with_option("security.protocol", "ssl");
        for c in [
            s.producer_config(Duration::from_secs(1)),
            s.consumer_config(),
            s.admin_config(),
        ] {
            assert_eq!(c.get("security.protocol"), Some("ssl"));
            assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
        }
        let c = s.consumer_config();
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert!(c.get("group.id").is_some());
    }
}
