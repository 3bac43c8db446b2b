//! Where a worker's CDRs come from: its blocks of `cdrs.jsonl` (and, with
//! `--follow`, the lines appended to it, read by worker 0) or its partitions
//! of a Kafka topic.

use anyhow::Context;

use crate::config::{KafkaSource, RunConfig};
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

    pub(super) fn file(&self) -> Option<&CdrFile> {
        match self {
            CdrReader::File { file, .. } => Some(file),
            CdrReader::Kafka(_) => None,
        }
    }
}
