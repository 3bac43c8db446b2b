//! Geometry and calendar helpers: haversine (SPEC §3 step 2), metre offsets,
//! the city list, and proleptic-Gregorian date arithmetic on epoch days.

/// Mean Earth radius, metres (SPEC §3).
pub(crate) const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres, exactly the SPEC §3 formula.
pub(crate) fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// The point `north_m` metres north and `east_m` metres east of `(lat, lon)`
/// (local flat-earth approximation; fine for a few tens of kilometres).
pub(crate) fn offset(lat: f64, lon: f64, north_m: f64, east_m: f64) -> (f64, f64) {
    let dlat = (north_m / EARTH_RADIUS_M).to_degrees();
    let dlon = (east_m / (EARTH_RADIUS_M * lat.to_radians().cos())).to_degrees();
    (lat + dlat, lon + dlon)
}

/// Rounds a coordinate to the 6 decimals written to the CSV files, so that the
/// in-memory world is exactly what a reader of the files sees.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// A city: a centre, a region (the weather key) and a relative size.
#[derive(Clone, Debug)]
pub(crate) struct City {
    pub(crate) name: &'static str,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) region: &'static str,
    pub(crate) weight: f64,
}

/// German cities, ordered so that the first few already span several regions.
const CITIES: &[(&str, f64, f64, &str, f64)] = &[
    ("Berlin", 52.520008, 13.404954, "east", 1.6),
    ("Hamburg", 53.551086, 9.993682, "north", 1.3),
    ("München", 48.137154, 11.576124, "south", 1.3),
    ("Köln", 50.937531, 6.960279, "west", 1.1),
    ("Frankfurt", 50.110922, 8.682127, "central", 1.0),
    ("Stuttgart", 48.775846, 9.182932, "south", 0.9),
    ("Düsseldorf", 51.227741, 6.773456, "west", 0.9),
    ("Leipzig", 51.339695, 12.373075, "east", 0.8),
    ("Hannover", 52.375892, 9.732010, "north", 0.8),
    ("Nürnberg", 49.452103, 11.076665, "south", 0.8),
    ("Dresden", 51.050409, 13.737262, "east", 0.8),
    ("Dortmund", 51.513587, 7.465298, "west", 0.8),
    ("Bremen", 53.079296, 8.801694, "north", 0.7),
    ("Kassel", 51.312711, 9.479746, "central", 0.6),
];

/// The first `n` cities; beyond the list, towns on a grid across Germany
/// (all at least ~60 km apart, so their road grids never overlap).
pub(crate) fn cities(n: u32) -> Vec<City> {
    (0..n as usize)
        .map(|i| match CITIES.get(i) {
            Some(&(name, lat, lon, region, weight)) => City {
                name,
                lat,
                lon,
                region,
                weight,
            },
            None => {
                let k = i - CITIES.len();
                let lat = 47.8 + 0.55 * (k % 10) as f64 + 0.27 * ((k / 10) % 2) as f64;
                let lon = 6.4 + 0.9 * ((k / 10) % 9) as f64 + 0.45 * ((k / 90) % 2) as f64;
                let region = match (lat > 51.0, lon > 10.5) {
                    (true, true) => "east",
                    (true, false) => "north",
                    (false, true) => "south",
                    (false, false) => "west",
                };
                City {
                    name: "Kleinstadt",
                    lat,
                    lon,
                    region,
                    weight: 0.5,
                }
            }
        })
        .collect()
}

pub(crate) const DAY_S: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day number since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses `YYYY-MM-DD` into a day number, checking the calendar.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: u32 = s[5..7].parse().ok()?;
    let d: u32 = s[8..10].parse().ok()?;
    let day = days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

/// `YYYY-MM-DD` of a day number.
pub(crate) fn format_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Day of the week of a day number: 0 = Monday … 6 = Sunday.
pub(crate) fn weekday(day: i64) -> u32 {
    // 1970-01-01 was a Thursday.
    (day + 3).rem_euclid(7) as u32
}

/// Appends `epoch` as an RFC 3339 timestamp in the given UTC offset
/// (`Z` when 0), e.g. `2026-11-02T09:15:30+01:00`: the same instant.
pub(crate) fn push_rfc3339(out: &mut Vec<u8>, epoch: i64, offset_min: i32) {
    let local = epoch + i64::from(offset_min) * 60;
    let (y, m, d) = civil_from_days(local.div_euclid(DAY_S));
    let s = local.rem_euclid(DAY_S);
    let two = |out: &mut Vec<u8>, v: i64| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    two(out, y / 100);
    two(out, y % 100);
    out.push(b'-');
    two(out, i64::from(m));
    out.push(b'-');
    two(out, i64::from(d));
    out.push(b'T');
    two(out, s / 3600);
    out.push(b':');
    two(out, s / 60 % 60);
    out.push(b':');
    two(out, s % 60);
    if offset_min == 0 {
        out.push(b'Z');
    } else {
        out.push(if offset_min < 0 { b'-' } else { b'+' });
        let a = i64::from(offset_min.abs());
        two(out, a / 60);
        out.push(b':');
        two(out, a % 60);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        let d = parse_date("2026-11-02").unwrap();
        assert_eq!(format_date(d), "2026-11-02");
        assert_eq!(weekday(d), 0, "2026-11-02 is a Monday");
        assert_eq!(parse_date("2026-02-29"), None);
        for z in -1000..100_000 {
            let (y, m, dd) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, dd), z);
        }
    }

    #[test]
    fn rfc3339_names_the_same_instant() {
        let t = parse_date("2026-11-22").unwrap() * DAY_S + 8 * 3600 + 15 * 60 + 30;
        let mut z = Vec::new();
        push_rfc3339(&mut z, t, 0);
        assert_eq!(z, b"2026-11-22T08:15:30Z");
        let mut p = Vec::new();
        push_rfc3339(&mut p, t, 60);
        assert_eq!(p, b"2026-11-22T09:15:30+01:00");
        let mut n = Vec::new();
        push_rfc3339(&mut n, t, -300);
        assert_eq!(n, b"2026-11-22T03:15:30-05:00");
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        // Berlin – Hamburg centres: about 255 km.
        let d = haversine_m(52.520008, 13.404954, 53.551086, 9.993682);
        assert!((250_000.0..260_000.0).contains(&d), "{d}");
        let (lat, lon) = offset(50.0, 8.0, 1000.0, 0.0);
        assert!((haversine_m(50.0, 8.0, lat, lon) - 1000.0).abs() < 1.0);
    }
}
