//! The optional change files `loyalty_changes.jsonl` and `stores_changes.jsonl`
//! (SPEC §1): `{"at":epoch,"op":"upsert",…all columns…}` or
//! `{"at":epoch,"op":"delete","<key>":…}`. A missing file means no changes. Bad
//! lines are dead-lettered (`malformed_json`, `missing_field:<f>`,
//! `bad_value:<f>`) with the file as source and their 1-based line.
//!
//! Changes come back sorted by `at`, file order kept among equal `at` (a stable
//! sort), which is the order the SPEC applies them in.

use std::path::Path;

use cdrflow_dataflows::model::{Change, DeadLetter, Reason};
use serde_json::Value;

/// The changes of a file (sorted by `at`) and its dead letters.
pub type Changes<V> = (Vec<Change<String, V>>, Vec<DeadLetter>);

/// Reads `dir/rel`. An upsert's columns are handed to `convert` as text, in the
/// order of `columns` (JSON numbers and booleans as their literal text, null or
/// absent as empty), so the CSV rules apply unchanged. `columns[0]` is the key.
pub fn read_changes<V>(
    dir: &Path,
    rel: &str,
    columns: &[&str],
    convert: impl for<'a> Fn(&dyn Fn(usize) -> &'a str) -> Result<V, Reason>,
) -> std::io::Result<Changes<V>> {
    let mut tail = ChangeTail::new(dir, rel);
    tail.read(columns, convert, false)
}

/// A change file read as it grows (`--follow`): where the last read stopped.
#[derive(Clone, Debug)]
pub struct ChangeTail {
    path: std::path::PathBuf,
    rel: String,
    /// Bytes and lines read so far.
    offset: u64,
    lines: u64,
}

impl ChangeTail {
    /// A reader of `dir/rel` from its start.
    pub fn new(dir: &Path, rel: &str) -> Self {
        ChangeTail {
            path: dir.join(rel),
            rel: rel.into(),
            offset: 0,
            lines: 0,
        }
    }

    /// Reads the lines after the last read (sorted by `at`, file order
    /// among equals). With `complete_only`, a last line without its newline
    /// is left for the next read (a writer may be in the middle of it).
    pub fn read<V>(
        &mut self,
        columns: &[&str],
        convert: impl for<'a> Fn(&dyn Fn(usize) -> &'a str) -> Result<V, Reason>,
        complete_only: bool,
    ) -> std::io::Result<Changes<V>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut changes = Vec::new();
        let mut dead = Vec::new();
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((changes, dead)),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut rest: &[u8] = &bytes;
        while !rest.is_empty() {
            let (line, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None if complete_only => break,
                None => (rest, &rest[rest.len()..]),
            };
            self.offset += (rest.len() - next.len()) as u64;
            self.lines += 1;
            rest = next;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse_change(line, columns, &convert) {
                Ok(c) => changes.push(c),
                Err(reason) => dead.push(DeadLetter {
                    source: self.rel.clone(),
                    line: self.lines,
                    reason,
                    raw: String::from_utf8_lossy(line).into_owned(),
                }),
            }
        }
        changes.sort_by_key(|c: &Change<String, V>| c.at());
        Ok((changes, dead))
    }
}

fn parse_change<V>(
    line: &[u8],
    columns: &[&str],
    convert: &impl for<'a> Fn(&dyn Fn(usize) -> &'a str) -> Result<V, Reason>,
) -> Result<Change<String, V>, Reason> {
    let value: Value = serde_json::from_slice(line).map_err(|_| Reason::MalformedJson)?;
    let Value::Object(obj) = value else {
        return Err(Reason::MalformedJson);
    };
    let at = match obj.get("at") {
        None | Some(Value::Null) => return Err(Reason::MissingField("at".into())),
        Some(v) => v.as_i64().ok_or_else(|| Reason::BadValue("at".into()))?,
    };
    let op = match obj.get("op") {
        None | Some(Value::Null) => return Err(Reason::MissingField("op".into())),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Reason::BadValue("op".into())),
    };
    let text = |name: &str| -> String {
        match obj.get(name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(other) => other.to_string(),
        }
    };
    match op {
        "upsert" => {
            let fields: Vec<String> = columns.iter().map(|c| text(c)).collect();
            let value = convert(&|i| fields[i].as_str())?;
            Ok(Change::Upsert {
                at,
                key: fields[0].clone(),
                value,
            })
        }
        "delete" => {
            let key = text(columns[0]);
            if key.is_empty() {
                return Err(Reason::MissingField(columns[0].into()));
            }
            Ok(Change::Delete { at, key })
        }
        _ => Err(Reason::BadValue("op".into())),
    }
}
