//! Writing `cdrs.jsonl` (or `cdrs.jsonl.gz`) in parallel, byte-identically
//! for any number of threads.
//!
//! ```text
//!  worker w: chunks w, w+T, w+2T, …  ──(bounded channel w)──┐
//!                                                          ├─► writer: chunk 0, 1, 2, … in order
//!  worker 0 … T−1                                          ┘
//! ```
//!
//! A chunk is a fixed `CHUNK_LINES` lines, whatever the thread count, so
//! chunk boundaries (and with gzip the compressed bytes) never depend on it.
//! With gzip each worker deflates its chunk on its own, ending it with a
//! sync flush (an empty stored block, byte-aligned, not final), as pigz
//! does; the writer concatenates the pieces behind one gzip header and ends
//! the stream with an empty final block, the combined CRC-32 and the length.
//! The result is a single gzip member that any gzip reader decodes
//! (`flate2::read::GzDecoder` included).

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver};

use flate2::{Compress, Compression, Crc, FlushCompress};

use super::cdr::{CdrPlan, Outcome};
use super::cdr_json::Reason;

/// Lines per chunk: part of the output format when gzip is on.
pub(crate) const CHUNK_LINES: u64 = 1 << 16;

/// Counts of what was written, summed over chunks.
#[derive(Clone, Debug, Default)]
pub(crate) struct CdrCounts {
    pub(crate) lines: u64,
    pub(crate) duplicates: u64,
    pub(crate) late: u64,
    pub(crate) malformed: [u64; Reason::COUNT],
    pub(crate) unknown_cell: u64,
    pub(crate) rfc3339: u64,
    pub(crate) candidates: u64,
    pub(crate) bytes: u64,
}

impl CdrCounts {
    fn add(&mut self, o: &CdrCounts) {
        self.lines += o.lines;
        self.duplicates += o.duplicates;
        self.late += o.late;
        for (a, b) in self.malformed.iter_mut().zip(o.malformed) {
            *a += b;
        }
        self.unknown_cell += o.unknown_cell;
        self.rfc3339 += o.rfc3339;
        self.candidates += o.candidates;
        self.bytes += o.bytes;
    }

    fn count(&mut self, o: Outcome) {
        self.lines += 1;
        match o {
            Outcome::Normal {
                unknown_cell,
                rfc3339,
                candidate,
            } => {
                self.unknown_cell += u64::from(unknown_cell);
                self.rfc3339 += u64::from(rfc3339);
                self.candidates += u64::from(candidate);
            }
            Outcome::Late => self.late += 1,
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::Malformed(r) => self.malformed[r.index()] += 1,
        }
    }
}

struct Chunk {
    bytes: Vec<u8>,
    crc: Option<Crc>,
    counts: CdrCounts,
}

/// Formats chunk `c` (and deflates it when `gzip`).
fn make_chunk(plan: &CdrPlan<'_>, c: u64, gzip: bool, buf: &mut Vec<u8>) -> std::io::Result<Chunk> {
    let (lo, hi) = (c * CHUNK_LINES, ((c + 1) * CHUNK_LINES).min(plan.n));
    buf.clear();
    let mut counts = CdrCounts::default();
    for i in lo..hi {
        counts.count(plan.write_line(i, buf));
    }
    counts.bytes = buf.len() as u64;
    if !gzip {
        return Ok(Chunk {
            bytes: std::mem::take(buf),
            crc: None,
            counts,
        });
    }
    let mut crc = Crc::new();
    crc.update(buf);
    let mut z = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(buf.len() / 4 + 64);
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let fed = z.total_in() as usize;
        z.compress_vec(&buf[fed..], &mut out, FlushCompress::Sync)
            .map_err(std::io::Error::other)?;
        // Done once all input is in and the flush left spare room.
        if z.total_in() as usize == buf.len() && out.len() < out.capacity() {
            break;
        }
    }
    Ok(Chunk {
        bytes: out,
        crc: Some(crc),
        counts,
    })
}

/// Writes every line of `plan` to `sink` with `threads` workers, calling
/// `progress` with the number of lines written after each chunk.
pub(crate) fn write_cdrs(
    plan: &CdrPlan<'_>,
    threads: usize,
    gzip: bool,
    sink: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> std::io::Result<CdrCounts> {
    let chunks = plan.n.div_ceil(CHUNK_LINES);
    let threads = threads.clamp(1, chunks.max(1) as usize);
    let mut total = CdrCounts::default();
    let mut crc = Crc::new();
    if gzip {
        // Header: no name, mtime 0 (reproducible), OS unknown.
        sink.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
    }
    std::thread::scope(|s| -> std::io::Result<()> {
        let mut inboxes: Vec<Receiver<std::io::Result<Chunk>>> = Vec::with_capacity(threads);
        let mut returns = Vec::with_capacity(threads);
        for w in 0..threads {
            let (tx, rx) = sync_channel::<std::io::Result<Chunk>>(2);
            let (ret_tx, ret_rx) = sync_channel::<Vec<u8>>(4);
            inboxes.push(rx);
            returns.push(ret_tx);
            s.spawn(move || {
                for c in (w as u64..chunks).step_by(threads) {
                    let mut buf = ret_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(CHUNK_LINES as usize * 256));
                    let chunk = make_chunk(plan, c, gzip, &mut buf);
                    if tx.send(chunk).is_err() {
                        return; // the writer gave up
                    }
                }
            });
        }
        for c in 0..chunks {
            let w = (c % threads as u64) as usize;
            let chunk = inboxes[w]
                .recv()
                .map_err(|_| std::io::Error::other("a CDR generator thread died"))??;
            sink.write_all(&chunk.bytes)?;
            if let Some(piece) = &chunk.crc {
                crc.combine(piece);
            }
            total.add(&chunk.counts);
            progress(total.lines);
            let _ = returns[w].try_send(chunk.bytes);
        }
        Ok(())
    })?;
    if gzip {
        // An empty final block (fixed Huffman, just end-of-block), then the trailer.
        sink.write_all(&[0x03, 0x00])?;
        sink.write_all(&crc.sum().to_le_bytes())?;
        sink.write_all(&crc.amount().to_le_bytes())?;
    }
    sink.flush()?;
    Ok(total)
}
