//! The rows a [`Snapshot`](super::store::Snapshot) is built from and answers
//! with: subscriber tokens as keys, feature values, promotion rows, loyalty
//! summaries, and the reasons a row is refused.

use std::fmt;

use serde::{Serialize, Serializer};

use cdrflow_dataflows::model::{Epoch, Loyalty};
use cdrflow_dataflows::time::date_string;

/// A subscriber token (SPEC §5: 32 lowercase hex digits) as a number, the key
/// of every per-subscriber map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey(u128);

impl TokenKey {
    /// The key of `text`, or `None` unless it is exactly 32 lowercase hex digits.
    pub fn parse(text: &str) -> Option<TokenKey> {
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if text.len() != 32 || !text.bytes().all(hex) {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(TokenKey)
    }
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// One feature value: a JSON number, or null when unknown (an empty `age`).
///
/// A whole float is kept as an integer, as `features.csv` prints it (`1`, not
/// `1.0`), so a snapshot answers the same from files and from rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FeatureValue {
    Null,
    Int(i64),
    Float(f64),
}

impl FeatureValue {
    /// The value of a `features.csv` field: empty is null, else a number.
    pub fn parse(text: &str) -> Option<FeatureValue> {
        if text.is_empty() {
            return Some(FeatureValue::Null);
        }
        if let Ok(n) = text.parse::<i64>() {
            return Some(FeatureValue::Int(n));
        }
        text.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(FeatureValue::from_f64)
    }

    /// A float feature (a share); not finite is null.
    pub fn from_f64(x: f64) -> FeatureValue {
        const EXACT: f64 = (1u64 << 53) as f64;
        if !x.is_finite() {
            FeatureValue::Null
        } else if x.fract() == 0.0 && x.abs() < EXACT {
            FeatureValue::Int(x as i64)
        } else {
            FeatureValue::Float(x)
        }
    }
}

impl Serialize for FeatureValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            FeatureValue::Null => s.serialize_none(),
            FeatureValue::Int(n) => s.serialize_i64(n),
            FeatureValue::Float(x) => s.serialize_f64(x),
        }
    }
}

/// A row of `promotions.csv` (SPEC §3); empty `product_id`/`source` are `None`
/// (JSON null). `date` is the midnight of the promotion's date.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PromotionRow {
    #[serde(serialize_with = "as_date")]
    pub date: Epoch,
    pub customer_id: String,
    pub subscriber_token: String,
    pub record_id: String,
    pub start: Epoch,
    pub cell_id: String,
    pub store_id: String,
    pub haversine_m: i64,
    pub drive_m: i64,
    pub product_id: Option<String>,
    pub source: Option<String>,
}

fn as_date<S: Serializer>(date: &Epoch, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&date_string(*date))
}

impl PromotionRow {
    /// The order that picks the latest promotion: greatest `(date, start)`,
    /// ties to the greatest `(customer_id, record_id, store_id)`.
    pub(super) fn rank(&self) -> (Epoch, Epoch, &str, &str, &str) {
        (
            self.date,
            self.start,
            &self.customer_id,
            &self.record_id,
            &self.store_id,
        )
    }
}

/// What the CRM view shows of a loyalty customer: never the phone number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoyaltySummary {
    pub customer_id: String,
    pub loyalty_points: i64,
    pub opt_in: bool,
    pub region: String,
}

impl From<&Loyalty> for LoyaltySummary {
    fn from(l: &Loyalty) -> Self {
        LoyaltySummary {
            customer_id: l.customer_id.clone(),
            loyalty_points: l.loyalty_points,
            opt_in: l.opt_in,
            region: l.region.clone(),
        }
    }
}

/// One subscriber of a snapshot given as rows (see [`Snapshot::from_rows`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriberRow {
    pub token: String,
    pub segments: Vec<String>,
    /// One value per feature name of the snapshot, in that order.
    pub features: Vec<FeatureValue>,
}

/// Why a row cannot go into a snapshot. Never holds a phone number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowError {
    #[error("malformed subscriber token (want 32 lowercase hex digits)")]
    BadToken,
    #[error("subscriber token {0} is listed twice")]
    DuplicateToken(TokenKey),
    #[error("subscriber token {0} has no features row")]
    UnknownToken(TokenKey),
    #[error("{got} feature values for {want} feature names")]
    FeatureCount { got: usize, want: usize },
    #[error("invalid msisdn")]
    BadMsisdn,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_are_32_lowercase_hex_digits() {
        assert_eq!(
            TokenKey::parse(T1).map(|k| k.to_string()).as_deref(),
            Some(T1)
        );
        assert_eq!(TokenKey::parse(&T1.to_uppercase()), None);
        assert_eq!(TokenKey::parse(&T1[1..]), None);
        assert_eq!(TokenKey::parse(&format!("{T1}0")), None);
        assert_eq!(TokenKey::parse("+123456789abcdef0123456789abcdef"), None);
        assert_eq!(
            TokenKey::parse("00000000000000000000000000000001").map(|k| k.to_string()),
            Some("00000000000000000000000000000001".into())
        );
    }

    #[test]
    fn feature_values_print_as_the_csv_does() {
        assert_eq!(FeatureValue::parse(""), Some(FeatureValue::Null));
        assert_eq!(FeatureValue::parse("12"), Some(FeatureValue::Int(12)));
        assert_eq!(FeatureValue::parse("0.25"), Some(FeatureValue::Float(0.25)));
        assert_eq!(FeatureValue::parse("x"), None);
        assert_eq!(FeatureValue::from_f64(1.0), FeatureValue::Int(1));
        assert_eq!(FeatureValue::from_f64(f64::NAN), FeatureValue::Null);
    }
}
