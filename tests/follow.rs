//! `run --follow`: a live run over files that grow while it runs. Waits are
//! bounded polls of the output files (no sleeps as synchronisation).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{assert_same_tree, bin, read, run_pipeline};

const DEADLINE: Duration = Duration::from_secs(90);

/// Copies a fixture's files (not `expected/`) into a fresh dir.
pub fn copy_dataset(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = vec![from.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            let rel = p.strip_prefix(from).unwrap();
            if rel.starts_with("expected") || rel.ends_with("README.md") {
                continue;
            }
            if p.is_dir() {
                std::fs::create_dir_all(dir.path().join(rel)).unwrap();
                stack.push(p);
            } else {
                std::fs::copy(&p, dir.path().join(rel)).unwrap();
            }
        }
    }
    dir
}

pub fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Polls `cond` until it holds; panics (after killing `child`) at the deadline.
fn wait_until(child: &mut Child, what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what}: the run exited early with {status}");
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("{what}: not seen within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn file_has(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle))
}

/// `datasets/loyalty_changes` fed in two steps: day 0's CDRs with no change
/// file, then the change file and the other days appended while the run
/// follows. Promotions appear for day 0, the opt-outs appended later retract
/// them (−1 lines), the view converges to the batch run's, and SIGTERM ends
/// the run with exit 0 and every output byte-identical to the batch run.
#[test]
fn appended_lines_and_opt_outs_reach_every_output() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/loyalty_changes");
    let data = copy_dataset(&fixture);
    let cdrs = read(fixture.join("cdrs.jsonl"));
    let lines: Vec<&str> = cdrs.lines().collect();
    let (day0, later) = lines.split_at(8);
    std::fs::write(data.path().join("cdrs.jsonl"), day0.join("\n") + "\n").unwrap();
    std::fs::write(data.path().join("loyalty_changes.jsonl"), "").unwrap();

    // The outputs also go to upsert topics, where the opt-out is a tombstone.
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let out = tempfile::tempdir().unwrap();
    let mut child: Child = bin()
        .args(["run", "--follow", "--flush-interval", "0s", "-q", "--data"])
        .arg(data.path())
        .arg("--out")
        .arg(out.path())
        .args(["--kafka-brokers", &brokers, "--sink-topic-prefix", "f"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let promotions = out.path().join("promotions.csv");
    // C1 is opted in before the change file says otherwise.
    wait_until(&mut child, "day 0 promotion of C1", || {
        file_has(&promotions, "2026-03-02,C1,")
    });

    append(
        &data.path().join("loyalty_changes.jsonl"),
        &read(fixture.join("loyalty_changes.jsonl")),
    );
    append(&data.path().join("cdrs.jsonl"), &(later.join("\n") + "\n"));
    let batch = tempfile::tempdir().unwrap();
    run_pipeline(&fixture, batch.path(), &[]);
    let want = read(batch.path().join("promotions.csv"));
    wait_until(&mut child, "the batch run's promotions", || {
        std::fs::read_to_string(&promotions).is_ok_and(|t| t == want)
    });
    // The opt-out's tombstone of C1's day-0 promotion is in the change stream.
    let changes = read(out.path().join("promotions.changes.jsonl"));
    assert!(
        changes
            .lines()
            .any(|l| l.contains("\"diff\":-1") && l.contains("\"record_id\":\"d0-m1\"")),
        "{changes}"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_same_tree(batch.path(), out.path(), "batch vs follow");
    // C1's day-0 promotion: produced, then its tombstone (the opt-out).
    let settings = cdrflow::kafka::KafkaSettings::new(brokers);
    let c1: Vec<Option<String>> = crate::kafka::read_all(&settings, "f.promotions")
        .into_iter()
        .filter(|r| r.key == "C1|2026-03-02")
        .map(|r| r.value)
        .collect();
    assert_eq!(c1.len(), 2, "{c1:?}");
    assert!(
        c1[0].as_deref().is_some_and(|v| v.contains("d0-m1")),
        "{c1:?}"
    );
    assert_eq!(c1[1], None);
}
