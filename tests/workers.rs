//! Determinism: the same input gives the same output bytes for one worker, two
//! workers, and two processes of one worker each (SPEC §6). Small blocks make
//! the workers really split the CDR file, so lateness and line numbers are
//! decided across block boundaries.

use std::process::Stdio;

use crate::util::*;

#[test]
fn one_worker_two_workers_and_two_processes_write_the_same_bytes() {
    let data = generate("tiny", 7, Some(6000));
    let root = tempfile::tempdir().unwrap();
    let (w1, w2, p2) = (
        root.path().join("w1"),
        root.path().join("w2"),
        root.path().join("p2"),
    );
    run_pipeline(data.path(), &w1, &["-w", "1", "--block-size", "65536"]);
    run_pipeline(data.path(), &w2, &["-w", "2", "--block-size", "65536"]);

    // Two processes on localhost, on a port range unlikely to clash.
    let port = 23000 + (std::process::id() % 2000) as u16;
    let hostfile = root.path().join("hosts");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{port}\n127.0.0.1:{}\n", port + 1),
    )
    .unwrap();
    let spawn = |p: &str, out: &std::path::Path| {
        bin()
            .args([
                "run",
                "--data",
                data.path().to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ])
            .args([
                "-w",
                "1",
                "-n",
                "2",
                "-p",
                p,
                "-h",
                hostfile.to_str().unwrap(),
                "--block-size",
                "65536",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = vec![spawn("0", &p2), spawn("1", &root.path().join("p2-unused"))];
    // Bounded wait: a process that cannot connect would retry forever.
    wait_all(&mut children, 120);
    assert!(
        !root.path().join("p2-unused").exists(),
        "only process 0 writes outputs"
    );

    assert!(
        read(w1.join("promotions.csv")).lines().count() > 10,
        "the fixture should produce promotions"
    );
    assert_same_tree(&w1, &w2, "-w 1 vs -w 2");
    assert_same_tree(&w1, &p2, "-w 1 vs two processes");
}
