//! The records that flow through the dataflows (SPEC §1), already validated and
//! normalised. Sources build them; fragments only read them.
//!
//! Field order of [`Cdr`] is the dedup tie-break order of SPEC §2, so the derived
//! `Ord` *is* the tie-break: "the one kept is the smallest by (start, msisdn,
//! callee (absent = empty), type, duration_s, bytes, cell_id, charge_cents,
//! roaming)". `record_id` comes last: copies share it, so it never decides.
//! Phone numbers are [`Msisdn`]s and cells [`Cell`]s, whose integer orders are
//! the SPEC's string orders, so the tie-break stays exact and compares integers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

pub use crate::cell::Cell;
pub use crate::msisdn::Msisdn;

/// A shared immutable string: records are cloned into many arrangements, and a
/// clone of this is a reference-count increment, not an allocation.
pub type Text = Arc<str>;

/// Seconds since 1970-01-01T00:00:00Z.
pub type Epoch = i64;

/// The `type` of a CDR. Variant order is the byte order of the SPEC tokens
/// (`data` < `sms` < `voice`), so the derived `Ord` compares like the strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CdrType {
    Data,
    Sms,
    Voice,
}

impl CdrType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "data" => Some(CdrType::Data),
            "sms" => Some(CdrType::Sms),
            "voice" => Some(CdrType::Voice),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CdrType::Data => "data",
            CdrType::Sms => "sms",
            CdrType::Voice => "voice",
        }
    }
}

/// One valid CDR, phone numbers normalised (`+` and 8–15 digits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cdr {
    pub start: Epoch,
    pub msisdn: Msisdn,
    /// Normalised callee; [`Msisdn::NONE`] when absent or null.
    pub callee: Msisdn,
    pub kind: CdrType,
    pub duration_s: i64,
    pub bytes: i64,
    pub cell_id: Cell,
    pub charge_cents: i64,
    pub roaming: bool,
    pub record_id: Text,
}

/// Why a record went to the dead-letter output. `Display` is the SPEC token.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reason {
    MalformedJson,
    MalformedCsv,
    MissingField(String),
    BadValue(String),
    Late,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::MalformedJson => f.write_str("malformed_json"),
            Reason::MalformedCsv => f.write_str("malformed_csv"),
            Reason::MissingField(n) => write!(f, "missing_field:{n}"),
            Reason::BadValue(n) => write!(f, "bad_value:{n}"),
            Reason::Late => f.write_str("late"),
        }
    }
}

/// A record that could not be used, with where it came from.
/// `source` is the dataset path (`cdrs.jsonl`, `roads/edges.csv`) or
/// `kafka:TOPIC/PARTITION`; `line` is 1-based (CSV: the header is line 1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeadLetter {
    /// A dataset file (`cdrs.jsonl`, `roads/edges.csv`) or a Kafka partition
    /// (`kafka:TOPIC/PARTITION`).
    pub source: String,
    /// The 1-based line of a file; the message offset of a Kafka partition.
    pub line: u64,
    pub reason: Reason,
    pub raw: String,
}

/// A coordinate in decimal degrees with a total order (`f64::total_cmp`), so
/// records holding one can be differential data (which needs `Ord + Hash`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Deg(pub f64);

impl PartialEq for Deg {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for Deg {}
impl PartialOrd for Deg {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Deg {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl std::hash::Hash for Deg {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

/// A point in WGS84 decimal degrees.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Point {
    pub lat: Deg,
    pub lon: Deg,
}

impl Point {
    pub fn new(lat: f64, lon: f64) -> Self {
        Point {
            lat: Deg(lat),
            lon: Deg(lon),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tower {
    pub cell_id: Cell,
    pub at: Point,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Store {
    pub store_id: String,
    pub name: String,
    pub at: Point,
    pub region: String,
}

/// A row of `loyalty.csv` (or an upsert of `loyalty_changes.jsonl`), msisdn
/// normalised. `gender`/`birth_year` empty or absent mean unknown.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Loyalty {
    pub customer_id: String,
    pub msisdn: String,
    pub loyalty_points: i64,
    pub opt_in: bool,
    pub gender: String,
    pub birth_year: Option<i32>,
    pub region: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subscriber {
    pub msisdn: String,
    pub gender: String,
    pub birth_year: Option<i32>,
    pub plan: String,
    pub monthly_fee_cents: i64,
}

/// One change of a keyed table (`loyalty_changes.jsonl`, `stores_changes.jsonl`),
/// applied once the watermark reaches `at` (SPEC §1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change<K, V> {
    Upsert { at: Epoch, key: K, value: V },
    Delete { at: Epoch, key: K },
}

impl<K, V> Change<K, V> {
    pub fn at(&self) -> Epoch {
        match self {
            Change::Upsert { at, .. } | Change::Delete { at, .. } => *at,
        }
    }
}

/// The dataflow timestamp: the event-time watermark (seconds, SPEC §2) at which
/// an update happens. A CDR enters at the watermark reached when it was read; a
/// change of `loyalty_changes.jsonl` at its `at`; the static tables at 0.
pub type Time = u64;

/// Clamps an epoch to a dataflow time (times before 1970 become 0).
pub fn time_of(epoch: Epoch) -> Time {
    epoch.max(0) as Time
}
