//! Where a worker's CDRs come from, one type per source behind one small
//! interface ([`CdrSource`]): the round loop (`run.rs`) asks each for its
//! share of a round and never looks inside.
//!
//! | source | share of worker `w` of `W` in round `r` | lateness decided |
//! |---|---|---|
//! | [`file::PlainBlocks`] | block `r·W + w` of `cdrs.jsonl`; then (`--follow`, worker 0) the appended lines | after the summaries, in file order |
//! | [`file::GzipLines`] | worker 0: the next block of lines of `cdrs.jsonl.gz` | after the summaries |
//! | [`kafka::KafkaPartitions`] | partitions `p ≡ w (mod W)` of the topic | per partition, while reading |
//! | [`generator::GeneratedBlocks`] | lines `[b·B, (b+1)·B)` of the generator's plan, `b = r·W + w` | after the summaries |
//!
//! A source whose lateness waits for the summaries returns a parsed block
//! ([`RoundInput::block`]); the loop finishes it with the lines and the
//! largest start of every block before it, exactly as one reader of one
//! ordered file would (`source::cdr_file`).

use std::sync::Arc;

use cdrflow_dataflows::model::{time_of, Epoch, Time};

use crate::config::{KafkaSource, RunConfig};
use crate::generate::Generator;
use crate::progress::Progress;
use crate::source::cdr_file::{BlockSummary, CdrFile, Outcome, ParsedBlock};
use crate::source::kafka::{KafkaCdrs, PartitionProgress};

pub(super) mod file;
pub(super) mod generator;
mod kafka;

/// Where the CDRs come from (shared by the workers of a process).
pub(super) enum CdrInput {
    File(CdrFile),
    Kafka(KafkaSource),
    Generator(Arc<Generator>),
}

/// What a worker read in one round.
#[derive(Default)]
pub(super) struct RoundInput {
    /// Parsed lines whose lateness and line numbers wait for the summaries.
    pub(super) block: Option<ParsedBlock>,
    /// Lines whose outcome the source decided itself (Kafka).
    pub(super) decided: Vec<Outcome>,
    /// What the other workers learn of this round's share.
    pub(super) summary: BlockSummary,
    /// Kafka: the partitions' progress (default for the other sources).
    pub(super) partitions: PartitionProgress,
    /// Whether this worker has more input after this round.
    pub(super) more: bool,
}

impl RoundInput {
    /// A parsed block (or none) of an ordered source.
    pub(super) fn block(block: Option<ParsedBlock>, more: bool) -> RoundInput {
        RoundInput {
            summary: block.as_ref().map(|b| b.summary).unwrap_or_default(),
            block,
            more,
            ..RoundInput::default()
        }
    }
}

/// One worker's CDR source; see the module doc.
pub(super) trait CdrSource {
    /// This worker's share of `round`.
    fn read_round(&mut self, round: u64) -> anyhow::Result<RoundInput>;

    /// The event-time watermark after a round, given the largest valid start
    /// of every line read so far and the round's partition progress. By
    /// default the one of a single ordered input: that start − `lateness`.
    fn watermark(
        &self,
        max_start: Option<Epoch>,
        lateness: i64,
        _partitions: &mut dyn Iterator<Item = PartitionProgress>,
    ) -> Time {
        max_start.map_or(0, |m| time_of(m.saturating_sub(lateness)))
    }

    /// A progress reporter for this source (`quiet` on all but worker 0).
    fn progress(&self, quiet: bool) -> Progress;

    /// Bytes of input done by the end of `round`, for the progress share
    /// (0 when the share is not of bytes).
    fn bytes_done(&self, _round: u64) -> u64 {
        0
    }
}

impl CdrInput {
    /// The source of worker `index` of `peers`.
    pub(super) fn open<'a>(
        &'a self,
        index: usize,
        peers: usize,
        cfg: &RunConfig,
    ) -> anyhow::Result<Box<dyn CdrSource + 'a>> {
        let block_size = cfg.block_size.max(1);
        Ok(match self {
            CdrInput::File(file) if file.gzip => {
                Box::new(file::GzipLines::open(file, index, block_size)?)
            }
            CdrInput::File(file) => Box::new(file::PlainBlocks::new(
                file, index, peers, block_size, cfg.follow,
            )),
            CdrInput::Kafka(k) => Box::new(kafka::KafkaPartitions {
                cdrs: KafkaCdrs::open(
                    &k.settings,
                    &k.topic,
                    index,
                    peers,
                    cfg.lateness,
                    cfg.follow,
                )?,
                block_size,
            }),
            CdrInput::Generator(g) => Box::new(generator::GeneratedBlocks::new(
                g,
                index,
                peers,
                generator::block_lines(block_size),
            )),
        })
    }
}
