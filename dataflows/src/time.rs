//! UTC civil time on [`Epoch`] seconds, RFC 3339 and duration flags (SPEC §1).
//!
//! No time-zone database and no external crate: everything here is the proleptic
//! Gregorian calendar in UTC, via Howard Hinnant's `days_from_civil` /
//! `civil_from_days` algorithms. Negative epochs (before 1970) are handled with
//! floor division, so `day_start(-1)` is `-86_400` and `date_string(-1)` is
//! `1969-12-31`.
//!
//! Parsing is strict:
//!
//! - [`parse_rfc3339`]: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T`/`t` and
//!   `Z`/`z` in either case, a real calendar date, hour 00–23, minute and
//!   second 00–59 (no leap second `60`: an epoch cannot represent it), offset
//!   hours 00–23 and minutes 00–59 (`-00:00` is read as UTC). **Fractional
//!   seconds** are accepted only when every fraction digit is `0` (the value is
//!   then a whole second); any other fraction is rejected (`None`), just as a
//!   fractional epoch integer is a bad value (SPEC §2) — we never round or
//!   truncate an event time silently.
//! - [`parse_date`]: exactly `YYYY-MM-DD`, a real calendar date.
//! - [`parse_duration`]: a CLI duration, digits then an optional unit.
//!
//! Civil dates are `(year, month 1–12, day 1–31)` with `i64` years; the
//! functions are exact for every day number that an `i64` epoch can produce.

use crate::model::Epoch;

/// Seconds in a (UTC, leap-second-free) day.
pub const SECS_PER_DAY: i64 = 86_400;

/// Whether `y` is a Gregorian leap year.
pub fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days in month `m` (1–12) of year `y`; 0 for a month outside 1–12.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of the civil date `y-m-d` (negative before 1970).
///
/// Unchecked assumption: `m` is 1–12 and `d` is 1–31 (validate with
/// [`days_in_month`] first; other inputs give a meaningless number, no panic for
/// `|y| < 10^12`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number (days since 1970-01-01).
///
/// Exact for `|z| <= i64::MAX / 86_400` (every day an `i64` epoch falls on).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// Day number (days since 1970-01-01, floor) of an epoch.
pub fn day_of(epoch: Epoch) -> i64 {
    epoch.div_euclid(SECS_PER_DAY)
}

/// Midnight (UTC) of the day `epoch` falls on (`i64::MIN` for the few epochs
/// whose midnight is below it).
pub fn day_start(epoch: Epoch) -> Epoch {
    epoch.saturating_sub(epoch.rem_euclid(SECS_PER_DAY))
}

/// Hour of the day, 0–23 (UTC).
pub fn hour_of_day(epoch: Epoch) -> u32 {
    (epoch.rem_euclid(SECS_PER_DAY) / 3600) as u32
}

/// Day of the week, 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(epoch: Epoch) -> u32 {
    (day_of(epoch) + 3).rem_euclid(7) as u32
}

/// The (UTC) calendar year `epoch` falls in.
pub fn year_of(epoch: Epoch) -> i64 {
    civil_from_days(day_of(epoch)).0
}

/// The UTC date of `epoch` as `YYYY-MM-DD` (years below 0 as `-YYYY`, years
/// above 9999 with as many digits as they need).
pub fn date_string(epoch: Epoch) -> String {
    let (y, m, d) = civil_from_days(day_of(epoch));
    if y < 0 {
        format!("-{:04}-{m:02}-{d:02}", y.unsigned_abs())
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// `epoch` as RFC 3339 in UTC, `YYYY-MM-DDTHH:MM:SSZ` (the inverse of
/// [`parse_rfc3339`] for years 0000–9999).
pub fn format_rfc3339(epoch: Epoch) -> String {
    let secs = epoch.rem_euclid(SECS_PER_DAY);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date_string(epoch),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The value of `b` as ASCII decimal digits, or `None` if any byte is not one.
fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Day number of a strict `YYYY-MM-DD` (exactly 10 bytes, a real date).
fn parse_ymd(b: &[u8]) -> Option<i64> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = i64::from(digits(&b[0..4])?);
    let m = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Midnight epoch of a strict `YYYY-MM-DD` date (e.g. a `weather.csv` `date`).
pub fn parse_date(s: &str) -> Option<Epoch> {
    parse_ymd(s.as_bytes()).map(|days| days * SECS_PER_DAY)
}

/// The epoch of an RFC 3339 date-time (`2026-11-22T08:15:30Z`,
/// `2026-11-22T10:15:30+02:00`), or `None`. See the module doc for the exact
/// grammar; a non-zero fraction of a second is rejected.
pub fn parse_rfc3339(s: &str) -> Option<Epoch> {
    let b = s.as_bytes();
    // date "T" HH ":" MM ":" SS = 19 bytes, then fraction and offset.
    if b.len() < 20 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = parse_ymd(&b[..10])?;
    let (hh, mm, ss) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        // At least one digit, and all of them zero.
        if n == 0 || frac[..n].iter().any(|&c| c != b'0') {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let local = days * SECS_PER_DAY + i64::from(hh * 3600 + mm * 60 + ss);
    Some(local - offset)
}

/// A CLI duration in seconds: a non-negative decimal integer with an optional
/// unit `s`, `m`, `h` or `d` (a bare number is seconds): `90`, `30m`, `1h`,
/// `30d`. No sign, no spaces, no fractions, lowercase units only; overflowing
/// `i64` is an error.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let err = || {
        format!("invalid duration {s:?}: expected a non-negative integer with an optional unit s, m, h or d (e.g. 90, 30m, 1h, 30d)")
    };
    let (num, unit) = match s.as_bytes().last() {
        Some(b's') => (&s[..s.len() - 1], 1),
        Some(b'm') => (&s[..s.len() - 1], 60),
        Some(b'h') => (&s[..s.len() - 1], 3600),
        Some(b'd') => (&s[..s.len() - 1], SECS_PER_DAY),
        _ => (s, 1),
    };
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 30), 20_817);
        assert_eq!(civil_from_days(20_817), (2026, 12, 30));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(days_from_civil(0, 2, 29), -719_469); // year 0 is a leap year
        assert_eq!(days_from_civil(-1, 12, 31), -719_529);
        assert_eq!(civil_from_days(-719_529), (-1, 12, 31));
    }

    #[test]
    fn civil_round_trip_every_day_of_four_centuries_and_then_some() {
        let start = days_from_civil(1599, 1, 1);
        let end = days_from_civil(2401, 12, 31);
        let mut expect = (1599, 1, 1);
        for z in start..=end {
            assert_eq!(civil_from_days(z), expect, "day {z}");
            assert_eq!(days_from_civil(expect.0, expect.1, expect.2), z);
            let (y, m, d) = expect;
            expect = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn extreme_epochs_do_not_panic() {
        for e in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let (y, m, d) = civil_from_days(day_of(e));
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(days_from_civil(y, m, d), day_of(e));
            let _ = (
                date_string(e),
                format_rfc3339(e),
                weekday(e),
                hour_of_day(e),
                year_of(e),
                day_start(e),
            );
        }
    }

    #[test]
    fn day_helpers_floor_negative_epochs() {
        assert_eq!(day_start(0), 0);
        assert_eq!(day_start(86_399), 0);
        assert_eq!(day_start(86_400), 86_400);
        assert_eq!(day_start(-1), -86_400);
        assert_eq!(day_start(-86_400), -86_400);
        assert_eq!(day_start(-86_401), -172_800);
        assert_eq!(hour_of_day(-1), 23);
        assert_eq!(hour_of_day(3600 * 5 + 59), 5);
        assert_eq!(date_string(-1), "1969-12-31");
        assert_eq!(date_string(0), "1970-01-01");
        assert_eq!(date_string(1_798_588_850), "2026-12-30");
        assert_eq!(date_string(-62_135_596_800), "0001-01-01");
        assert_eq!(date_string(-62_135_596_801), "0000-12-31");
        assert_eq!(date_string(-62_167_219_201), "-0001-12-31");
        assert_eq!(date_string(253_402_300_800), "10000-01-01");
        assert_eq!(year_of(-1), 1969);
        assert_eq!(year_of(1_735_689_599), 2024);
        assert_eq!(year_of(1_735_689_600), 2025);
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday(0), 3); // 1970-01-01 Thursday
        assert_eq!(weekday(-1), 2); // 1969-12-31 Wednesday
        assert_eq!(weekday(parse_date("2026-12-30").unwrap()), 2); // Wednesday
        assert_eq!(weekday(parse_date("2027-01-03").unwrap() + 86_399), 6); // Sunday
        assert_eq!(weekday(parse_date("2027-01-04").unwrap()), 0); // Monday
    }

    #[test]
    fn rfc3339_accepts_utc_and_offsets() {
        let t = 1_795_335_330;
        assert_eq!(parse_rfc3339("2026-11-22T08:15:30Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22t08:15:30z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22T08:15:30+00:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22T08:15:30-00:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22T10:15:30+02:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22T02:45:30-05:30"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-23T07:15:30+23:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22T08:15:30.000Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-22T08:15:30.0+00:00"), Some(t));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), Some(-62_135_596_800));
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59Z"), Some(253_402_300_799));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00+01:00"), Some(-3600));
    }

    #[test]
    fn rfc3339_rejects_everything_else() {
        for s in [
            "",
            "2026-11-22",
            "2026-11-22T08:15:30",         // no offset
            "2026-11-22 08:15:30Z",        // space separator
            "2026-11-22T08:15Z",           // no seconds
            "2026-11-22T08:15:30.5Z",      // non-zero fraction
            "2026-11-22T08:15:30.001Z",    // non-zero fraction
            "2026-11-22T08:15:30.Z",       // empty fraction
            "2026-11-22T08:15:30,0Z",      // comma fraction
            "2026-11-22T24:00:00Z",        // hour 24
            "2026-11-22T08:60:00Z",        // minute 60
            "2026-12-31T23:59:60Z",        // leap second
            "2026-02-29T00:00:00Z",        // not a leap year
            "1900-02-29T00:00:00Z",        // not a leap year
            "2026-13-01T00:00:00Z",        // month 13
            "2026-00-01T00:00:00Z",        // month 0
            "2026-04-31T00:00:00Z",        // April 31
            "2026-11-00T00:00:00Z",        // day 0
            "2026-11-22T08:15:30+2:00",    // short offset
            "2026-11-22T08:15:30+0200",    // no colon
            "2026-11-22T08:15:30+24:00",   // offset hour 24
            "2026-11-22T08:15:30+02:60",   // offset minute 60
            "2026-11-22T08:15:30ZZ",       // trailing
            "2026-11-22T08:15:30Z ",       // trailing space
            " 2026-11-22T08:15:30Z",       // leading space
            "+2026-11-22T08:15:30Z",       // signed year
            "12026-11-22T08:15:30Z",       // five-digit year
            "2026-1-22T08:15:30Z",         // one-digit month
            "30/12/2026 08:15",            // seen in the data
            "yesterday",                   // seen in the data
            "2026-11-22T08:15:3٠Z",        // non-ASCII digit
            "2026-11-22T08:15:30+02:00\n", // trailing newline
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s:?}");
        }
    }

    #[test]
    fn format_is_the_inverse_of_parse() {
        for e in [
            0,
            -1,
            1_795_335_330,
            951_782_400,
            -62_135_596_800,
            253_402_300_799,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(e)), Some(e));
        }
        assert_eq!(format_rfc3339(1_795_335_330), "2026-11-22T08:15:30Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-12-30"), Some(20_817 * 86_400));
        assert_eq!(parse_date("1969-12-31"), Some(-86_400));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
        for s in [
            "",
            "2026-12-3",
            "2026-12-030",
            "2026/12/30",
            "2026-12-30 ",
            "2026-02-29",
            "2026-12-32",
            "26-12-30",
            "2026-12-30T00:00:00Z",
            "２026-12-30",
        ] {
            assert_eq!(parse_date(s), None, "{s:?}");
        }
        for e in [0, -1, 1_798_588_850, -62_135_596_800] {
            assert_eq!(parse_date(&date_string(e)), Some(day_start(e)));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("45s"), Ok(45));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("30d"), Ok(2_592_000));
        assert_eq!(parse_duration("007m"), Ok(420));
        assert_eq!(parse_duration("9223372036854775807"), Ok(i64::MAX));
        assert!(parse_duration("9223372036854775808").is_err());
        assert!(parse_duration("106751991167301d").is_err()); // overflows when scaled
        for s in [
            "", "s", "h", "-1", "+1", "1.5h", "1 h", " 1h", "1H", "1w", "1hm", "h1", "1e3", "١h",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("duration"), "{s:?}: {e}");
        }
    }
}
