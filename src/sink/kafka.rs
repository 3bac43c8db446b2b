//! The outputs as Kafka upsert topics (SPEC §6; issue 6), beside the files.
//!
//! ```text
//! OutputViews::advance(upto) ─ updates by time ─▶ KeyedTable per output ─┐
//! snapshot sink ─ a day's rows (as_of) ─▶ SegmentMessages ───────────────┼▶ changes in time order
//! end of run / flush ─ metrics.json ─────────────────────────────────────┘        │
//!                                                     UpsertSink (kafka::sink) ◀──┘
//! ```
//!
//! | topic | key | value |
//! |---|---|---|
//! | `PREFIX.promotions` | `customer_id\|date` | the `promotions.csv` row |
//! | `PREFIX.recommendations` | `customer_id\|context` | the `recommendations.csv` row |
//! | `PREFIX.rules` | `context\|antecedent\|consequent` | the `rules.csv` row |
//! | `PREFIX.segments` | `subscriber_token` | `{"subscriber_token","as_of","segments":[…],"features":{…}}` of the latest snapshot |
//! | `PREFIX.dead_letter` | `source\|line` or `source\|offset` | the `dead_letter.jsonl` line (never retracted) |
//! | `PREFIX.metrics` | `metrics` | `metrics.json` |
//!
//! A CSV row's value is a JSON object with the CSV's column names and its
//! fields as the CSV prints them (strings), so a consumer compares topic and
//! file field by field. A key whose row left the view gets a tombstone. Per
//! dataflow time, every key touched at that time gets one message: its row
//! after that time. Changes go to the sink in time order (the sink orders a
//! time's changes itself and numbers them), so a topic compacted by key
//! equals its file at every time the run reached.
//!
//! Delivery: see [`crate::kafka::sink`]. The run reports nothing as written
//! (metrics.json, exit 0) before [`KafkaOutputs::finish`] has every
//! acknowledgement.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;

use serde_json::{Map, Value};

use cdrflow_dataflows::model::Time;

use crate::kafka::{Change, Delivered, KafkaSettings, SinkError, UpsertSink};

/// The output topics' names after the prefix.
pub const TOPICS: [&str; 6] = [
    "promotions",
    "recommendations",
    "rules",
    "segments",
    "dead_letter",
    "metrics",
];

/// The segment messages of each written snapshot date: `(as_of time,
/// [(token, value)])`, handed from the snapshot sink to the Kafka outputs.
pub type SegmentMessages = Rc<RefCell<Vec<(Time, Vec<(String, String)>)>>>;

/// The row of each key of one output, kept to turn updates into upserts
/// (the rows' counts are the output's view, passed in).
pub struct KeyedTable<D> {
    current: HashMap<String, D>,
}

impl<D: Ord + Clone> Default for KeyedTable<D> {
    fn default() -> Self {
        KeyedTable {
            current: HashMap::new(),
        }
    }
}

impl<D: Ord + Clone> KeyedTable<D> {
    /// Folds `updates` into `counts` (the output's view) time by time and
    /// appends, per time, one change per key touched: its row's value after
    /// that time, or a tombstone.
    pub fn changes(
        &mut self,
        counts: &mut BTreeMap<D, isize>,
        topic: &str,
        updates: &[(D, Time, isize)],
        key: impl Fn(&D) -> String,
        value: impl Fn(&D) -> String,
        out: &mut Vec<Change>,
    ) {
        // Consolidated per time (the gathered updates are not), then
        // retractions before insertions, so a key ends with its new row.
        let mut by_time: BTreeMap<Time, BTreeMap<&D, isize>> = BTreeMap::new();
        for (d, t, r) in updates {
            *by_time.entry(*t).or_default().entry(d).or_default() += r;
        }
        for (time, updates) in by_time {
            let mut updates: Vec<(&D, isize)> = updates.into_iter().filter(|u| u.1 != 0).collect();
            updates.sort_by_key(|u| u.1 > 0);
            let mut touched = BTreeSet::new();
            for (d, r) in updates {
                let k = key(d);
                let n = counts.entry(d.clone()).or_default();
                *n += r;
                if *n > 0 {
                    self.current.insert(k.clone(), d.clone());
                } else {
                    if *n == 0 {
                        counts.remove(d);
                    }
                    if self.current.get(&k) == Some(d) {
                        self.current.remove(&k);
                    }
                }
                touched.insert(k);
            }
            for k in touched {
                let value = self.current.get(&k).map(&value);
                out.push(Change {
                    topic: topic.to_string(),
                    key: k,
                    value,
                    time,
                });
            }
        }
    }
}

/// A CSV row as a JSON object of its columns (strings).
pub fn row_json<const N: usize>(columns: [&str; N], fields: [String; N]) -> String {
    let mut obj = Map::new();
    for (c, f) in columns.iter().zip(fields) {
        obj.insert((*c).to_string(), Value::String(f));
    }
    Value::Object(obj).to_string()
}

/// The upsert topics of a run.
pub struct KafkaOutputs {
    sink: UpsertSink,
    prefix: String,
    /// The latest time produced: later messages (metrics) are not earlier.
    last_time: Time,
}

impl KafkaOutputs {
    /// Connects and makes sure every `PREFIX.<output>` topic exists.
    pub fn connect(
        settings: &KafkaSettings,
        prefix: &str,
        timeout: Duration,
        exactly_once: bool,
    ) -> Result<KafkaOutputs, SinkError> {
        let mut sink = UpsertSink::connect(settings, timeout, exactly_once)?;
        let topics: Vec<String> = TOPICS.iter().map(|t| format!("{prefix}.{t}")).collect();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        sink.ensure_topics(&names)?;
        Ok(KafkaOutputs {
            sink,
            prefix: prefix.to_string(),
            last_time: 0,
        })
    }

    /// The full name of an output's topic.
    pub fn topic(&self, output: &str) -> String {
        format!("{}.{output}", self.prefix)
    }

    /// Produces changes (any order; sent in time order).
    pub fn produce(&mut self, mut changes: Vec<Change>) -> Result<(), SinkError> {
        if changes.is_empty() {
            return Ok(());
        }
        changes.sort_by_key(|c| c.time);
        self.last_time = self.last_time.max(changes.last().map_or(0, |c| c.time));
        self.sink.produce(&changes)
    }

    /// Produces `metrics.json` as the one row of the metrics topic.
    pub fn metrics(&mut self, metrics: &Value) -> Result<(), SinkError> {
        let change = Change {
            topic: self.topic("metrics"),
            key: "metrics".into(),
            value: Some(metrics.to_string()),
            time: self.last_time,
        };
        self.sink.produce(&[change])
    }

    /// Waits until everything produced so far is acknowledged.
    pub fn flush(&mut self) -> Result<Delivered, SinkError> {
        self.sink.flush()
    }

    /// Waits for every acknowledgement and closes the producer.
    pub fn finish(self) -> Result<Delivered, SinkError> {
        self.sink.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_table_emits_the_row_after_each_time_or_a_tombstone() {
        let mut t: KeyedTable<(&str, i32)> = KeyedTable::default();
        let mut out = Vec::new();
        let key = |d: &(&str, i32)| d.0.to_string();
        let value = |d: &(&str, i32)| d.1.to_string();
        // Time 1: a=1, b=2. Time 2: a 1→3 (insert before retract, and a
        // row 4 that comes and goes within the time, unconsolidated), b
        // retracted.
        let updates = [
            (("a", 1), 1, 1),
            (("b", 2), 1, 1),
            (("a", 3), 2, 1),
            (("a", 4), 2, 1),
            (("a", 4), 2, -1),
            (("a", 1), 2, -1),
            (("b", 2), 2, -1),
        ];
        let mut view = BTreeMap::new();
        t.changes(&mut view, "t", &updates, key, value, &mut out);
        assert_eq!(view, BTreeMap::from([(("a", 3), 1)]));
        let got: Vec<(String, Option<String>, Time)> =
            out.into_iter().map(|c| (c.key, c.value, c.time)).collect();
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            got,
            vec![
                ("a".into(), s("1"), 1),
                ("b".into(), s("2"), 1),
                ("a".into(), s("3"), 2),
                ("b".into(), None, 2),
            ]
        );
    }
}
