//! `run --cdr-source generator`: the CDR lines rendered in process from
//! `generator.json` give every output byte for byte as `generate` writing
//! `cdrs.jsonl` and `run` reading it, for one worker, two workers and two
//! processes; `--cdrs N` equals `generate --cdrs N`; `generate
//! --no-cdr-file` needs no file; a dataset without the manifest is refused.
//! Also `run --trace`: parseable lines whose last count is `cdrs_read`.

use std::path::Path;
use std::process::Stdio;

use crate::util::*;

/// Small blocks, so the workers really split the lines (256 lines a block).
const BLOCKS: [&str; 2] = ["--block-size", "65536"];

/// Runs two processes of one worker each; process 0 writes into `out`.
fn run_two_processes(data: &Path, out: &Path, extra: &[&str]) {
    let root = out.parent().unwrap();
    let port = 25000 + (std::process::id() % 2000) as u16;
    let hostfile = root.join("hosts");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{port}\n127.0.0.1:{}\n", port + 1),
    )
    .unwrap();
    let unused = root.join("p2-unused");
    let spawn = |p: &str, out: &Path| {
        bin()
            .args(["run", "--data", data.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap(), "-q", "-w", "1", "-n", "2"])
            .args(["-p", p, "-h", hostfile.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut children = [spawn("0", out), spawn("1", &unused)];
    // Bounded wait: a process that cannot connect would retry forever.
    wait_all(&mut children, 120);
}

#[test]
fn the_generator_source_writes_the_bytes_of_the_file_run() {
    let data = generate("tiny", 7, Some(6000));
    let root = tempfile::tempdir().unwrap();
    let out = |name: &str| root.path().join(name);
    run_pipeline(data.path(), &out("file"), &["-w", "1"]);

    // The dataset plants every kind of line the equality must cover.
    let m = metrics(&out("file"));
    assert_eq!(int(&m, "cdrs_read"), 6000);
    assert!(int(&m, "cdrs_duplicate") > 0, "{m}");
    assert!(int(&m, "cdrs_late") > 0, "{m}");
    let reasons = m["dead_letter_reasons"].as_object().unwrap();
    assert!(reasons.keys().any(|r| r != "late"), "malformed lines: {m}");

    let generator = ["--cdr-source", "generator"];
    run_pipeline(
        data.path(),
        &out("g1"),
        &[&generator[..], &["-w", "1"]].concat(),
    );
    assert_same_tree(&out("file"), &out("g1"), "file vs generator -w 1");
    run_pipeline(
        data.path(),
        &out("g2"),
        &[&generator[..], &["-w", "2"], &BLOCKS[..]].concat(),
    );
    assert_same_tree(&out("file"), &out("g2"), "file vs generator -w 2");
    run_two_processes(
        data.path(),
        &out("p2"),
        &[&generator[..], &BLOCKS[..]].concat(),
    );
    assert_same_tree(&out("file"), &out("p2"), "file vs generator, two processes");

    // A dataset without its CDR file renders the same lines.
    let bare = tempfile::tempdir().unwrap();
    let dir = bare.path().to_str().unwrap();
    let args = ["generate", "--out", dir, "--scale", "tiny", "--seed", "7"];
    run(
        &[&args[..], &["--cdrs", "6000", "--no-cdr-file", "-q"]].concat(),
        true,
    );
    assert!(bare.path().join("generator.json").exists());
    assert!(!bare.path().join("cdrs.jsonl").exists());
    run_pipeline(
        bare.path(),
        &out("bare"),
        &[&generator[..], &["-w", "2"]].concat(),
    );
    assert_same_tree(
        &out("file"),
        &out("bare"),
        "file vs generator without a file",
    );

    // --cdrs N renders the lines of `generate --cdrs N`.
    let fewer = generate("tiny", 7, Some(2500));
    run_pipeline(fewer.path(), &out("file-2500"), &["-w", "1"]);
    run_pipeline(
        bare.path(),
        &out("g-2500"),
        &[&generator[..], &["--cdrs", "2500", "-w", "2"]].concat(),
    );
    assert_same_tree(&out("file-2500"), &out("g-2500"), "--cdrs 2500");
}

#[test]
fn the_generator_source_needs_the_manifest_and_no_topic_or_follow() {
    let root = tempfile::tempdir().unwrap();
    let o = root.path().join("out");
    let o = o.to_str().unwrap();
    // A generated dataset whose manifest is gone.
    let d = generate("tiny", 1, Some(100));
    std::fs::remove_file(d.path().join("generator.json")).unwrap();
    let data = d.path().to_str().unwrap().to_string();
    let args = [
        "run",
        "--data",
        &data,
        "--out",
        o,
        "--cdr-source",
        "generator",
    ];
    let refused = run(&[&args[..], &["-q"]].concat(), false);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("generator.json") && err.contains("missing"),
        "{err}"
    );

    for extra in [
        &["--follow"][..],
        &["--kafka-brokers", "x:1", "--cdr-topic", "t"],
    ] {
        let refused = run(&[&args[..], extra].concat(), false);
        assert!(!refused.status.success(), "{extra:?}");
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("--cdr-source"), "{extra:?}: {err}");
    }
    let refused = run(&["run", "--data", &data, "--out", o, "--cdrs", "5"], false);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--cdr-source generator"));
}

#[test]
fn the_trace_ends_with_the_cdrs_read() {
    let data = generate("tiny", 3, Some(3000));
    let root = tempfile::tempdir().unwrap();
    let (out, trace) = (root.path().join("out"), root.path().join("trace.jsonl"));
    let t = trace.to_str().unwrap();
    run_pipeline(
        data.path(),
        &out,
        &["-w", "2", "--trace", t, "--trace-records"],
    );
    let lines: Vec<serde_json::Value> = read(&trace)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let (summary, intervals) = lines.split_last().expect("a summary line");
    assert_eq!(summary["summary"], true, "{summary}");
    let cdrs_read = int(&metrics(&out), "cdrs_read");
    assert_eq!(summary["cdrs"].as_i64(), Some(cdrs_read));
    let last = intervals.last().expect("an interval line");
    assert_eq!(last["cdrs"].as_i64(), Some(cdrs_read));
    for l in intervals {
        for key in ["t_s", "cdrs_per_s", "cdrs_per_s_overall"] {
            assert!(l[key].is_number(), "{key}: {l}");
        }
        assert!(l["arrangement_records"].is_i64(), "{l}");
    }
    assert!(
        summary["peak_arrangement_records"].as_i64() > Some(0),
        "{summary}"
    );
}
