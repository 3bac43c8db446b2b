//! The people: operator subscribers (`subscribers.csv`) and the retailer's
//! loyalty customers (`loyalty.csv`).
//!
//! Subscriber `k` is a pure function of `(seed, k)`: number, home city, a
//! home tower and a work tower, behaviour flags (night owl, weekender, heavy
//! data/voice/SMS user, roamer), a contact-list size and demographics. A share
//! of subscribers are loyalty customers, written with the same number in a
//! different format; they mostly live near a store so promotions fire. Some
//! customers use another operator (their number never appears in a CDR) and
//! a few share one number (a family account).

use super::geo::City;
use super::phone::{Phone, FORMATS};
use super::rng::{hash, unit_of, Rng, Stream};
use super::world::Geography;

pub(crate) const NIGHT_OWL: u8 = 1;
pub(crate) const WEEKENDER: u8 = 2;
pub(crate) const DATA_HEAVY: u8 = 4;
pub(crate) const VOICE_HEAVY: u8 = 8;
pub(crate) const SMS_HEAVY: u8 = 16;
pub(crate) const ROAMER: u8 = 32;

/// The SPEC §3 default `--max-points`.
pub(crate) const POINTS_CAP: u32 = 9_000;

const PLANS: [(&str, u32, f64); 5] = [
    ("prepaid", 0, 0.20),
    ("basic", 999, 0.36),
    ("plus", 2999, 0.25),
    ("family", 3999, 0.07),
    ("max", 5999, 0.12),
];

#[derive(Clone, Debug)]
pub(crate) struct Subscriber {
    pub(crate) phone: Phone,
    /// Format of the number in `subscribers.csv`.
    pub(crate) fmt: u8,
    pub(crate) city: u32,
    pub(crate) home: u32,
    pub(crate) work: u32,
    pub(crate) flags: u8,
    pub(crate) contacts: u8,
    /// `F`, `M`, `X` or empty (unknown).
    pub(crate) gender: &'static str,
    pub(crate) birth_year: Option<u16>,
    /// Index into `PLANS`, `None` = unknown plan.
    pub(crate) plan: Option<u8>,
    pub(crate) fee_empty: bool,
    pub(crate) loyal: bool,
    /// Some customer with this number is opted in and under the points cap
    /// in the initial `loyalty.csv` (SPEC §3 step 1).
    pub(crate) qualifies: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) sub: Option<u32>,
    pub(crate) phone: Phone,
    pub(crate) fmt: u8,
    pub(crate) points: u32,
    pub(crate) opt_in: bool,
    pub(crate) opt_numeric: bool,
    pub(crate) gender: &'static str,
    pub(crate) birth_year: Option<u16>,
    pub(crate) region: &'static str,
    pub(crate) home: u32,
}

/// What a CDR needs of its caller, packed into 24 bytes so that the random
/// look-ups of the CDR generator mostly hit the cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    /// National number; every subscriber is on +49.
    pub(crate) nsn: u64,
    pub(crate) home: u32,
    pub(crate) work: u32,
    pub(crate) city: u32,
    pub(crate) flags: u8,
    pub(crate) contacts: u8,
    pub(crate) qualifies: bool,
}

pub(crate) struct People {
    pub(crate) subs: Vec<Subscriber>,
    /// `hot[k]` and `nsn[k]` repeat fields of `subs[k]` (see `Hot`).
    pub(crate) hot: Vec<Hot>,
    pub(crate) nsn: Vec<u64>,
    pub(crate) night_owls: Vec<u32>,
    pub(crate) weekenders: Vec<u32>,
    pub(crate) customers: Vec<Customer>,
}

fn gender(rng: &mut Rng) -> &'static str {
    ["F", "M", "X", ""][rng.weighted(&[0.47, 0.47, 0.01, 0.05])]
}

fn points(rng: &mut Rng) -> u32 {
    // Spread around the cap: most well under, a band near it, some over.
    match rng.weighted(&[0.55, 0.27, 0.06, 0.12]) {
        0 => rng.range(0, 7_999) as u32,
        1 => rng.range(8_000, 8_999) as u32,
        2 => POINTS_CAP,
        _ => rng.range(9_001, 9_800) as u32,
    }
}

fn subscriber(
    seed: u64,
    k: u64,
    geo: &Geography,
    weights: &[f64],
    loyalty_share: f64,
) -> Subscriber {
    let mut rng = Rng::at(seed, Stream::Subscriber, k);
    let city = rng.weighted(weights) as u32;
    let loyal = unit_of(hash(seed, Stream::Loyalty, k)) < loyalty_share;
    let home = if loyal && rng.chance(0.85) {
        geo.tower_from(&mut rng, &geo.near_store[city as usize], city)
    } else {
        geo.any_tower(&mut rng, city)
    };
    let work = if rng.chance(0.75) {
        geo.tower_from(&mut rng, &geo.central[city as usize], city)
    } else {
        geo.any_tower(&mut rng, city)
    };
    let mut flags = 0;
    for (flag, p) in [
        (NIGHT_OWL, 0.03),
        (WEEKENDER, 0.03),
        (DATA_HEAVY, 0.04),
        (VOICE_HEAVY, 0.03),
        (SMS_HEAVY, 0.03),
        (ROAMER, 0.02),
    ] {
        if rng.chance(p) {
            flags |= flag;
        }
    }
    let contacts = match rng.weighted(&[0.3, 0.6, 0.1]) {
        0 => rng.range(1, 4),
        1 => rng.range(5, 40),
        _ => rng.range(50, 120),
    } as u8;
    let gender = gender(&mut rng);
    let birth_year =
        (!rng.chance(0.05)).then(|| (2026.0 - 14.0 - 68.0 * rng.unit().powf(1.3)).round() as u16);
    let plan = (!rng.chance(0.02)).then(|| rng.weighted(&PLANS.map(|p| p.2)) as u8);
    let fee_empty = plan.is_none() || (plan == Some(0) && rng.chance(0.5));
    let fmt = if rng.chance(0.6) {
        0
    } else {
        1 + rng.below(u64::from(FORMATS) - 1) as u8
    };
    Subscriber {
        phone: Phone::subscriber(seed, k),
        fmt,
        city,
        home,
        work,
        flags,
        contacts,
        gender,
        birth_year,
        plan,
        fee_empty,
        loyal,
        qualifies: false,
    }
}

impl People {
    pub(crate) fn build(seed: u64, n: u64, loyalty_share: f64, geo: &Geography) -> Self {
        let weights: Vec<f64> = geo.cities.iter().map(|c: &City| c.weight).collect();
        let subs: Vec<Subscriber> = (0..n)
            .map(|k| subscriber(seed, k, geo, &weights, loyalty_share))
            .collect();
        let with = |flag: u8| -> Vec<u32> {
            (0..n as u32)
                .filter(|&k| subs[k as usize].flags & flag != 0)
                .collect()
        };
        let night_owls = with(NIGHT_OWL);
        let weekenders = with(WEEKENDER);
        let mut people = People {
            subs,
            hot: Vec::new(),
            nsn: Vec::new(),
            night_owls,
            weekenders,
            customers: Vec::new(),
        };
        people.build_customers(seed, geo);
        people.hot = people
            .subs
            .iter()
            .map(|s| {
                debug_assert_eq!(s.phone.cc, 49);
                Hot {
                    nsn: s.phone.nsn,
                    home: s.home,
                    work: s.work,
                    city: s.city,
                    flags: s.flags,
                    contacts: s.contacts,
                    qualifies: s.qualifies,
                }
            })
            .collect();
        people.nsn = people.subs.iter().map(|s| s.phone.nsn).collect();
        people
    }

    fn build_customers(&mut self, seed: u64, geo: &Geography) {
        let mut customers = Vec::new();
        let push = |c: Customer, customers: &mut Vec<Customer>| {
            let id = format!("C{}", customers.len() + 1);
            customers.push(Customer { id, ..c });
        };
        let other_fmt = |rng: &mut Rng, avoid: u8| loop {
            let f = rng.below(u64::from(FORMATS)) as u8;
            if f != avoid {
                return f;
            }
        };
        for (k, s) in self.subs.iter().enumerate().filter(|(_, s)| s.loyal) {
            let mut rng = Rng::at(seed, Stream::Loyalty, k as u64);
            let c = Customer {
                id: String::new(),
                sub: Some(k as u32),
                phone: s.phone,
                fmt: other_fmt(&mut rng, s.fmt),
                points: points(&mut rng),
                opt_in: rng.chance(0.85),
                opt_numeric: rng.chance(0.1),
                gender: if rng.chance(0.95) {
                    s.gender
                } else {
                    gender(&mut rng)
                },
                birth_year: s.birth_year,
                region: geo.cities[s.city as usize].region,
                home: s.home,
            };
            push(c, &mut customers);
        }
        let loyal = customers.len();
        let n = self.subs.len() as u64;
        // Customers of another operator: their numbers never appear in CDRs.
        let weights: Vec<f64> = geo.cities.iter().map(|c| c.weight).collect();
        for j in 0..(loyal as u64 * 8 / 100).max(1) {
            let mut rng = Rng::at(seed, Stream::Loyalty, (1 << 40) + j);
            let city = rng.weighted(&weights) as u32;
            let home = geo.tower_from(&mut rng, &geo.near_store[city as usize], city);
            let c = Customer {
                id: String::new(),
                sub: None,
                phone: Phone::subscriber(seed, n + j),
                fmt: rng.below(u64::from(FORMATS)) as u8,
                points: points(&mut rng),
                opt_in: rng.chance(0.85),
                opt_numeric: false,
                gender: gender(&mut rng),
                birth_year: Some(rng.range(1945, 2005) as u16),
                region: geo.cities[city as usize].region,
                home,
            };
            push(c, &mut customers);
        }
        // Family accounts: a second customer on an existing customer's number.
        if loyal > 0 {
            for j in 0..(loyal as u64 / 100).max(2) {
                let mut rng = Rng::at(seed, Stream::Loyalty, (2 << 40) + j);
                let base = customers[rng.index(loyal)].clone();
                let c = Customer {
                    fmt: rng.below(u64::from(FORMATS)) as u8,
                    points: points(&mut rng),
                    opt_in: rng.chance(0.7),
                    opt_numeric: false,
                    gender: gender(&mut rng),
                    birth_year: Some(rng.range(1950, 2008) as u16),
                    ..base
                };
                push(c, &mut customers);
            }
        }
        for c in &customers {
            if let Some(k) = c.sub {
                if c.opt_in && c.points <= POINTS_CAP {
                    self.subs[k as usize].qualifies = true;
                }
            }
        }
        self.customers = customers;
    }

    pub(crate) fn write_subscribers(
        &self,
        w: &mut csv::Writer<impl std::io::Write>,
    ) -> csv::Result<()> {
        w.write_record([
            "msisdn",
            "gender",
            "birth_year",
            "plan",
            "monthly_fee_cents",
        ])?;
        for s in &self.subs {
            let plan = s.plan.map(|p| PLANS[p as usize]);
            let fee = match (plan, s.fee_empty) {
                (Some((_, fee, _)), false) => fee.to_string(),
                _ => String::new(),
            };
            w.write_record([
                s.phone.format(s.fmt).as_str(),
                s.gender,
                &s.birth_year.map(|y| y.to_string()).unwrap_or_default(),
                plan.map(|p| p.0).unwrap_or(""),
                &fee,
            ])?;
        }
        Ok(())
    }

    pub(crate) fn write_loyalty(
        &self,
        w: &mut csv::Writer<impl std::io::Write>,
    ) -> csv::Result<()> {
        w.write_record([
            "customer_id",
            "msisdn",
            "loyalty_points",
            "opt_in",
            "gender",
            "birth_year",
            "region",
        ])?;
        for c in &self.customers {
            let opt = match (c.opt_in, c.opt_numeric) {
                (true, false) => "true",
                (false, false) => "false",
                (true, true) => "1",
                (false, true) => "0",
            };
            w.write_record([
                c.id.as_str(),
                &c.phone.format(c.fmt),
                &c.points.to_string(),
                opt,
                c.gender,
                &c.birth_year.map(|y| y.to_string()).unwrap_or_default(),
                c.region,
            ])?;
        }
        Ok(())
    }
}
