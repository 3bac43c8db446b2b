//! The additive parts of a subscriber's features, as difference types: the
//! window sums ride in the difference of one `count_total` (see
//! [`super::features`]) instead of being records that a `reduce` adds up.
//!
//! ```text
//! one CDR in the window      ─▶ Sums { usage: Usage::of(cdr), .. }
//! one distinct callee        ─▶ Sums { contacts: 1, .. }
//! one distinct UTC date      ─▶ Sums { active_days: 1, .. }
//! one CDR so far, or the subscribers.csv row ─▶ Sums { known: 1, .. }
//! ```
//!
//! Every field is a plain sum, so updates of any order and grouping add up to
//! the same value, and a retraction is the negation.

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Semigroup};
use serde::{Deserialize, Serialize};

use crate::model::{Cdr, CdrType};
use crate::time::{hour_of_day, weekday};

/// Additive usage of a set of CDRs: the difference type of the window sums.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Usage {
    pub events: i64,
    /// Sums of i64 fields: i128, so no sum of valid CDRs overflows.
    pub voice_seconds: i128,
    pub sms_count: i64,
    pub data_bytes: i128,
    pub charge_cents: i128,
    pub night: i64,
    pub weekend: i64,
    pub roaming: i64,
}

impl Usage {
    /// One CDR's contribution (SPEC §5): night is UTC hour 22, 23 or 0–5,
    /// weekend UTC Saturday or Sunday.
    pub fn of(c: &Cdr) -> Usage {
        let hour = hour_of_day(c.start);
        let day = weekday(c.start);
        Usage {
            events: 1,
            voice_seconds: if c.kind == CdrType::Voice {
                c.duration_s as i128
            } else {
                0
            },
            sms_count: (c.kind == CdrType::Sms) as i64,
            data_bytes: c.bytes as i128,
            charge_cents: c.charge_cents as i128,
            night: (!(6..22).contains(&hour)) as i64,
            weekend: is_weekend(day) as i64,
            roaming: c.roaming as i64,
        }
    }

    /// `r` copies (a negative `r` retracts).
    pub fn times(self, r: i64) -> Usage {
        Usage {
            events: self.events * r,
            voice_seconds: self.voice_seconds * r as i128,
            sms_count: self.sms_count * r,
            data_bytes: self.data_bytes * r as i128,
            charge_cents: self.charge_cents * r as i128,
            night: self.night * r,
            weekend: self.weekend * r,
            roaming: self.roaming * r,
        }
    }
}

/// `weekday` numbers days from Monday = 0 (see `time::weekday`).
fn is_weekend(weekday: u32) -> bool {
    weekday >= 5
}

impl IsZero for Usage {
    fn is_zero(&self) -> bool {
        *self == Usage::default()
    }
}

impl Semigroup for Usage {
    fn plus_equals(&mut self, r: &Self) {
        self.events += r.events;
        self.voice_seconds += r.voice_seconds;
        self.sms_count += r.sms_count;
        self.data_bytes += r.data_bytes;
        self.charge_cents += r.charge_cents;
        self.night += r.night;
        self.weekend += r.weekend;
        self.roaming += r.roaming;
    }
}

impl Monoid for Usage {
    fn zero() -> Self {
        Usage::default()
    }
}

impl Abelian for Usage {
    fn negate(&mut self) {
        *self = self.times(-1);
    }
}

/// A subscriber's features as one sum (the difference of the features'
/// `count_total`): the usage of the CDRs in the window, the distinct callees
/// and UTC dates among them (each distinct one counted once, after a
/// `threshold_total`), and `known`, which is positive exactly when the
/// subscriber is in the snapshot (listed in `subscribers.csv`, or the caller
/// of a CDR before the snapshot's midnight; SPEC §5 "Who").
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Sums {
    pub usage: Usage,
    pub contacts: i64,
    pub active_days: i64,
    pub known: i64,
}

impl Sums {
    pub fn usage(usage: Usage) -> Sums {
        Sums {
            usage,
            ..Sums::default()
        }
    }

    pub fn contacts(n: i64) -> Sums {
        Sums {
            contacts: n,
            ..Sums::default()
        }
    }

    pub fn active_days(n: i64) -> Sums {
        Sums {
            active_days: n,
            ..Sums::default()
        }
    }

    pub fn known(n: i64) -> Sums {
        Sums {
            known: n,
            ..Sums::default()
        }
    }
}

impl IsZero for Sums {
    fn is_zero(&self) -> bool {
        *self == Sums::default()
    }
}

impl Semigroup for Sums {
    fn plus_equals(&mut self, r: &Self) {
        self.usage.plus_equals(&r.usage);
        self.contacts += r.contacts;
        self.active_days += r.active_days;
        self.known += r.known;
    }
}

impl Monoid for Sums {
    fn zero() -> Self {
        Sums::default()
    }
}

impl Abelian for Sums {
    fn negate(&mut self) {
        self.usage.negate();
        self.contacts = -self.contacts;
        self.active_days = -self.active_days;
        self.known = -self.known;
    }
}
