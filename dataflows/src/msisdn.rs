//! A normalised phone number (SPEC §1: `+` and 8–15 digits) packed into a
//! `u64`, so that records keyed by it are `Copy` and compare as integers.
//!
//! Packing: each digit `d` becomes `d + 1` (1..=10), the end of the number is
//! 0, and the 15 positions are read as a base-11 number, most significant
//! first (11^15 ≈ 4.2·10^15 < 2^64). Integer order is then exactly the byte
//! order of the strings (the end mark sorts below every digit, as a shorter
//! prefix does), so tie-breaks and sorted outputs stay those of the SPEC.
//! [`Msisdn::NONE`] (0) is the empty string: an absent callee, which sorts
//! first as the SPEC's "absent = empty" asks.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::phone::{MAX_DIGITS, MIN_DIGITS};

/// A packed normalised msisdn, or [`Msisdn::NONE`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Msisdn(pub u64);

const BASE: u64 = 11;

impl Msisdn {
    /// The empty number (an absent callee).
    pub const NONE: Msisdn = Msisdn(0);

    /// Packs a normalised number (`+` and 8–15 ASCII digits); `None` for any
    /// other text. The empty string packs to [`Msisdn::NONE`].
    pub fn pack(normalised: &str) -> Option<Msisdn> {
        if normalised.is_empty() {
            return Some(Msisdn::NONE);
        }
        let digits = normalised.strip_prefix('+')?.as_bytes();
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
            return None;
        }
        let mut v = 0u64;
        for i in 0..MAX_DIGITS {
            let code = match digits.get(i) {
                Some(b @ b'0'..=b'9') => u64::from(b - b'0') + 1,
                Some(_) => return None,
                None => 0,
            };
            v = v * BASE + code;
        }
        Some(Msisdn(v))
    }

    pub fn is_none(self) -> bool {
        self == Msisdn::NONE
    }

    /// The text form into `buf`: `+` and the digits (empty for NONE).
    pub fn write_to(self, buf: &mut [u8; 1 + MAX_DIGITS]) -> &str {
        if self.is_none() {
            return "";
        }
        let mut codes = [0u8; MAX_DIGITS];
        let mut v = self.0;
        for c in codes.iter_mut().rev() {
            *c = (v % BASE) as u8;
            v /= BASE;
        }
        buf[0] = b'+';
        let mut len = 1;
        for c in codes {
            if c == 0 {
                break;
            }
            buf[len] = b'0' + c - 1;
            len += 1;
        }
        // Only ASCII digits and `+` were written.
        std::str::from_utf8(&buf[..len]).unwrap_or("")
    }

    /// The text form as an owned string (edges only: outputs, tokens).
    pub fn to_text(self) -> String {
        let mut buf = [0u8; 1 + MAX_DIGITS];
        self.write_to(&mut buf).to_owned()
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 1 + MAX_DIGITS];
        f.write_str(self.write_to(&mut buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_cases() {
        assert_eq!(Msisdn::pack(""), Some(Msisdn::NONE));
        assert_eq!(Msisdn::pack("4915112345678"), None);
        assert_eq!(Msisdn::pack("+1234567"), None);
        assert_eq!(Msisdn::pack("+1234567890123456"), None);
        assert_eq!(Msisdn::pack("+12345678a"), None);
        let a = Msisdn::pack("+12345678").unwrap();
        let b = Msisdn::pack("+123456789").unwrap();
        let c = Msisdn::pack("+12345679").unwrap();
        let max = Msisdn::pack("+999999999999999").unwrap();
        assert!(Msisdn::NONE < a && a < b && b < c && c < max);
        assert_eq!(max.to_text(), "+999999999999999");
        assert_eq!(Msisdn::pack("+000000000").unwrap().to_text(), "+000000000");
        assert_eq!(Msisdn::NONE.to_text(), "");
    }

    proptest! {
        #[test]
        fn round_trip_and_order(a in "\\+[0-9]{8,15}", b in "\\+[0-9]{8,15}") {
            let (pa, pb) = (Msisdn::pack(&a).unwrap(), Msisdn::pack(&b).unwrap());
            prop_assert_eq!(pa.to_text(), a.clone());
            prop_assert_eq!(pa.cmp(&pb), a.as_bytes().cmp(b.as_bytes()));
            prop_assert!(Msisdn::NONE < pa);
        }
    }
}
