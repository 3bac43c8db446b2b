//! Kafka: the transport between cdrflow and a Kafka cluster (SPEC §6).
//!
//! | module | owns |
//! |---|---|
//! | `config` | [`KafkaSettings`], `--kafka-option KEY=VALUE`, the one place that builds every rdkafka `ClientConfig` |

pub mod config;

pub use config::{parse_option, KafkaSettings, OptionError};
