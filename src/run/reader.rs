//! Where a worker's CDRs come from: its blocks of `cdrs.jsonl` (and, with
//! `--follow`, the lines appended to it, read by worker 0) or its partitions
//! of a Kafka topic.

use anyhow::Context;

use crate::config::{KafkaSource, RunConfig};
use crate::progress::{Kind, Progress};
use crate::source::cdr_file::{CdrFile, GzBlocks, Tail};
use crate::source::kafka::KafkaCdrs;

/// Where the CDRs come from (shared by the workers).
pub(super) enum CdrInput {
    File(CdrFile),
    Kafka(KafkaSource),
}

/// A worker's CDR reader.
pub(super) enum CdrReader<'a> {
    /// Blocks of the file: block `r·W + w` in round `r`; a gzip file is read
    /// by worker 0 alone, and so are the lines appended (`--follow`).
    File {
        file: &'a CdrFile,
        blocks: u64,
        gz: Option<GzBlocks>,
        tail: Option<Tail>,
    },
    /// Partitions `p ≡ w (mod W)` of the topic.
    Kafka(KafkaCdrs),
}

impl<'a> CdrReader<'a> {
    pub(super) fn open(
        input: &'a CdrInput,
        index: usize,
        peers: usize,
        cfg: &RunConfig,
    ) -> anyhow::Result<Self> {
        Ok(match input {
            CdrInput::File(file) => CdrReader::File {
                file,
                blocks: file.blocks(cfg.block_size.max(1)),
                gz: if file.gzip && index == 0 {
                    Some(GzBlocks::open(file).context("opening cdrs.jsonl.gz")?)
                } else {
                    None
                },
                tail: (cfg.follow && index == 0).then(|| Tail::new(file)),
            },
            CdrInput::Kafka(k) => CdrReader::Kafka(KafkaCdrs::open(
                &k.settings,
                &k.topic,
                index,
                peers,
                cfg.lateness,
                cfg.follow,
            )?),
        })
    }

    /// A progress reporter for this reader (silent on all but worker 0): the
    /// share is of the file's bytes, except in a live run, which has no end.
    pub(super) fn progress(&self, cfg: &RunConfig, index: usize) -> Progress {
        let quiet = cfg.quiet || index != 0;
        match self {
            CdrReader::File { file, .. } => {
                let total = (!cfg.follow).then_some(file.len);
                let name = file.path.display().to_string();
                Progress::new(Kind::Read(&name), total, None, quiet)
            }
            CdrReader::Kafka(k) => Progress::new(
                Kind::Read(&format!("topic {}", k.topic())),
                None,
                None,
                quiet,
            ),
        }
    }

    /// Bytes of the file read by the end of `round` (worker 0's view): the
    /// blocks dealt so far, or the compressed bytes of a gzip file.
    pub(super) fn bytes_done(&self, round: u64, peers: usize, block_size: u64) -> u64 {
        match self {
            CdrReader::File { gz: Some(gz), .. } => gz.compressed_read(),
            CdrReader::File { file, .. } => ((round + 1) * peers as u64 * block_size).min(file.len),
            CdrReader::Kafka(_) => 0,
        }
    }
}
