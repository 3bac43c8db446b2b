//! Throughput benchmark (SPEC §7): the whole `cdrflow run` over a generated
//! `cdrs.jsonl`, side by side with the DuckDB baseline on the same files.
//!
//! ```text
//! cdrflow generate ──▶ datasets/generated/bench-<N>/ (cached, git-ignored)
//!        │
//!        ├─▶ /usr/bin/time -v cdrflow run -w 1      ─▶ wall, CPU, peak RSS, CDRs/s
//!        ├─▶ /usr/bin/time -v cdrflow run -w 2      ─▶ …
//!        ├─▶ scripts/duckdb_baseline.py --mode read-dedup  (SPEC's "reads and dedups")
//!        └─▶ scripts/duckdb_baseline.py --mode pipeline    (SPEC §2–3 as SQL)
//!                                                   ─▶ table + ratios
//! ```
//!
//! Run: `cargo bench --bench throughput` (or `scripts/bench.sh`). Knobs
//! (environment): `BENCH_CDRS` (default 10 000 000), `BENCH_WORKERS` (default
//! `1,2`), `BENCH_SCALE` (generator preset, default `medium`), `BENCH_SEED`
//! (default 42), `BENCH_SUBSCRIBERS` and `BENCH_DAYS` (override the preset's;
//! issue 14's figure is `BENCH_CDRS=2000000 BENCH_SUBSCRIBERS=20000
//! BENCH_DAYS=31`), `BENCH_DUCKDB` (`all` = both modes, `read` = read-dedup only,
//! `none`; default `all`), `BENCH_PYTHON` (default `python3`). The binary is the
//! one `cargo bench` builds for this bench (`CARGO_BIN_EXE_cdrflow`, release
//! settings), else `target/release/cdrflow`, built with `cargo build --release`
//! when missing.
//!
//! Peak RSS, wall and CPU time come from `/usr/bin/time -v` (`apt-get install
//! time`; `scripts/setup-bench.sh`); without it, wall time is measured here and
//! peak RSS is the last `VmHWM` polled from `/proc/<pid>/status` (a lower bound).
//! The load average is printed before and after every run: the machine is shared,
//! so a figure measured under load above ~1.5 should be re-run.

#[path = "common.rs"]
mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What one measured child process cost.
#[derive(Debug, Default, Clone)]
struct Usage {
    wall_s: f64,
    cpu_s: Option<f64>,
    peak_rss_kb: Option<u64>,
    load_before: f64,
    load_after: f64,
}

/// One `cdrflow run` figure.
struct RustRun {
    workers: usize,
    command: String,
    usage: Usage,
    cdrs_read: u64,
    promotions: u64,
}

/// One DuckDB figure (the script's `RESULT {json}` line).
struct DuckRun {
    mode: String,
    command: String,
    result: serde_json::Value,
    compare: Vec<String>,
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

fn have_gnu_time() -> bool {
    Path::new("/usr/bin/time").exists()
        && Command::new("/usr/bin/time")
            .args(["-v", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Runs `cmd` to completion and measures it. `cmd`'s stdout/stderr are kept
/// (returned) so callers can parse them.
fn measure(cmd: &Command, gnu_time: bool) -> (Usage, ExitStatus, String, String) {
    let mut real = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-v").arg(cmd.get_program()).args(cmd.get_args());
        c
    } else {
        let mut c = Command::new(cmd.get_program());
        c.args(cmd.get_args());
        c
    };
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => real.env(k, v),
            None => real.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        real.current_dir(dir);
    }
    real.stdout(Stdio::piped()).stderr(Stdio::piped());
    let load_before = load_average();
    let start = Instant::now();
    let mut child = real
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", shell_words(cmd)));
    // Drain the pipes on threads so a chatty child never blocks.
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out_pipe, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err_pipe, &mut s).ok();
        s
    });
    let status_path = format!("/proc/{}/status", child.id());
    let mut polled_hwm: Option<u64> = None;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for child") {
            break status;
        }
        if !gnu_time {
            if let Ok(s) = std::fs::read_to_string(&status_path) {
                polled_hwm = s
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                    .or(polled_hwm);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed().as_secs_f64();
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let mut usage = Usage {
        wall_s: wall,
        load_before,
        load_after: load_average(),
        peak_rss_kb: polled_hwm,
        cpu_s: None,
    };
    if gnu_time {
        let field = |name: &str| {
            stderr
                .lines()
                .find_map(|l| l.trim().strip_prefix(name)?.trim().parse::<f64>().ok())
        };
        usage.peak_rss_kb = field("Maximum resident set size (kbytes):").map(|k| k as u64);
        usage.cpu_s = match (
            field("User time (seconds):"),
            field("System time (seconds):"),
        ) {
            (Some(u), Some(s)) => Some(u + s),
            _ => None,
        };
    }
    (usage, status, stdout, stderr)
}

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

/// Copies the binary to `out_root/bin/` and returns the copy: other builds on a
/// shared machine may replace `target/release/cdrflow` between the runs, and every
/// figure of one report must come from the same executable.
fn pin(bin: &Path, out_root: &Path) -> PathBuf {
    let dir = out_root.join("bin");
    std::fs::create_dir_all(&dir).expect("creating target/bench-out/bin");
    let copy = dir.join("cdrflow");
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(bin, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", bin.display()));
    let meta = std::fs::metadata(bin).ok();
    let age = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .map_or("?".into(), |d| format!("{:.0} s", d.as_secs_f64()));
    println!(
        "binary: {} (built {age} ago), pinned as {}",
        bin.display(),
        copy.display()
    );
    copy
}

/// Preset overrides of the dataset: `--subscribers`, `--days`.
#[derive(Clone, Copy, Default)]
struct Shape {
    subscribers: Option<u64>,
    days: Option<u32>,
}

/// The cached dataset: generated once per (N, scale, seed, shape), reused after.
fn dataset(root: &Path, bin: &Path, n: u64, scale: &str, seed: u64, shape: Shape) -> PathBuf {
    let mut dir = root.join(format!("datasets/generated/bench-{n}"));
    if scale != "medium" || seed != 42 {
        dir = root.join(format!("datasets/generated/bench-{n}-{scale}-{seed}"));
    }
    if let Some(s) = shape.subscribers {
        dir = PathBuf::from(format!("{}-s{s}", dir.display()));
    }
    if let Some(d) = shape.days {
        dir = PathBuf::from(format!("{}-d{d}", dir.display()));
    }
    let marker = dir.join(".complete");
    let mut gen = Command::new(bin);
    gen.args(["generate", "--scale", scale, "--seed"])
        .arg(seed.to_string())
        .arg("--cdrs")
        .arg(n.to_string())
        .arg("--out")
        .arg(&dir)
        .arg("--quiet");
    if let Some(s) = shape.subscribers {
        gen.args(["--subscribers", &s.to_string()]);
    }
    if let Some(d) = shape.days {
        gen.args(["--days", &d.to_string()]);
    }
    let wanted = shell_words(&gen);
    // The marker names the generator's arguments, not the binary's path.
    let args = wanted
        .split_once(" generate ")
        .map_or("", |(_, a)| a)
        .to_string();
    let cached = std::fs::read_to_string(&marker).is_ok_and(|m| m.trim().ends_with(args.trim()));
    if cached && dir.join("cdrs.jsonl").exists() {
        println!(
            "dataset: {} (cached; made by `generate {args}`)",
            dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        let t = Instant::now();
        run_checked(&mut gen, "generating the dataset");
        std::fs::write(&marker, format!("{wanted}\n")).expect("writing the dataset marker");
        println!(
            "dataset: {} (generated in {:.1} s by `{wanted}`)",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
    }
    dir
}

fn read_metrics(out: &Path) -> BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(out.join("metrics.json"))
        .unwrap_or_else(|e| panic!("reading {}/metrics.json: {e}", out.display()));
    serde_json::from_str(&text).expect("metrics.json is a JSON object")
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M/s", x / 1e6)
    } else {
        format!("{:.0} k/s", x / 1e3)
    }
}

fn fmt_rss(kb: Option<u64>) -> String {
    kb.map_or("?".into(), |kb| format!("{:.2} GiB", kb as f64 / 1048576.0))
}

fn main() {
    // `cargo bench` passes `--bench`; ignore every argument.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let n: u64 = env_or("BENCH_CDRS", 10_000_000);
    let scale: String = env_or("BENCH_SCALE", "medium".to_string());
    let seed: u64 = env_or("BENCH_SEED", 42);
    let duck_modes: String = env_or("BENCH_DUCKDB", "all".to_string());
    let python: String = env_or("BENCH_PYTHON", "python3".to_string());
    let workers: Vec<usize> = env_or("BENCH_WORKERS", "1,2".to_string())
        .split(',')
        .map(|w| w.trim().parse().expect("BENCH_WORKERS: a list like 1,2"))
        .collect();
    let token_key = std::env::var("CDRFLOW_TOKEN_KEY").unwrap_or_else(|_| "bench-key".into());
    let gnu_time = have_gnu_time();

    println!("== cdrflow throughput benchmark (SPEC §7) ==");
    println!("machine: {}", machine());
    let head = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(&root)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("code: git {head}");
    println!(
        "measured with: {}",
        if gnu_time {
            "/usr/bin/time -v (wall, user+sys CPU, max RSS)"
        } else {
            "wall clock + polled VmHWM (no /usr/bin/time: `apt-get install time`)"
        }
    );
    let out_root = root.join("target/bench-out");
    let bin = pin(&binary(&root), &out_root);
    let shape = Shape {
        subscribers: std::env::var("BENCH_SUBSCRIBERS")
            .ok()
            .map(|_| env_or("BENCH_SUBSCRIBERS", 0)),
        days: std::env::var("BENCH_DAYS")
            .ok()
            .map(|_| env_or("BENCH_DAYS", 0)),
    };
    let data = dataset(&root, &bin, n, &scale, seed, shape);

    // 1. cdrflow run, once per worker count.
    let mut rust_runs = Vec::new();
    for &w in &workers {
        let out = out_root.join(format!("cdrflow-w{w}"));
        let _ = std::fs::remove_dir_all(&out);
        let mut cmd = Command::new(&bin);
        cmd.env("CDRFLOW_TOKEN_KEY", &token_key)
            .arg("run")
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .args(["-w", &w.to_string(), "-q"]);
        let command = shell_words(&cmd);
        println!("\n$ {command}");
        let (usage, status, _, stderr) = measure(&cmd, gnu_time);
        if !status.success() {
            eprintln!("{stderr}");
            panic!("cdrflow run -w {w} failed: {status}");
        }
        let m = read_metrics(&out);
        let get = |k: &str| m.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let run = RustRun {
            workers: w,
            command,
            usage,
            cdrs_read: get("cdrs_read"),
            promotions: get("promotions"),
        };
        println!(
            "cdrflow -w {w}: {} CDRs in {:.2} s wall ({} CPU s) = {}; peak RSS {}; {} promotions; load {:.2} -> {:.2}",
            run.cdrs_read,
            run.usage.wall_s,
            run.usage.cpu_s.map_or("?".into(), |c| format!("{c:.2}")),
            fmt_rate(run.cdrs_read as f64 / run.usage.wall_s),
            fmt_rss(run.usage.peak_rss_kb),
            run.promotions,
            run.usage.load_before,
            run.usage.load_after,
        );
        rust_runs.push(run);
    }

    // 2. DuckDB on the same files.
    let mut duck_runs = Vec::new();
    let modes: &[&str] = match duck_modes.as_str() {
        "none" => &[],
        "read" => &["read-dedup"],
        _ => &["read-dedup", "pipeline"],
    };
    let script = root.join("scripts/duckdb_baseline.py");
    for &mode in modes {
        let mut cmd = Command::new(&python);
        cmd.env("CDRFLOW_TOKEN_KEY", &token_key)
            .arg(&script)
            .arg("--data")
            .arg(&data)
            .args(["--mode", mode, "--threads", "2"]);
        if mode == "pipeline" {
            cmd.arg("--out").arg(out_root.join("duckdb"));
            if let Some(w) = rust_runs.last() {
                cmd.arg("--compare")
                    .arg(out_root.join(format!("cdrflow-w{}", w.workers)));
            }
        }
        let command = shell_words(&cmd);
        println!("\n$ {command}");
        let (usage, status, stdout, stderr) = measure(&cmd, gnu_time);
        if !status.success() {
            println!("duckdb {mode} failed ({status}):\n{stdout}\n{stderr}");
            continue;
        }
        for line in stdout.lines().filter(|l| !l.starts_with("RESULT ")) {
            println!("  {line}");
        }
        let result: serde_json::Value = stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .and_then(|j| serde_json::from_str(j).ok())
            .expect("the baseline prints a RESULT line");
        println!(
            "  (whole process: {:.2} s wall, peak RSS {}, load {:.2} -> {:.2})",
            usage.wall_s,
            fmt_rss(usage.peak_rss_kb),
            usage.load_before,
            usage.load_after
        );
        let compare = stdout
            .lines()
            .filter(|l| l.starts_with("compare"))
            .map(String::from)
            .collect();
        duck_runs.push(DuckRun {
            mode: mode.to_string(),
            command,
            result,
            compare,
        });
    }

    // 3. Summary.
    println!("\n== summary: {n} CDRs, {} ==", data.display());
    println!("machine: {}", machine());
    println!(
        "{:<34} {:>10} {:>12} {:>12} {:>10}",
        "figure", "seconds", "rows/s", "peak RSS", "load"
    );
    for r in &rust_runs {
        println!(
            "{:<34} {:>10.2} {:>12} {:>12} {:>10.2}",
            format!("cdrflow run -w {}", r.workers),
            r.usage.wall_s,
            fmt_rate(r.cdrs_read as f64 / r.usage.wall_s),
            fmt_rss(r.usage.peak_rss_kb),
            r.usage.load_before.max(r.usage.load_after),
        );
    }
    for d in &duck_runs {
        let secs = d.result["seconds"].as_f64().unwrap_or(f64::NAN);
        let rate = d.result["rows_per_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<34} {:>10.2} {:>12} {:>12} {:>10.2}",
            format!(
                "duckdb {} ({} threads)",
                d.mode,
                d.result["threads"].as_i64().unwrap_or(0)
            ),
            secs,
            fmt_rate(rate),
            fmt_rss(d.result["peak_rss_kb"].as_u64()),
            d.result["loadavg"].as_f64().unwrap_or(f64::NAN),
        );
    }
    println!("\nratios (cdrflow CDRs/s ÷ DuckDB rows/s, same files):");
    for r in &rust_runs {
        let ours = r.cdrs_read as f64 / r.usage.wall_s;
        for d in &duck_runs {
            let theirs = d.result["rows_per_s"].as_f64().unwrap_or(f64::NAN);
            println!(
                "  cdrflow -w {} vs duckdb {:<10} = {:.2}×",
                r.workers,
                d.mode,
                ours / theirs
            );
        }
    }
    for d in &duck_runs {
        for c in &d.compare {
            println!("  {c}");
        }
    }
    println!(
        "SPEC §7 target: >= 2 M CDRs/s with 2 workers; best here: {}",
        rust_runs
            .iter()
            .filter(|r| r.workers == 2)
            .map(|r| fmt_rate(r.cdrs_read as f64 / r.usage.wall_s))
            .next()
            .unwrap_or_else(|| "(no -w 2 run)".into())
    );
    println!("\ncommands:");
    for r in &rust_runs {
        println!("  {}", r.command);
    }
    for d in &duck_runs {
        println!("  {}", d.command);
    }
}
