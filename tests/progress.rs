//! Progress on stderr when it is not a terminal (`Command::output` pipes it):
//! plain lines ending with a final one; `-q` prints none.

use std::path::Path;

use crate::util::*;

/// The progress lines of `verb` ("read", "wrote") in `stderr`.
fn progress_lines(stderr: &[u8], verb: &str) -> Vec<String> {
    let prefix = format!("cdrflow: {verb} ");
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Asserts the last progress line is `cdrflow: VERB N CDRs (100% of FILE), R M lines/s, END`
/// and is the only one ending so.
fn assert_final_line(stderr: &[u8], verb: &str, n: i64, file: &Path, end: &str) {
    let lines = progress_lines(stderr, verb);
    let head = format!("cdrflow: {verb} {n} CDRs (100% of {}), ", file.display());
    let tail = format!(" M lines/s, {end}");
    let last = lines.last().unwrap_or_else(|| {
        panic!(
            "no progress line in stderr:\n{}",
            String::from_utf8_lossy(stderr)
        )
    });
    assert!(
        last.starts_with(&head) && last.ends_with(&tail),
        "final line {last:?}, expected {head:?}…{tail:?}"
    );
    let finals = lines.iter().filter(|l| l.ends_with(&tail)).count();
    assert_eq!(finals, 1, "one final line: {lines:?}");
}

#[test]
fn generate_prints_a_final_progress_line_and_q_silences_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args = ["generate", "--out", out, "--scale", "tiny", "--seed", "3"];
    let loud = run(&args, true);
    let cdrs = dir.path().join("cdrs.jsonl");
    assert_final_line(&loud.stderr, "wrote", 2000, &cdrs, "done");

    let quiet = run(&[&args[..], &["-q"]].concat(), true);
    assert!(
        quiet.stderr.is_empty(),
        "-q: {}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}

#[test]
fn run_prints_one_final_progress_line_and_q_silences_it() {
    let data = generate("tiny", 3, None);
    let out = tempfile::tempdir().unwrap();
    let (d, o) = (data.path().to_str().unwrap(), out.path().to_str().unwrap());
    // Two workers: only worker 0 reports.
    let args = ["run", "--data", d, "--out", o, "-w", "2"];
    let loud = run(&args, true);
    let n = int(&metrics(out.path()), "cdrs_read");
    let cdrs = data.path().join("cdrs.jsonl");
    assert_final_line(&loud.stderr, "read", n, &cdrs, "input done");

    let quiet = run(&[&args[..], &["-q"]].concat(), true);
    assert_eq!(progress_lines(&quiet.stderr, "read"), Vec::<String>::new());
}

#[test]
fn run_on_gzip_shows_the_share_of_the_compressed_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let gen = ["generate", "--out", data, "--scale", "tiny", "--seed", "3"];
    run(&[&gen[..], &["--gzip", "-q"]].concat(), true);
    let out = tempfile::tempdir().unwrap();
    let loud = run(
        &["run", "--data", data, "--out", out.path().to_str().unwrap()],
        true,
    );
    let n = int(&metrics(out.path()), "cdrs_read");
    let cdrs = dir.path().join("cdrs.jsonl.gz");
    assert_final_line(&loud.stderr, "read", n, &cdrs, "input done");
}
