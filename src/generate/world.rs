//! The places: cities, cell towers and stores (`towers.csv`, `stores.csv`).
//!
//! Each city has a centre, a radius, and a "lake" at about half the radius:
//! no tower or store stands in it except one tower on the lake's island,
//! whose road nodes are cut off from the rest of the graph (SPEC §3 step 3:
//! "no route"). Towers thin out from the centre; stores stand within ~45 % of
//! the radius, so most towers have a store within the 5 km promotion radius.

use std::ops::Range;

use super::geo::{cities, haversine_m, offset, round6, City};
use super::rng::{Rng, Stream};

/// How far from the lake's centre the lake reaches (metres).
pub(crate) const LAKE_RADIUS_M: f64 = 650.0;
/// A tower is "near a store" when one is within this many metres; loyalty
/// customers mostly live near such towers, so promotions fire.
pub(crate) const NEAR_STORE_M: f64 = 3_000.0;
/// SPEC §3 default radius, used for the summary's candidate count.
pub(crate) const PROMO_RADIUS_M: f64 = 5_000.0;

#[derive(Clone, Debug)]
pub(crate) struct Tower {
    pub(crate) cell_id: String,
    pub(crate) city: u32,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) tech: &'static str,
    /// Index of the nearest store (by haversine) and its distance.
    pub(crate) nearest_store: u32,
    pub(crate) nearest_store_m: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) city: u32,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
    pub(crate) region: &'static str,
}

/// Cities, towers and stores, built once and shared read-only.
pub(crate) struct Geography {
    pub(crate) cities: Vec<City>,
    pub(crate) radius_m: f64,
    /// Lake centre per city.
    pub(crate) lakes: Vec<(f64, f64)>,
    pub(crate) towers: Vec<Tower>,
    /// Towers of city `c` are `towers[city_towers[c]]`.
    pub(crate) city_towers: Vec<Range<u32>>,
    /// Per city: towers within half the radius (work places).
    pub(crate) central: Vec<Vec<u32>>,
    /// Per city: towers with a store within `NEAR_STORE_M`.
    pub(crate) near_store: Vec<Vec<u32>>,
    pub(crate) stores: Vec<Store>,
}

const BRANDS: [&str; 5] = [
    "Frischmarkt",
    "Nahkauf",
    "City-Markt",
    "Marktplatz",
    "Bio-Eck",
];
const QUARTERS: [&str; 10] = [
    "Mitte", "Altstadt", "Nord", "Süd", "Ost", "West", "Hafen", "Bahnhof", "Neustadt", "Am Park",
];

impl Geography {
    pub(crate) fn build(
        seed: u64,
        n_cities: u32,
        towers_per_city: u32,
        stores: u32,
        radius_m: f64,
    ) -> Self {
        let cities = cities(n_cities);
        let lakes: Vec<(f64, f64)> = (0..cities.len())
            .map(|c| {
                let mut rng = Rng::at(seed, Stream::City, c as u64);
                let bearing = rng.uniform(0.0, std::f64::consts::TAU);
                let r = radius_m * 0.55;
                offset(
                    cities[c].lat,
                    cities[c].lon,
                    r * bearing.cos(),
                    r * bearing.sin(),
                )
            })
            .collect();
        let in_lake = |c: usize, lat: f64, lon: f64| {
            haversine_m(lat, lon, lakes[c].0, lakes[c].1) < LAKE_RADIUS_M + 120.0
        };
        // A point of city `c` at distance `r(u)` from the centre, outside the lake.
        let place = |rng: &mut Rng, c: usize, max_r: f64, power: f64| loop {
            let r = max_r * rng.unit().powf(power);
            let a = rng.uniform(0.0, std::f64::consts::TAU);
            let (lat, lon) = offset(cities[c].lat, cities[c].lon, r * a.cos(), r * a.sin());
            let (lat, lon) = (round6(lat), round6(lon));
            if !in_lake(c, lat, lon) {
                return (lat, lon);
            }
        };

        let mut store_list = Vec::with_capacity(stores as usize);
        for s in 0..stores {
            let mut rng = Rng::at(seed, Stream::Store, u64::from(s));
            let c = if (s as usize) < cities.len() {
                s as usize
            } else {
                rng.weighted(&cities.iter().map(|c| c.weight).collect::<Vec<_>>())
            };
            let (lat, lon) = place(&mut rng, c, radius_m * 0.45, 0.5);
            let city = &cities[c];
            let name = if s == 1 {
                // RFC 4180 quoting in the wild: a comma and quotes in a name.
                format!("Markt \"Am Ring\", {}", city.name)
            } else {
                format!(
                    "{} {} {}",
                    BRANDS[rng.index(BRANDS.len())],
                    city.name,
                    QUARTERS[rng.index(QUARTERS.len())]
                )
            };
            store_list.push(Store {
                id: format!("S{}", s + 1),
                name,
                city: c as u32,
                lat,
                lon,
                region: city.region,
            });
        }

        let mut towers = Vec::new();
        let mut city_towers = Vec::new();
        for (c, lake) in lakes.iter().enumerate() {
            let first = towers.len() as u32;
            for t in 0..towers_per_city {
                let mut rng = Rng::at(seed, Stream::Tower, (c as u64) << 32 | u64::from(t));
                let (lat, lon) = if t == 0 {
                    // The island tower: its nearest road nodes are the island's.
                    let (lat, lon) = offset(lake.0, lake.1, 40.0, -30.0);
                    (round6(lat), round6(lon))
                } else {
                    place(&mut rng, c, radius_m, 0.8)
                };
                let ci = 10_000 + u64::from(t) * 53 + rng.below(53);
                let tech = ["GSM", "LTE", "LTE", "LTE", "NR"][rng.index(5)];
                towers.push(Tower {
                    cell_id: format!("262-01-{}-{}", 1000 + c, ci),
                    city: c as u32,
                    lat,
                    lon,
                    tech,
                    nearest_store: 0,
                    nearest_store_m: f64::INFINITY,
                });
            }
            city_towers.push(first..towers.len() as u32);
        }
        for t in &mut towers {
            for (s, store) in store_list.iter().enumerate() {
                let d = haversine_m(t.lat, t.lon, store.lat, store.lon);
                if d < t.nearest_store_m {
                    t.nearest_store_m = d;
                    t.nearest_store = s as u32;
                }
            }
        }
        // The island tower (the first of each city) is nobody's home or work.
        let central = city_towers
            .iter()
            .enumerate()
            .map(|(c, r)| {
                (r.start + 1..r.end)
                    .filter(|&t| {
                        let tw = &towers[t as usize];
                        haversine_m(tw.lat, tw.lon, cities[c].lat, cities[c].lon) < radius_m * 0.5
                    })
                    .collect()
            })
            .collect();
        let near_store = city_towers
            .iter()
            .map(|r| {
                (r.start + 1..r.end)
                    .filter(|&t| towers[t as usize].nearest_store_m <= NEAR_STORE_M)
                    .collect()
            })
            .collect();
        Geography {
            cities,
            radius_m,
            lakes,
            towers,
            city_towers,
            central,
            near_store,
            stores: store_list,
        }
    }

    /// A uniformly chosen tower of city `c`.
    pub(crate) fn any_tower(&self, rng: &mut Rng, c: u32) -> u32 {
        let r = &self.city_towers[c as usize];
        r.start + rng.below(u64::from(r.end - r.start)) as u32
    }

    /// A tower from `list`, or any tower of city `c` when the list is empty.
    pub(crate) fn tower_from(&self, rng: &mut Rng, list: &[u32], c: u32) -> u32 {
        if list.is_empty() {
            self.any_tower(rng, c)
        } else {
            list[rng.index(list.len())]
        }
    }

    /// Regions that have a city, sorted and distinct (the weather keys).
    pub(crate) fn regions(&self) -> Vec<&'static str> {
        let mut r: Vec<&'static str> = self.cities.iter().map(|c| c.region).collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    pub(crate) fn write_towers(&self, w: &mut csv::Writer<impl std::io::Write>) -> csv::Result<()> {
        w.write_record(["cell_id", "lat", "lon", "tech"])?;
        for t in &self.towers {
            w.write_record([
                t.cell_id.as_str(),
                &format!("{:.6}", t.lat),
                &format!("{:.6}", t.lon),
                t.tech,
            ])?;
        }
        Ok(())
    }

    pub(crate) fn write_stores(&self, w: &mut csv::Writer<impl std::io::Write>) -> csv::Result<()> {
        w.write_record(["store_id", "name", "lat", "lon", "region"])?;
        for s in &self.stores {
            w.write_record([
                s.id.as_str(),
                &s.name,
                &format!("{:.6}", s.lat),
                &format!("{:.6}", s.lon),
                s.region,
            ])?;
        }
        Ok(())
    }
}
