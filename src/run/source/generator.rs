//! The generator as a CDR source (`run --cdr-source generator`): every
//! worker renders its own share of the lines `cdrflow generate` would have
//! written, with no file in between.
//!
//! The lines are dealt in blocks of `B` lines, as a file's blocks are: in
//! round `r` worker `w` renders lines `[b·B, (b+1)·B)` with `b = r·W + w`,
//! each with the generator's own line writer, and parses them on the same
//! path as a file block (`parse_block`, then `finish_block` with source
//! `cdrs.jsonl`). Line `i` is numbered `i + 1`. So dead letters, lateness
//! and every output equal those of the file run by construction (block
//! boundaries never change an outcome, `source::cdr_file`).

use crate::generate::{CdrPlan, Generator};
use crate::progress::{Kind, Progress};
use crate::source::cdr_file::parse_block;

use super::{CdrSource, RoundInput};

/// Lines per block for a byte block size: about as many as a file block of
/// that size holds (a medium CDR line is ~250 bytes), at least one.
pub(in crate::run) fn block_lines(block_size: u64) -> u64 {
    (block_size / 256).max(1)
}

/// One worker's share of the generator's lines.
pub(in crate::run) struct GeneratedBlocks<'a> {
    plan: CdrPlan<'a>,
    index: u64,
    peers: u64,
    block_lines: u64,
}

impl<'a> GeneratedBlocks<'a> {
    pub(in crate::run) fn new(
        generator: &'a Generator,
        index: usize,
        peers: usize,
        block_lines: u64,
    ) -> Self {
        GeneratedBlocks {
            plan: generator.plan(),
            index: index as u64,
            peers: peers as u64,
            block_lines,
        }
    }

    fn blocks(&self) -> u64 {
        self.plan.n.div_ceil(self.block_lines)
    }
}

impl CdrSource for GeneratedBlocks<'_> {
    fn read_round(&mut self, round: u64) -> anyhow::Result<RoundInput> {
        let b = round * self.peers + self.index;
        let lo = b.saturating_mul(self.block_lines).min(self.plan.n);
        let hi = lo.saturating_add(self.block_lines).min(self.plan.n);
        let block = (lo < hi).then(|| {
            let mut bytes = Vec::with_capacity((hi - lo) as usize * 300);
            for i in lo..hi {
                self.plan.write_line(i, &mut bytes);
            }
            parse_block(bytes)
        });
        let more = (round + 1) * self.peers < self.blocks();
        Ok(RoundInput::block(block, more))
    }

    /// The share is of the plan's CDRs.
    fn progress(&self, quiet: bool) -> Progress {
        Progress::new(Kind::Read("the generator"), None, Some(self.plan.n), quiet)
    }
}
