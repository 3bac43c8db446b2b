//! Customer segments (SPEC §5): rolling-window features per subscriber
//! ([`features`]), the segment definitions ([`expr`]) and one subscriber's
//! snapshot row ([`snapshot_row`]).
//!
//! | module | owns |
//! |---|---|
//! | `features` | the window sums, distinct contacts and active days as collections |
//! | `sums` | the features' difference types (`Usage`, `Sums`) |
//! | `subscribers` | `subscribers.csv` by packed msisdn, for the snapshot rows |
//! | `expr` | the `name = expression` language, parsed once, evaluated exactly |

pub mod expr;
pub mod features;
pub mod subscribers;
pub mod sums;

use crate::demographics::{AgeBand, Gender};
use crate::model::{Epoch, Subscriber};
use crate::time::year_of;

use self::expr::{Definitions, Feature, Value};
use self::features::FeatureRow;

/// One subscriber's row of a snapshot, before tokenising.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRow {
    pub events: i64,
    pub voice_seconds: i128,
    pub sms_count: i64,
    pub data_bytes: i128,
    pub spend_cents: i128,
    pub contacts: i64,
    /// `(night, weekend, roaming)` events; shares are these over `events`.
    pub night: i64,
    pub weekend: i64,
    pub roaming: i64,
    pub active_days: i64,
    pub age: Option<i64>,
    /// Built-in and defined segments, sorted.
    pub segments: Vec<String>,
}

impl SnapshotRow {
    /// A share as a float for the CSV (0 when there are no events).
    pub fn share(&self, n: i64) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            n as f64 / self.events as f64
        }
    }
}

/// The row of `row` in the snapshot of date `date` (midnight), with `sub`
/// its `subscribers.csv` row (`None`: not listed, unknown demographics, fee
/// 0): fee added to the spend, `age = year(date) − birth_year`, the built-in
/// `gender:`, `age:` and `plan:` segments and every defined one that holds.
pub fn snapshot_row(
    row: &FeatureRow,
    sub: Option<&Subscriber>,
    date: Epoch,
    defs: &Definitions,
) -> SnapshotRow {
    let u = &row.usage;
    let fee = sub.map_or(0, |s| s.monthly_fee_cents) as i128;
    let age = sub
        .and_then(|s| s.birth_year)
        .map(|b| year_of(date) - b as i64);
    let mut r = SnapshotRow {
        events: u.events,
        voice_seconds: u.voice_seconds,
        sms_count: u.sms_count,
        data_bytes: u.data_bytes,
        spend_cents: fee + u.charge_cents,
        contacts: row.contacts,
        night: u.night,
        weekend: u.weekend,
        roaming: u.roaming,
        active_days: row.active_days,
        age,
        segments: Vec::new(),
    };
    let share = |n: i64| {
        if r.events == 0 {
            Value::int(0)
        } else {
            Value::ratio(n as i128, r.events as i128)
        }
    };
    let value = |f: Feature| -> Option<Value> {
        Some(match f {
            Feature::Events => Value::int(r.events as i128),
            Feature::VoiceSeconds => Value::int(r.voice_seconds),
            Feature::SmsCount => Value::int(r.sms_count as i128),
            Feature::DataBytes => Value::int(r.data_bytes),
            Feature::SpendCents => Value::int(r.spend_cents),
            Feature::Contacts => Value::int(r.contacts as i128),
            Feature::NightShare => share(r.night),
            Feature::WeekendShare => share(r.weekend),
            Feature::RoamingShare => share(r.roaming),
            Feature::ActiveDays => Value::int(r.active_days as i128),
            Feature::Age => Value::int(r.age? as i128),
        })
    };
    let mut segments: Vec<String> = defs
        .matching(&value)
        .into_iter()
        .map(String::from)
        .collect();
    let plan = sub.map(|s| s.plan.as_str()).filter(|p| !p.is_empty());
    segments.push(format!(
        "gender:{}",
        Gender::of(sub.map_or("", |s| s.gender.as_str()))
    ));
    segments.push(format!("age:{}", AgeBand::of(age)));
    segments.push(format!("plan:{}", plan.unwrap_or("unknown")));
    segments.sort();
    segments.dedup();
    r.segments = segments;
    r
}
