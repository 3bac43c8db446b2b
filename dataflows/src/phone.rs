//! Phone-number normalisation (SPEC §1).
//!
//! Every phone number (`msisdn`, `callee`, the loyalty `msisdn`) is normalised
//! before any comparison:
//!
//! 1. drop every space, `-`, `.`, `(` and `)`;
//! 2. a leading `00` becomes `+`;
//! 3. the result must be `+` followed by 8 to 15 ASCII digits
//!    ([`MIN_DIGITS`]..=[`MAX_DIGITS`]), else the number is invalid.
//!
//! Step 2 looks at the text *after* step 1, so `"00 49 …"` and `"(00)49…"` are
//! international numbers too. Only the five listed characters are dropped: a tab,
//! a `/`, a letter, a non-ASCII digit or a second `+` make the number invalid.
//! A `+` must come first (`"(+49) 160 7465889"` is fine because `(` is dropped);
//! `"+0049…"` is kept as is (a `+` then digits), `"00+49…"` is invalid.
//!
//! Runs for every CDR (twice), so it makes one pass over the bytes into a stack
//! buffer and a single exact-size allocation for the result.

/// Fewest digits after the `+`.
pub const MIN_DIGITS: usize = 8;
/// Most digits after the `+` (E.164).
pub const MAX_DIGITS: usize = 15;

/// The normalised form of a phone number (`+` and 8–15 digits), or `None` if
/// the text does not normalise (SPEC §1).
///
/// ```
/// use cdrflow_dataflows::phone::normalize_msisdn;
/// assert_eq!(normalize_msisdn("0049.151.92082635").as_deref(), Some("+4915192082635"));
/// assert_eq!(normalize_msisdn("(+49) 160 7465889").as_deref(), Some("+491607465889"));
/// assert_eq!(normalize_msisdn("4915112345678"), None); // no `+`, no `00`
/// ```
pub fn normalize_msisdn(s: &str) -> Option<String> {
    // Fast path: already normalised (most numbers in practice).
    if let Some(digits) = s.strip_prefix('+') {
        if (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(s.to_owned());
        }
    }
    // `+` plus at most MAX_DIGITS digits.
    let mut buf = [0u8; 1 + MAX_DIGITS];
    let mut len = 0usize; // bytes in `buf`; 0 = nothing yet, then `+` and digits
    let mut pending_zero = false; // saw the first `0` of a leading `00`
    for &b in s.as_bytes() {
        match b {
            b' ' | b'-' | b'.' | b'(' | b')' => {}
            b'+' if len == 0 && !pending_zero => {
                buf[0] = b'+';
                len = 1;
            }
            b'0' if len == 0 => {
                if pending_zero {
                    buf[0] = b'+';
                    len = 1;
                    pending_zero = false;
                } else {
                    pending_zero = true;
                }
            }
            b'0'..=b'9' if len > 0 => {
                if len == buf.len() {
                    return None; // more than MAX_DIGITS digits
                }
                buf[len] = b;
                len += 1;
            }
            _ => return None,
        }
    }
    if len < 1 + MIN_DIGITS {
        return None;
    }
    // All bytes are ASCII, so this never fails.
    std::str::from_utf8(&buf[..len]).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Option<String> {
        normalize_msisdn(s)
    }

    #[test]
    fn formats_seen_in_the_data() {
        assert_eq!(n("+49 (172) 14530630").as_deref(), Some("+4917214530630"));
        assert_eq!(n("0049.151.92082635").as_deref(), Some("+4915192082635"));
        assert_eq!(n("(+49) 160 7465889").as_deref(), Some("+491607465889"));
        assert_eq!(n("+49-172-552-99421").as_deref(), Some("+4917255299421"));
        assert_eq!(n("+49172 44 09 1814").as_deref(), Some("+4917244091814"));
        assert_eq!(n("+49 151 5525 703").as_deref(), Some("+491515525703"));
        assert_eq!(n("004915193411895").as_deref(), Some("+4915193411895"));
        assert_eq!(n("0044 765 3100847").as_deref(), Some("+447653100847"));
        assert_eq!(n("+33-641-969-920").as_deref(), Some("+33641969920"));
        assert_eq!(n("+4915112345678").as_deref(), Some("+4915112345678"));
    }

    #[test]
    fn invalid_values_seen_in_the_data() {
        assert_eq!(n("anonymous"), None);
        assert_eq!(n("+"), None);
        assert_eq!(n("+49123"), None);
        assert_eq!(n("+4915112345678901234"), None);
        assert_eq!(n("+49 151 ABC 4567"), None);
        assert_eq!(n("4915112345678"), None);
        assert_eq!(n(""), None);
    }

    #[test]
    fn digit_count_bounds() {
        assert_eq!(n("+1234567").as_deref(), None); // 7
        assert_eq!(n("+12345678").as_deref(), Some("+12345678")); // 8
        assert_eq!(n("+123456789012345").as_deref(), Some("+123456789012345")); // 15
        assert_eq!(n("+1234567890123456"), None); // 16
        assert_eq!(n("0012345678").as_deref(), Some("+12345678"));
        assert_eq!(n("001234567"), None);
        assert_eq!(n("00123456789012345").as_deref(), Some("+123456789012345"));
        assert_eq!(n("001234567890123456"), None);
    }

    #[test]
    fn leading_00_is_read_after_dropping_separators() {
        assert_eq!(n("0 049 151 92082635").as_deref(), Some("+4915192082635"));
        assert_eq!(n("(00)49-151-92082635").as_deref(), Some("+4915192082635"));
        assert_eq!(n(" +49 151 92082635 ").as_deref(), Some("+4915192082635"));
        // `+` then digits that happen to start with 00: kept as is.
        assert_eq!(n("+0049151920826").as_deref(), Some("+0049151920826"));
        // 000… : the first two zeros become `+`, the third is a digit.
        assert_eq!(n("00049151920826").as_deref(), Some("+049151920826"));
    }

    #[test]
    fn other_characters_are_invalid() {
        assert_eq!(n("0+4915192082635"), None);
        assert_eq!(n("00+4915192082635"), None);
        assert_eq!(n("++4915192082635"), None);
        assert_eq!(n("+49151+92082635"), None);
        assert_eq!(n("+49\t15192082635"), None);
        assert_eq!(n("+49/15192082635"), None);
        assert_eq!(n("+49_15192082635"), None);
        assert_eq!(n("+49１5192082635"), None); // full-width digit
        assert_eq!(n("0491519208263"), None); // national format
        assert_eq!(n("0"), None);
        assert_eq!(n("00"), None);
        assert_eq!(n("()-. "), None);
    }
}
