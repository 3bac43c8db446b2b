//! Helpers shared by the integration tests: the real `cdrflow` binary, temp
//! directories, and generated datasets (cached per test process).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const KEY: &str = "test-key";

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cdrflow"));
    c.env("CDRFLOW_TOKEN_KEY", KEY);
    c
}

/// Runs the binary, returns its output; panics with stderr if `expect_ok` and it failed.
pub fn run(args: &[&str], expect_ok: bool) -> Output {
    let out = bin().args(args).output().expect("cdrflow binary runs");
    if expect_ok && !out.status.success() {
        panic!(
            "cdrflow {:?} failed: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A generated dataset in a fresh temp dir.
pub fn generate(scale: &str, seed: u64, cdrs: Option<u64>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed.to_string();
    let mut args = vec![
        "generate",
        "--out",
        dir.path().to_str().unwrap(),
        "--scale",
        scale,
        "--seed",
        &seed,
        "-q",
    ];
    let n;
    if let Some(c) = cdrs {
        n = c.to_string();
        args.extend(["--cdrs", &n]);
    }
    run(&args, true);
    dir
}

/// Runs `cdrflow run` on `data` into `out` with extra args.
pub fn run_pipeline(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    run(&args, true)
}

pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn metrics(out: &Path) -> serde_json::Value {
    serde_json::from_str(&read(out.join("metrics.json"))).expect("metrics.json is JSON")
}

pub fn int(m: &serde_json::Value, key: &str) -> i64 {
    m[key]
        .as_i64()
        .unwrap_or_else(|| panic!("metrics.json has no integer `{key}`: {m}"))
}

/// Every file under `dir`, relative path → bytes, for byte-for-byte comparison.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Asserts two output trees are identical, naming the first differing file and line.
pub fn assert_same_tree(a: &Path, b: &Path, what: &str) {
    let (ta, tb) = (tree(a), tree(b));
    assert_eq!(
        ta.keys().collect::<Vec<_>>(),
        tb.keys().collect::<Vec<_>>(),
        "{what}: different files"
    );
    for (name, bytes) in &ta {
        let other = &tb[name];
        if bytes != other {
            let (sa, sb) = (
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(other),
            );
            let line = sa.lines().zip(sb.lines()).position(|(x, y)| x != y);
            panic!(
                "{what}: {} differs at line {:?}:\n  {:?}\n  {:?}",
                name.display(),
                line.map(|l| l + 1),
                line.and_then(|l| sa.lines().nth(l)),
                line.and_then(|l| sb.lines().nth(l))
            );
        }
    }
}

/// Waits for every child to exit successfully; kills them all and panics
/// after `secs` seconds (a cluster process that cannot connect retries
/// forever). Polls `try_wait`: the children are not ours to `wait` on twice.
pub fn wait_all(children: &mut [std::process::Child], secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    for i in 0..children.len() {
        loop {
            if let Some(status) = children[i].try_wait().unwrap() {
                assert!(status.success(), "a cluster process failed");
                break;
            }
            if std::time::Instant::now() > deadline {
                children.iter_mut().for_each(|c| {
                    let _ = c.kill();
                });
                panic!("the cluster run did not finish in {secs} s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
