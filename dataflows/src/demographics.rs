//! Gender codes and age bands (SPEC §5), shared by the segments and by the
//! demographic fallback of the recommendations (SPEC §4).

use std::fmt;

use serde::{Deserialize, Serialize};

/// `F`, `M`, `X`; anything else (empty included) is `U`, unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Gender {
    F,
    M,
    X,
    U,
}

impl Gender {
    /// The code of a `gender` column value: exactly `F`, `M` or `X`, else `U`.
    pub fn of(s: &str) -> Gender {
        match s {
            "F" => Gender::F,
            "M" => Gender::M,
            "X" => Gender::X,
            _ => Gender::U,
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Gender::F => "F",
            Gender::M => "M",
            Gender::X => "X",
            Gender::U => "U",
        })
    }
}

/// The age bands of SPEC §5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AgeBand {
    Under18,
    From18To24,
    From25To34,
    From35To44,
    From45To54,
    From55To64,
    From65,
    Unknown,
}

impl AgeBand {
    /// The band of an age in whole years; `None` (unknown birth year) is
    /// `unknown`. A negative age (born after the reference year) is `under18`.
    pub fn of(age: Option<i64>) -> AgeBand {
        match age {
            None => AgeBand::Unknown,
            Some(a) if a < 18 => AgeBand::Under18,
            Some(a) if a <= 24 => AgeBand::From18To24,
            Some(a) if a <= 34 => AgeBand::From25To34,
            Some(a) if a <= 44 => AgeBand::From35To44,
            Some(a) if a <= 54 => AgeBand::From45To54,
            Some(a) if a <= 64 => AgeBand::From55To64,
            Some(_) => AgeBand::From65,
        }
    }

    /// The band in `year` of someone born in `birth_year`.
    pub fn in_year(birth_year: Option<i32>, year: i64) -> AgeBand {
        AgeBand::of(birth_year.map(|b| year - b as i64))
    }
}

impl fmt::Display for AgeBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AgeBand::Under18 => "under18",
            AgeBand::From18To24 => "18-24",
            AgeBand::From25To34 => "25-34",
            AgeBand::From35To44 => "35-44",
            AgeBand::From45To54 => "45-54",
            AgeBand::From55To64 => "55-64",
            AgeBand::From65 => "65+",
            AgeBand::Unknown => "unknown",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_at_their_edges() {
        let cases = [
            (17, "under18"),
            (18, "18-24"),
            (24, "18-24"),
            (25, "25-34"),
            (34, "25-34"),
            (35, "35-44"),
            (44, "35-44"),
            (45, "45-54"),
            (54, "45-54"),
            (55, "55-64"),
            (64, "55-64"),
            (65, "65+"),
            (-3, "under18"),
        ];
        for (age, band) in cases {
            assert_eq!(AgeBand::of(Some(age)).to_string(), band, "age {age}");
        }
        assert_eq!(AgeBand::of(None).to_string(), "unknown");
        assert_eq!(AgeBand::in_year(Some(2000), 2026), AgeBand::From25To34);
    }

    #[test]
    fn gender_codes() {
        for (s, g) in [
            ("F", "F"),
            ("M", "M"),
            ("X", "X"),
            ("", "U"),
            ("f", "U"),
            ("other", "U"),
        ] {
            assert_eq!(Gender::of(s).to_string(), g);
        }
    }
}
