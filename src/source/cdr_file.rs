//! `cdrs.jsonl` (or `cdrs.jsonl.gz`) read in blocks, each worker its own share,
//! with lateness decided exactly as if one reader had read the file in order.
//!
//! A plain file is cut into blocks of `block_size` bytes; block `b` holds the
//! lines whose first byte lies in `[b·size, (b+1)·size)`, so cuts fall on line
//! boundaries and every line belongs to exactly one block. Blocks are dealt
//! round-robin: in round `r` worker `w` reads block `r·W + w`. A gzip file
//! cannot be split: worker 0 reads it, one block of lines per round.
//!
//! Lateness (SPEC §2) needs the largest valid `start` of *all earlier lines*,
//! and line numbers need the count of all earlier lines. So a worker parses its
//! block first ([`parse_block`]), the workers swap one [`BlockSummary`] each
//! (lines, largest valid start) per round, and then each finishes its block
//! ([`finish_block`]) with the totals of the blocks before it. The result is
//! byte-for-byte the same for any number of workers.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use cdrflow_dataflows::ingest::parse_cdr;
use cdrflow_dataflows::model::{Cdr, DeadLetter, Epoch, Reason};

use super::csv_table::SourceError;

pub const SOURCE_NAME: &str = "cdrs.jsonl";

/// The CDR input of a dataset directory.
#[derive(Clone, Debug)]
pub struct CdrFile {
    pub path: PathBuf,
    pub gzip: bool,
    pub len: u64,
}

impl CdrFile {
    /// Finds `cdrs.jsonl` or `cdrs.jsonl.gz` in `dir` (exactly one of them).
    pub fn open(dir: &Path) -> Result<Self, SourceError> {
        let plain = dir.join("cdrs.jsonl");
        let gz = dir.join("cdrs.jsonl.gz");
        let (path, gzip) = match (plain.exists(), gz.exists()) {
            (true, true) => {
                return Err(SourceError::Invalid {
                    path: dir.to_path_buf(),
                    message: "both cdrs.jsonl and cdrs.jsonl.gz are present; keep one".into(),
                })
            }
            (true, false) => (plain, false),
            (false, true) => (gz, true),
            (false, false) => return Err(SourceError::MissingFile { path: plain }),
        };
        let len = std::fs::metadata(&path)
            .map_err(|source| SourceError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        Ok(CdrFile { path, gzip, len })
    }

    /// Number of blocks of a plain file.
    pub fn blocks(&self, block_size: u64) -> u64 {
        self.len.div_ceil(block_size)
    }

    /// The bytes of the lines of block `b` of a plain file.
    pub fn read_block(&self, b: u64, block_size: u64) -> std::io::Result<Vec<u8>> {
        let begin = b * block_size;
        let end = ((b + 1) * block_size).min(self.len);
        let mut file = File::open(&self.path)?;
        // Find the first line that starts at or after `begin`.
        let mut start = begin;
        if begin > 0 {
            file.seek(SeekFrom::Start(begin - 1))?;
            let mut reader = BufReader::with_capacity(64 * 1024, &mut file);
            let mut skipped = Vec::new();
            reader.read_until(b'\n', &mut skipped)?;
            start = begin - 1 + skipped.len() as u64;
        }
        if start >= end {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(start))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::with_capacity((end - start) as usize + 4096);
        (&mut reader).take(end - start).read_to_end(&mut buf)?;
        // Complete the last line, which may run past the block end.
        if !buf.ends_with(b"\n") && start + (buf.len() as u64) < self.len {
            reader.read_until(b'\n', &mut buf)?;
        }
        Ok(buf)
    }
}

impl CdrFile {
    /// The file up to its last newline: with `--follow` a last line without
    /// one may still be being written, so the tail reads it once complete.
    pub fn complete_lines(mut self) -> std::io::Result<Self> {
        let mut file = File::open(&self.path)?;
        let mut end = self.len;
        let mut chunk = vec![0u8; 64 * 1024];
        while end > 0 {
            let begin = end.saturating_sub(chunk.len() as u64);
            let n = (end - begin) as usize;
            file.seek(SeekFrom::Start(begin))?;
            file.read_exact(&mut chunk[..n])?;
            if let Some(i) = memchr::memrchr(b'\n', &chunk[..n]) {
                self.len = begin + i as u64 + 1;
                return Ok(self);
            }
            end = begin;
        }
        self.len = 0;
        Ok(self)
    }
}

/// The lines appended to a plain CDR file after `offset` (`--follow`),
/// whole lines only.
pub struct Tail {
    path: PathBuf,
    offset: u64,
}

impl Tail {
    pub fn new(file: &CdrFile) -> Tail {
        Tail {
            path: file.path.clone(),
            offset: file.len,
        }
    }

    /// About `max` bytes of complete lines appended since the last call
    /// (more if one line is longer), or `None` when nothing complete is new.
    pub fn next_block(&mut self, max: u64) -> std::io::Result<Option<Vec<u8>>> {
        let mut file = File::open(&self.path)?;
        if file.metadata()?.len() <= self.offset {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        (&mut reader).take(max).read_to_end(&mut buf)?;
        if !buf.ends_with(b"\n") {
            reader.read_until(b'\n', &mut buf)?;
        }
        match memchr::memrchr(b'\n', &buf) {
            Some(i) => {
                buf.truncate(i + 1);
                self.offset += buf.len() as u64;
                Ok(Some(buf))
            }
            None => Ok(None),
        }
    }
}

/// Sequential reader of a gzip CDR file: blocks of whole lines.
pub struct GzBlocks {
    /// Boxed: the decoder's state is large, and the readers of a run are an enum.
    reader: Box<BufReader<flate2::read::MultiGzDecoder<BufReader<File>>>>,
    done: bool,
}

impl GzBlocks {
    pub fn open(file: &CdrFile) -> std::io::Result<Self> {
        let f = File::open(&file.path)?;
        let decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f));
        Ok(GzBlocks {
            reader: Box::new(BufReader::with_capacity(1 << 20, decoder)),
            done: false,
        })
    }

    /// Compressed bytes taken from the file so far (read ahead by up to a
    /// buffer, 1 MiB): for progress only, 0 if the position is unknown.
    pub fn compressed_read(&self) -> u64 {
        let mut file: &File = self.reader.get_ref().get_ref().get_ref();
        file.stream_position().unwrap_or(0)
    }

    /// About `block_size` bytes of whole lines; `None` at the end.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn next_block(&mut self, block_size: u64) -> std::io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(block_size as usize + 4096);
        while (buf.len() as u64) < block_size {
            let n = self.reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                self.done = true;
                break;
            }
        }
        Ok(if buf.is_empty() { None } else { Some(buf) })
    }
}

/// One non-blank line of a block after parsing.
pub struct ParsedLine {
    /// 0-based index of the line within its block (blank lines count).
    pub index: u32,
    /// Byte range of the line in the block (without `\r\n`).
    pub range: (u32, u32),
    pub parsed: Result<Cdr, Reason>,
}

/// A parsed block, before lateness is known.
pub struct ParsedBlock {
    pub bytes: Vec<u8>,
    pub lines: Vec<ParsedLine>,
    pub summary: BlockSummary,
}

/// What the other workers need to know about a block.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct BlockSummary {
    /// Physical lines in the block (blank ones included).
    pub lines: u64,
    /// Largest `start` of a valid CDR in the block.
    pub max_start: Option<Epoch>,
}

/// Parses every line of a block.
pub fn parse_block(bytes: Vec<u8>) -> ParsedBlock {
    let mut lines = Vec::new();
    let mut count = 0u64;
    let mut max_start: Option<Epoch> = None;
    let mut begin = 0usize;
    while begin < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[begin..]).map_or(bytes.len(), |i| begin + i);
        let index = count as u32;
        count += 1;
        let line = &bytes[begin..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            let parsed = parse_cdr(line);
            if let Ok(cdr) = &parsed {
                max_start = max_start.max(Some(cdr.start));
            }
            lines.push(ParsedLine {
                index,
                range: (begin as u32, (begin + line.len()) as u32),
                parsed,
            });
        }
        begin = end + 1;
    }
    ParsedBlock {
        bytes,
        lines,
        summary: BlockSummary {
            lines: count,
            max_start,
        },
    }
}

/// A CDR line's outcome once lateness is known.
pub enum Outcome {
    /// A valid CDR and the watermark (event-time seconds) after reading it.
    Valid(Cdr, Epoch),
    /// A dead letter (late, or a line that did not parse) and the watermark
    /// when it was read (`None` before the first valid CDR), so it enters
    /// the dataflow at a time that does not depend on the worker count.
    Dead(DeadLetter, Option<Epoch>),
}

/// Decides lateness and line numbers, given the lines and the largest valid
/// start of all blocks before this one. Calls `emit` per line, in file order.
/// The lateness rule of one input (SPEC §2), given the largest valid start
/// read from it so far (`max`, updated here): a valid CDR below the
/// watermark is `late`. Returns the CDR with the watermark after reading it,
/// or the reason it is dead with the watermark when it was read.
pub fn decide_lateness(
    max: &mut Option<Epoch>,
    lateness: i64,
    parsed: Result<Cdr, Reason>,
) -> Result<(Cdr, Epoch), (Reason, Option<Epoch>)> {
    let watermark = max.map(|m| m.saturating_sub(lateness));
    match parsed {
        Ok(cdr) if watermark.is_some_and(|w| cdr.start < w) => Err((Reason::Late, watermark)),
        Ok(cdr) => {
            *max = (*max).max(Some(cdr.start));
            let w = max.map_or(cdr.start, |m| m.saturating_sub(lateness));
            Ok((cdr, w))
        }
        Err(reason) => Err((reason, watermark)),
    }
}

pub fn finish_block(
    block: ParsedBlock,
    lines_before: u64,
    max_before: Option<Epoch>,
    lateness: i64,
    source: &str,
    mut emit: impl FnMut(Outcome),
) {
    let mut max = max_before;
    let bytes = block.bytes;
    let raw = |range: (u32, u32)| {
        String::from_utf8_lossy(&bytes[range.0 as usize..range.1 as usize]).into_owned()
    };
    for line in block.lines {
        let number = lines_before + line.index as u64 + 1;
        let (reason, watermark) = match decide_lateness(&mut max, lateness, line.parsed) {
            Ok((cdr, w)) => {
                emit(Outcome::Valid(cdr, w));
                continue;
            }
            Err(dead) => dead,
        };
        let dead = DeadLetter {
            source: source.into(),
            line: number,
            reason,
            raw: raw(line.range),
        };
        emit(Outcome::Dead(dead, watermark));
    }
}
