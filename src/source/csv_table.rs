//! Reading one CSV file of the dataset (SPEC §1, §2): header row, RFC 4180
//! quoting, extra columns ignored, column order free. A row that cannot be used
//! becomes a [`DeadLetter`] (`malformed_csv`, `missing_field:<column>`,
//! `bad_value:<column>`) with its 1-based line (the header is line 1); a missing
//! file or a missing required column is an [`SourceError`] that stops the run.

use std::path::{Path, PathBuf};

use cdrflow_dataflows::model::{DeadLetter, Reason};

/// Errors that stop the run: the file or a required column is missing, or the
/// file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("missing required file {path}")]
    MissingFile { path: PathBuf },
    #[error("{path}: missing required column `{column}` (header: {header})")]
    MissingColumn {
        path: PathBuf,
        column: String,
        header: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// One data row, with access by column name.
pub struct Row<'a> {
    record: &'a csv::StringRecord,
    index: &'a [usize],
}

impl<'a> Row<'a> {
    /// The value of required column number `i` (in the order given to
    /// [`read_csv`]), trimmed of surrounding ASCII whitespace.
    pub fn get(&self, i: usize) -> &'a str {
        self.record.get(self.index[i]).unwrap_or("").trim()
    }
}

/// What [`read_csv`] gives back: the typed rows with their line numbers, and the
/// dead letters of the rows that failed.
pub struct Table<T> {
    pub rows: Vec<(u64, T)>,
    pub dead: Vec<DeadLetter>,
}

/// Reads `dir/rel`, checks that every column of `columns` is in the header, and
/// converts each row with `convert`, which sees the row and returns the value or
/// the reason it is rejected.
pub fn read_csv<T>(
    dir: &Path,
    rel: &str,
    columns: &[&str],
    mut convert: impl FnMut(&Row) -> Result<T, Reason>,
) -> Result<Table<T>, SourceError> {
    let path = dir.join(rel);
    if !path.exists() {
        return Err(SourceError::MissingFile { path });
    }
    let file = std::fs::File::open(&path).map_err(|source| SourceError::Io {
        path: path.clone(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(std::io::BufReader::new(file));
    let mut raw = csv::ByteRecord::new();
    let mut header: Option<Vec<String>> = None;
    let mut index = Vec::new();
    let mut table = Table {
        rows: Vec::new(),
        dead: Vec::new(),
    };
    // Byte range of each dead row, to copy its raw text from the file afterwards.
    let mut dead_ranges: Vec<(u64, u64)> = Vec::new();
    loop {
        let line_hint = reader.position().line();
        let byte_start = reader.position().byte();
        match reader.read_byte_record(&mut raw) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => {
                // A CSV syntax error: dead-letter what we can point at and go on.
                let line = err.position().map(|p| p.line()).unwrap_or(line_hint.max(1));
                if header.is_none() {
                    return Err(SourceError::Invalid {
                        path,
                        message: format!("unreadable header: {err}"),
                    });
                }
                table
                    .dead
                    .push(dead(rel, line, Reason::MalformedCsv, String::new()));
                dead_ranges.push((byte_start, reader.position().byte()));
                continue;
            }
        }
        let line = raw.position().map(|p| p.line()).unwrap_or(line_hint);
        let Some(head) = &header else {
            let names: Vec<String> = raw
                .iter()
                .map(|f| {
                    String::from_utf8_lossy(f)
                        .trim()
                        .trim_start_matches('\u{feff}')
                        .to_string()
                })
                .collect();
            for col in columns {
                match names.iter().position(|n| n == col) {
                    Some(i) => index.push(i),
                    None => {
                        return Err(SourceError::MissingColumn {
                            path,
                            column: col.to_string(),
                            header: names.join(","),
                        })
                    }
                }
            }
            header = Some(names);
            continue;
        };
        if raw.len() == 1 && raw.get(0).is_some_and(|f| f.is_empty()) {
            continue; // a blank line
        }
        let outcome = if raw.len() != head.len() {
            Err(Reason::MalformedCsv)
        } else {
            match csv::StringRecord::from_byte_record(raw.clone()) {
                Ok(record) => convert(&Row {
                    record: &record,
                    index: &index,
                }),
                Err(_) => Err(Reason::MalformedCsv),
            }
        };
        match outcome {
            Ok(v) => table.rows.push((line, v)),
            Err(reason) => {
                table.dead.push(dead(rel, line, reason, String::new()));
                dead_ranges.push((byte_start, reader.position().byte()));
            }
        }
    }
    if header.is_none() {
        return Err(SourceError::Invalid {
            path,
            message: "empty file: no header row".into(),
        });
    }
    fill_raw(&path, &mut table.dead, &dead_ranges).map_err(|source| SourceError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(table)
}

fn dead(rel: &str, line: u64, reason: Reason, raw: String) -> DeadLetter {
    DeadLetter {
        source: rel.to_string(),
        line,
        reason,
        raw,
    }
}

/// Copies each dead row's bytes from the file (rare, so read back by offset
/// rather than keeping every row's text), without its line terminator.
fn fill_raw(path: &Path, dead: &mut [DeadLetter], ranges: &[(u64, u64)]) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    if ranges.is_empty() {
        return Ok(());
    }
    let mut file = std::fs::File::open(path)?;
    for (d, &(start, end)) in dead.iter_mut().zip(ranges) {
        let mut buf = vec![0u8; end.saturating_sub(start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        d.raw = text.trim_end_matches(['\n', '\r']).to_string();
    }
    Ok(())
}

/// Field helpers shared by the table converters. Each returns the SPEC reason
/// for the column named `col`.
pub mod field {
    use cdrflow_dataflows::model::Reason;

    pub fn required<'a>(v: &'a str, col: &str) -> Result<&'a str, Reason> {
        if v.is_empty() {
            Err(Reason::MissingField(col.into()))
        } else {
            Ok(v)
        }
    }

    pub fn float(v: &str, col: &str) -> Result<f64, Reason> {
        let x: f64 = required(v, col)?
            .parse()
            .map_err(|_| Reason::BadValue(col.into()))?;
        if x.is_finite() {
            Ok(x)
        } else {
            Err(Reason::BadValue(col.into()))
        }
    }

    pub fn lat(v: &str, col: &str) -> Result<f64, Reason> {
        let x = float(v, col)?;
        if (-90.0..=90.0).contains(&x) {
            Ok(x)
        } else {
            Err(Reason::BadValue(col.into()))
        }
    }

    pub fn lon(v: &str, col: &str) -> Result<f64, Reason> {
        let x = float(v, col)?;
        if (-180.0..=180.0).contains(&x) {
            Ok(x)
        } else {
            Err(Reason::BadValue(col.into()))
        }
    }

    /// A non-negative integer.
    pub fn count(v: &str, col: &str) -> Result<i64, Reason> {
        let x: i64 = required(v, col)?
            .parse()
            .map_err(|_| Reason::BadValue(col.into()))?;
        if x >= 0 {
            Ok(x)
        } else {
            Err(Reason::BadValue(col.into()))
        }
    }

    /// An integer, possibly negative (an epoch, a year).
    pub fn int(v: &str, col: &str) -> Result<i64, Reason> {
        required(v, col)?
            .parse()
            .map_err(|_| Reason::BadValue(col.into()))
    }

    /// `true`/`false`, also `1`/`0` (SPEC §1 `opt_in`).
    pub fn boolean(v: &str, col: &str) -> Result<bool, Reason> {
        match required(v, col)? {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(Reason::BadValue(col.into())),
        }
    }

    /// Empty means unknown (SPEC §1: `birth_year` in subscribers and loyalty).
    pub fn optional_year(v: &str, col: &str) -> Result<Option<i32>, Reason> {
        if v.is_empty() {
            return Ok(None);
        }
        let y: i32 = v.parse().map_err(|_| Reason::BadValue(col.into()))?;
        if (0..=9999).contains(&y) {
            Ok(Some(y))
        } else {
            Err(Reason::BadValue(col.into()))
        }
    }

    pub fn msisdn(v: &str, col: &str) -> Result<String, Reason> {
        cdrflow_dataflows::phone::normalize_msisdn(required(v, col)?)
            .ok_or_else(|| Reason::BadValue(col.into()))
    }
}
