//! The catalogue and the baskets (`products.csv`, `purchases.csv`).
//!
//! Co-purchase structure comes from *bundles*: sets of products bought
//! together (breakfast, pasta night, a barbecue, …), each with a weight per
//! weather condition, so a rainy day sells umbrellas with tea and soup and a
//! snowy one ice scrapers with gloves (SPEC §4 mines rules per condition).
//! A basket takes one bundle (half the time one of its customer's two
//! favourites, so customers have profiles), sometimes a second, then a few
//! filler items from a Zipf popularity curve. Basket `b` is a pure function
//! of `(seed, b)` given the world; shops close on Sundays.

use super::geo::{weekday, DAY_S};
use super::rng::{hash, unit_of, Rng, Stream};
use super::World;

/// `(name, category, price_cents)`; the first products of the catalogue.
const CORE: [(&str, &str, u32); 48] = [
    ("Black Tea", "beverages", 349),
    ("Coffee Beans", "beverages", 899),
    ("Orange Juice", "beverages", 249),
    ("Mineral Water 6x1.5l", "beverages", 399),
    ("Cola 1.5l", "beverages", 179),
    ("Lager 6-pack", "beverages", 549),
    ("Red Wine", "beverages", 699),
    ("Hot Chocolate", "beverages", 299),
    ("Whole Milk", "dairy", 119),
    ("Butter", "dairy", 229),
    ("Gouda", "dairy", 289),
    ("Yogurt", "dairy", 89),
    ("Sourdough Bread", "bakery", 349),
    ("Croissants 4-pack", "bakery", 279),
    ("Pretzels", "bakery", 199),
    ("Apple Strudel", "bakery", 399),
    ("Apples 1kg", "produce", 249),
    ("Bananas", "produce", 199),
    ("Tomatoes", "produce", 299),
    ("Potatoes 2.5kg", "produce", 349),
    ("Lemons", "produce", 149),
    ("Spaghetti", "pantry", 129),
    ("Tomato Sauce", "pantry", 199),
    ("Parmesan", "dairy", 399),
    ("Chicken Soup", "pantry", 249),
    ("Honey", "pantry", 449),
    ("Potato Chips", "snacks", 199),
    ("Dark Chocolate", "snacks", 149),
    ("Salted Nuts", "snacks", 299),
    ("Butter Cookies", "snacks", 249),
    ("Umbrella", "seasonal", 1299),
    ("Rain Poncho", "seasonal", 599),
    ("Sunscreen SPF30", "seasonal", 899),
    ("Sunglasses", "seasonal", 1499),
    ("Ice Scraper", "seasonal", 399),
    ("Wool Gloves", "seasonal", 1299),
    ("Hand Warmers", "seasonal", 349),
    ("Bratwurst", "meat", 449),
    ("Charcoal 3kg", "bbq", 599),
    ("Ketchup", "pantry", 189),
    ("Detergent", "household", 799),
    ("Paper Towels", "household", 349),
    ("Candles", "household", 499),
    ("Gingerbread", "snacks", 299),
    ("Mulled Wine", "beverages", 399),
    ("Oranges 1kg", "produce", 279),
    ("Cough Drops", "health", 299),
    ("Tissues", "health", 199),
];

/// Bundles: core product indices and a weight per condition
/// (sunny, cloudy, rainy, snowy).
const BUNDLES: [(&[u32], [f64; 4]); 13] = [
    (&[12, 9, 10, 8], [1.0, 1.0, 1.0, 1.0]),      // breakfast
    (&[1, 8, 13], [1.0, 1.0, 1.0, 1.0]),          // coffee
    (&[21, 22, 23], [1.0, 1.0, 1.0, 1.0]),        // pasta night
    (&[26, 4, 5, 28], [1.5, 1.0, 0.6, 0.5]),      // party
    (&[37, 38, 39, 5], [2.5, 0.5, 0.1, 0.02]),    // barbecue
    (&[32, 33, 3], [2.0, 0.3, 0.1, 0.2]),         // sunshine
    (&[30, 0, 24, 31], [0.05, 0.5, 3.0, 0.3]),    // rainy day
    (&[0, 20, 25, 46, 47], [0.3, 1.0, 1.8, 1.5]), // caught a cold
    (&[34, 35, 36, 7], [0.1, 0.4, 0.4, 3.5]),     // winter
    (&[43, 44, 42, 45], [1.0, 1.0, 1.0, 1.5]),    // advent
    (&[16, 17, 11, 2], [1.2, 1.0, 0.8, 0.7]),     // fruit
    (&[19, 18, 6, 15], [1.0, 1.0, 1.0, 1.0]),     // Sunday roast
    (&[40, 41], [1.0, 1.0, 1.0, 1.0]),            // household
];

const BRANDS: [&str; 4] = ["Bio", "Premium", "Gut & Günstig", "Regional"];

pub(crate) struct Product {
    pub(crate) name: String,
    pub(crate) category: &'static str,
    pub(crate) price_cents: u32,
}

pub(crate) struct Catalogue {
    pub(crate) products: Vec<Product>,
    /// Cumulative Zipf weights for filler items.
    popularity: Vec<f64>,
}

impl Catalogue {
    pub(crate) fn build(seed: u64, n: u32) -> Self {
        let products: Vec<Product> = (0..n as usize)
            .map(|i| match CORE.get(i) {
                Some(&(name, category, price)) => {
                    // List prices move a little with the seed; they end in 9.
                    let mut rng = Rng::at(seed, Stream::Product, i as u64);
                    let p = (f64::from(price) * rng.uniform(0.85, 1.15) / 10.0).round() as u32;
                    Product {
                        name: name.to_string(),
                        category,
                        price_cents: (p * 10).max(10) - 1,
                    }
                }
                None => {
                    let mut rng = Rng::at(seed, Stream::Product, i as u64);
                    let (name, category, price) = CORE[rng.index(CORE.len())];
                    Product {
                        name: format!("{} {name} {}", BRANDS[rng.index(BRANDS.len())], i + 1),
                        category,
                        price_cents: (f64::from(price) * rng.uniform(0.8, 1.6)).round() as u32,
                    }
                }
            })
            .collect();
        let mut acc = 0.0;
        let popularity = (0..products.len())
            .map(|i| {
                // A hashed rank, so popularity is not the catalogue order.
                let rank = (hash(seed, Stream::Product, (1 << 40) + i as u64) % 1000) as f64;
                acc += 1.0 / (rank / 20.0 + 1.0);
                acc
            })
            .collect();
        Catalogue {
            products,
            popularity,
        }
    }

    fn filler(&self, rng: &mut Rng) -> u32 {
        let x = rng.unit() * self.popularity.last().copied().unwrap_or(0.0);
        self.popularity
            .partition_point(|&c| c <= x)
            .min(self.products.len() - 1) as u32
    }

    pub(crate) fn write(&self, w: &mut csv::Writer<impl std::io::Write>) -> csv::Result<()> {
        w.write_record(["product_id", "name", "category", "price_cents"])?;
        for (i, p) in self.products.iter().enumerate() {
            w.write_record([
                format!("P{}", i + 1).as_str(),
                &p.name,
                p.category,
                &p.price_cents.to_string(),
            ])?;
        }
        Ok(())
    }
}

/// Writes `baskets` baskets over days `[first_day, end_day)`; returns the
/// number of line items written.
pub(crate) fn write_purchases(
    w: &mut csv::Writer<impl std::io::Write>,
    seed: u64,
    baskets: u64,
    (first_day, end_day): (i64, i64),
    world: &World,
) -> csv::Result<u64> {
    let (geo, catalogue, weather) = (&world.geo, &world.catalogue, &world.weather);
    let customers = &world.people.customers;
    w.write_record([
        "txn_id",
        "customer_id",
        "store_id",
        "ts",
        "product_id",
        "quantity",
        "amount_cents",
    ])?;
    // About one customer in twelve never shops (empty profile, SPEC §4).
    let shoppers: Vec<usize> = (0..customers.len())
        .filter(|&i| unit_of(hash(seed, Stream::Basket, (3 << 40) + i as u64)) >= 0.08)
        .collect();
    if shoppers.is_empty() || geo.stores.is_empty() || catalogue.products.is_empty() {
        return Ok(0);
    }
    let n_products = catalogue.products.len() as u32;
    let span = (end_day - first_day).max(1) as u64;
    let mut rows = 0;
    let mut items: Vec<u32> = Vec::with_capacity(16);
    for b in 0..baskets {
        let mut rng = Rng::at(seed, Stream::Basket, b);
        let ci = shoppers[(shoppers.len() as f64 * rng.unit().powf(1.4)) as usize];
        let customer = &customers[ci];
        let mut day = first_day + rng.below(span) as i64;
        if weekday(day) == 6 {
            day += if day > first_day { -1 } else { 1 }; // closed on Sundays
        }
        let ts = day * DAY_S + rng.range(7 * 3600, 19 * 3600 - 1);
        let home = &geo.towers[customer.home as usize];
        let store = if rng.chance(0.75) {
            home.nearest_store as usize
        } else {
            let local: Vec<usize> = (0..geo.stores.len())
                .filter(|&s| geo.stores[s].city == home.city)
                .collect();
            if local.is_empty() {
                rng.index(geo.stores.len())
            } else {
                local[rng.index(local.len())]
            }
        };
        let store = &geo.stores[store];
        let context = weather.condition(store.region, day).unwrap_or(1) as usize;
        let by_weather: Vec<f64> = BUNDLES.iter().map(|b| b.1[context]).collect();
        let fav = hash(seed, Stream::Basket, (1 << 40) + ci as u64);
        let favourites = [(fav % 13) as usize, (fav >> 8) as usize % 13];

        items.clear();
        let add = |p: u32, items: &mut Vec<u32>| {
            if p < n_products && !items.contains(&p) {
                items.push(p);
            }
        };
        let primary = if rng.chance(0.5) {
            favourites[rng.index(2)]
        } else {
            rng.weighted(&by_weather)
        };
        for (k, &p) in BUNDLES[primary].0.iter().enumerate() {
            if k == 0 || rng.chance(0.7) {
                add(p, &mut items);
            }
        }
        if rng.chance(0.35) {
            for &p in BUNDLES[rng.weighted(&by_weather)].0 {
                if rng.chance(0.6) {
                    add(p, &mut items);
                }
            }
        }
        while items.len() < 12 && (items.is_empty() || rng.chance(0.55)) {
            add(catalogue.filler(&mut rng), &mut items);
        }
        if rng.chance(0.02) {
            let again = items[rng.index(items.len())];
            items.push(again); // the same product on two receipt lines
        }
        let txn = format!("T{}", b + 1);
        let ts = ts.to_string();
        for &p in &items {
            let qty = [1u32, 2, 3][rng.weighted(&[0.75, 0.18, 0.07])];
            let mut amount = catalogue.products[p as usize].price_cents * qty;
            if rng.chance(0.1) {
                amount = (f64::from(amount) * 0.9).round() as u32;
            }
            w.write_record([
                txn.as_str(),
                &customer.id,
                &store.id,
                &ts,
                &format!("P{}", p + 1),
                &qty.to_string(),
                &amount.to_string(),
            ])?;
            rows += 1;
        }
    }
    Ok(rows)
}
