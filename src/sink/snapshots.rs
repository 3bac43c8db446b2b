//! Dated segment snapshots (SPEC §5): `segments/date=YYYY-MM-DD/{segments,
//! features}.csv`, written by worker 0 as the dataflow's frontier passes each
//! snapshot's `as_of` (the midnight after its date).
//!
//! ```text
//! FeatureRow updates ─┬exchange(0)─┐  pending by time; at each as_of < frontier:
//! subscribers.csv ────┘            ├▶ apply updates ≤ as_of (consolidated per time),
//! CDR days ───────────exchange(0)──┘  write the snapshot of as_of − 1 day
//! ```
//!
//! Dates run from the first to the last UTC date of the unique CDRs. When the
//! frontier passes `as_of`, no CDR of an earlier date can still arrive (it would
//! be late), so the first date and the rows are final. The sink keeps the
//! current row of every subscriber (what a snapshot prints), each one's
//! token, computed once per msisdn, and the subscribers table, from which a
//! row's demographics (fee, age, gender, plan) are attached where its line is
//! built: the features dataflow carries integers only.
//!
//! Delivery: each file is written to a temporary name and renamed, so a reader
//! sees a whole snapshot file or none; a write error is kept and reported at
//! the end of the run (the dataflow is not stopped mid-step). With a live
//! lookup service (`run --serve`), each written snapshot is also published to
//! its [`Store`] (the same rows, so files and service agree).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

use cdrflow_dataflows::model::{time_of, Epoch, Subscriber, Time};
use cdrflow_dataflows::msisdn::Msisdn;
use cdrflow_dataflows::segments::expr::{Definitions, FEATURES};
use cdrflow_dataflows::segments::features::{FeatureRow, SegmentFeatures};
use cdrflow_dataflows::segments::subscribers::SubscriberTable;
use cdrflow_dataflows::segments::{snapshot_row, SnapshotRow};
use cdrflow_dataflows::time::{date_string, format_rfc3339, year_of};
use cdrflow_dataflows::token::Tokenizer;

use super::files::{write_atomic, WriteError};
use super::kafka::SegmentMessages;
use crate::monitor::SegmentCounts;
use crate::serve::{FeatureValue, Store, SubscriberRow};

const DAY: i64 = 86_400;

/// The header of `features.csv`: the token, then the SPEC §5 features in
/// their order (`segments::expr::FEATURES`).
pub const FEATURE_COLUMNS: [&str; 1 + FEATURES.len()] = {
    let mut columns = ["subscriber_token"; 1 + FEATURES.len()];
    let mut i = 0;
    while i < FEATURES.len() {
        columns[i + 1] = FEATURES[i];
        i += 1;
    }
    columns
};

/// What the sink reports after the run.
#[derive(Debug, Default)]
pub struct SnapshotReport {
    /// Dates written, in order.
    pub dates: Vec<Epoch>,
    pub error: Option<WriteError>,
    /// Subscribers per segment of the last two dates (for the monitor).
    pub segments: SegmentCounts,
}

pub type SharedReport = Rc<RefCell<SnapshotReport>>;

/// Where the snapshots go: the files under `out/segments/`, and optionally
/// a live lookup service and the Kafka segments topic.
pub struct SnapshotTargets {
    pub out: PathBuf,
    pub tokens: Tokenizer,
    pub defs: Definitions,
    pub live: Option<Arc<Store>>,
    pub kafka: Option<SegmentMessages>,
}

/// What reaches the sink besides the CDR days: feature rows and the
/// subscribers table, one stream.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Update {
    Row(FeatureRow),
    Subscriber(Subscriber),
}

/// Writes the snapshots of `features` (see the module doc).
pub fn snapshots<'s>(
    features: SegmentFeatures<'s>,
    days: VecCollection<'s, Time, Epoch>,
    targets: SnapshotTargets,
    probe: &ProbeHandle<Time>,
) -> SharedReport {
    let SnapshotTargets {
        out,
        tokens,
        defs,
        live,
        kafka,
    } = targets;
    let report: SharedReport = Rc::new(RefCell::new(SnapshotReport::default()));
    let shared = report.clone();
    let updates: VecCollection<'s, Time, Update> = features
        .rows
        .map(Update::Row)
        .concat(features.subscribers.map(Update::Subscriber));
    updates
        .inner
        .binary_frontier(
            days.inner,
            Exchange::new(|_| 0u64),
            Exchange::new(|_| 0u64),
            "Snapshots",
            move |_, _| {
                let mut pending: BTreeMap<Time, Vec<(Update, isize)>> = BTreeMap::new();
                let mut days_seen: BTreeMap<Epoch, isize> = BTreeMap::new();
                let mut rows = Rows {
                    current: BTreeMap::new(),
                    token_of: HashMap::new(),
                    subscribers: SubscriberTable::default(),
                };
                let mut next_date: Option<Epoch> = None;
                move |(rows_in, rows_frontier), (days_in, days_frontier), output| {
                    rows_in.for_each(|cap, data| {
                        for (update, t, r) in data.drain(..) {
                            pending.entry(t).or_default().push((update, r));
                        }
                        output.session(&cap).give_container(&mut Vec::<()>::new());
                    });
                    days_in.for_each(|cap, data| {
                        for (day, _, r) in data.drain(..) {
                            *days_seen.entry(day).or_default() += r;
                        }
                        output.session(&cap).give_container(&mut Vec::<()>::new());
                    });
                    days_seen.retain(|_, n| *n != 0);
                    let frontier = [rows_frontier.frontier(), days_frontier.frontier()]
                        .iter()
                        .flat_map(|f| f.iter().copied())
                        .min();
                    let (Some(first), Some(last)) = (
                        days_seen.keys().next().copied(),
                        days_seen.keys().next_back().copied(),
                    ) else {
                        return;
                    };
                    let mut date = next_date.unwrap_or(first);
                    while date <= last && frontier.is_none_or(|f| time_of(date + DAY) < f) {
                        let as_of = time_of(date + DAY);
                        while let Some(entry) = pending.first_entry() {
                            if *entry.key() > as_of {
                                break;
                            }
                            let mut updates = entry.remove();
                            consolidate(&mut updates);
                            for (update, r) in updates {
                                rows.apply(update, r, &tokens);
                            }
                        }
                        let mut report = shared.borrow_mut();
                        if report.error.is_none() {
                            let lines = rows.snapshot(date, &defs);
                            let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
                            for (_, p) in &lines {
                                for seg in &p.row.segments {
                                    *counts.entry(seg.as_str()).or_default() += 1;
                                }
                            }
                            let counts = counts
                                .into_iter()
                                .map(|(seg, n)| (seg.to_string(), n))
                                .collect();
                            report.segments.previous = report.segments.latest.take();
                            report.segments.latest = Some((date_string(date), counts));
                            match write_snapshot(&out, date, &lines) {
                                Ok(()) => report.dates.push(date),
                                Err(e) => report.error = Some(e),
                            }
                            if let Some(store) = &live {
                                publish(store, date, &lines);
                            }
                            if let Some(kafka) = &kafka {
                                kafka
                                    .borrow_mut()
                                    .push((as_of, segment_messages(date, &lines)));
                            }
                        }
                        date += DAY;
                        next_date = Some(date);
                    }
                }
            },
        )
        .probe_with(probe);
    report
}

/// A subscriber's current row and, once a snapshot printed it, its printed
/// form (valid while the row and the snapshot year stay the same).
struct Current {
    row: FeatureRow,
    printed: Option<Printed>,
}

/// A subscriber's row in the snapshots of one year: the snapshot row (it
/// depends on the date only through its year, by the age) and its lines of
/// `features.csv` and `segments.csv`, formatted once. Most subscribers'
/// features do not change from one day to the next (no CDR that day, none
/// leaving the window), so most rows of a snapshot are copied, not rebuilt.
struct Printed {
    year: i64,
    row: SnapshotRow,
    features_csv: Vec<u8>,
    segments_csv: Vec<u8>,
}

impl Printed {
    fn new(token: &str, year: i64, row: SnapshotRow) -> csv::Result<Printed> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_field(token)?;
        for f in features(&row) {
            csv.write_field(f.csv())?;
        }
        csv.write_record(None::<&[u8]>)?;
        let features_csv = csv.into_inner().map_err(|e| e.into_error())?;
        let mut csv = csv::Writer::from_writer(Vec::new());
        for s in &row.segments {
            csv.write_record([token, s.as_str()])?;
        }
        let segments_csv = csv.into_inner().map_err(|e| e.into_error())?;
        Ok(Printed {
            year,
            row,
            features_csv,
            segments_csv,
        })
    }
}

/// What the sink knows when it writes a snapshot.
struct Rows {
    /// The current rows by token (the order of the files), each with its
    /// printed form once a snapshot needed it.
    current: BTreeMap<String, Current>,
    /// Each msisdn's token, computed once.
    token_of: HashMap<Msisdn, String>,
    subscribers: SubscriberTable,
}

impl Rows {
    /// Applies one update of a consolidated time (an insertion replaces the
    /// row a retraction at the same time removes, in either order). A changed
    /// subscriber row drops the printed form of that msisdn's row.
    fn apply(&mut self, update: Update, r: isize, tokens: &Tokenizer) {
        match update {
            Update::Row(row) => {
                let token = token(&mut self.token_of, row.msisdn, tokens);
                if r > 0 {
                    let new = Current { row, printed: None };
                    match self.current.get_mut(token) {
                        Some(c) => *c = new,
                        None => {
                            let token = token.to_owned();
                            self.current.insert(token, new);
                        }
                    }
                } else if self.current.get(token).is_some_and(|c| c.row == row) {
                    self.current.remove(token);
                }
            }
            Update::Subscriber(s) => {
                if let Some(m) = self.subscribers.update(s, r) {
                    let token = token(&mut self.token_of, m, tokens);
                    if let Some(c) = self.current.get_mut(token) {
                        c.printed = None;
                    }
                }
            }
        }
    }

    /// The rows of a snapshot date, sorted by token (printed where the row,
    /// its subscriber or the year changed since the last snapshot).
    fn snapshot(&mut self, date: Epoch, defs: &Definitions) -> Vec<(&str, &Printed)> {
        let year = year_of(date);
        for (token, c) in self.current.iter_mut() {
            if c.printed.as_ref().is_none_or(|p| p.year != year) {
                let sub = self.subscribers.get(c.row.msisdn);
                let row = snapshot_row(&c.row, sub, date, defs);
                // Writing CSV into a Vec cannot fail.
                c.printed = Some(Printed::new(token, year, row).expect("CSV into memory"));
            }
        }
        self.current
            .iter()
            .filter_map(|(token, c)| Some((token.as_str(), c.printed.as_ref()?)))
            .collect()
    }
}

/// The token of `m`, computed once.
fn token<'a>(token_of: &'a mut HashMap<Msisdn, String>, m: Msisdn, tokens: &Tokenizer) -> &'a str {
    token_of
        .entry(m)
        .or_insert_with(|| tokens.token(&m.to_text()))
}

/// One feature's value, in the order of [`FEATURE_COLUMNS`].
enum Feature {
    Count(i128),
    Share(f64),
    Age(Option<i64>),
}

impl Feature {
    fn csv(&self) -> String {
        match self {
            Feature::Count(n) => n.to_string(),
            Feature::Share(x) => x.to_string(),
            Feature::Age(a) => a.map(|a| a.to_string()).unwrap_or_default(),
        }
    }

    /// The value as `features.csv` reads back (an integer beyond i64 as a float).
    fn value(&self) -> FeatureValue {
        match *self {
            Feature::Count(n) => i64::try_from(n)
                .map(FeatureValue::Int)
                .unwrap_or(FeatureValue::from_f64(n as f64)),
            Feature::Share(x) => FeatureValue::from_f64(x),
            Feature::Age(a) => a.map_or(FeatureValue::Null, FeatureValue::Int),
        }
    }
}

/// The features of a row, in column order.
fn features(r: &SnapshotRow) -> [Feature; FEATURES.len()] {
    [
        Feature::Count(r.events.into()),
        Feature::Count(r.voice_seconds),
        Feature::Count(r.sms_count.into()),
        Feature::Count(r.data_bytes),
        Feature::Count(r.spend_cents),
        Feature::Count(r.contacts.into()),
        Feature::Share(r.share(r.night)),
        Feature::Share(r.share(r.weekend)),
        Feature::Share(r.share(r.roaming)),
        Feature::Count(r.active_days.into()),
        Feature::Age(r.age),
    ]
}

/// The `PREFIX.segments` messages of a snapshot date: `(token, value)` with
/// the value of `GET /v1/segments/{token}`.
fn segment_messages(date: Epoch, rows: &[(&str, &Printed)]) -> Vec<(String, String)> {
    let as_of = format_rfc3339(date + DAY);
    rows.iter()
        .map(|(token, p)| {
            let r = &p.row;
            let features: serde_json::Map<String, serde_json::Value> = FEATURES
                .iter()
                .zip(features(r).iter().map(Feature::value))
                .map(|(name, v)| {
                    (
                        name.to_string(),
                        serde_json::to_value(v).unwrap_or_default(),
                    )
                })
                .collect();
            let value = serde_json::json!({
                "subscriber_token": token,
                "as_of": as_of,
                "segments": r.segments,
                "features": features,
            });
            (token.to_string(), value.to_string())
        })
        .collect()
}

/// Publishes a snapshot date to the live lookup service.
fn publish(store: &Store, date: Epoch, rows: &[(&str, &Printed)]) {
    let names = FEATURES.iter().map(|n| n.to_string()).collect();
    let subscribers = rows
        .iter()
        .map(|(token, p)| (token, &p.row))
        .map(|(token, r)| SubscriberRow {
            token: token.to_string(),
            segments: r.segments.clone(),
            features: features(r).iter().map(Feature::value).collect(),
        });
    match store.current().with_subscribers(date, names, subscribers) {
        Ok(snapshot) => store.publish(snapshot),
        // Tokens come from the tokenizer, one per msisdn: this cannot happen.
        Err(e) => eprintln!(
            "cdrflow: the snapshot of {} is not served: {e}",
            date_string(date)
        ),
    }
}

fn write_snapshot(out: &Path, date: Epoch, rows: &[(&str, &Printed)]) -> Result<(), WriteError> {
    let dir = out
        .join("segments")
        .join(format!("date={}", date_string(date)));
    write_atomic(&dir.join("features.csv"), |w| {
        let mut csv = csv::Writer::from_writer(&mut *w);
        csv.write_record(FEATURE_COLUMNS)?;
        csv.flush()?;
        drop(csv);
        for (_, p) in rows {
            w.write_all(&p.features_csv)?;
        }
        Ok(())
    })?;
    write_atomic(&dir.join("segments.csv"), |w| {
        let mut csv = csv::Writer::from_writer(&mut *w);
        csv.write_record(["subscriber_token", "segment"])?;
        csv.flush()?;
        drop(csv);
        for (_, p) in rows {
            w.write_all(&p.segments_csv)?;
        }
        Ok(())
    })
}
