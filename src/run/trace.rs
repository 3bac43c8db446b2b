//! `run --trace FILE`: how a long run goes, one JSON object per interval
//! ([`EVERY`]) and a summary at the end, written by worker 0 of process 0
//! (and, unless `-q`, a plain line on stderr per interval).
//!
//! An interval line: `t_s` (seconds since the input started), `cdrs` (lines
//! read into the dataflow by all workers; the dataflow trails them by at
//! most a round), `cdrs_per_s` (since the last line), `cdrs_per_s_overall`,
//! `rss_bytes` (process 0's `VmRSS`; other processes are not counted) and,
//! with `--trace-records`, `arrangement_records`: the records held by every
//! arrangement of every worker (differential's logging, as the monitor's
//! engine panel; samples up to a second old). That logging costs CPU, so it
//! is asked for separately.
//!
//! The summary line (`"summary": true`): the totals, the throughput of the
//! first and of the last tenth of the CDRs (interpolated between rounds),
//! the peak RSS (`VmHWM`) and the largest `arrangement_records` seen.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::monitor::{peak_rss_bytes, rss_bytes};

/// How often a trace line is written.
pub(super) const EVERY: Duration = Duration::from_secs(5);

/// The trace of one run (worker 0 of process 0).
pub(super) struct Trace {
    out: BufWriter<File>,
    path: String,
    echo: bool,
    started: Instant,
    last: (f64, u64),
    /// `(seconds, cdrs)` after every round, for the tenths.
    points: Vec<(f64, u64)>,
    peak_records: Option<i64>,
}

impl Trace {
    /// Creates `path`; `echo`: also print each line on stderr.
    pub(super) fn create(path: &Path, echo: bool) -> anyhow::Result<Trace> {
        let file =
            File::create(path).with_context(|| format!("creating --trace {}", path.display()))?;
        Ok(Trace {
            out: BufWriter::new(file),
            path: path.display().to_string(),
            echo,
            started: Instant::now(),
            last: (0.0, 0),
            points: vec![(0.0, 0)],
            peak_records: None,
        })
    }

    /// After a round: `cdrs` read so far; writes a line when one is due.
    /// `records` is asked for only then.
    pub(super) fn round(
        &mut self,
        cdrs: u64,
        records: impl FnOnce() -> Option<i64>,
    ) -> anyhow::Result<()> {
        let t = self.started.elapsed().as_secs_f64();
        self.points.push((t, cdrs));
        if t - self.last.0 >= EVERY.as_secs_f64() {
            self.line(t, cdrs, records())?;
        }
        Ok(())
    }

    /// The end of the input: a last interval line and the summary.
    pub(super) fn finish(&mut self, cdrs: u64, records: Option<i64>) -> anyhow::Result<()> {
        let t = self.started.elapsed().as_secs_f64();
        self.points.push((t, cdrs));
        self.line(t, cdrs, records)?;
        let (first, last) = tenths(&self.points);
        let summary = json!({
            "summary": true,
            "t_s": round3(t),
            "cdrs": cdrs,
            "cdrs_per_s_overall": round3(rate(cdrs, t)),
            "first_tenth_cdrs_per_s": first.map(round3),
            "last_tenth_cdrs_per_s": last.map(round3),
            "last_to_first": first.zip(last).map(|(f, l)| round3(l / f)),
            "peak_rss_bytes": peak_rss_bytes(),
            "peak_arrangement_records": self.peak_records,
        });
        self.write(&summary)?;
        self.out
            .flush()
            .with_context(|| format!("writing --trace {}", self.path))
    }

    fn line(&mut self, t: f64, cdrs: u64, records: Option<i64>) -> anyhow::Result<()> {
        let (t0, c0) = self.last;
        self.last = (t, cdrs);
        if let Some(r) = records {
            self.peak_records = Some(self.peak_records.map_or(r, |p| p.max(r)));
        }
        let rss = rss_bytes();
        let mut line = json!({
            "t_s": round3(t),
            "cdrs": cdrs,
            "cdrs_per_s": round3(rate(cdrs - c0, t - t0)),
            "cdrs_per_s_overall": round3(rate(cdrs, t)),
            "rss_bytes": rss,
        });
        if let Some(r) = records {
            line["arrangement_records"] = r.into();
        }
        if self.echo {
            let records = records.map_or(String::new(), |r| format!(", {r} arrangement records"));
            eprintln!(
                "cdrflow: trace {:.0} s: {cdrs} CDRs, {:.0} CDRs/s ({:.0} overall), RSS {:.0} MiB{records}",
                t,
                rate(cdrs - c0, t - t0),
                rate(cdrs, t),
                rss.unwrap_or(0) as f64 / (1 << 20) as f64,
            );
        }
        self.write(&line)
    }

    fn write(&mut self, value: &serde_json::Value) -> anyhow::Result<()> {
        writeln!(self.out, "{value}")
            .and_then(|()| self.out.flush())
            .with_context(|| format!("writing --trace {}", self.path))
    }
}

fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// CDRs per second over the first and over the last tenth of the CDRs,
/// from `(seconds, cdrs)` points in order (the time a count was reached is
/// interpolated linearly between points). `None` without CDRs or time.
fn tenths(points: &[(f64, u64)]) -> (Option<f64>, Option<f64>) {
    let Some(&(end, total)) = points.last() else {
        return (None, None);
    };
    if total < 10 {
        return (None, None);
    }
    // The time at which `n` CDRs had been read.
    let at = |n: f64| -> f64 {
        let i = points.partition_point(|p| (p.1 as f64) < n);
        match (i.checked_sub(1).map(|j| points[j]), points.get(i)) {
            (Some((t0, c0)), Some(&(t1, c1))) if c1 > c0 => {
                t0 + (t1 - t0) * (n - c0 as f64) / (c1 - c0) as f64
            }
            (_, Some(&(t1, _))) => t1,
            (Some((t0, _)), None) => t0,
            (None, None) => 0.0,
        }
    };
    let tenth = total as f64 / 10.0;
    let first = at(tenth);
    let last = end - at(total as f64 - tenth);
    let per_s = |t: f64| (t > 0.0).then(|| tenth / t);
    (per_s(first), per_s(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_interpolate_between_rounds() {
        // 100 CDRs: 10 a second for the first 50, 5 a second after.
        let points = [(0.0, 0), (5.0, 50), (15.0, 100)];
        let (first, last) = tenths(&points);
        assert_eq!(first, Some(10.0));
        assert_eq!(last, Some(5.0));
        assert_eq!(tenths(&[(0.0, 0)]), (None, None));
    }
}
