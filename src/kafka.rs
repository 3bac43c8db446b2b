//! Kafka: the transport between cdrflow and a Kafka cluster (SPEC §6). Format
//! (which row becomes which key and JSON value) is the caller's business; this
//! module moves keyed bytes and keeps the delivery promises.
//!
//! | module | owns |
//! |---|---|
//! | `config` | [`KafkaSettings`], `--kafka-option KEY=VALUE`, the one place that builds every rdkafka `ClientConfig` |
//! | `sink` | [`UpsertSink`]: the upsert envelope, Java-compatible partitioning, its delivery contract, exactly once across restarts |
//! | `sink/plan` | pure: murmur2, ordering of one timestamp's changes, `(time, seq)` numbering and resume suppression |
//! | `sink/delivery` | delivery reports: pending, acknowledged, failed per topic; holes |
//! | `sink/topics` | creating compacted topics, learning partition counts |
//! | `sink/resume` | the `cdrflow-time` / `cdrflow-seq` headers and reading each partition's last message |

pub mod config;
pub mod sink;

pub use config::{parse_option, KafkaSettings, OptionError};
pub use sink::{
    murmur2, parse_headers, partition_for, Change, Delivered, ResumePoint, SinkError, UpsertSink,
    SEQ_HEADER, TIME_HEADER,
};
