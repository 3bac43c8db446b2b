//! Phone numbers and the messy ways operators and retailers write them.
//!
//! Every format here normalises (SPEC §1: drop spaces, `-`, `.`, `(`, `)`;
//! a leading `00` becomes `+`) to the canonical `+<cc><nsn>`, so the same
//! subscriber can appear as `+4915112345678` in a CDR and as
//! `0049 (151) 12345678` in `loyalty.csv` and still join.

use super::rng::{hash, splitmix, Stream};

/// A phone number: country code and national significant number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Phone {
    pub(crate) cc: u16,
    pub(crate) nsn: u64,
}

/// German mobile prefixes (without the trunk 0).
const DE_PREFIXES: [u64; 12] = [151, 152, 157, 159, 160, 162, 170, 171, 172, 175, 176, 177];

/// Number of formats `push` knows; format 0 is canonical.
pub(crate) const FORMATS: u8 = 8;

impl Phone {
    /// The German mobile number of subscriber `k`: unique for `k < 10^8`
    /// (an affine bijection on the last eight digits), prefix from a hash.
    pub(crate) fn subscriber(seed: u64, k: u64) -> Phone {
        let prefix = DE_PREFIXES[(hash(seed, Stream::Subscriber, k) % 12) as usize];
        let line = (k.wrapping_mul(36_860_453) + splitmix(seed) % 100_000_000) % 100_000_000;
        Phone {
            cc: 49,
            nsn: prefix * 100_000_000 + line,
        }
    }

    /// A foreign number (UK, France, Austria, Netherlands, Poland) from a hash.
    pub(crate) fn foreign(h: u64) -> Phone {
        let (cc, lead, digits) = match h % 5 {
            0 => (44, 7, 9),   // +44 7xxx xxxxxx
            1 => (33, 6, 8),   // +33 6 xx xx xx xx
            2 => (43, 664, 7), // +43 664 xxxxxxx
            3 => (31, 6, 8),   // +31 6 xxxxxxxx
            _ => (48, 50, 7),  // +48 50x xxx xxx
        };
        let m = 10u64.pow(digits);
        Phone {
            cc,
            nsn: lead * m + (h >> 8) % m,
        }
    }

    /// Appends the number in format `fmt` (`fmt % FORMATS`).
    pub(crate) fn push(&self, fmt: u8, out: &mut Vec<u8>) {
        let mut cc_buf = itoa::Buffer::new();
        let cc = cc_buf.format(self.cc).as_bytes();
        let mut nsn_buf = itoa::Buffer::new();
        let nsn = nsn_buf.format(self.nsn).as_bytes();
        let (head, tail) = nsn.split_at(3.min(nsn.len()));
        match fmt % FORMATS {
            0 => {
                out.push(b'+');
                out.extend_from_slice(cc);
                out.extend_from_slice(nsn);
            }
            1 => {
                out.extend_from_slice(b"00");
                out.extend_from_slice(cc);
                out.push(b' ');
                out.extend_from_slice(head);
                out.push(b' ');
                out.extend_from_slice(tail);
            }
            2 => {
                out.push(b'+');
                out.extend_from_slice(cc);
                out.push(b' ');
                out.extend_from_slice(head);
                out.push(b' ');
                let (a, b) = tail.split_at(tail.len() / 2);
                out.extend_from_slice(a);
                out.push(b' ');
                out.extend_from_slice(b);
            }
            3 => {
                out.push(b'+');
                out.extend_from_slice(cc);
                out.extend_from_slice(b" (");
                out.extend_from_slice(head);
                out.extend_from_slice(b") ");
                out.extend_from_slice(tail);
            }
            4 => {
                out.extend_from_slice(b"00");
                out.extend_from_slice(cc);
                out.push(b'.');
                out.extend_from_slice(head);
                out.push(b'.');
                out.extend_from_slice(tail);
            }
            5 => {
                out.push(b'+');
                out.extend_from_slice(cc);
                out.push(b'-');
                out.extend_from_slice(head);
                out.push(b'-');
                out.extend_from_slice(tail);
            }
            6 => {
                out.extend_from_slice(b"00");
                out.extend_from_slice(cc);
                out.extend_from_slice(nsn);
            }
            _ => {
                out.push(b'+');
                out.extend_from_slice(cc);
                out.extend_from_slice(head);
                for (i, pair) in tail.chunks(2).enumerate() {
                    if i < 3 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(pair);
                }
            }
        }
    }

    /// The number in format `fmt` as a `String`.
    pub(crate) fn format(&self, fmt: u8) -> String {
        let mut v = Vec::with_capacity(24);
        self.push(fmt, &mut v);
        String::from_utf8(v).expect("phone formats are ASCII")
    }
}

/// SPEC §1 normalisation, for tests: `None` when the result is invalid.
#[cfg(test)]
pub(crate) fn normalise(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let s = match kept.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => kept,
    };
    let digits = s.strip_prefix('+')?;
    let ok = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_normalises_to_the_canonical_number() {
        for k in [0u64, 1, 77, 99_999_999] {
            for p in [Phone::subscriber(3, k), Phone::foreign(k * 977 + 5)] {
                let canonical = p.format(0);
                assert_eq!(normalise(&canonical).as_deref(), Some(&*canonical));
                for f in 1..FORMATS {
                    let messy = p.format(f);
                    assert_eq!(normalise(&messy), Some(canonical.clone()), "{messy}");
                }
            }
        }
    }

    #[test]
    fn subscriber_numbers_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for k in 0..20_000 {
            assert!(seen.insert(Phone::subscriber(11, k).format(0)));
        }
    }
}
