//! Daily weather per region (`weather.csv`): a persistent Markov chain over
//! `sunny`, `cloudy`, `rainy`, `snowy`, with a seasonal temperature curve for
//! Germany and an autocorrelated anomaly; precipitation below 1 °C is snow.
//! Rows cover every region for every date of the purchase history and the
//! CDR range (plus one day, for CDRs jittered past the last midnight).

use super::geo::{civil_from_days, days_from_civil, format_date};
use super::rng::{Rng, Stream};

pub(crate) const CONDITIONS: [&str; 4] = ["sunny", "cloudy", "rainy", "snowy"];
pub(crate) const SUNNY: u8 = 0;
pub(crate) const CLOUDY: u8 = 1;
pub(crate) const RAINY: u8 = 2;
pub(crate) const SNOWY: u8 = 3;

pub(crate) struct Weather {
    pub(crate) regions: Vec<&'static str>,
    pub(crate) first_day: i64,
    /// `condition[r][d]`, `temp[r][d]` for region `r`, day `first_day + d`.
    condition: Vec<Vec<u8>>,
    temp: Vec<Vec<f64>>,
}

/// Climatological mean temperature of a day (°C): ~19 in July, ~-1 in January.
fn seasonal_mean(day: i64) -> f64 {
    let (y, _, _) = civil_from_days(day);
    let doy = (day - days_from_civil(y, 1, 1)) as f64;
    9.0 + 10.0 * (std::f64::consts::TAU * (doy - 200.0) / 365.25).cos()
}

fn regional_offset(region: &str) -> f64 {
    match region {
        "east" => -1.0,
        "north" => 0.3,
        "south" => -1.5,
        "west" => 1.0,
        _ => 0.0,
    }
}

impl Weather {
    pub(crate) fn build(
        seed: u64,
        regions: Vec<&'static str>,
        first_day: i64,
        days: usize,
    ) -> Self {
        let mut condition = Vec::with_capacity(regions.len());
        let mut temp = Vec::with_capacity(regions.len());
        for (r, region) in regions.iter().enumerate() {
            let (mut cond, mut anomaly) = (CLOUDY, 0.0);
            let (mut cs, mut ts) = (Vec::with_capacity(days), Vec::with_capacity(days));
            for d in 0..days {
                let day = first_day + d as i64;
                let mut rng = Rng::at(seed, Stream::Weather, (r as u64) << 32 | d as u64);
                anomaly = 0.7 * anomaly + 2.2 * rng.normal();
                let t = seasonal_mean(day) + regional_offset(region) + anomaly;
                let precip = |t: f64| if t < 1.0 { SNOWY } else { RAINY };
                cond = if d > 0 && rng.chance(0.55) {
                    match cond {
                        SNOWY | RAINY => precip(t),
                        c => c,
                    }
                } else {
                    match rng.weighted(&[0.25, 0.40, 0.35]) {
                        0 => SUNNY,
                        1 => CLOUDY,
                        _ => precip(t),
                    }
                };
                cs.push(cond);
                ts.push((t * 10.0).round() / 10.0);
            }
            condition.push(cs);
            temp.push(ts);
        }
        Weather {
            regions,
            first_day,
            condition,
            temp,
        }
    }

    /// The condition in `region` on `day`, if the table has it.
    pub(crate) fn condition(&self, region: &str, day: i64) -> Option<u8> {
        let r = self.regions.iter().position(|x| *x == region)?;
        let d = usize::try_from(day - self.first_day).ok()?;
        self.condition[r].get(d).copied()
    }

    pub(crate) fn rows(&self) -> usize {
        self.condition.iter().map(Vec::len).sum()
    }

    pub(crate) fn write(&self, w: &mut csv::Writer<impl std::io::Write>) -> csv::Result<()> {
        w.write_record(["region", "date", "condition", "temp_c"])?;
        for (r, region) in self.regions.iter().enumerate() {
            for (d, (&c, &t)) in self.condition[r].iter().zip(&self.temp[r]).enumerate() {
                let t = if t == 0.0 { 0.0 } else { t }; // no "-0.0"
                w.write_record([
                    *region,
                    &format_date(self.first_day + d as i64),
                    CONDITIONS[c as usize],
                    &format!("{t:.1}"),
                ])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::geo::parse_date;

    #[test]
    fn late_autumn_has_every_condition_and_plausible_temperatures() {
        let first = parse_date("2026-10-01").unwrap();
        let w = Weather::build(5, vec!["east", "south", "west"], first, 120);
        let mut seen = [0usize; 4];
        for r in 0..3 {
            for d in 0..120 {
                seen[w.condition[r][d] as usize] += 1;
                assert!((-20.0..30.0).contains(&w.temp[r][d]));
            }
        }
        assert!(seen.iter().all(|&n| n > 5), "{seen:?}");
        assert_eq!(w.condition("south", first + 3), Some(w.condition[1][3]));
        assert_eq!(w.condition("north", first), None);
    }
}
