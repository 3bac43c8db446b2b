//! Helpers shared by the benchmarks (each includes this file with
//! `#[path = "common.rs"] mod common;`): the machine line, the load average,
//! `/proc` figures, printable commands and the operator log (`--operators`).

#![allow(dead_code)] // each benchmark uses its own subset

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::Command;
use std::rc::Rc;

/// `N cores (nproc), CPU model, RAM, kernel`: the machine line every report prints.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("?".to_string(), |(_, m)| m.trim().to_string());
    let mem_gib = match proc_kb("/proc/meminfo", "MemTotal:") {
        0 => "?".to_string(),
        kb => format!("{:.1} GiB", kb as f64 / 1048576.0),
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores (nproc), {model}, {mem_gib} RAM, Linux {}",
        kernel.trim()
    )
}

/// The 1-minute load average (NaN when unreadable).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A `kB` figure of a `/proc` file such as `/proc/self/status` (`VmHWM:`)
/// or `/proc/meminfo` (`MemAvailable:`); 0 when absent.
pub fn proc_kb(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The command as a shell line (environment first), quoted where needed.
pub fn shell_words(cmd: &Command) -> String {
    let quote = |s: &str| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@".contains(c))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let mut words: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, quote(v?.to_str()?))))
        .collect();
    words.push(quote(&cmd.get_program().to_string_lossy()));
    words.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    words.join(" ")
}

/// Runs `cmd`, echoing it; panics (naming `what`) unless it succeeds.
pub fn run_checked(cmd: &mut Command, what: &str) {
    eprintln!("bench: {what}: {}", shell_words(cmd));
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{what}: spawning: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// A worker's operator log: timely's `Operates`/`Schedule` events and
/// differential's batch, merge, drop and batcher events, per operator id:
/// `busy` seconds per phase, `spine` and `batcher` as (now, peak).
#[derive(Default)]
pub struct OpLog {
    /// Which slot of `busy` the schedules count into (a benchmark's phase).
    pub phase: usize,
    pub names: HashMap<usize, (Vec<usize>, String)>,
    pub started: HashMap<usize, std::time::Duration>,
    pub busy: HashMap<usize, [f64; 2]>,
    pub spine: HashMap<usize, (i64, i64)>,
    pub batcher: HashMap<usize, (i64, i64)>,
}

/// Registers the operator log on `worker` (`--operators` of the benchmarks);
/// the busy time of each schedule goes to the log's current `phase`.
pub fn register_op_log(worker: &mut timely::worker::Worker) -> Rc<RefCell<OpLog>> {
    use differential_dataflow::logging::{DifferentialEvent as D, DifferentialEventBuilder};
    use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};
    let log = Rc::new(RefCell::new(OpLog::default()));
    let mut registry = worker.log_register().expect("timely logging");
    let l = log.clone();
    registry.insert::<TimelyEventBuilder, _>("timely", move |_, data| {
        let mut l = l.borrow_mut();
        for (t, e) in data.iter().flatten() {
            match e {
                TimelyEvent::Operates(o) => {
                    l.names.insert(o.id, (o.addr.clone(), o.name.clone()));
                }
                TimelyEvent::Schedule(s) if s.start_stop == StartStop::Start => {
                    l.started.insert(s.id, *t);
                }
                TimelyEvent::Schedule(s) => {
                    if let Some(start) = l.started.remove(&s.id) {
                        let phase = l.phase;
                        l.busy.entry(s.id).or_default()[phase] += (*t - start).as_secs_f64();
                    }
                }
                _ => {}
            }
        }
    });
    let l = log.clone();
    registry.insert::<DifferentialEventBuilder, _>("differential/arrange", move |_, data| {
        let mut l = l.borrow_mut();
        let OpLog {
            spine: spines,
            batcher: batchers,
            ..
        } = &mut *l;
        let mut spine = |op: usize, d: i64| {
            let e = spines.entry(op).or_default();
            e.0 += d;
            e.1 = e.1.max(e.0);
        };
        for (_, e) in data.iter().flatten() {
            match e {
                D::Batch(b) => spine(b.operator, b.length as i64),
                D::Merge(m) => {
                    if let Some(n) = m.complete {
                        spine(m.operator, n as i64 - m.length1 as i64 - m.length2 as i64);
                    }
                }
                D::Drop(d) => spine(d.operator, -(d.length as i64)),
                D::Batcher(b) => {
                    let e = batchers.entry(b.operator).or_default();
                    e.0 += b.size_diff as i64;
                    e.1 = e.1.max(e.0);
                }
                _ => {}
            }
        }
    });
    log
}
