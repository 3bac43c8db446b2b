//! Progress of a long `cdrflow run` or `cdrflow generate` on stderr.
//!
//! One reporter for both commands, in one of three modes decided once at the
//! start ([`Mode::detect`]):
//!
//! | mode | when | shows |
//! |---|---|---|
//! | [`Mode::Bar`] | stderr is a terminal | an `indicatif` bar: CDRs, rate, bytes of input done and their share, ETA |
//! | [`Mode::Plain`] | stderr is a file or a pipe | `cdrflow: read N CDRs (P% of FILE), R M lines/s` every [`PLAIN_EVERY`], and a last line |
//! | [`Mode::Quiet`] | `--quiet` | nothing |
//!
//! The share (and the bar's ETA) is of the bytes when their total is known (a
//! `run` on a file: the compressed bytes of a gzip file), else of the CDRs when
//! their total is known (`generate`), else there is none (a Kafka topic, a
//! `--follow` run: it has no end), and only CDRs and rate show.
//!
//! [`Progress::update`] is called from hot loops (each round of `run`, each
//! chunk of `generate`), so it does little: the plain line is throttled, the
//! bar's message is rebuilt at most [`BAR_EVERY`], and `indicatif` redraws at
//! its own rate. The clock is passed in (`*_at`) so the throttling is tested
//! without sleeping.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain line is printed.
pub const PLAIN_EVERY: Duration = Duration::from_secs(3);
/// How often the bar's message (CDRs, rate) is rebuilt.
pub const BAR_EVERY: Duration = Duration::from_millis(100);

/// The bar's lines (`{msg}`: the CDRs and their rate, see `Progress::counts`);
/// the bar takes the width the rest leaves (80 columns fit all).
const BAR_OF_BYTES: &str =
    "{spinner} {msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {percent}% ETA {eta}";
const BAR_OF_ITEMS: &str = "{spinner} {msg} [{wide_bar}] {percent}% ETA {eta}";
const SPINNER: &str = "{spinner} {msg}";

/// Where the progress goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Bar,
    Plain,
}

impl Mode {
    /// `--quiet` → nothing; else a bar when stderr is a terminal, plain lines when not.
    pub fn detect(quiet: bool) -> Mode {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Bar,
            (false, false) => Mode::Plain,
        }
    }
}

/// What is counted: CDRs read from a source (`run`) or written to a file (`generate`).
/// The name is what the share is "of" (a file path, a topic).
#[derive(Clone, Copy, Debug)]
pub enum Kind<'a> {
    Read(&'a str),
    Write(&'a str),
}

/// The progress of one command; see the module doc.
pub struct Progress {
    verb: &'static str,
    of: String,
    total_bytes: Option<u64>,
    total_items: Option<u64>,
    started: Instant,
    /// When the plain line was printed or the bar's message rebuilt.
    last: Instant,
    /// The latest counts, for the last line.
    items: u64,
    bytes: u64,
    bar: Option<ProgressBar>,
    mode: Mode,
}

impl Progress {
    /// A reporter starting now, in the mode [`Mode::detect`] picks.
    pub fn new(
        kind: Kind<'_>,
        total_bytes: Option<u64>,
        total_items: Option<u64>,
        quiet: bool,
    ) -> Progress {
        let mode = Mode::detect(quiet);
        Progress::with_mode(kind, total_bytes, total_items, mode, Instant::now())
    }

    /// A reporter in `mode`, started at `now`.
    pub fn with_mode(
        kind: Kind<'_>,
        total_bytes: Option<u64>,
        total_items: Option<u64>,
        mode: Mode,
        now: Instant,
    ) -> Progress {
        let (verb, of) = match kind {
            Kind::Read(of) => ("read", of),
            Kind::Write(of) => ("wrote", of),
        };
        let bar = (mode == Mode::Bar).then(|| {
            let (len, template) = match (total_bytes, total_items) {
                (Some(b), _) => (Some(b), BAR_OF_BYTES),
                (None, Some(n)) => (Some(n), BAR_OF_ITEMS),
                (None, None) => (None, SPINNER),
            };
            let style = ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> ");
            let bar =
                ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr()).with_style(style);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            verb,
            of: of.to_string(),
            total_bytes,
            total_items,
            started: now,
            last: now,
            items: 0,
            bytes: 0,
            bar,
            mode,
        }
    }

    /// `items` CDRs and `bytes` of input done so far (`bytes` is ignored
    /// without a byte total). Prints at most one plain line per [`PLAIN_EVERY`].
    pub fn update(&mut self, items: u64, bytes: u64) {
        if let Some(line) = self.update_at(Instant::now(), items, bytes) {
            eprintln!("{line}");
        }
    }

    /// The end: the last plain line (ending with `, {end}`) is printed, or
    /// replaces the bar.
    pub fn finish(&mut self, end: &str) {
        if let Some(line) = self.finish_at(Instant::now(), end) {
            eprintln!("{line}");
        }
    }

    /// [`Progress::update`] at `now`: the plain line to print, if one is due.
    pub fn update_at(&mut self, now: Instant, items: u64, bytes: u64) -> Option<String> {
        (self.items, self.bytes) = (items, bytes);
        match self.mode {
            Mode::Quiet => None,
            Mode::Bar => {
                let bar = self.bar.as_ref()?;
                bar.set_position(self.position());
                if now.duration_since(self.last) >= BAR_EVERY {
                    self.last = now;
                    bar.set_message(self.counts(now));
                }
                None
            }
            Mode::Plain => {
                if now.duration_since(self.last) < PLAIN_EVERY {
                    return None;
                }
                self.last = now;
                Some(self.plain_line(now, None))
            }
        }
    }

    /// [`Progress::finish`] at `now`: the last plain line, in plain mode.
    pub fn finish_at(&mut self, now: Instant, end: &str) -> Option<String> {
        match self.mode {
            Mode::Quiet => None,
            Mode::Bar => {
                let bar = self.bar.as_ref()?;
                // The same last line as in a log, where the bar was.
                bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
                bar.finish_with_message(self.plain_line(now, Some(end)));
                None
            }
            Mode::Plain => Some(self.plain_line(now, Some(end))),
        }
    }

    /// The bar's position: bytes when their total is known, else CDRs.
    fn position(&self) -> u64 {
        match self.total_bytes {
            Some(total) => self.bytes.min(total),
            None => self.items,
        }
    }

    /// The bar's message: `read 1,234 CDRs, 0.85 M/s` (`wrote 1,234/2,000 …`).
    fn counts(&self, now: Instant) -> String {
        let total = match self.total_items {
            Some(n) => format!("/{}", HumanCount(n)),
            None => String::new(),
        };
        format!(
            "{} {}{total} CDRs, {:.2} M/s",
            self.verb,
            HumanCount(self.items),
            self.rate(now) / 1e6
        )
    }

    /// `cdrflow: read N CDRs (P% of FILE), R M lines/s[, END]`.
    fn plain_line(&self, now: Instant, end: Option<&str>) -> String {
        let share = match (self.total_bytes, self.total_items) {
            (Some(total), _) => Some((self.bytes, total)),
            (None, Some(total)) => Some((self.items, total)),
            (None, None) => None,
        };
        let share = match share {
            Some((done, total)) if total > 0 => format!(
                " ({:.0}% of {})",
                100.0 * done.min(total) as f64 / total as f64,
                self.of
            ),
            _ => String::new(),
        };
        format!(
            "cdrflow: {} {} CDRs{share}, {:.2} M lines/s{}",
            self.verb,
            self.items,
            self.rate(now) / 1e6,
            end.map(|e| format!(", {e}")).unwrap_or_default()
        )
    }

    /// CDRs per second since the start.
    fn rate(&self, now: Instant) -> f64 {
        self.items as f64 / now.duration_since(self.started).as_secs_f64().max(1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(kind: Kind<'_>, bytes: Option<u64>, items: Option<u64>) -> (Progress, Instant) {
        let t0 = Instant::now();
        (Progress::with_mode(kind, bytes, items, Mode::Plain, t0), t0)
    }

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn plain_line_shows_the_share_of_the_bytes_and_the_rate() {
        let (mut p, t0) = plain(Kind::Read("data/cdrs.jsonl"), Some(1000), None);
        assert_eq!(
            p.update_at(secs(t0, 4.0), 2_000_000, 250).as_deref(),
            Some("cdrflow: read 2000000 CDRs (25% of data/cdrs.jsonl), 0.50 M lines/s")
        );
        // The last line has the latest counts; the bytes never show past 100 %.
        p.update_at(secs(t0, 5.0), 4_000_000, 5000);
        assert_eq!(
            p.finish_at(secs(t0, 8.0), "input done").as_deref(),
            Some(
                "cdrflow: read 4000000 CDRs (100% of data/cdrs.jsonl), 0.50 M lines/s, input done"
            )
        );
    }

    #[test]
    fn plain_line_without_totals_shows_cdrs_and_rate_only() {
        // A Kafka topic or a --follow run: no end, so no share.
        let (mut p, t0) = plain(Kind::Read("topic cdrs"), None, None);
        assert_eq!(
            p.update_at(secs(t0, 3.0), 300_000, 12345).as_deref(),
            Some("cdrflow: read 300000 CDRs, 0.10 M lines/s")
        );
    }

    #[test]
    fn plain_line_of_generate_shows_the_share_of_the_cdrs() {
        let (mut p, t0) = plain(Kind::Write("out/cdrs.jsonl"), None, Some(200));
        assert_eq!(
            p.update_at(secs(t0, 3.0), 50, 0).as_deref(),
            Some("cdrflow: wrote 50 CDRs (25% of out/cdrs.jsonl), 0.00 M lines/s")
        );
        assert_eq!(
            p.finish_at(secs(t0, 4.0), "done").as_deref(),
            Some("cdrflow: wrote 50 CDRs (25% of out/cdrs.jsonl), 0.00 M lines/s, done")
        );
    }

    #[test]
    fn plain_lines_are_throttled_but_the_last_always_prints() {
        let (mut p, t0) = plain(Kind::Read("f"), None, None);
        let printed: Vec<f64> = [0.0, 1.0, 2.9, 3.0, 3.1, 5.9, 6.0, 6.5, 9.2]
            .into_iter()
            .filter(|&s| p.update_at(secs(t0, s), 1, 0).is_some())
            .collect();
        assert_eq!(printed, [3.0, 6.0, 9.2]);
        assert!(p.finish_at(secs(t0, 9.3), "input done").is_some());
    }

    #[test]
    fn bar_message_shows_cdrs_and_rate() {
        let t0 = Instant::now();
        let mut p = Progress::with_mode(Kind::Write("f"), None, Some(2000), Mode::Plain, t0);
        p.update_at(secs(t0, 1.0), 1500, 0);
        assert_eq!(p.counts(secs(t0, 2.0)), "wrote 1,500/2,000 CDRs, 0.00 M/s");
        let mut p = Progress::with_mode(Kind::Read("f"), Some(10), None, Mode::Plain, t0);
        p.update_at(secs(t0, 1.0), 1_234_567, 5);
        assert_eq!(p.counts(secs(t0, 1.0)), "read 1,234,567 CDRs, 1.23 M/s");
        assert_eq!(p.position(), 5);
    }

    #[test]
    fn quiet_prints_nothing() {
        assert_eq!(Mode::detect(true), Mode::Quiet);
        let t0 = Instant::now();
        let mut p = Progress::with_mode(Kind::Read("f"), Some(10), None, Mode::Quiet, t0);
        assert_eq!(p.update_at(secs(t0, 10.0), 5, 5), None);
        assert_eq!(p.finish_at(secs(t0, 11.0), "input done"), None);
    }
}
