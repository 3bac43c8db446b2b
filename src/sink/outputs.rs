//! The output views on worker 0: what the gathered updates add up to at the
//! last completed time, and the files written from them.
//!
//! ```text
//! gathered updates (collect) ─advance(upto)─▶ promotions.changes.jsonl (appended, time order)
//!                                          └▶ views: promotions, rules, recommendations, dead letters
//! views ─write_views─▶ promotions.csv, rules.csv, recommendations.csv, dead_letter.jsonl (atomic)
//! ```
//!
//! [`OutputViews::advance`] takes the updates at times `≤ upto` out of the
//! gathered lists and folds them into the views, so worker 0 holds each
//! output once (its current rows) instead of its whole history. A batch run
//! advances once, to its final watermark; a `--follow` run every flush
//! interval, to the time the dataflow has completed. Either way the files
//! hold the same bytes for the same input.
//!
//! Delivery: `promotions.changes.jsonl` is appended and flushed per advance
//! (a reader may see the lines of an advance before the view files follow);
//! the view files are replaced whole (temporary file + rename).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use cdrflow_dataflows::basket::scope_name;
use cdrflow_dataflows::basket::{Catalogue, Pick, Recommendation, Rule};
use cdrflow_dataflows::model::{DeadLetter, Time};
use cdrflow_dataflows::promotions::Promotion;
use cdrflow_dataflows::time::{date_string, format_rfc3339};
use cdrflow_dataflows::token::Tokenizer;

use super::collect::Updates;
use super::files::{
    self, promotion_row, recommendation_fields, rule_fields, DeadLine, WriteError,
    PROMOTION_COLUMNS, RECOMMENDATION_COLUMNS, RULE_COLUMNS,
};
use super::kafka::{row_json, KafkaOutputs, KeyedTable, SegmentMessages};
use crate::kafka::{Change, SinkError};
use crate::monitor::Breakdown;
use crate::serve::PromotionRow;

/// Why an output could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Kafka(#[from] SinkError),
}

/// The Kafka side of the outputs: the topics and each output's rows by key.
struct KafkaState {
    out: KafkaOutputs,
    segments: SegmentMessages,
    promotions: KeyedTable<PromotionPick>,
    rules: KeyedTable<Rule>,
    recommendations: KeyedTable<Recommendation>,
    dead: KeyedTable<DeadLetter>,
}

/// A promotion with the basket pick it carries.
pub type PromotionPick = (Promotion, Pick);

/// The rows of an output and their multiplicities.
type View<D> = BTreeMap<D, isize>;

/// The gathered updates of every file output (see [`super::collect`]).
pub struct GatheredOutputs {
    pub promotions: Updates<PromotionPick>,
    pub rules: Updates<Rule>,
    pub recommendations: Updates<Recommendation>,
    pub dead: Updates<DeadLetter>,
}

pub struct OutputViews {
    out: PathBuf,
    tokens: Tokenizer,
    changes: BufWriter<File>,
    promotions: View<PromotionPick>,
    rules: View<Rule>,
    recommendations: View<Recommendation>,
    dead: View<DeadLetter>,
    version: u64,
    /// Promotion retractions written to the change stream so far.
    retracted: u64,
    kafka: Option<KafkaState>,
}

fn err(path: &Path) -> impl Fn(std::io::Error) -> WriteError + '_ {
    move |source| WriteError {
        path: path.to_path_buf(),
        source,
    }
}

impl OutputViews {
    /// Creates `out` and starts an empty `promotions.changes.jsonl` there.
    pub fn create(out: &Path, tokens: Tokenizer) -> Result<OutputViews, WriteError> {
        std::fs::create_dir_all(out).map_err(err(out))?;
        let path = out.join("promotions.changes.jsonl");
        let changes = BufWriter::new(File::create(&path).map_err(err(&path))?);
        Ok(OutputViews {
            out: out.to_path_buf(),
            tokens,
            changes,
            promotions: View::new(),
            rules: View::new(),
            recommendations: View::new(),
            dead: View::new(),
            version: 0,
            retracted: 0,
            kafka: None,
        })
    }

    /// Also produces every output to its upsert topic (see [`super::kafka`]);
    /// `segments` receives the snapshot sink's rows.
    pub fn with_kafka(mut self, out: KafkaOutputs, segments: SegmentMessages) -> Self {
        self.kafka = Some(KafkaState {
            out,
            segments,
            promotions: KeyedTable::default(),
            rules: KeyedTable::default(),
            recommendations: KeyedTable::default(),
            dead: KeyedTable::default(),
        });
        self
    }

    /// Takes the updates at times `≤ upto` out of `gathered`: appends the
    /// promotion changes to `promotions.changes.jsonl` in time order, folds
    /// everything into the views, and produces the changes to Kafka.
    pub fn advance(
        &mut self,
        gathered: &GatheredOutputs,
        upto: Time,
        catalogue: &Catalogue,
    ) -> Result<(), OutputError> {
        let promotions = take(&gathered.promotions, upto);
        let rules = take(&gathered.rules, upto);
        let recommendations = take(&gathered.recommendations, upto);
        let dead = take(&gathered.dead, upto);
        let path = self.out.join("promotions.changes.jsonl");
        self.retracted += write_changes(&mut self.changes, &promotions, &self.tokens, catalogue)
            .map_err(err(&path))?;
        if !promotions.is_empty() {
            self.version += 1;
        }
        if let Some(k) = self.kafka.as_mut() {
            let tokens = &self.tokens;
            let mut changes = Vec::new();
            let topic = k.out.topic("promotions");
            k.promotions.changes(
                &mut self.promotions,
                &topic,
                &promotions,
                |(p, _)| format!("{}|{}", p.customer_id, date_string(p.date)),
                |row| {
                    let fields = files::promotion_fields(&promotion_row(row, tokens, catalogue));
                    row_json(PROMOTION_COLUMNS, fields)
                },
                &mut changes,
            );
            let topic = k.out.topic("rules");
            k.rules.changes(
                &mut self.rules,
                &topic,
                &rules,
                |r| {
                    let [context, antecedent, consequent, ..] = rule_fields(r, catalogue);
                    format!("{context}|{antecedent}|{consequent}")
                },
                |r| row_json(RULE_COLUMNS, rule_fields(r, catalogue)),
                &mut changes,
            );
            let topic = k.out.topic("recommendations");
            k.recommendations.changes(
                &mut self.recommendations,
                &topic,
                &recommendations,
                |r| {
                    let [customer, context, ..] = recommendation_fields(r, catalogue);
                    format!("{customer}|{context}")
                },
                |r| row_json(RECOMMENDATION_COLUMNS, recommendation_fields(r, catalogue)),
                &mut changes,
            );
            let topic = k.out.topic("dead_letter");
            k.dead.changes(
                &mut self.dead,
                &topic,
                &dead,
                |d| format!("{}|{}", d.source, d.line),
                |d| serde_json::to_string(&DeadLine::new(d)).unwrap_or_default(),
                &mut changes,
            );
            segment_changes(k, Some(upto), &mut changes);
            k.out.produce(changes)?;
        } else {
            // Without Kafka the views are folded here (the keyed tables
            // fold them time by time above).
            fold(&mut self.promotions, promotions);
            fold(&mut self.rules, rules);
            fold(&mut self.recommendations, recommendations);
            fold(&mut self.dead, dead);
        }
        Ok(())
    }

    /// Before the metrics are written: produces the snapshots written past
    /// the last advance and `metrics`, then waits for every acknowledgement
    /// (`last`: and closes the producer). Without Kafka, nothing.
    pub fn deliver(&mut self, metrics: &Value, last: bool) -> Result<(), OutputError> {
        let Some(k) = self.kafka.as_mut() else {
            return Ok(());
        };
        let mut changes = Vec::new();
        segment_changes(k, None, &mut changes);
        k.out.produce(changes)?;
        k.out.metrics(metrics)?;
        if last {
            if let Some(k) = self.kafka.take() {
                k.out.finish()?;
            }
        } else {
            k.out.flush()?;
        }
        Ok(())
    }

    /// Rewrites the view files; returns the number of promotions.
    pub fn write_views(&self, catalogue: &Catalogue) -> Result<usize, WriteError> {
        let out = &self.out;
        let promotions =
            files::write_promotions(out, &rows(&self.promotions), &self.tokens, catalogue)?;
        files::write_rules(out, &rows(&self.rules), catalogue)?;
        files::write_recommendations(out, &rows(&self.recommendations), catalogue)?;
        files::write_dead_letters(out, &rows(&self.dead))?;
        Ok(promotions)
    }

    /// The views' aggregates for the monitor (no customer, phone or token).
    pub fn breakdown(&self) -> Breakdown {
        let mut b = Breakdown {
            promotions_retracted: self.retracted,
            ..Breakdown::default()
        };
        for ((p, pick), n) in &self.promotions {
            let n = (*n).max(0) as u64;
            if n == 0 {
                continue;
            }
            *b.promotions_by_store
                .entry(p.store_id.to_string())
                .or_default() += n;
            *b.promotions_by_cell
                .entry(p.cell_id.to_string())
                .or_default() += n;
            *b.promotions_by_source
                .entry(pick.source.to_string())
                .or_default() += n;
            let hour = format_rfc3339(p.start - p.start.rem_euclid(3600));
            *b.promotions_by_hour
                .entry(hour[..13].to_string())
                .or_default() += n;
        }
        for (r, n) in &self.rules {
            if *n > 0 {
                *b.rules_by_context
                    .entry(scope_name(&r.scope).to_string())
                    .or_default() += *n as u64;
            }
        }
        b
    }

    /// Rows in the promotions view (what `promotions.csv` holds).
    pub fn promotions_count(&self) -> usize {
        self.promotions.values().map(|n| (*n).max(0) as usize).sum()
    }

    /// The output directory.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Counts the advances that changed the promotions view.
    pub fn promotions_version(&self) -> u64 {
        self.version
    }

    /// The current promotion rows (for the lookup service).
    pub fn promotion_rows<'a>(
        &'a self,
        catalogue: &'a Catalogue,
    ) -> impl Iterator<Item = PromotionRow> + 'a {
        self.promotions
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(move |(p, _)| promotion_row(p, &self.tokens, catalogue))
    }
}

/// The segment messages of the snapshots with `as_of ≤ upto` (all: `None`).
fn segment_changes(k: &mut KafkaState, upto: Option<Time>, out: &mut Vec<Change>) {
    let topic = k.out.topic("segments");
    k.segments.borrow_mut().retain_mut(|(as_of, rows)| {
        if upto.is_some_and(|u| *as_of > u) {
            return true;
        }
        for (token, value) in rows.drain(..) {
            out.push(Change {
                topic: topic.clone(),
                key: token,
                value: Some(value),
                time: *as_of,
            });
        }
        false
    });
}

/// Removes and returns the updates at times `≤ upto`.
fn take<D: Clone>(updates: &Updates<D>, upto: Time) -> Vec<(D, Time, isize)> {
    let mut taken = Vec::new();
    updates.borrow_mut().retain(|u| {
        if u.1 <= upto {
            taken.push(u.clone());
        }
        u.1 > upto
    });
    taken
}

fn fold<D: Ord>(view: &mut View<D>, updates: Vec<(D, Time, isize)>) {
    for (d, _, r) in updates {
        *view.entry(d).or_default() += r;
    }
    view.retain(|_, n| *n != 0);
}

/// A view as updates (all at time 0), what the file writers take.
fn rows<D: Clone>(view: &View<D>) -> Vec<(D, Time, isize)> {
    view.iter().map(|(d, n)| (d.clone(), 0, *n)).collect()
}

/// Appends the changes of the view as `{"time":T,"diff":±1,<row>}` lines:
/// consolidated per (time, row), sorted by time, retractions first, then row.
/// `time` is the event-time watermark at which the change happened; replaying
/// the lines up to a time gives the view at that time. Returns the number of
/// rows retracted.
fn write_changes(
    w: &mut impl Write,
    updates: &[(PromotionPick, Time, isize)],
    tokens: &Tokenizer,
    catalogue: &Catalogue,
) -> std::io::Result<u64> {
    let mut changes: BTreeMap<(Time, &PromotionPick), isize> = BTreeMap::new();
    for (p, t, r) in updates {
        *changes.entry((*t, p)).or_default() += r;
    }
    let mut changes: Vec<((Time, &PromotionPick), isize)> =
        changes.into_iter().filter(|(_, n)| *n != 0).collect();
    changes.sort_by(|a, b| (a.0 .0, a.1 > 0, a.0 .1).cmp(&(b.0 .0, b.1 > 0, b.0 .1)));
    let retracted = changes.iter().map(|(_, d)| (-*d).max(0) as u64).sum();
    for ((time, row), diff) in changes {
        let r = promotion_row(row, tokens, catalogue);
        let fields = files::promotion_fields(&r);
        let mut obj = Map::new();
        obj.insert("time".into(), json!(time));
        obj.insert("diff".into(), json!(diff));
        for (name, value) in PROMOTION_COLUMNS.iter().zip(fields) {
            obj.insert((*name).into(), Value::String(value));
        }
        serde_json::to_writer(&mut *w, &Value::Object(obj))?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(retracted)
}
