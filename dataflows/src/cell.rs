//! A `cell_id` as an integer when it looks like one, so records keyed or
//! tie-broken by it compare integers instead of strings, without a table.
//!
//! Cell ids are MCC-MNC-LAC-CI texts (`262-01-1234-5678`): `-` and digits.
//! Such a text of at most 35 characters is [`Cell::Packed`]: each character
//! becomes a code (`-` = 1, `0`..`9` = 2..11, byte order of the characters),
//! the end of the text is 0, and the 35 positions are read as a base-12
//! number, most significant first (12^35 ≈ 5.9·10^37 < 2^128). Integer order
//! is then exactly the byte order of the texts (the end mark sorts below every
//! character, as a shorter prefix does). Any other text (letters, longer) is
//! [`Cell::Text`], and a comparison that involves one compares the texts, so
//! the order is the SPEC's byte order for every pair of cells (the dedup
//! tie-break, unknown cells included).
//!
//! A text has exactly one form (packed iff it can be), so equality and hashing
//! of the form are those of the text.
//!
//! Why not dense ids from `towers.csv`: the CDR parser runs in the sources,
//! which do not see the tables, and an unknown cell must still order exactly
//! against known ones; the packing needs no table and costs the same integer
//! comparisons.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Text;

/// A `cell_id`: packed when it is `-` and digits (≤ 35), else its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cell {
    Packed(u128),
    Text(Text),
}

const BASE: u128 = 12;
const MAX_LEN: usize = 35;

fn code(b: u8) -> Option<u128> {
    match b {
        b'-' => Some(1),
        b'0'..=b'9' => Some(u128::from(b - b'0') + 2),
        _ => None,
    }
}

fn pack(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() > MAX_LEN {
        return None;
    }
    let mut v = 0u128;
    for i in 0..MAX_LEN {
        let c = match bytes.get(i) {
            Some(&b) => code(b)?,
            None => 0,
        };
        v = v * BASE + c;
    }
    Some(v)
}

/// The text of a packed cell into `buf`.
fn unpack(mut v: u128, buf: &mut [u8; MAX_LEN]) -> &str {
    let mut codes = [0u8; MAX_LEN];
    for c in codes.iter_mut().rev() {
        *c = (v % BASE) as u8;
        v /= BASE;
    }
    let mut len = 0;
    for c in codes {
        buf[len] = match c {
            0 => break,
            1 => b'-',
            c => b'0' + c - 2,
        };
        len += 1;
    }
    // Only `-` and ASCII digits were written.
    std::str::from_utf8(&buf[..len]).unwrap_or("")
}

impl Cell {
    pub fn new(text: &str) -> Cell {
        match pack(text) {
            Some(v) => Cell::Packed(v),
            None => Cell::Text(Text::from(text)),
        }
    }

    /// Calls `f` with the text (no allocation for a packed cell).
    pub fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Cell::Packed(v) => f(unpack(*v, &mut [0; MAX_LEN])),
            Cell::Text(t) => f(t),
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::new(text)
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        match pack(&text) {
            Some(v) => Cell::Packed(v),
            None => Cell::Text(Text::from(text)),
        }
    }
}

impl Ord for Cell {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Cell::Packed(a), Cell::Packed(b)) => a.cmp(b),
            (Cell::Text(a), Cell::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (a, b) => a.with_text(|a| b.with_text(|b| a.as_bytes().cmp(b.as_bytes()))),
        }
    }
}

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|t| f.write_str(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_cases() {
        assert!(matches!(Cell::new("262-01-1234-5678"), Cell::Packed(_)));
        assert!(matches!(Cell::new("262-unknown"), Cell::Text(_)));
        assert!(matches!(Cell::new(&"1".repeat(36)), Cell::Text(_)));
        let max = "9".repeat(35);
        assert_eq!(Cell::new(&max).to_string(), max);
        assert_eq!(Cell::new("262-01").to_string(), "262-01");
        assert!(Cell::new("262-01") < Cell::new("262-01-"));
        assert!(Cell::new("262-01-9") < Cell::new("262-0A"));
        assert!(Cell::new("262-0A") < Cell::new("262-1"));
    }

    proptest! {
        #[test]
        fn round_trip_and_order(
            a in "[-0-9]{1,36}|[-0-9a-c ]{1,8}",
            b in "[-0-9]{1,36}|[-0-9a-c ]{1,8}",
        ) {
            let (ca, cb) = (Cell::new(&a), Cell::new(&b));
            prop_assert_eq!(ca.to_string(), a.clone());
            prop_assert_eq!(ca.cmp(&cb), a.as_bytes().cmp(b.as_bytes()));
            prop_assert_eq!(ca == cb, a == b);
        }
    }
}
