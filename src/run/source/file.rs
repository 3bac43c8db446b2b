//! `cdrs.jsonl` as a CDR source: blocks of a plain file dealt round-robin
//! (then, with `--follow`, the lines appended to it, read by worker 0), or
//! the lines of a gzip file read by worker 0 alone.

use anyhow::Context;

use super::{CdrSource, RoundInput};
use crate::progress::{Kind, Progress};
use crate::source::cdr_file::{parse_block, CdrFile, GzBlocks, Tail};

/// Blocks of a plain file: block `r·W + w` in round `r`. Once every worker
/// is past the blocks, worker 0 reads what was appended (`--follow`), so
/// lines keep their order.
pub(in crate::run) struct PlainBlocks<'a> {
    file: &'a CdrFile,
    blocks: u64,
    index: u64,
    peers: u64,
    block_size: u64,
    follow: bool,
    tail: Option<Tail>,
}

impl<'a> PlainBlocks<'a> {
    pub(in crate::run) fn new(
        file: &'a CdrFile,
        index: usize,
        peers: usize,
        block_size: u64,
        follow: bool,
    ) -> Self {
        PlainBlocks {
            file,
            blocks: file.blocks(block_size),
            index: index as u64,
            peers: peers as u64,
            block_size,
            follow,
            tail: (follow && index == 0).then(|| Tail::new(file)),
        }
    }
}

impl CdrSource for PlainBlocks<'_> {
    fn read_round(&mut self, round: u64) -> anyhow::Result<RoundInput> {
        let b = round * self.peers + self.index;
        let reading = || format!("reading {}", self.file.path.display());
        let bytes = if b < self.blocks {
            Some(
                self.file
                    .read_block(b, self.block_size)
                    .with_context(reading)?,
            )
        } else if round * self.peers >= self.blocks {
            match self.tail.as_mut() {
                Some(t) => t.next_block(self.block_size).with_context(reading)?,
                None => None,
            }
        } else {
            None
        };
        // A live run has no end; otherwise more follows while blocks remain.
        let more = self.follow || (round + 1) * self.peers < self.blocks;
        Ok(RoundInput::block(bytes.map(parse_block), more))
    }

    /// The share is of the file's bytes, except in a live run, which has no end.
    fn progress(&self, quiet: bool) -> Progress {
        let total = (!self.follow).then_some(self.file.len);
        let name = self.file.path.display().to_string();
        Progress::new(Kind::Read(&name), total, None, quiet)
    }

    /// The blocks dealt so far (worker 0's view).
    fn bytes_done(&self, round: u64) -> u64 {
        ((round + 1) * self.peers * self.block_size).min(self.file.len)
    }
}

/// A gzip file cannot be split: worker 0 reads it, one block of lines per
/// round; the other workers read nothing.
pub(in crate::run) struct GzipLines<'a> {
    file: &'a CdrFile,
    block_size: u64,
    /// Worker 0's reader.
    gz: Option<GzBlocks>,
}

impl<'a> GzipLines<'a> {
    pub(in crate::run) fn open(
        file: &'a CdrFile,
        index: usize,
        block_size: u64,
    ) -> anyhow::Result<Self> {
        let gz = if index == 0 {
            Some(GzBlocks::open(file).context("opening cdrs.jsonl.gz")?)
        } else {
            None
        };
        Ok(GzipLines {
            file,
            block_size,
            gz,
        })
    }
}

impl CdrSource for GzipLines<'_> {
    fn read_round(&mut self, _round: u64) -> anyhow::Result<RoundInput> {
        let Some(gz) = self.gz.as_mut() else {
            return Ok(RoundInput::default());
        };
        let bytes = gz
            .next_block(self.block_size)
            .with_context(|| format!("reading {}", self.file.path.display()))?;
        let more = !gz.is_done();
        Ok(RoundInput::block(bytes.map(parse_block), more))
    }

    /// The share is of the compressed bytes.
    fn progress(&self, quiet: bool) -> Progress {
        let name = self.file.path.display().to_string();
        Progress::new(Kind::Read(&name), Some(self.file.len), None, quiet)
    }

    fn bytes_done(&self, _round: u64) -> u64 {
        self.gz.as_ref().map_or(0, GzBlocks::compressed_read)
    }
}
