//! Refusals: a missing file or column, no token key, a bad flag — each stops the
//! run with a message naming the problem and a non-zero exit (SPEC §2, §5).

use crate::util::*;

fn stderr_of(args: &[&str]) -> (bool, String) {
    let out = run(args, false);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_file_and_missing_column_are_named() {
    let data = generate("tiny", 3, Some(200));
    let out = tempfile::tempdir().unwrap();
    let (d, o) = (data.path().to_str().unwrap(), out.path().to_str().unwrap());

    std::fs::rename(
        data.path().join("towers.csv"),
        data.path().join("towers.bak"),
    )
    .unwrap();
    let (ok, err) = stderr_of(&["run", "--data", d, "--out", o]);
    assert!(
        !ok && err.contains("towers.csv"),
        "missing file named: {err}"
    );

    let towers = read(data.path().join("towers.bak"));
    let renamed = towers.replacen("lat", "latitude", 1);
    std::fs::write(data.path().join("towers.csv"), renamed).unwrap();
    let (ok, err) = stderr_of(&["run", "--data", d, "--out", o]);
    assert!(
        !ok && err.contains("towers.csv") && err.contains("`lat`"),
        "missing column named: {err}"
    );
    std::fs::write(data.path().join("towers.csv"), towers).unwrap();

    std::fs::copy(
        data.path().join("cdrs.jsonl"),
        data.path().join("cdrs.jsonl.gz"),
    )
    .unwrap();
    let (ok, err) = stderr_of(&["run", "--data", d, "--out", o]);
    assert!(
        !ok && err.contains("cdrs.jsonl.gz"),
        "both CDR files: {err}"
    );
}

#[test]
fn no_token_key_is_refused_unless_insecure_dev_key() {
    let data = generate("tiny", 5, Some(200));
    let out = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--data",
        data.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "-q",
    ];
    let refused = bin()
        .env_remove("CDRFLOW_TOKEN_KEY")
        .args(args)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("CDRFLOW_TOKEN_KEY"));
    assert!(
        !out.path().join("promotions.csv").exists(),
        "nothing written when refused"
    );
    let dev = bin()
        .env_remove("CDRFLOW_TOKEN_KEY")
        .args(args)
        .arg("--insecure-dev-key")
        .output()
        .unwrap();
    assert!(
        dev.status.success(),
        "{}",
        String::from_utf8_lossy(&dev.stderr)
    );
}

#[test]
fn bad_duration_flag_is_refused() {
    let (ok, err) = stderr_of(&["run", "--data", "x", "--out", "y", "--lateness", "5 weeks"]);
    assert!(!ok && err.contains("--lateness"), "{err}");
}

#[test]
fn gzip_input_gives_the_same_outputs_as_plain() {
    let data = generate("tiny", 9, Some(1500));
    let root = tempfile::tempdir().unwrap();
    let plain = root.path().join("plain");
    run_pipeline(data.path(), &plain, &["-w", "2"]);
    let gz_data = tempfile::tempdir().unwrap();
    let seed = "9";
    run(
        &[
            "generate",
            "--out",
            gz_data.path().to_str().unwrap(),
            "--scale",
            "tiny",
            "--seed",
            seed,
            "--cdrs",
            "1500",
            "--gzip",
            "-q",
        ],
        true,
    );
    let gz = root.path().join("gz");
    run_pipeline(gz_data.path(), &gz, &["-w", "2"]);
    assert_same_tree(&plain, &gz, "plain vs gzip");
}

#[test]
fn a_repeated_tower_or_road_node_is_dead_lettered_and_the_first_row_kept() {
    let data = generate("tiny", 13, Some(300));
    let towers = read(data.path().join("towers.csv"));
    let first_row = towers.lines().nth(1).unwrap().to_string();
    let lines_before = towers.lines().count();
    std::fs::write(
        data.path().join("towers.csv"),
        format!("{towers}{first_row}\n"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    run_pipeline(data.path(), out.path(), &["-w", "1"]);
    let dead = read(out.path().join("dead_letter.jsonl"));
    let expected = format!(
        "{{\"source\":\"towers.csv\",\"line\":{},\"reason\":\"bad_value:cell_id\",\"raw\":{}}}",
        lines_before + 1,
        serde_json::to_string(&first_row).unwrap()
    );
    assert!(
        dead.lines().any(|l| l == expected),
        "expected {expected} in\n{dead}"
    );
    assert_eq!(metrics(out.path())["csv_dead_lettered"]["towers.csv"], 1);
}

#[test]
fn bad_segment_expression_is_refused_with_file_line_and_column() {
    let data = generate("tiny", 5, Some(200));
    let out = tempfile::tempdir().unwrap();
    let defs = out.path().join("mine.segments");
    std::fs::write(
        &defs,
        "# mine\nchatty = sms_count >= 1\nbroken = events >= and 3\n",
    )
    .unwrap();
    let o = out.path().join("out");
    let (ok, err) = stderr_of(&[
        "run",
        "--data",
        data.path().to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
        "--segments",
        defs.to_str().unwrap(),
    ]);
    let at = format!("{}:3:", defs.display());
    assert!(!ok && err.contains(&at), "names file and line 3: {err}");
    // The column follows the line: `broken = events >= and 3`, `and` at 20.
    assert!(
        err.contains(&format!("{at}20")),
        "names the column of `and`: {err}"
    );
    assert!(
        !o.join("promotions.csv").exists(),
        "nothing written when refused"
    );
}

#[test]
fn segments_file_replaces_the_defaults() {
    let data = generate("tiny", 6, Some(1500));
    let root = tempfile::tempdir().unwrap();
    let defs = root.path().join("mine.segments");
    std::fs::write(
        &defs,
        "texter = sms_count >= 1 and not (voice_seconds > 0)\nany = events >= 1\n",
    )
    .unwrap();
    let out = root.path().join("out");
    run_pipeline(data.path(), &out, &["--segments", defs.to_str().unwrap()]);
    let mut names = std::collections::BTreeSet::new();
    let mut any = 0;
    for day in std::fs::read_dir(out.join("segments")).unwrap() {
        let text = read(day.unwrap().path().join("segments.csv"));
        for line in text.lines().skip(1) {
            let segment = line.split_once(',').unwrap().1;
            let family = segment.split(':').next().unwrap();
            names.insert(if segment.contains(':') {
                format!("{family}:")
            } else {
                segment.to_string()
            });
            any += (segment == "any") as usize;
        }
    }
    let expected: std::collections::BTreeSet<String> =
        ["age:", "any", "gender:", "plan:"].map(String::from).into();
    assert!(
        names.is_subset(
            &expected
                .iter()
                .cloned()
                .chain(["texter".to_string()])
                .collect()
        ),
        "only the built-ins and the file's segments: {names:?}"
    );
    assert!(
        expected.is_subset(&names),
        "built-ins and `any` present: {names:?}"
    );
    assert!(any > 0);
}

#[test]
fn token_key_file_gives_the_tokens_of_the_same_key_in_the_environment() {
    let data = generate("tiny", 7, Some(800));
    let root = tempfile::tempdir().unwrap();
    let (env_out, file_out) = (root.path().join("env"), root.path().join("file"));
    run_pipeline(data.path(), &env_out, &[]);
    let key = root.path().join("key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    let out = bin()
        .env_remove("CDRFLOW_TOKEN_KEY")
        .args(["run", "--data", data.path().to_str().unwrap(), "--out"])
        .arg(&file_out)
        .args(["-q", "--token-key-file", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let promotions = read(env_out.join("promotions.csv"));
    assert!(
        promotions.lines().count() > 1,
        "the fixture promotes someone"
    );
    assert_eq!(promotions, read(file_out.join("promotions.csv")));
    let other = root.path().join("other");
    std::fs::write(&key, "another key").unwrap();
    let out = bin()
        .env_remove("CDRFLOW_TOKEN_KEY")
        .args(["run", "--data", data.path().to_str().unwrap(), "--out"])
        .arg(&other)
        .args(["-q", "--token-key-file", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_ne!(
        promotions,
        read(other.join("promotions.csv")),
        "the key changes the tokens"
    );
}
