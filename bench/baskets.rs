//! Market-basket benchmark (SPEC §4, §7; issue 3): the basket fragment alone in
//! timely, its initial mining, folding in 10 000 new baskets, and the Python
//! peers on the same `purchases.csv`.
//!
//! ```text
//! cdrflow generate ──▶ datasets/generated/bench-baskets-<N>/ (cached, git-ignored)
//!        │
//!        ├─▶ this binary, child -w 1 ─▶ load, mine (t 0→1), fold 10 000 new baskets (t 1→2 …), VmHWM
//!        ├─▶ this binary, child -w 2 ─▶ …
//!        └─▶ scripts/basket_peers.py --purchases … --json  (pyfim, mlxtend apriori)
//!                                    ─▶ table + ratios
//! ```
//!
//! Each worker count runs in its own child process (this binary again, with
//! `CDRFLOW_BASKETS_CHILD=<workers>`), so each peak RSS (`VmHWM`) is its own.
//! The child loads the dataset with `cdrflow::source::tables::load` (timed
//! apart), then each worker feeds the purchase rows with index ≡ worker (mod
//! workers) at time 0 (worker 0 also weather, stores and loyalty, as plain
//! collections), advances to 1 and waits on a probe on rules and
//! recommendations: that wall time is "mining". Then, per fold, 10 000 new
//! baskets (copies of existing baskets spread over the file, fresh `txn_id`s)
//! enter at time k and the wait for the probe to pass k + 1 is "fold".
//!
//! Each fragment in `--fragments` [`BENCH_FRAGMENTS`, default `full,global-rules`]
//! runs for every worker count: `full` is `market_basket` (every context,
//! recommendations), `global-rules` only the mining functions with no weather
//! (the `global` context: the peers' work), `rules` the mining with weather.
//!
//! Run: `cargo bench --bench baskets [-- --baskets N]` or
//! `scripts/bench-baskets.sh`. Arguments (environment in brackets):
//! `--baskets N` [`BENCH_BASKETS`, default 10 000 000], `--data DIR` (an
//! existing dataset instead) [`BENCH_BASKETS_DATA`], `--workers 1,2`
//! [`BENCH_WORKERS`], `--new N` new baskets per fold [`BENCH_NEW_BASKETS`,
//! 10 000], `--folds K` [`BENCH_FOLDS`, 3], `--peers on|none` [`BENCH_PEERS`],
//! `--peer-timeout S` [`BENCH_PEER_TIMEOUT`, 3600], `--no-intern` (a fresh
//! string per row and field; by default the fed rows share the customer,
//! store and txn strings, as the host's `Tables::purchase_rows` does)
//! [`BENCH_INTERN=0`], `--operators` (log every operator's busy time and
//! arrangement size, via timely's and differential's loggers; slower)
//! [`BENCH_OPERATORS=1`], `--rss-limit-gib G` (a child stops itself when its
//! RSS passes G; default 90 % of `MemAvailable` when it starts)
//! [`BENCH_RSS_LIMIT_GIB`]; `BENCH_PYTHON` (default `python3`).

#[path = "common.rs"]
mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cdrflow::config::ClusterConfig;
use cdrflow::dataflows::basket::{
    baskets, frequent_itemsets, market_basket, rules as mining_rules, scope_name, scope_sizes,
    scoped_baskets, BasketParams, PurchaseRow, Source, WeatherRow,
};
use cdrflow::dataflows::model::{Text, Time};
use cdrflow::source::tables::{self, Tables};
use differential_dataflow::input::Input;
use timely::dataflow::ProbeHandle;

/// As in `cdrflow` itself (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "CDRFLOW_BASKETS_CHILD";

struct Args {
    baskets: u64,
    data: Option<PathBuf>,
    workers: Vec<usize>,
    new: usize,
    folds: usize,
    peers: bool,
    peer_timeout: f64,
    intern: bool,
    operators: bool,
    /// The child's dataflow: `full` (market_basket), `rules`, `global-rules`.
    fragment: String,
    /// The parent's: which fragments to run for every worker count.
    fragments: Vec<String>,
    top_ops: usize,
    rss_limit_gib: Option<f64>,
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

fn parse_args() -> Args {
    let mut a = Args {
        baskets: env_or("BENCH_BASKETS", 10_000_000),
        data: std::env::var_os("BENCH_BASKETS_DATA").map(PathBuf::from),
        workers: list(&env_or("BENCH_WORKERS", "1,2".to_string())),
        new: env_or("BENCH_NEW_BASKETS", 10_000),
        folds: env_or("BENCH_FOLDS", 3),
        peers: env_or("BENCH_PEERS", "on".to_string()) != "none",
        peer_timeout: env_or("BENCH_PEER_TIMEOUT", 3600.0),
        intern: env_or("BENCH_INTERN", 1u8) == 1,
        operators: env_or("BENCH_OPERATORS", 0u8) == 1,
        top_ops: env_or("BENCH_TOP_OPERATORS", 25),
        fragment: "full".to_string(),
        fragments: env_or("BENCH_FRAGMENTS", "full,global-rules".to_string())
            .split(',')
            .map(String::from)
            .collect(),
        rss_limit_gib: std::env::var("BENCH_RSS_LIMIT_GIB")
            .ok()
            .map(|v| v.parse().expect("BENCH_RSS_LIMIT_GIB: GiB")),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        let num = |v: String| v.replace('_', "").parse().expect("a number");
        match arg.as_str() {
            "--baskets" => a.baskets = num(value("--baskets")),
            "--data" => a.data = Some(value("--data").into()),
            "--workers" | "-w" => a.workers = list(&value("--workers")),
            "--new" => a.new = num(value("--new")) as usize,
            "--folds" => a.folds = num(value("--folds")) as usize,
            "--peers" => a.peers = value("--peers") != "none",
            "--peer-timeout" => a.peer_timeout = num(value("--peer-timeout")) as f64,
            "--no-intern" => a.intern = false,
            "--operators" => a.operators = true,
            "--fragment" => a.fragment = value("--fragment"),
            "--fragments" => {
                a.fragments = value("--fragments").split(',').map(String::from).collect()
            }
            "--rss-limit-gib" => {
                a.rss_limit_gib = Some(value("--rss-limit-gib").parse().expect("GiB"))
            }
            _ => {} // `cargo bench` passes `--bench`
        }
    }
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

// --- the child: one worker count, one process --------------------------------

/// User + system CPU seconds of this process (USER_HZ = 100 on Linux).
fn cpu_seconds() -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// CPU seconds per thread name (`timely:work-0`, …): is the work spread?
fn thread_cpu_seconds() -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let name = stat
            .split_once('(')
            .and_then(|(_, s)| s.rsplit_once(')'))
            .map_or("?", |(n, _)| n);
        *out.entry(name.to_string()).or_default() += stat_cpu_seconds(&stat);
    }
    out
}

fn stat_cpu_seconds(stat: &str) -> f64 {
    let after = stat.rsplit_once(')').map_or("", |(_, s)| s);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

/// The row with a fresh `Arc<str>` per string (`--no-intern`): what the
/// dataflow holds when nothing shares its strings.
fn unshared(p: &PurchaseRow) -> PurchaseRow {
    PurchaseRow {
        txn_id: (*p.txn_id).into(),
        customer_id: (*p.customer_id).into(),
        store_id: (*p.store_id).into(),
        ts: p.ts,
        product: p.product,
    }
}

/// `folds` × `n` new baskets: copies of baskets spread evenly over the file
/// (rows of one `txn_id` are contiguous there), each with a fresh `txn_id`.
/// Returns `[fold][basket] → rows`, and the number of baskets in the file.
fn new_baskets(t: &Tables, n: usize, folds: usize) -> (Vec<Vec<Vec<PurchaseRow>>>, usize) {
    let ps = &t.purchases;
    let starts: Vec<usize> = (0..ps.len())
        .filter(|&i| i == 0 || ps[i].txn_id != ps[i - 1].txn_id)
        .collect();
    let total = n * folds;
    let mut out = vec![Vec::with_capacity(n); folds];
    for sel in 0..total {
        let b = if starts.is_empty() {
            break;
        } else {
            sel * starts.len() / total
        };
        let end = starts.get(b + 1).copied().unwrap_or(ps.len());
        let (fold, j) = (sel % folds, sel / folds);
        let txn: Text = format!("bench-f{fold}-{j}").into();
        let basket = ps[starts[b]..end]
            .iter()
            .map(|p| PurchaseRow {
                txn_id: txn.clone(),
                ..p.clone()
            })
            .collect();
        out[fold].push(basket);
    }
    (out, starts.len())
}

/// What the workers saw, summed over workers.
#[derive(Default)]
struct Seen {
    rules: BTreeMap<String, i64>,
    sources: BTreeMap<String, i64>,
    global_baskets: i64,
    /// Per dataflow time: |updates| of rules and of recommendations.
    churn: BTreeMap<Time, [i64; 2]>,
    /// `rules`, `sources`, `global_baskets` once the mining is done.
    at_mining: Option<serde_json::Value>,
    /// Per worker: mining seconds, then each fold's milliseconds.
    mining_s: Vec<f64>,
    fold_ms: Vec<Vec<f64>>,
    operators: BTreeMap<(Vec<usize>, String), OpStat>,
}

/// One operator (`--operators`): busy seconds while mining and while folding,
/// and the updates its arrangement (spine) and batcher hold, summed over workers.
#[derive(Default, Clone, Copy)]
struct OpStat {
    busy_s: [f64; 2],
    spine_records_peak: i64,
    batcher_bytes_peak: i64,
}

/// Phases the memory watchdog reports.
const PHASES: [&str; 4] = ["loading", "feeding rows", "mining", "folding"];

/// Stops the process (exit 3, with a RESULT line saying so) when its resident
/// memory passes `limit_kb`: the machine is shared, and the kernel's OOM
/// killer might pick someone else's process.
fn watchdog(limit_kb: u64, phase: Arc<AtomicUsize>, fed: Arc<AtomicU64>, started: Instant) {
    std::thread::spawn(move || loop {
        let rss = proc_kb("/proc/self/status", "VmRSS:");
        if rss > limit_kb {
            let what = PHASES[phase.load(Ordering::Relaxed).min(3)];
            let msg = format!(
                "RSS {} passed the limit {} while {what} ({} rows fed) after {:.1} s",
                gib(rss as f64),
                gib(limit_kb as f64),
                fed.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            );
            eprintln!("child: {msg}; stopping");
            println!("RESULT {}", serde_json::json!({ "failed": msg }));
            std::process::exit(3);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    });
}

fn child(args: &Args, workers: usize) {
    let data = args.data.clone().expect("the child gets --data");
    let started = Instant::now();
    let (phase, fed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
    let limit_kb = args.rss_limit_gib.map_or_else(
        || proc_kb("/proc/meminfo", "MemAvailable:") * 9 / 10,
        |g| (g * 1048576.0) as u64,
    );
    watchdog(limit_kb, phase.clone(), fed.clone(), started);
    let mut tables =
        tables::load(&data).unwrap_or_else(|e| panic!("loading {}: {e}", data.display()));
    let load_s = started.elapsed().as_secs_f64();
    let rss_load_kb = proc_kb("/proc/self/status", "VmHWM:");
    let load_cpu_s = cpu_seconds();
    let (folds, file_baskets) = new_baskets(&tables, args.new, args.folds);
    let purchase_rows = tables.purchases.len();
    eprintln!(
        "child -w {workers}: loaded {purchase_rows} rows ({file_baskets} baskets) in {load_s:.1} s, \
         RSS {}",
        gib(rss_load_kb as f64)
    );
    // Each worker's share of the purchase rows moves into the dataflow (as the
    // host's `run` moves them): no copy stays behind.
    let mut shares: Vec<Vec<PurchaseRow>> = vec![Vec::new(); workers];
    for (i, row) in std::mem::take(&mut tables.purchases)
        .into_iter()
        .enumerate()
    {
        shares[i % workers].push(row);
    }
    let shares: Arc<Vec<Mutex<Vec<PurchaseRow>>>> =
        Arc::new(shares.into_iter().map(Mutex::new).collect());
    let tables = Arc::new(tables);
    let folds = Arc::new(folds);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (intern, operators) = (args.intern, args.operators);
    let fragment = args.fragment.clone();
    assert!(
        ["full", "rules", "global-rules"].contains(&fragment.as_str()),
        "--fragment: full, rules or global-rules"
    );

    let cfg = ClusterConfig::single(workers).timely();
    let (t2, s2, f2) = (tables.clone(), seen.clone(), folds.clone());
    let guards = timely::execute(cfg, move |worker| {
        let (tables, seen, folds, fragment) = (&t2, s2.clone(), &f2, fragment.as_str());
        let (index, peers) = (worker.index(), worker.peers());
        let op_log = operators.then(|| register_op_log(worker));
        let probe = ProbeHandle::new();
        let (s_rules, s_recs, s_sizes) = (seen.clone(), seen.clone(), seen.clone());
        let (mut rows_in, mut weather_in, mut stores_in, mut loyalty_in) = worker
            .dataflow::<Time, _, _>(|scope| {
                let (rows_in, rows) = scope.new_collection();
                let (weather_in, weather) = scope.new_collection();
                let (stores_in, stores) = scope.new_collection();
                let (loyalty_in, loyalty) = scope.new_collection();
                let params = BasketParams::default();
                let (rules, recommendations, sizes) = if fragment == "full" {
                    let out = market_basket(rows, weather, stores, loyalty, &params);
                    (out.rules, Some(out.recommendations), out.sizes)
                } else {
                    // The mining alone (`global-rules`: no weather, so only `global`).
                    let scoped = scoped_baskets(baskets(rows), stores, weather);
                    let sizes = scope_sizes(scoped.clone());
                    let levels = frequent_itemsets(scoped, sizes.clone(), &params);
                    (mining_rules(&levels, sizes.clone(), &params), None, sizes)
                };
                rules
                    .inspect(move |(r, t, d)| {
                        let mut s = s_rules.lock().unwrap();
                        let name = scope_name(&r.scope).to_string();
                        *s.rules.entry(name).or_default() += *d as i64;
                        s.churn.entry(*t).or_default()[0] += d.abs() as i64;
                    })
                    .probe_with(&probe);
                recommendations.map(|recs| {
                    recs.inspect(move |(r, t, d)| {
                        let source = match &r.pick.source {
                            Source::Rule(_) => "rule".to_string(),
                            s => s.to_string(),
                        };
                        let mut s = s_recs.lock().unwrap();
                        *s.sources.entry(source).or_default() += *d as i64;
                        s.churn.entry(*t).or_default()[1] += d.abs() as i64;
                    })
                    .probe_with(&probe)
                });
                sizes
                    .inspect(move |((s, n), _, d)| {
                        if s.is_none() {
                            s_sizes.lock().unwrap().global_baskets += *n as i64 * *d as i64;
                        }
                    })
                    .probe_with(&probe);
                (rows_in, weather_in, stores_in, loyalty_in)
            });

        // Time 0: this worker's share of the purchases (worker 0: the tables).
        let t = Instant::now();
        if index == 0 {
            phase.store(1, Ordering::Relaxed);
        }
        let share = std::mem::take(&mut *shares[index].lock().unwrap());
        for (n, row) in share.into_iter().enumerate() {
            rows_in.update_at(if intern { row } else { unshared(&row) }, 0, 1);
            if n % (1 << 16) == 0 {
                fed.fetch_add(1 << 16, Ordering::Relaxed);
                worker.step(); // let the batchers take what is sent so far
            }
        }
        if index == 0 {
            let weather = if fragment == "global-rules" {
                &[][..]
            } else {
                &tables.weather[..]
            };
            for w in weather {
                let row = WeatherRow {
                    region: w.region.as_str().into(),
                    date: w.date,
                    condition: w.condition.as_str().into(),
                };
                weather_in.update_at(row, 0, 1);
            }
            for s in &tables.stores {
                stores_in.update_at(s.clone(), 0, 1);
            }
            for l in &tables.loyalty {
                loyalty_in.update_at(l.clone(), 0, 1);
            }
        }
        // The tables are static here: only the purchases change.
        let mut advance_tables = |to: Time| {
            weather_in.advance_to(to);
            weather_in.flush();
            stores_in.advance_to(to);
            stores_in.flush();
            loyalty_in.advance_to(to);
            loyalty_in.flush();
        };
        rows_in.advance_to(1);
        rows_in.flush();
        advance_tables(1);
        let fed_s = t.elapsed().as_secs_f64();
        if index == 0 {
            phase.store(2, Ordering::Relaxed);
        }
        worker.step_or_park_while(None, || probe.less_than(&1));
        let mining_s = t.elapsed().as_secs_f64();
        if index == 0 {
            phase.store(3, Ordering::Relaxed);
            let mut s = seen.lock().unwrap();
            s.at_mining = Some(serde_json::json!({
                "rules": s.rules, "sources": s.sources, "global_baskets": s.global_baskets,
                "churn": s.churn.get(&0), "peak_rss_kb": proc_kb("/proc/self/status", "VmHWM:"),
                "cpu_s": cpu_seconds(), "thread_cpu_s": thread_cpu_seconds(),
            }));
            eprintln!(
                "child -w {peers}: mining done in {mining_s:.2} s (rows fed by {fed_s:.2} s), \
                 RSS {}, peak {}",
                gib(proc_kb("/proc/self/status", "VmRSS:") as f64),
                gib(proc_kb("/proc/self/status", "VmHWM:") as f64)
            );
        }
        if let Some(l) = &op_log {
            l.borrow_mut().phase = 1;
        }

        // Time k: fold k-1's new baskets in, wait for the probe to pass k + 1.
        let mut fold_ms = Vec::new();
        for (k, fold) in folds.iter().enumerate() {
            let now = (k + 1) as Time;
            let t = Instant::now();
            for basket in fold.iter().skip(index).step_by(peers) {
                for row in basket {
                    rows_in.update_at(row.clone(), now, 1);
                }
            }
            rows_in.advance_to(now + 1);
            rows_in.flush();
            advance_tables(now + 1);
            worker.step_or_park_while(None, || probe.less_than(&(now + 1)));
            fold_ms.push(t.elapsed().as_secs_f64() * 1e3);
            if index == 0 {
                eprintln!("child -w {peers}: fold {now}: {:.1} ms", fold_ms[k]);
            }
        }
        let mut s = seen.lock().unwrap();
        s.mining_s.push(mining_s);
        s.fold_ms.push(fold_ms);
        if let Some(l) = op_log {
            let l = l.borrow();
            for (id, (addr, name)) in &l.names {
                let e = s.operators.entry((addr.clone(), name.clone())).or_default();
                let busy = l.busy.get(id).copied().unwrap_or_default();
                e.busy_s[0] += busy[0];
                e.busy_s[1] += busy[1];
                e.spine_records_peak += l.spine.get(id).map_or(0, |x| x.1);
                e.batcher_bytes_peak += l.batcher.get(id).map_or(0, |x| x.1);
            }
        }
    })
    .expect("timely starts");
    guards.join();

    let s = seen.lock().unwrap();
    let max = |xs: &mut dyn Iterator<Item = f64>| xs.fold(0.0, f64::max);
    let fold_ms: Vec<f64> = (0..folds.len())
        .map(|k| max(&mut s.fold_ms.iter().map(|w| w[k])))
        .collect();
    // Leaf operators (the dataflow itself is the one at depth 1), busiest first.
    let mut ops: Vec<_> = s
        .operators
        .iter()
        .filter(|((a, _), _)| a.len() > 1)
        .collect();
    ops.sort_by(|a, b| (b.1.busy_s[0] + b.1.busy_s[1]).total_cmp(&(a.1.busy_s[0] + a.1.busy_s[1])));
    let ops: Vec<_> = ops
        .iter()
        .map(|((addr, name), o)| {
            serde_json::json!({
                "addr": addr, "name": name, "mining_busy_s": o.busy_s[0],
                "folds_busy_s": o.busy_s[1], "spine_records_peak": o.spine_records_peak,
                "batcher_bytes_peak": o.batcher_bytes_peak,
            })
        })
        .collect();
    let result = serde_json::json!({
        "workers": workers,
        "load_s": load_s,
        "rss_after_load_kb": rss_load_kb,
        "load_cpu_s": load_cpu_s,
        "purchase_rows": purchase_rows,
        "file_baskets": file_baskets,
        "at_mining": s.at_mining,
        "mining_s": max(&mut s.mining_s.iter().copied()),
        "fold_baskets": args.new,
        "fold_ms": fold_ms,
        "churn": s.churn.iter().map(|(t, c)| (t.to_string(), c.to_vec())).collect::<BTreeMap<_, _>>(),
        "rules_after_folds": s.rules,
        "global_baskets_after_folds": s.global_baskets,
        "peak_rss_kb": proc_kb("/proc/self/status", "VmHWM:"),
        "cpu_s": cpu_seconds(),
        "wall_s": started.elapsed().as_secs_f64(),
        "intern": intern,
        "operators": ops,
    });
    println!("RESULT {result}");
}

// --- the parent: dataset, children, peers, report ------------------------------

/// The `cdrflow` binary that generates the dataset.
fn binary(root: &Path) -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_cdrflow") {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    let p = root.join("target/release/cdrflow");
    if !p.exists() {
        run_checked(
            Command::new("cargo")
                .args(["build", "--release", "--bin", "cdrflow"])
                .current_dir(root),
            "building cdrflow",
        );
    }
    p
}

/// The cached dataset: generated once per basket count, reused after.
fn dataset(root: &Path, baskets: u64) -> PathBuf {
    let dir = root.join(format!("datasets/generated/bench-baskets-{baskets}"));
    let marker = dir.join(".complete");
    let args = format!("--scale large --cdrs 1000 --baskets {baskets} --products 500 --seed 42");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == args) {
        println!("dataset: {} (cached; `generate {args}`)", dir.display());
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut gen = Command::new(binary(root));
    gen.arg("generate")
        .args(args.split(' '))
        .arg("--out")
        .arg(&dir)
        .arg("-q");
    let t = Instant::now();
    run_checked(&mut gen, "generating the dataset");
    std::fs::write(&marker, format!("{args}\n")).expect("writing the dataset marker");
    println!(
        "dataset: {} (generated in {:.1} s by `{}`)",
        dir.display(),
        t.elapsed().as_secs_f64(),
        shell_words(&gen)
    );
    dir
}

/// Runs `cmd`, passing its stderr through; its stdout and wall seconds.
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

/// The fold times of a child's result, `a / b / c` ms.
fn fold_list(r: &serde_json::Value) -> String {
    let ms: Vec<String> = r["fold_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| format!("{:.1}", x.as_f64().unwrap_or(f64::NAN)))
        .collect();
    ms.join(" / ")
}

struct Ours {
    label: String,
    command: String,
    r: serde_json::Value,
}

struct Peer {
    name: String,
    /// Mining (+ rules) seconds, and load + prep + mining + rules.
    mine_s: f64,
    total_s: f64,
    rss_kb: f64,
    rules: Option<i64>,
    status: String,
}

fn parent(args: &Args) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python: String = env_or("BENCH_PYTHON", "python3".to_string());
    println!("== cdrflow market-basket benchmark (SPEC §4, §7; issue 3) ==");
    println!("machine: {}", machine());
    let head = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(&root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("code: git {head}");
    let tuning: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MIMALLOC_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !tuning.is_empty() {
        println!(
            "environment (inherited by the children): {}",
            tuning.join(" ")
        );
    }
    let data = match &args.data {
        Some(d) => {
            println!("dataset: {} (given)", d.display());
            d.clone()
        }
        None => dataset(&root, args.baskets),
    };
    let p = BasketParams::default();
    println!(
        "params: min support {}, min confidence {}, max len {} (SPEC defaults); {} folds of {} new baskets",
        p.min_support.to_f64(),
        p.min_confidence.to_f64(),
        p.max_len,
        args.folds,
        args.new
    );
    let me = std::env::current_exe().expect("the bench binary's path");
    let built = std::fs::metadata(&me)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or("?".into(), |d| format!("{:.0} min", d.as_secs_f64() / 60.0));
    println!(
        "bench binary: {} (built {built} ago; `code` above is the tree now)",
        me.display()
    );
    let mut failed: Vec<(String, String, String)> = Vec::new();

    // 1. The basket fragment, one child process per worker count.
    let mut ours = Vec::new();
    let runs = args
        .fragments
        .iter()
        .flat_map(|f| args.workers.iter().map(move |&w| (f.clone(), w)));
    for (frag, w) in runs {
        let mut cmd = Command::new(&me);
        cmd.env(CHILD_ENV, w.to_string())
            .arg("--data")
            .arg(&data)
            .args(["--fragment", &frag])
            .args(["--new", &args.new.to_string()])
            .args(["--folds", &args.folds.to_string()]);
        if !args.intern {
            cmd.arg("--no-intern");
        }
        if args.operators {
            cmd.arg("--operators");
        }
        if let Some(g) = args.rss_limit_gib {
            cmd.args(["--rss-limit-gib", &g.to_string()]);
        }
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
            println!(
                "{frag} -w {w}: FAILED after {wall:.1} s wall, load avg {lb:.2} -> {la:.2}: {why}"
            );
            failed.push((format!("cdrflow {frag} -w {w}"), command, why));
            continue;
        };
        let m = &r["at_mining"];
        let rules: BTreeMap<String, i64> =
            serde_json::from_value(m["rules"].clone()).unwrap_or_default();
        println!(
            "{frag} -w {w}: load {:.2} s ({} rows, {} baskets; RSS {}) | mining {:.2} s = {:.0} k baskets/s | \
             rules {} ({}) | recommendations {} | fold {} new baskets: {} ms | peak RSS {} | \
             CPU {:.1} s (mining: {}), wall {:.1} s | load avg {lb:.2} -> {la:.2}",
            f(&r, "load_s"),
            r["purchase_rows"],
            m["global_baskets"],
            gib(f(&r, "rss_after_load_kb")),
            f(&r, "mining_s"),
            f(m, "global_baskets") / f(&r, "mining_s") / 1e3,
            rules.values().sum::<i64>(),
            rules
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            m["sources"],
            args.new,
            fold_list(&r),
            gib(f(&r, "peak_rss_kb")),
            f(&r, "cpu_s"),
            m["thread_cpu_s"],
            wall,
        );
        println!(
            "  updates per time [rules, recommendations] (0 = mining, k = fold k): {}",
            r["churn"]
        );
        if let Some(ops) = r["operators"].as_array().filter(|o| !o.is_empty()) {
            println!(
                "  operators, busiest first (summed over workers; spine = updates held at the peak):"
            );
            println!(
                "  {:>10} {:>10} {:>14} {:>12}  operator",
                "mining s", "folds s", "spine updates", "batcher MiB"
            );
            for o in ops.iter().take(args.top_ops) {
                println!(
                    "  {:>10.2} {:>10.2} {:>14} {:>12.1}  {} {}",
                    f(o, "mining_busy_s"),
                    f(o, "folds_busy_s"),
                    o["spine_records_peak"],
                    f(o, "batcher_bytes_peak") / 1048576.0,
                    o["name"].as_str().unwrap_or("?"),
                    o["addr"]
                );
            }
        }
        ours.push(Ours {
            label: format!("cdrflow {frag} -w {w}"),
            command,
            r,
        });
    }

    // 2. The peers on the same purchases.csv (global context only).
    let mut peers = Vec::new();
    let mut peer_command = String::new();
    if args.peers {
        let mut cmd = Command::new(&python);
        cmd.arg(root.join("scripts/basket_peers.py"))
            .arg("--purchases")
            .arg(data.join("purchases.csv"))
            .args(["--json", "--skip", "mlxtend-fpgrowth", "--timeout"])
            .arg(format!("{}", args.peer_timeout));
        peer_command = shell_words(&cmd);
        println!("\n$ {peer_command}");
        let (_, stdout, wall, lb, la) = run_captured(&mut cmd);
        let report: serde_json::Value = stdout
            .lines()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        println!("peers: {wall:.1} s wall, load avg {lb:.2} -> {la:.2}");
        for (name, r) in report["peers"].as_object().into_iter().flatten() {
            let status = r["status"].as_str().unwrap_or("?").to_string();
            if status != "ok" {
                println!("  {name:<16} {status}");
                peers.push(Peer {
                    name: name.clone(),
                    mine_s: 0.0,
                    total_s: 0.0,
                    rss_kb: 0.0,
                    rules: None,
                    status,
                });
                continue;
            }
            let g = |k: &str| r[k].as_f64().unwrap_or(0.0);
            let peer = Peer {
                name: name.clone(),
                mine_s: g("mine_s") + g("rules_s"),
                total_s: g("load_s") + g("prep_s") + g("mine_s") + g("rules_s"),
                rss_kb: g("peak_rss_mb") * 1024.0,
                rules: r["rules"].as_i64(),
                status,
            };
            println!(
                "  {:<16} load {:.2} s, prep {:.2} s, mine {:.2} s, rules {:.2} s; itemsets {}, rules {}; peak RSS {}; {}",
                peer.name,
                g("load_s"),
                g("prep_s"),
                g("mine_s"),
                g("rules_s"),
                r["itemsets"],
                r["rules"],
                gib(peer.rss_kb),
                peer.status
            );
            peers.push(peer);
        }
    }

    // 3. Summary.
    println!("\n== summary: {} ==", data.display());
    println!("machine: {}", machine());
    println!(
        "| figure | seconds | CPU s | peak RSS (at mining) | rules (global) | fold {} ms | ratio |",
        args.new
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for o in &ours {
        let r = &o.r;
        let rules: BTreeMap<String, i64> =
            serde_json::from_value(r["at_mining"]["rules"].clone()).unwrap_or_default();
        println!(
            "| {} mining (load {:.1} s apart) | {:.2} | {:.1} | {} ({}) | {} ({}) | {} | |",
            o.label,
            f(r, "load_s"),
            f(r, "mining_s"),
            f(&r["at_mining"], "cpu_s") - f(r, "load_cpu_s"),
            gib(f(r, "peak_rss_kb")),
            gib(f(&r["at_mining"], "peak_rss_kb")),
            rules.values().sum::<i64>(),
            rules.get("global").copied().unwrap_or(0),
            fold_list(r),
        );
    }
    for p in peers.iter().filter(|p| p.status == "ok") {
        let ratio: Vec<String> = ours
            .iter()
            .map(|o| format!("{} {:.1}×", o.label, f(&o.r, "mining_s") / p.mine_s))
            .collect();
        println!(
            "| {} mining{} (load+prep {:.1} s apart) | {:.2} | | {} | {} | | {} |",
            p.name,
            if p.name.starts_with("mlxtend") {
                " + rules"
            } else {
                ""
            },
            p.total_s - p.mine_s,
            p.mine_s,
            gib(p.rss_kb),
            p.rules.map_or("-".into(), |r| r.to_string()),
            ratio.join(", "),
        );
    }
    for p in peers.iter().filter(|p| p.status != "ok") {
        println!("| {} | - | | - | - | | {} |", p.name, p.status);
    }
    for (label, _, why) in &failed {
        println!("| {label} | failed: {why} | | | | | |");
    }
    println!(
        "\nratio = cdrflow mining seconds ÷ peer mining (+ rules) seconds; below 1 = cdrflow faster."
    );
    for o in &ours {
        for p in peers.iter().filter(|p| p.status == "ok") {
            println!(
                "  end to end (CSV load included): {} {:.1} s vs {} {:.1} s = {:.1}×",
                o.label,
                f(&o.r, "load_s") + f(&o.r, "mining_s"),
                p.name,
                p.total_s,
                (f(&o.r, "load_s") + f(&o.r, "mining_s")) / p.total_s
            );
        }
    }
    println!(
        "not the same work: the peers mine the `global` context only. `cdrflow full` is \
         market_basket as `cdrflow run` wires it: `global` and every weather condition, plus \
         profiles and a recommendation for every loyalty customer in every context. \
         `cdrflow global-rules` is the peers' work: the same mining functions, no weather \
         (so `global` only), no recommendations. cdrflow's seconds include turning the loaded \
         rows into dataflow records and exchanging them between workers; its CSV load parses \
         and validates every column (pandas reads two)."
    );
    println!(
        "SPEC §7 target: {} new baskets folded into rules in < 100 ms.",
        args.new
    );
    println!("\ncommands:");
    for o in &ours {
        println!("  {}", o.command);
    }
    for (_, command, _) in &failed {
        println!("  {command}");
    }
    if !peer_command.is_empty() {
        println!("  {peer_command}");
    }
}
