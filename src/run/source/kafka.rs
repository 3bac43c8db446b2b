//! A Kafka topic as a CDR source: partitions `p ≡ w (mod W)` on worker `w`,
//! lateness decided per partition while reading (`source::kafka`).

use cdrflow_dataflows::model::{time_of, Epoch, Time};

use super::{CdrSource, RoundInput};
use crate::progress::{Kind, Progress};
use crate::source::cdr_file::BlockSummary;
use crate::source::kafka::{global_watermark, KafkaCdrs, PartitionProgress};

/// A worker's partitions, read about one block's bytes of messages a round.
pub(in crate::run) struct KafkaPartitions {
    pub(in crate::run) cdrs: KafkaCdrs,
    pub(in crate::run) block_size: u64,
}

impl CdrSource for KafkaPartitions {
    fn read_round(&mut self, _round: u64) -> anyhow::Result<RoundInput> {
        let mut decided = Vec::new();
        let max_start = self.cdrs.read_round(self.block_size, |o| decided.push(o))?;
        Ok(RoundInput {
            summary: BlockSummary {
                lines: decided.len() as u64,
                max_start,
            },
            decided,
            partitions: self.cdrs.progress(),
            more: !self.cdrs.done(),
            block: None,
        })
    }

    /// The slowest open partition's watermark, over every worker's.
    fn watermark(
        &self,
        _max_start: Option<Epoch>,
        _lateness: i64,
        partitions: &mut dyn Iterator<Item = PartitionProgress>,
    ) -> Time {
        global_watermark(partitions).map_or(0, time_of)
    }

    /// A topic has no end: CDRs and rate only.
    fn progress(&self, quiet: bool) -> Progress {
        let name = format!("topic {}", self.cdrs.topic());
        Progress::new(Kind::Read(&name), None, None, quiet)
    }
}
