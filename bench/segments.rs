//! Segments benchmark (SPEC §5, §7; issue 4): the time to fold one day of CDRs
//! into the customer segments, with and without the snapshot sink, and a
//! DuckDB peer that recomputes one day's snapshot features from scratch.
//!
//! ```text
//! synthetic CDRs: a pure function of (seed, day, index); each worker generates its share
//!   │ day d: the share sorted by start, fed at its own event times in batches,
//!   │ then both inputs advance to the next midnight + 1 and the worker waits on the probe
//!   ▼
//! features(unique, subscribers, window) ─┬─▶ snapshots(rows, cdr days, out/, tokens, defaults) ─▶ probe
//!                                        └─▶ probe                               (--no-snapshots)
//!
//! parent ─┬─▶ this binary, child -w 1 ─▶ warm-up: window + 1 days; then K days, fold per day; VmHWM
//!         ├─▶ this binary, child -w 2 ─▶ …            (each mode × each worker count)
//!         ├─▶ cdrs.csv (every day before the last as_of) + subscribers.csv (cached)
//!         └─▶ scripts/segments_duckdb.py: load, then the last as_of's features in SQL, written,
//!             compared with the snapshot's features.csv ─▶ table + ratios
//! ```
//!
//! The fragment is `segments::features::features` fed directly with unique
//! CDRs (no dedup), followed by the real snapshot sink
//! (`sink::snapshots::snapshots`, the days collection built as the pipeline
//! builds `cdr_days`), writing `segments/date=…/{features,segments}.csv` into
//! the child's output directory: a day's fold includes the SPEC §5 rows of
//! every subscriber and both files, as in `cdrflow run`. With
//! `--no-snapshots` the probe sits right after `features`.
//!
//! "Fold" = the wall time from the first CDR of a day fed (every worker has
//! generated its share and passed a barrier) to the probe passing the next
//! midnight + 1 (at that time the features of the day's snapshot exist, and
//! the sink has written it). Warm-up = the first `window` + 1 days (the window
//! fills, then the first retractions); then `--days K` measured days. Each
//! configuration runs in its own child process (this binary again, with
//! `CDRFLOW_SEGMENTS_CHILD=<workers>`), so each peak RSS (`VmHWM`) is its own.
//! After each day worker 0 deletes the older snapshot directories (outside
//! the timed part), so the disk holds one.
//!
//! Data: `S` subscribers `+4915<9 digits>`, a `Subscriber` row for ~90 % (the
//! rest are unknown callers); callers drawn with a skew (subscriber `⌊S·u²⌋`:
//! the first tenth of the numbers place ~32 % of the CDRs); 25 % voice, 15 %
//! sms, 60 % data; hours from a diurnal curve (~14 % night), 5 % of
//! subscribers night owls (half their CDRs at night), 3 % travellers (60 %
//! roaming; others 1 %); callees among the subscribers, 85 % from a caller's
//! dozen contacts. Weekends come from the calendar (the first day is a Monday).
//!
//! Run: `cargo bench --bench segments [-- --subscribers N]`. Arguments
//! (environment in brackets): `--subscribers N` [`BENCH_SUBSCRIBERS`, default
//! 100 000], `--cdrs-per-day N` [`BENCH_CDRS_PER_DAY`, 200 000], `--days K`
//! measured days [`BENCH_DAYS`, 5], `--window 30d` [`BENCH_WINDOW`],
//! `--workers 1,2` [`BENCH_WORKERS`], `--no-snapshots` (only the runs without
//! the sink; `--modes snapshots,features` [`BENCH_MODES`] picks either or
//! both), `--batch N` CDRs per worker between input advances (a real run's
//! round is ~20 000 lines per worker) [`BENCH_BATCH`, 20 000], `--seed N`
//! [`BENCH_SEED`, 42], `--peer on|none` [`BENCH_PEER`], `--rss-limit-gib G` (a
//! child stops itself when its RSS passes G; default 90 % of `MemAvailable`)
//! [`BENCH_RSS_LIMIT_GIB`], `--operators` (log every operator's busy time and
//! arrangement size, warm-up and measured days apart, via timely's and
//! differential's loggers; slower) [`BENCH_OPERATORS=1`]; `BENCH_PYTHON`
//! (default `python3`).
//!
//! Why 100 000 subscribers by default, not 1 000 000: every configuration
//! replays `window` + 1 days before it measures, and on the 2-core machine a
//! day of 200 000 CDRs over 100 000 subscribers folds in ~3–6 s on one worker
//! (peak ~2.4 GiB), so the four children and the peer take ~8 minutes. State
//! and fold time grow with subscribers × active days in the window: 1 000 000
//! subscribers at the same density would need ~25 GiB and ~45 min per child.

#[path = "common.rs"]
mod common;
use common::*;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use cdrflow::config::ClusterConfig;
use cdrflow::dataflows::model::{time_of, Cdr, CdrType, Epoch, Msisdn, Subscriber, Time};
use cdrflow::dataflows::segments::expr::Definitions;
use cdrflow::dataflows::segments::features::features;
use cdrflow::dataflows::time::{date_string, day_start, days_from_civil, parse_duration};
use cdrflow::dataflows::token::Tokenizer;
use cdrflow::sink::snapshots::{snapshots, SnapshotTargets};
use differential_dataflow::input::Input;
use timely::dataflow::ProbeHandle;

/// As in `cdrflow` itself (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "CDRFLOW_SEGMENTS_CHILD";
/// The token key of the children and the peer (`CDRFLOW_TOKEN_KEY`).
const TOKEN_KEY: &str = "bench-key";
const DAY: i64 = 86_400;

struct Args {
    subscribers: u64,
    cdrs_per_day: u64,
    days: u64,
    window_s: i64,
    workers: Vec<usize>,
    /// Parent: which modes run (`snapshots`, `features`); child: its mode.
    modes: Vec<String>,
    batch: usize,
    seed: u64,
    peer: bool,
    rss_limit_gib: Option<f64>,
    operators: bool,
    top_ops: usize,
    /// Child: where the snapshot sink writes.
    out: Option<PathBuf>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

fn window(s: &str) -> i64 {
    let w = parse_duration(s).unwrap_or_else(|e| panic!("--window: {e}"));
    assert!(
        w > 0 && w % DAY == 0,
        "--window {s}: a whole number of days"
    );
    w
}

fn parse_args() -> Args {
    let mut a = Args {
        subscribers: env_or("BENCH_SUBSCRIBERS", 100_000),
        cdrs_per_day: env_or("BENCH_CDRS_PER_DAY", 200_000),
        days: env_or("BENCH_DAYS", 5),
        window_s: window(&env_or("BENCH_WINDOW", "30d".to_string())),
        workers: list(&env_or("BENCH_WORKERS", "1,2".to_string())),
        modes: env_or("BENCH_MODES", "snapshots,features".to_string())
            .split(',')
            .map(String::from)
            .collect(),
        batch: env_or("BENCH_BATCH", 20_000),
        seed: env_or("BENCH_SEED", 42),
        peer: env_or("BENCH_PEER", "on".to_string()) != "none",
        rss_limit_gib: std::env::var("BENCH_RSS_LIMIT_GIB")
            .ok()
            .map(|v| v.parse().expect("BENCH_RSS_LIMIT_GIB: GiB")),
        operators: env_or("BENCH_OPERATORS", 0u8) == 1,
        top_ops: env_or("BENCH_TOP_OPERATORS", 15),
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        let num = |v: String| -> u64 { v.replace('_', "").parse().expect("a number") };
        match arg.as_str() {
            "--subscribers" => a.subscribers = num(value("--subscribers")),
            "--cdrs-per-day" => a.cdrs_per_day = num(value("--cdrs-per-day")),
            "--days" => a.days = num(value("--days")),
            "--window" => a.window_s = window(&value("--window")),
            "--workers" | "-w" => a.workers = list(&value("--workers")),
            "--modes" => a.modes = value("--modes").split(',').map(String::from).collect(),
            "--no-snapshots" => a.modes = vec!["features".to_string()],
            "--batch" => a.batch = num(value("--batch")) as usize,
            "--seed" => a.seed = num(value("--seed")),
            "--peer" => a.peer = value("--peer") != "none",
            "--rss-limit-gib" => {
                a.rss_limit_gib = Some(value("--rss-limit-gib").parse().expect("GiB"))
            }
            "--operators" => a.operators = true,
            "--out" => a.out = Some(value("--out").into()),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    for m in &a.modes {
        assert!(
            m == "snapshots" || m == "features",
            "--modes: snapshots and/or features, not {m:?}"
        );
    }
    assert!(
        a.subscribers > 0 && a.batch > 0,
        "--subscribers, --batch > 0"
    );
    a
}

fn list(s: &str) -> Vec<usize> {
    s.split(',')
        .map(|w| w.trim().parse().expect("workers: a list like 1,2"))
        .collect()
}

fn main() {
    let args = parse_args();
    match std::env::var(CHILD_ENV) {
        Ok(w) => child(&args, w.parse().expect("worker count")),
        Err(_) => parent(&args),
    }
}

// --- the synthetic CDRs: a pure function of (seed, index) ----------------------

/// SplitMix64's finaliser (a bijective 64-bit mixer).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A SplitMix64 sequence whose start is a hash of `(seed, stream, index)`.
struct Rng(u64);

impl Rng {
    fn at(seed: u64, stream: u64, index: u64) -> Rng {
        let key = mix(seed.wrapping_add(GOLDEN) ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        Rng(mix(key ^ index.wrapping_mul(GOLDEN)))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
}

const TRAITS: u64 = 1;
const SUBSCRIBER: u64 = 2;
const CONTACT: u64 = 3;
const CDR: u64 = 4;

/// Relative CDR rates of the UTC hours 0–23: 15 of 105 at night (22–05).
const HOURS: [u64; 24] = [
    2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 4, 3,
];
const NIGHT_HOURS: [i64; 8] = [22, 23, 0, 1, 2, 3, 4, 5];
const PLANS: [(&str, i64); 4] = [
    ("prepaid", 0),
    ("basic", 1_500),
    ("plus", 3_000),
    ("unlimited", 6_000),
];

/// A subscriber's fixed traits.
struct Traits {
    listed: bool,
    night_owl: bool,
    traveller: bool,
}

#[derive(Clone, Copy)]
struct Gen {
    seed: u64,
    subscribers: u64,
    cdrs_per_day: u64,
    /// Midnight of day 0 (a Monday).
    first_day: Epoch,
}

impl Gen {
    fn new(a: &Args) -> Gen {
        Gen {
            seed: a.seed,
            subscribers: a.subscribers,
            cdrs_per_day: a.cdrs_per_day,
            first_day: days_from_civil(2026, 10, 5) * DAY,
        }
    }

    fn midnight(&self, day: u64) -> Epoch {
        self.first_day + day as i64 * DAY
    }

    fn msisdn(i: u64) -> String {
        format!("+4915{i:09}")
    }

    fn traits(&self, i: u64) -> Traits {
        let h = Rng::at(self.seed, TRAITS, i).next();
        Traits {
            listed: !h.is_multiple_of(10),
            night_owl: (h >> 8).is_multiple_of(20),
            traveller: (h >> 16).is_multiple_of(33),
        }
    }

    /// The `subscribers.csv` row of subscriber `i` (`None`: an unknown caller).
    fn subscriber(&self, i: u64) -> Option<Subscriber> {
        if !self.traits(i).listed {
            return None;
        }
        let mut r = Rng::at(self.seed, SUBSCRIBER, i);
        let gender = ["F", "M", "F", "M", "X", ""][(r.below(100) * 6 / 100).min(5) as usize];
        let birth_year = (r.below(100) >= 3).then(|| 1940 + r.below(70) as i32);
        let (plan, fee) = PLANS[r.below(4) as usize];
        Some(Subscriber {
            msisdn: Gen::msisdn(i),
            gender: gender.to_string(),
            birth_year,
            plan: plan.to_string(),
            monthly_fee_cents: fee,
        })
    }

    /// CDR `j` of day `day`.
    fn cdr(&self, day: u64, j: u64) -> Cdr {
        let index = day * self.cdrs_per_day + j;
        let mut r = Rng::at(self.seed, CDR, index);
        let s = self.subscribers;
        let u = r.unit();
        let caller = ((s as f64 * u * u) as u64).min(s - 1);
        let traits = self.traits(caller);
        let kind = match r.below(100) {
            0..25 => CdrType::Voice,
            25..40 => CdrType::Sms,
            _ => CdrType::Data,
        };
        let hour = if traits.night_owl && r.below(2) == 0 {
            NIGHT_HOURS[r.below(8) as usize]
        } else {
            let mut x = r.below(HOURS.iter().sum());
            let mut h = 0;
            while x >= HOURS[h] {
                x -= HOURS[h];
                h += 1;
            }
            h as i64
        };
        let start = self.midnight(day) + hour * 3600 + r.below(3600) as i64;
        let callee = match kind {
            CdrType::Data => String::new(),
            _ => {
                let other = if r.below(100) < 85 {
                    let u = r.unit();
                    let k = (12.0 * u * u) as u64;
                    Rng::at(self.seed, CONTACT, caller * 16 + k).below(s)
                } else {
                    r.below(s)
                };
                Gen::msisdn(other)
            }
        };
        let roaming = r.below(100) < if traits.traveller { 60 } else { 1 };
        let (duration_s, bytes, mut charge) = match kind {
            CdrType::Voice => {
                let d = 1 + ((-(1.0 - r.unit()).ln() * 120.0) as i64).min(7_200);
                (d, 0, (d + 59) / 60 * 5)
            }
            CdrType::Sms => (0, 0, 9),
            CdrType::Data => {
                let b = 10f64.powf(4.0 + 4.3 * r.unit()) as i64;
                (r.below(1_800) as i64, b, b / 1_000_000)
            }
        };
        if roaming {
            charge *= 3;
        }
        Cdr {
            start,
            // Generated numbers are normalised (they pack).
            msisdn: Msisdn::pack(&Gen::msisdn(caller)).unwrap_or_default(),
            callee: Msisdn::pack(&callee).unwrap_or_default(),
            kind,
            duration_s,
            bytes,
            cell_id: format!("C{:05}", r.below(20_000)).into(),
            charge_cents: charge,
            roaming,
            record_id: format!("r{day:03}-{j:09}").into(),
        }
    }

    /// Worker `index` of `peers`' share of day `day`, sorted by start.
    fn day_share(&self, day: u64, index: usize, peers: usize) -> Vec<Cdr> {
        let mut share: Vec<Cdr> = (index as u64..self.cdrs_per_day)
            .step_by(peers)
            .map(|j| self.cdr(day, j))
            .collect();
        share.sort_by_key(|c| c.start);
        share
    }
}

// --- the child: one mode and worker count, one process --------------------------

/// User + system CPU seconds of this process (USER_HZ = 100 on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, s)| s);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

/// Stops the process (exit 3, with a RESULT line saying so) when its resident
/// memory passes `limit_kb`: the machine is shared.
fn watchdog(limit_kb: u64, started: Instant) {
    std::thread::spawn(move || loop {
        let rss = proc_kb("/proc/self/status", "VmRSS:");
        if rss > limit_kb {
            let msg = format!(
                "RSS {} passed the limit {} after {:.1} s",
                gib(rss as f64),
                gib(limit_kb as f64),
                started.elapsed().as_secs_f64()
            );
            eprintln!("child: {msg}; stopping");
            println!("RESULT {}", serde_json::json!({ "failed": msg }));
            std::process::exit(3);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    });
}

/// What the workers saw.
#[derive(Default)]
struct Seen {
    /// Worker 0's days.
    days: Vec<DayStat>,
    /// Feature rows live at the end and |updates| per time, summed over workers.
    rows_live: i64,
    churn: BTreeMap<Time, i64>,
    /// Snapshot dates written, and the sink's error if any.
    dates: Vec<Epoch>,
    error: String,
    /// `--operators`: (address, name) → busy seconds (warm-up, measured),
    /// spine updates and batcher bytes at their peak, summed over workers.
    operators: BTreeMap<(Vec<usize>, String), OpStat>,
}

/// Busy seconds (warm-up, measured), spine updates and batcher bytes at
/// their peak.
type OpStat = ([f64; 2], i64, i64);

/// One day as worker 0 saw it.
#[derive(Clone, Copy, Default)]
struct DayStat {
    fold_s: f64,
    cpu_s: f64,
    gen_s: f64,
    rss_kb: u64,
}

fn snapshot_dir(out: &Path, date: Epoch) -> PathBuf {
    out.join("segments")
        .join(format!("date={}", date_string(date)))
}

fn child(args: &Args, workers: usize) {
    let out = args.out.clone().expect("the child gets --out");
    let with_snapshots = args.modes.first().is_some_and(|m| m == "snapshots");
    let started = Instant::now();
    let limit_kb = args.rss_limit_gib.map_or_else(
        || proc_kb("/proc/meminfo", "MemAvailable:") * 9 / 10,
        |g| (g * 1048576.0) as u64,
    );
    watchdog(limit_kb, started);
    let gen = Gen::new(args);
    let (window_s, batch) = (args.window_s, args.batch);
    let warm = (window_s / DAY) as u64 + 1;
    let total = warm + args.days;
    let barrier = Arc::new(Barrier::new(workers));
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let seen2 = seen.clone();
    let out2 = out.clone();
    let operators = args.operators;

    let cfg = ClusterConfig::single(workers).timely();
    let guards = timely::execute(cfg, move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let op_log = operators.then(|| register_op_log(worker));
        let probe = ProbeHandle::new();
        let churn: Rc<RefCell<(i64, BTreeMap<Time, i64>)>> = Rc::default();
        let c2 = churn.clone();
        let out = out2.clone();
        let (mut cdr_in, mut sub_in, report) = worker.dataflow::<Time, _, _>(|scope| {
            let (cdr_in, cdrs) = scope.new_collection::<Cdr, isize>();
            let (sub_in, subs) = scope.new_collection::<Subscriber, isize>();
            let rows = features(cdrs.clone(), subs, window_s).inspect(move |(_, t, r)| {
                let mut c = c2.borrow_mut();
                c.0 += *r as i64;
                *c.1.entry(*t).or_default() += r.abs() as i64;
            });
            let report = if with_snapshots {
                // As `pipeline` builds `cdr_days` and `run` wires the sink.
                let days = cdrs.map(|c| day_start(c.start)).distinct();
                Some(snapshots(
                    rows,
                    days,
                    SnapshotTargets {
                        out,
                        tokens: Tokenizer::new(TOKEN_KEY.as_bytes()),
                        defs: Definitions::defaults(),
                        live: None,
                        kafka: None,
                    },
                    &probe,
                ))
            } else {
                rows.probe_with(&probe);
                None
            };
            (cdr_in, sub_in, report)
        });

        // Time 0: this worker's share of the subscriber rows.
        for i in (index as u64..gen.subscribers).step_by(peers) {
            if let Some(s) = gen.subscriber(i) {
                sub_in.update_at(s, 0, 1);
            }
        }
        let mut days = Vec::new();
        for day in 0..total {
            if let Some(l) = op_log.as_ref().filter(|_| day == warm) {
                l.borrow_mut().phase = 1;
            }
            let t = Instant::now();
            let share = gen.day_share(day, index, peers);
            let gen_s = t.elapsed().as_secs_f64();
            barrier.wait();
            let (t, cpu) = (Instant::now(), cpu_seconds());
            for (n, c) in share.into_iter().enumerate() {
                let at = time_of(c.start).max(*cdr_in.time());
                if n > 0 && n % batch == 0 {
                    cdr_in.advance_to(at);
                    sub_in.advance_to(at);
                    cdr_in.flush();
                    sub_in.flush();
                    worker.step();
                }
                cdr_in.update_at(c, at, 1);
            }
            let end = time_of(gen.midnight(day + 1)) + 1;
            cdr_in.advance_to(end);
            sub_in.advance_to(end);
            cdr_in.flush();
            sub_in.flush();
            worker.step_or_park_while(None, || probe.less_than(&end));
            let stat = DayStat {
                fold_s: t.elapsed().as_secs_f64(),
                cpu_s: cpu_seconds() - cpu,
                gen_s,
                rss_kb: proc_kb("/proc/self/status", "VmRSS:"),
            };
            if index == 0 {
                let phase = if day < warm { "warm-up" } else { "measured" };
                eprintln!(
                    "child -w {peers}: day {day} ({}, {phase}): fold {:.3} s, CPU {:.2} s, \
                     generated in {:.2} s, RSS {}",
                    date_string(gen.midnight(day)),
                    stat.fold_s,
                    stat.cpu_s,
                    stat.gen_s,
                    gib(stat.rss_kb as f64)
                );
                // Keep the newest snapshot only (outside the timed part).
                if let Some(r) = &report {
                    let dates = &r.borrow().dates;
                    for d in dates.iter().rev().skip(1).take(2) {
                        let _ = std::fs::remove_dir_all(snapshot_dir(&out2, *d));
                    }
                }
            }
            days.push(stat);
        }
        {
            // Rows live and updates per time are sums over workers.
            let c = churn.borrow();
            let mut s = seen2.lock().unwrap();
            s.rows_live += c.0;
            for (t, n) in &c.1 {
                *s.churn.entry(*t).or_default() += n;
            }
            if index == 0 {
                s.days = days;
                if let Some(r) = &report {
                    let r = r.borrow();
                    s.dates = r.dates.clone();
                    if let Some(e) = &r.error {
                        s.error = e.to_string();
                    }
                }
            }
            if let Some(l) = &op_log {
                let l = l.borrow();
                for (id, (addr, name)) in &l.names {
                    let e = s.operators.entry((addr.clone(), name.clone())).or_default();
                    let busy = l.busy.get(id).copied().unwrap_or_default();
                    e.0[0] += busy[0];
                    e.0[1] += busy[1];
                    e.1 += l.spine.get(id).map_or(0, |x| x.1);
                    e.2 += l.batcher.get(id).map_or(0, |x| x.1);
                }
            }
        }
        // What is left are retractions due after the last day: drop the
        // dataflow rather than compute them (as `run` does).
        drop((cdr_in, sub_in));
        for id in worker.installed_dataflows() {
            worker.drop_dataflow(id);
        }
    })
    .expect("timely starts");
    guards.join();

    let s = seen.lock().unwrap();
    let Seen {
        days,
        rows_live,
        churn,
        dates,
        error,
        operators,
    } = &*s;
    assert!(error.is_empty(), "the snapshot sink failed: {error}");
    let measured: Vec<f64> = days[warm as usize..].iter().map(|d| d.fold_s).collect();
    let warm_days = &days[..warm as usize];
    // The last snapshot's files.
    let last = dates.last().copied();
    let dir = last.map(|d| snapshot_dir(&out, d));
    let size = |name: &str| {
        dir.as_ref()
            .and_then(|d| std::fs::metadata(d.join(name)).ok())
            .map_or(0, |m| m.len())
    };
    let snapshot_rows = dir.as_ref().map_or(0, |d| {
        std::fs::read(d.join("features.csv")).map_or(0, |b| memchr_count(&b).saturating_sub(1))
    });
    let midnights: Vec<i64> = (1..=total)
        .map(|d| churn.get(&time_of(gen.midnight(d))).copied().unwrap_or(0))
        .collect();
    // Leaf operators (the dataflow itself is the one at depth 1), busiest
    // while measured first.
    let mut ops: Vec<_> = operators.iter().filter(|((a, _), _)| a.len() > 1).collect();
    ops.sort_by(|a, b| b.1 .0[1].total_cmp(&a.1 .0[1]));
    let ops: Vec<_> = ops
        .iter()
        .map(|((addr, name), (busy, spine, batcher))| {
            serde_json::json!({
                "addr": addr, "name": name, "warm_busy_s": busy[0], "measured_busy_s": busy[1],
                "spine_records_peak": spine, "batcher_bytes_peak": batcher,
            })
        })
        .collect();
    let result = serde_json::json!({
        "workers": workers,
        "snapshots": with_snapshots,
        "warm_days": warm,
        "fold_s": measured,
        "fold_cpu_s": days[warm as usize..].iter().map(|d| d.cpu_s).collect::<Vec<_>>(),
        "warm_fold_s": warm_days.iter().map(|d| d.fold_s).collect::<Vec<_>>(),
        "warm_s": warm_days.iter().map(|d| d.fold_s + d.gen_s).sum::<f64>(),
        "warm_fold_sum_s": warm_days.iter().map(|d| d.fold_s).sum::<f64>(),
        "gen_s": days.iter().map(|d| d.gen_s).sum::<f64>(),
        "rss_after_warm_kb": warm_days.last().map_or(0, |d| d.rss_kb),
        "row_updates_per_midnight": midnights,
        "rows_live": rows_live,
        "snapshot_dates": dates.len(),
        "snapshot_dir": dir,
        "snapshot_rows": snapshot_rows,
        "features_bytes": size("features.csv"),
        "segments_bytes": size("segments.csv"),
        "as_of": last.map(|d| d + DAY),
        "peak_rss_kb": proc_kb("/proc/self/status", "VmHWM:"),
        "cpu_s": cpu_seconds(),
        "wall_s": started.elapsed().as_secs_f64(),
        "operators": ops,
    });
    println!("RESULT {result}");
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

// --- the parent: children, the peer's files, the peer, report ------------------

/// Runs `cmd`, passing its stderr through; success, stdout, wall seconds and
/// the load average before and after.
fn run_captured(cmd: &mut Command) -> (bool, String, f64, f64, f64) {
    let before = load_average();
    let t = Instant::now();
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", shell_words(cmd)));
    let wall = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), stdout, wall, before, load_average())
}

fn gib(kb: f64) -> String {
    format!("{:.2} GiB", kb / 1048576.0)
}

fn f(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

/// `a / b / c` to the millisecond.
fn joined(xs: &[f64]) -> String {
    let v: Vec<String> = xs.iter().map(|x| format!("{x:.3}")).collect();
    v.join(" / ")
}

/// min / median / max of a list of seconds.
fn spread(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => (f64::NAN, f64::NAN, f64::NAN),
        n => (
            v[0],
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            },
            v[n - 1],
        ),
    }
}

fn seconds(r: &serde_json::Value, k: &str) -> Vec<f64> {
    r[k].as_array()
        .into_iter()
        .flatten()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

/// The peer's input: `cdrs.csv` (every CDR of days `0..days`) and
/// `subscribers.csv`, generated once per parameters and reused.
fn peer_files(root: &Path, gen: &Gen, days: u64) -> PathBuf {
    let key = format!(
        "seed {} subscribers {} cdrs-per-day {} days {} first {}",
        gen.seed, gen.subscribers, gen.cdrs_per_day, days, gen.first_day
    );
    let dir = root.join(format!(
        "target/bench-out/segments-data/s{}-c{}-d{}-seed{}",
        gen.subscribers, gen.cdrs_per_day, days, gen.seed
    ));
    let marker = dir.join(".complete");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == key) {
        println!("peer files: {} (cached)", dir.display());
        return dir;
    }
    let t = Instant::now();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the peer's directory");
    let file = |name: &str| {
        std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(dir.join(name)).expect("creating a peer file"),
        )
    };
    let mut w = file("subscribers.csv");
    writeln!(w, "msisdn,gender,birth_year,plan,monthly_fee_cents").unwrap();
    for i in 0..gen.subscribers {
        if let Some(s) = gen.subscriber(i) {
            let by = s.birth_year.map(|y| y.to_string()).unwrap_or_default();
            writeln!(
                w,
                "{},{},{by},{},{}",
                s.msisdn, s.gender, s.plan, s.monthly_fee_cents
            )
            .unwrap();
        }
    }
    w.flush().unwrap();
    // Two threads: each writes every other day to its own file.
    std::thread::scope(|scope| {
        for part in 0..2u64 {
            let mut w = file(&format!("cdrs-{part}.csv"));
            scope.spawn(move || {
                writeln!(
                    w,
                    "start,msisdn,callee,type,duration_s,bytes,cell_id,charge_cents,roaming,record_id"
                )
                .unwrap();
                for day in (part..days).step_by(2) {
                    for j in 0..gen.cdrs_per_day {
                        let c = gen.cdr(day, j);
                        writeln!(
                            w,
                            "{},{},{},{},{},{},{},{},{},{}",
                            c.start,
                            c.msisdn,
                            c.callee,
                            c.kind.as_str(),
                            c.duration_s,
                            c.bytes,
                            c.cell_id,
                            c.charge_cents,
                            c.roaming,
                            c.record_id
                        )
                        .unwrap();
                    }
                }
                w.flush().unwrap();
            });
        }
    });
    std::fs::write(&marker, format!("{key}\n")).expect("writing the marker");
    println!(
        "peer files: {} (written in {:.1} s)",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    dir
}

struct Ours {
    label: String,
    command: String,
    r: serde_json::Value,
    load: (f64, f64),
}

fn parent(args: &Args) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python: String = env_or("BENCH_PYTHON", "python3".to_string());
    let gen = Gen::new(args);
    let warm = (args.window_s / DAY) as u64 + 1;
    let total = warm + args.days;
    println!("== cdrflow segments benchmark: folding one day (SPEC §5, §7; issue 4) ==");
    println!("machine: {}", machine());
    let head = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(&root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("code: git {head}");
    println!(
        "data: {} subscribers (~90 % listed), {} CDRs per day from {}, window {} days; \
         warm-up {warm} days, then {} measured days; batches of {} CDRs per worker; seed {}",
        args.subscribers,
        args.cdrs_per_day,
        date_string(gen.first_day),
        args.window_s / DAY,
        args.days,
        args.batch,
        args.seed
    );
    println!("load average at start: {:.2}", load_average());
    let me = std::env::current_exe().expect("the bench binary's path");
    let bench_out = root.join("target/bench-out/segments");

    // 1. The children: each mode × each worker count.
    let mut ours: Vec<Ours> = Vec::new();
    let mut failed: Vec<(String, String, String)> = Vec::new();
    for mode in &args.modes {
        for &w in &args.workers {
            let out = bench_out.join(format!("{mode}-w{w}"));
            let _ = std::fs::remove_dir_all(&out);
            let mut cmd = Command::new(&me);
            cmd.env(CHILD_ENV, w.to_string())
                .args(["--subscribers", &args.subscribers.to_string()])
                .args(["--cdrs-per-day", &args.cdrs_per_day.to_string()])
                .args(["--days", &args.days.to_string()])
                .args(["--window", &format!("{}d", args.window_s / DAY)])
                .args(["--batch", &args.batch.to_string()])
                .args(["--seed", &args.seed.to_string()])
                .args(["--modes", mode])
                .arg("--out")
                .arg(&out);
            if let Some(g) = args.rss_limit_gib {
                cmd.args(["--rss-limit-gib", &g.to_string()]);
            }
            if args.operators {
                cmd.arg("--operators");
            }
            let label = format!("{mode} -w {w}");
            let command = shell_words(&cmd);
            println!("\n$ {command}");
            let (ok, stdout, wall, lb, la) = run_captured(&mut cmd);
            let r: Option<serde_json::Value> = stdout
                .lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .and_then(|j| serde_json::from_str(j).ok());
            let why = match &r {
                Some(r) => r["failed"].as_str().map(String::from),
                None => Some("no RESULT line (killed?)".to_string()),
            };
            let Some(r) = r.filter(|_| ok && why.is_none()) else {
                let why = why.unwrap_or_else(|| "exit status".to_string());
                println!("{label}: FAILED after {wall:.1} s, load avg {lb:.2} -> {la:.2}: {why}");
                failed.push((label, command, why));
                continue;
            };
            let (lo, med, hi) = spread(&seconds(&r, "fold_s"));
            println!(
                "{label}: fold per day {lo:.3} / {med:.3} / {hi:.3} s (min / median / max of {}: {}), \
                 CPU per day {} s | warm-up {:.1} s ({} days; folds {:.1} s) | rows live {} \
                 (snapshot {} rows, features.csv {:.1} MiB, segments.csv {:.1} MiB) | \
                 row updates per midnight {} | RSS after warm-up {}, peak {} | wall {wall:.1} s, \
                 load avg {lb:.2} -> {la:.2}",
                args.days,
                joined(&seconds(&r, "fold_s")),
                joined(&seconds(&r, "fold_cpu_s")),
                f(&r, "warm_s"),
                r["warm_days"],
                f(&r, "warm_fold_sum_s"),
                r["rows_live"],
                r["snapshot_rows"],
                f(&r, "features_bytes") / 1048576.0,
                f(&r, "segments_bytes") / 1048576.0,
                r["row_updates_per_midnight"],
                gib(f(&r, "rss_after_warm_kb")),
                gib(f(&r, "peak_rss_kb")),
            );
            if let Some(ops) = r["operators"].as_array().filter(|o| !o.is_empty()) {
                println!(
                    "  operators, busiest while measured first (summed over workers; spine = updates held at the peak):"
                );
                println!(
                    "  {:>10} {:>12} {:>14} {:>12}  operator",
                    "warm-up s", "measured s", "spine updates", "batcher MiB"
                );
                for o in ops.iter().take(args.top_ops) {
                    println!(
                        "  {:>10.2} {:>12.2} {:>14} {:>12.1}  {} {}",
                        f(o, "warm_busy_s"),
                        f(o, "measured_busy_s"),
                        o["spine_records_peak"],
                        f(o, "batcher_bytes_peak") / 1048576.0,
                        o["name"].as_str().unwrap_or("?"),
                        o["addr"]
                    );
                }
            }
            ours.push(Ours {
                label,
                command,
                r,
                load: (lb, la),
            });
        }
    }

    // Same snapshot from every worker count?
    let snaps: Vec<&Ours> = ours
        .iter()
        .filter(|o| o.r["snapshot_dir"].is_string())
        .collect();
    let read = |o: &Ours, name: &str| {
        std::fs::read(Path::new(o.r["snapshot_dir"].as_str().unwrap()).join(name)).ok()
    };
    if snaps.len() > 1 {
        let same = snaps.windows(2).all(|p| {
            ["features.csv", "segments.csv"]
                .iter()
                .all(|n| read(p[0], n).is_some() && read(p[0], n) == read(p[1], n))
        });
        println!(
            "\nlast snapshot of {}: {}",
            snaps
                .iter()
                .map(|o| o.label.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if same { "byte-identical" } else { "DIFFERENT" }
        );
    }

    // 2. The peer: the same CDRs, the last as_of's features recomputed in SQL.
    let mut peer: Option<(serde_json::Value, String, (f64, f64))> = None;
    if args.peer {
        let dir = peer_files(&root, &gen, total);
        let as_of = gen.midnight(total);
        let out = bench_out.join("duckdb");
        let _ = std::fs::remove_dir_all(&out);
        let mut cmd = Command::new(&python);
        cmd.env("CDRFLOW_TOKEN_KEY", TOKEN_KEY)
            .arg(root.join("scripts/segments_duckdb.py"))
            .arg("--cdrs")
            .arg(dir.join("cdrs-*.csv"))
            .arg("--subscribers")
            .arg(dir.join("subscribers.csv"))
            .args(["--as-of", &as_of.to_string()])
            .args(["--window", &args.window_s.to_string()])
            .args(["--threads", "2"])
            .arg("--out")
            .arg(&out);
        if let Some(o) = snaps.last() {
            cmd.arg("--compare")
                .arg(Path::new(o.r["snapshot_dir"].as_str().unwrap()).join("features.csv"));
        }
        let command = shell_words(&cmd);
        println!("\n$ {command}");
        let (ok, stdout, wall, lb, la) = run_captured(&mut cmd);
        for l in stdout.lines().filter(|l| !l.starts_with("RESULT ")) {
            println!("  {l}");
        }
        let r: Option<serde_json::Value> = stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .and_then(|j| serde_json::from_str(j).ok());
        println!("duckdb: {wall:.1} s wall, load avg {lb:.2} -> {la:.2}");
        match r.filter(|_| ok) {
            Some(r) => peer = Some((r, command, (lb, la))),
            None => failed.push(("duckdb".into(), command, "no RESULT line".into())),
        }
    }

    // 3. Summary.
    println!(
        "\n== summary: {} subscribers, {} CDRs per day, window {} d ==",
        args.subscribers,
        args.cdrs_per_day,
        args.window_s / DAY
    );
    println!("machine: {}", machine());
    println!(
        "| figure | fold per day s (min / median / max, {} days) | CDRs/s (median) | CPU s per day (median) | warm-up s ({warm} days) | subscribers in snapshot | snapshot files | peak RSS | load avg |",
        args.days
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for o in &ours {
        let r = &o.r;
        let (lo, med, hi) = spread(&seconds(r, "fold_s"));
        let files = if r["snapshots"].as_bool() == Some(true) {
            format!(
                "{:.1} MiB",
                (f(r, "features_bytes") + f(r, "segments_bytes")) / 1048576.0
            )
        } else {
            "-".to_string()
        };
        println!(
            "| cdrflow {} | {lo:.3} / **{med:.3}** / {hi:.3} | {:.0} k | {:.2} | {:.1} | {} | {files} | {} | {:.2} → {:.2} |",
            o.label,
            args.cdrs_per_day as f64 / med / 1e3,
            spread(&seconds(r, "fold_cpu_s")).1,
            f(r, "warm_s"),
            r["rows_live"],
            gib(f(r, "peak_rss_kb")),
            o.load.0,
            o.load.1
        );
    }
    if let Some((p, _, load)) = &peer {
        println!(
            "| DuckDB {} threads: features of one as_of over {} CDRs (load {:.1} s apart) | **{:.3}** (query {:.3} + write {:.3}) | | {:.2} | | {} | {:.1} MiB | {} | {:.2} → {:.2} |",
            p["threads"],
            p["cdrs"],
            f(p, "load_s"),
            f(p, "query_s") + f(p, "write_s"),
            f(p, "query_s"),
            f(p, "write_s"),
            f(p, "cpu_s"),
            p["rows"],
            f(p, "features_bytes") / 1048576.0,
            gib(f(p, "peak_rss_kb")),
            load.0,
            load.1
        );
        println!("\nratio = cdrflow median fold per day ÷ DuckDB recompute of one as_of (below 1 = cdrflow faster):");
        for o in &ours {
            let med = spread(&seconds(&o.r, "fold_s")).1;
            let with = o.r["snapshots"].as_bool() == Some(true);
            let (what, d) = if with {
                ("query + write", f(p, "query_s") + f(p, "write_s"))
            } else {
                ("query", f(p, "query_s"))
            };
            println!("  cdrflow {} ÷ DuckDB {what}: {:.2}×", o.label, med / d);
        }
        println!(
            "  check against the snapshot's features.csv: {}",
            p["compare"]
        );
    }
    for (label, _, why) in &failed {
        println!("| {label} | failed: {why} | | | | | | | |");
    }
    println!(
        "\nnot quite the same work: cdrflow's fold with snapshots also evaluates every segment \
         and writes segments.csv; DuckDB writes features.csv only (tokens included). Without \
         snapshots cdrflow stops at the feature rows (no tokens, no files)."
    );
    println!("\ncommands:");
    for o in &ours {
        println!("  {}", o.command);
    }
    for (_, command, _) in &failed {
        println!("  {command}");
    }
    if let Some((_, command, _)) = &peer {
        println!("  {command}");
    }
    println!("load average at end: {:.2}", load_average());
}
