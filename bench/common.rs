//! Helpers shared by the benchmarks (each includes this file with
//! `#[path = "common.rs"] mod common;`): the machine line, the load average,
//! `/proc` figures and printable commands.

#![allow(dead_code)] // each benchmark uses its own subset

use std::process::Command;

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
