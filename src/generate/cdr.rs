//! CDR line `i` of `cdrs.jsonl` as a pure function of `(seed, i)`.
//!
//! ```text
//!  i ──hash──► category ──┬─ normal    record(i) at base(i) ± 60 s
//!                         ├─ late      record(i) at base(i−1) − 60 s − 1 h − (10 min..8 h)
//!                         ├─ duplicate record(j) re-sent, j < i, base(i−1) − base(j) ≤ 30 min
//!                         └─ malformed record(i), then broken one way (cdr_json)
//! ```
//!
//! `base(i)` spreads the lines over the days with a diurnal profile and is
//! non-decreasing in `i`, so arrival order is event order up to the jitter.
//! A planted late line needs line `i−1` to be normal, and a duplicate needs a
//! normal original up to 300 lines and at most 30 minutes of event time back
//! (it looks closer while the first pick is too far); otherwise the line is
//! simply normal, so the planted shares come out a little under the
//! configured ones. Normal starts are clamped into the CDR date range. With those rules the SPEC §2 outcome of every line is
//! known exactly (for the default `--lateness 1h`): normal lines are never
//! late (the maximum start so far is at most `base(i−1) + 63 s`), planted late
//! lines always are (the normal line before them started at or after
//! `base(i−1) − 60 s`), duplicates never are, and a duplicate's differing
//! field only ever grows, so the copy kept is always the original.

use super::cdr_json::{Reason, Style};
use super::geo::{weekday, DAY_S};
use super::people::{DATA_HEAVY, ROAMER, SMS_HEAVY, VOICE_HEAVY};
use super::phone::Phone;
use super::rng::{hash, unit_of, Rng, Stream};
use super::world::PROMO_RADIUS_M;
use super::World;

/// Maximum jitter of a normal line's start around `base(i)`, seconds.
pub(crate) const JITTER_S: i64 = 60;
/// The SPEC §2 default lateness the planted categories are built around.
const LATENESS_S: i64 = 3_600;
/// A duplicate's original is at most this much event time back.
const DUP_GAP_S: i64 = 1_800;

/// Relative call volume per *local* (CET, UTC+1) hour of the day.
const HOURLY: [f64; 24] = [
    3.0, 2.0, 1.5, 1.0, 1.0, 1.5, 3.0, 6.0, 8.0, 9.0, 9.5, 10.0, 10.0, 9.5, 9.5, 9.5, 10.0, 10.5,
    11.0, 11.0, 10.0, 8.0, 6.0, 4.0,
];
/// CET is UTC+1 from November to March.
const LOCAL_OFFSET_S: i64 = 3_600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Voice,
    Sms,
    Data,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    /// A tower of `towers.csv`.
    Tower(u32),
    /// A local cell missing from `towers.csv` (LAC 9999).
    Unlisted(u32),
    /// A foreign network's cell while roaming.
    Foreign { mcc: u16, lac: u16, ci: u32 },
}

#[derive(Clone, Debug)]
pub(crate) struct Cdr {
    pub(crate) idx: u64,
    pub(crate) switch: u8,
    pub(crate) caller: Phone,
    pub(crate) caller_sub: Option<u32>,
    pub(crate) callee: Option<Phone>,
    pub(crate) kind: Kind,
    pub(crate) start: i64,
    pub(crate) duration_s: u32,
    pub(crate) bytes: u64,
    pub(crate) cell: Cell,
    pub(crate) charge_cents: u32,
    pub(crate) roaming: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Normal,
    Late,
    Duplicate(u64),
    Malformed,
}

/// What one line turned out to be, for the summary.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    /// A unique valid record; flags for the summary's counters.
    Normal {
        unknown_cell: bool,
        rfc3339: bool,
        candidate: bool,
    },
    Late,
    Duplicate,
    Malformed(Reason),
}

/// Everything needed to produce any line; shared read-only by the workers.
pub(crate) struct CdrPlan<'a> {
    pub(crate) seed: u64,
    pub(crate) n: u64,
    pub(crate) world: &'a World,
    pub(crate) t0: i64,
    pub(crate) days: u32,
    pub(crate) malformed: f64,
    pub(crate) duplicate: f64,
    pub(crate) late: f64,
    /// Cumulative share of a UTC day's volume before each UTC hour.
    cdf: [f64; 25],
    visitors: u64,
}

impl<'a> CdrPlan<'a> {
    pub(crate) fn new(
        seed: u64,
        n: u64,
        world: &'a World,
        t0: i64,
        days: u32,
        (malformed, duplicate, late): (f64, f64, f64),
    ) -> Self {
        let total: f64 = HOURLY.iter().sum();
        let mut cdf = [0.0; 25];
        for h in 0..24 {
            let local = (h + (LOCAL_OFFSET_S / 3600) as usize) % 24;
            cdf[h + 1] = cdf[h] + HOURLY[local] / total;
        }
        cdf[24] = 1.0;
        let visitors = (world.people.subs.len() as u64 / 50).max(50);
        CdrPlan {
            seed,
            n,
            world,
            t0,
            days,
            malformed,
            duplicate,
            late,
            cdf,
            visitors,
        }
    }

    /// The un-jittered event time of line `i`: non-decreasing in `i`.
    pub(crate) fn base(&self, i: u64) -> i64 {
        let x = (i as f64 + 0.5) / self.n as f64 * f64::from(self.days);
        let day = (x.floor() as i64).min(i64::from(self.days) - 1);
        let f = x - day as f64;
        let h = self.cdf[1..].partition_point(|&c| c <= f).min(23);
        let within = (f - self.cdf[h]) / (self.cdf[h + 1] - self.cdf[h]);
        let sec = (h as f64 + within.clamp(0.0, 0.999_999)) * 3600.0;
        self.t0 + day * DAY_S + sec as i64
    }

    fn raw_category(&self, i: u64) -> Category {
        let u = unit_of(hash(self.seed, Stream::CdrCategory, i));
        if u < self.malformed {
            Category::Malformed
        } else if u < self.malformed + self.duplicate {
            Category::Duplicate(0)
        } else if u < self.malformed + self.duplicate + self.late {
            Category::Late
        } else {
            Category::Normal
        }
    }

    /// The category of line `i`, after the fall-backs that keep every
    /// planted outcome exact (module doc).
    pub(crate) fn category(&self, i: u64) -> Category {
        match self.raw_category(i) {
            Category::Late if i > 0 && self.raw_category(i - 1) == Category::Normal => {
                Category::Late
            }
            Category::Duplicate(_) if i > 0 => {
                // Up to 300 lines back; closer while that is too far in time.
                let mut back = 1 + hash(self.seed, Stream::CdrCategory, i ^ (1 << 63)) % i.min(300);
                loop {
                    let j = (i - back..i).find(|&j| self.raw_category(j) == Category::Normal);
                    match j {
                        Some(j) if self.base(i - 1) - self.base(j) <= DUP_GAP_S => {
                            break Category::Duplicate(j)
                        }
                        _ if back > 1 => back /= 2,
                        _ => break Category::Normal,
                    }
                }
            }
            Category::Malformed => Category::Malformed,
            _ => Category::Normal,
        }
    }

    /// Record `i` and its writing style; `at` overrides the start time.
    pub(crate) fn record(&self, i: u64, at: Option<i64>) -> (Cdr, Style) {
        let mut rng = Rng::at(self.seed, Stream::Cdr, i);
        let jitter = rng.range(-JITTER_S, JITTER_S);
        // Clamped into the range: the bounds of the module doc still hold.
        let t_end = self.t0 + i64::from(self.days) * DAY_S - 1;
        let start = at.unwrap_or((self.base(i) + jitter).clamp(self.t0, t_end));
        let cdr = self.content(i, start, &mut rng);
        let style = Style::draw(&mut rng, cdr.kind);
        (cdr, style)
    }

    /// Start time of planted late line `i`.
    pub(crate) fn late_start(&self, i: u64) -> i64 {
        let mut rng = Rng::at(self.seed, Stream::CdrCategory, i ^ (1 << 62));
        self.base(i - 1) - JITTER_S - LATENESS_S - rng.range(600, 8 * 3600)
    }

    fn content(&self, idx: u64, start: i64, rng: &mut Rng) -> Cdr {
        let people = &self.world.people;
        let geo = &self.world.geo;
        let n = people.subs.len() as u64;
        let local = start + LOCAL_OFFSET_S;
        let hour = local.rem_euclid(DAY_S) / 3600;
        let weekend = weekday(local.div_euclid(DAY_S)) >= 5;
        let utc_hour = start.rem_euclid(DAY_S) / 3600;
        let night = !(6..22).contains(&utc_hour);

        let visitor = rng.chance(0.01);
        let k = if visitor {
            None
        } else if night && !people.night_owls.is_empty() && rng.chance(0.45) {
            Some(people.night_owls[rng.index(people.night_owls.len())])
        } else if weekend && !people.weekenders.is_empty() && rng.chance(0.35) {
            Some(people.weekenders[rng.index(people.weekenders.len())])
        } else if rng.chance(0.55) {
            Some(rng.below(n) as u32)
        } else {
            Some(((n as f64) * rng.unit().powi(3)) as u32)
        };
        let sub = k.map(|k| people.hot[k as usize]);
        let flags = sub.map_or(0, |s| s.flags);
        let caller = match sub {
            Some(s) => Phone { cc: 49, nsn: s.nsn },
            None => Phone::foreign(hash(
                self.seed,
                Stream::Cdr,
                (1 << 62) | rng.below(self.visitors),
            )),
        };

        let roam_p = if flags & ROAMER != 0 { 0.35 } else { 0.004 };
        let (cell, roaming) = match sub {
            None => {
                let city = rng.index(geo.cities.len()) as u32;
                (Cell::Tower(geo.any_tower(rng, city)), true)
            }
            Some(_) if rng.chance(roam_p) => {
                let mcc = [208, 232, 228, 204, 234, 214][rng.index(6)];
                let cell = Cell::Foreign {
                    mcc,
                    lac: rng.range(10, 9_999) as u16,
                    ci: rng.range(100, 65_000) as u32,
                };
                (cell, true)
            }
            Some(_) if rng.chance(0.004) => (Cell::Unlisted(rng.range(100, 9_999) as u32), false),
            Some(s) => {
                let weights = if !weekend && (8..18).contains(&hour) {
                    [0.10, 0.72, 0.18]
                } else if !(7..22).contains(&hour) {
                    [0.85, 0.0, 0.15]
                } else {
                    [0.55, 0.0, 0.45]
                };
                let t = match rng.weighted(&weights) {
                    0 => s.home,
                    1 => s.work,
                    _ if rng.chance(0.92) => geo.any_tower(rng, s.city),
                    _ => rng.below(geo.towers.len() as u64) as u32,
                };
                (Cell::Tower(t), false)
            }
        };

        let kind_w = if flags & DATA_HEAVY != 0 {
            [0.2, 0.1, 0.7]
        } else if flags & SMS_HEAVY != 0 {
            [0.2, 0.6, 0.2]
        } else if flags & VOICE_HEAVY != 0 {
            [0.7, 0.1, 0.2]
        } else {
            [0.40, 0.22, 0.38]
        };
        let kind = [Kind::Voice, Kind::Sms, Kind::Data][rng.weighted(&kind_w)];
        let callee = (kind != Kind::Data).then(|| match (k, rng.weighted(&[0.78, 0.15, 0.07])) {
            (Some(k), 0) => {
                let c = rng.below(u64::from(people.hot[k as usize].contacts.max(1)));
                let mut other = hash(self.seed, Stream::Contact, u64::from(k) << 8 | c) % n;
                if other == u64::from(k) {
                    other = (other + 1) % n;
                }
                Phone {
                    cc: 49,
                    nsn: people.nsn[other as usize],
                }
            }
            (_, 0 | 1) => Phone {
                cc: 49,
                nsn: people.nsn[rng.below(n) as usize],
            },
            _ => Phone::foreign(rng.next_u64()),
        });
        let per_minute = |d: u32, cents: u32| d.div_ceil(60) * cents;
        let (duration_s, bytes, charge_cents) = match kind {
            Kind::Voice => {
                let scale = if flags & VOICE_HEAVY != 0 { 3.0 } else { 1.0 };
                let d = (rng.lognormal(75f64.ln(), 1.1) * scale).clamp(1.0, 10_800.0) as u32;
                let charge = if roaming {
                    per_minute(d, 29)
                } else if rng.chance(0.25) {
                    per_minute(d, 9)
                } else {
                    0
                };
                (d, 0, charge)
            }
            Kind::Sms => {
                let charge = if roaming {
                    19
                } else if rng.chance(0.2) {
                    9
                } else {
                    0
                };
                (0, 0, charge)
            }
            Kind::Data => {
                let scale = if flags & DATA_HEAVY != 0 { 25.0 } else { 1.0 };
                let b = (rng.lognormal(2e6f64.ln(), 2.0) * scale).clamp(200.0, 4e9) as u64;
                let charge = if roaming {
                    (b / 1_000_000) as u32 * 2
                } else {
                    0
                };
                (rng.range(5, 3_600) as u32, b, charge)
            }
        };
        Cdr {
            idx,
            switch: 1 + rng.below(3) as u8,
            caller,
            caller_sub: k,
            callee,
            kind,
            start,
            duration_s,
            bytes,
            cell,
            charge_cents,
            roaming,
        }
    }

    /// Appends line `i` (with its newline) and says what it is.
    pub(crate) fn write_line(&self, i: u64, out: &mut Vec<u8>) -> Outcome {
        let geo = &self.world.geo;
        let outcome = match self.category(i) {
            Category::Normal => {
                let (cdr, style) = self.record(i, None);
                style.write(&cdr, geo, None, out);
                let candidate = match (cdr.caller_sub, cdr.cell) {
                    (Some(k), Cell::Tower(t)) => {
                        self.world.people.hot[k as usize].qualifies
                            && geo.towers[t as usize].nearest_store_m <= PROMO_RADIUS_M
                    }
                    _ => false,
                };
                Outcome::Normal {
                    unknown_cell: !matches!(cdr.cell, Cell::Tower(_)),
                    rfc3339: style.start_offset.is_some(),
                    candidate,
                }
            }
            Category::Late => {
                let (cdr, style) = self.record(i, Some(self.late_start(i)));
                style.write(&cdr, geo, None, out);
                Outcome::Late
            }
            Category::Duplicate(j) => {
                let (mut cdr, style) = self.record(j, None);
                let mut rng = Rng::at(self.seed, Stream::CdrCategory, i);
                let style = match rng.weighted(&[0.70, 0.15, 0.15]) {
                    0 => style,
                    1 => Style::draw(&mut rng, cdr.kind),
                    _ => {
                        // A differing copy; it only grows, so the original is kept.
                        match rng.index(3) {
                            0 => cdr.start += rng.range(1, 3),
                            1 => cdr.charge_cents += rng.range(1, 9) as u32,
                            _ => cdr.duration_s += rng.range(1, 5) as u32,
                        }
                        style
                    }
                };
                style.write(&cdr, geo, None, out);
                Outcome::Duplicate
            }
            Category::Malformed => {
                let (cdr, style) = self.record(i, None);
                let mut rng = Rng::at(self.seed, Stream::CdrCategory, i);
                Outcome::Malformed(style.write_malformed(&cdr, geo, &mut rng, out))
            }
        };
        out.push(b'\n');
        outcome
    }
}
