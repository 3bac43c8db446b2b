//! Market-basket recommendations (SPEC §4) as differential collections.
//!
//! ```text
//! purchase rows ─reduce(txn)─▶ baskets ─┬─join((store,date) → condition)─▶ scoped baskets (global + condition)
//!                                       │      scoped ─level 1..max_len (apriori-pruned, per distinct basket)─▶ frequent itemsets
//!                                       │      frequent ─join(antecedent, consequent, n)─filter(conf, lift)─▶ rules
//!                                       └─▶ (customer, product) ─reduce─▶ profiles (top 3)
//! profiles ⋈ rules(antecedent ⊆ profile) ─reduce(best per customer, context)─┐
//! loyalty ⋈ latest year ─▶ groups ─▶ demographic top products ───────────────┼─reduce(customer)─▶ recommendations
//! contexts (weather conditions) + popular products ──────────────────────────┘
//! ```
//!
//! Products are [`ProductId`]s: indices into the sorted catalogue, so comparing
//! two ids compares the `product_id` byte strings (every tie-break of §4), and
//! itemsets are small sorted `Vec<u32>`s. Identical baskets of one scope are one
//! record whose difference is their number: counting runs over distinct
//! baskets, not over every transaction.
//!
//! Every threshold compares exact ratios of counts (`u128` cross products);
//! floats appear only when a row is written.
//!
//! The purchase tables are static in a file run (time 0), so this state is not
//! released; it is bounded by the tables, not by the CDR stream.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use differential_dataflow::VecCollection;

use crate::model::{Epoch, Loyalty, Store, Text, Time};
use crate::time::year_of;

mod mining;
mod recommend;
pub mod reference;

pub use mining::{baskets, frequent_itemsets, rules, scope_sizes, scoped_baskets};
pub use recommend::{recommendations, with_picks};

/// What the market-basket dataflow produces.
pub struct BasketOutputs<'s> {
    pub rules: VecCollection<'s, Time, Rule>,
    pub recommendations: VecCollection<'s, Time, Recommendation>,
    /// Baskets per scope (`baskets` in the metrics is the `global` one).
    pub sizes: VecCollection<'s, Time, (Scope, u64)>,
}

/// The whole of SPEC §4 from the purchase rows and the current tables.
pub fn market_basket<'s>(
    rows: VecCollection<'s, Time, PurchaseRow>,
    weather: VecCollection<'s, Time, WeatherRow>,
    stores: VecCollection<'s, Time, Store>,
    loyalty: VecCollection<'s, Time, Loyalty>,
    params: &BasketParams,
) -> BasketOutputs<'s> {
    // Only the year of the latest purchase matters (ages): distinct years are
    // few, so a new row costs a count, not a pass over every timestamp.
    let latest_year = rows
        .clone()
        .map(|r| year_of(r.ts))
        .distinct()
        .map(|y| ((), y))
        .reduce_named("LatestPurchaseYear", |_, years, out| {
            if let Some((y, _)) = years.iter().rev().find(|(_, n)| *n > 0) {
                out.push((**y, 1));
            }
        })
        .map(|(_, y)| y);
    let baskets = baskets(rows);
    let scoped = scoped_baskets(baskets.clone(), stores, weather.clone());
    let sizes = scope_sizes(scoped.clone());
    let levels = frequent_itemsets(scoped, sizes.clone(), params);
    let rules = rules(&levels, sizes.clone(), params);
    let recommendations = recommendations(
        baskets,
        rules.clone(),
        weather,
        loyalty,
        latest_year,
        params,
    );
    BasketOutputs {
        rules,
        recommendations,
        sizes,
    }
}

/// A product: its index in the catalogue sorted by `product_id` bytes.
pub type ProductId = u32;
/// A sorted set of distinct products.
pub type Itemset = Vec<ProductId>;
/// A context: `None` is `global` (all baskets), `Some(condition)` the baskets
/// whose store's region had that weather on the basket's date.
pub type Scope = Option<Text>;

/// The name of a scope in the outputs.
pub fn scope_name(scope: &Scope) -> &str {
    scope.as_deref().unwrap_or("global")
}

/// The product catalogue, sorted by `product_id` bytes: the order of
/// [`ProductId`]s. Static for a run (there is no products change file).
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    ids: Vec<Text>,
}

impl Catalogue {
    /// The catalogue of these ids (sorted and deduplicated here).
    pub fn new(ids: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let mut ids: Vec<Text> = ids.into_iter().map(|s| Text::from(s.as_ref())).collect();
        ids.sort();
        ids.dedup();
        Catalogue { ids }
    }
    pub fn id(&self, product_id: &str) -> Option<ProductId> {
        self.ids
            .binary_search_by(|p| p.as_ref().cmp(product_id))
            .ok()
            .map(|i| i as ProductId)
    }
    pub fn name(&self, id: ProductId) -> &str {
        &self.ids[id as usize]
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One valid line item of `purchases.csv`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PurchaseRow {
    pub txn_id: Text,
    pub customer_id: Text,
    pub store_id: Text,
    pub ts: Epoch,
    pub product: ProductId,
}

/// One row of `weather.csv` (its `(region, date)` is unique).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WeatherRow {
    pub region: Text,
    /// Midnight (UTC) of the date.
    pub date: Epoch,
    pub condition: Text,
}

/// A basket: the distinct products of one `txn_id`. Its customer, store and
/// date come from the transaction's row with the smallest (`ts`, `store_id`,
/// `customer_id`): rows of one transaction normally agree, and this keeps the
/// choice independent of arrival order when they do not.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Basket {
    pub txn_id: Text,
    pub customer_id: Text,
    pub store_id: Text,
    pub ts: Epoch,
    pub items: Itemset,
}

/// A non-negative decimal threshold kept exactly: `num / den`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    pub num: u128,
    pub den: u128,
}

impl Ratio {
    /// Parses `0.01`, `1`, `.5` exactly (plain decimal notation, at most 18
    /// fraction digits).
    pub fn parse(s: &str) -> Result<Ratio, String> {
        let bad = || format!("{s:?} is not a plain decimal number such as 0.01");
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if (int.is_empty() && frac.is_empty())
            || frac.len() > 18
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            || int.len() > 18
        {
            return Err(bad());
        }
        let den = 10u128.pow(frac.len() as u32);
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let frac: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        Ok(Ratio {
            num: int * den + frac,
            den,
        })
    }
    /// `count / total >= self`, exactly.
    pub fn reached_by(&self, count: u64, total: u64) -> bool {
        count as u128 * self.den >= self.num * total as u128
    }
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// The flags of SPEC §4.
#[derive(Clone, Copy, Debug)]
pub struct BasketParams {
    pub min_support: Ratio,
    pub min_confidence: Ratio,
    /// Largest itemset (antecedent plus consequent), at least 1.
    pub max_len: usize,
}

impl Default for BasketParams {
    fn default() -> Self {
        BasketParams {
            min_support: Ratio { num: 1, den: 100 },
            min_confidence: Ratio { num: 1, den: 5 },
            max_len: 3,
        }
    }
}

/// A rule `antecedent → consequent` of one scope, with the counts that define
/// its measures: `count` baskets of the scope hold antecedent ∪ {consequent},
/// `antecedent_count` the antecedent, `consequent_count` the consequent, of
/// `baskets` in the scope.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rule {
    pub scope: Scope,
    pub antecedent: Itemset,
    pub consequent: ProductId,
    pub count: u64,
    pub antecedent_count: u64,
    pub consequent_count: u64,
    pub baskets: u64,
}

impl Rule {
    pub fn support(&self) -> f64 {
        self.count as f64 / self.baskets as f64
    }
    pub fn confidence(&self) -> f64 {
        self.count as f64 / self.antecedent_count as f64
    }
    pub fn lift(&self) -> f64 {
        (self.count as f64 * self.baskets as f64)
            / (self.antecedent_count as f64 * self.consequent_count as f64)
    }

    /// The recommendation order of §4: higher lift, then confidence, then
    /// support first; then the smaller consequent, then the smaller antecedent
    /// (element by element, a prefix first). `Less` means `self` ranks first.
    pub fn rank(&self, other: &Rule) -> Ordering {
        let (a, b) = (self, other);
        // lift = count·n / (ante·cons): compare by cross multiplication.
        let lift = |r: &Rule| {
            (
                r.count as u128 * r.baskets as u128,
                r.antecedent_count as u128 * r.consequent_count as u128,
            )
        };
        let (ln, ld) = lift(a);
        let (rn, rd) = lift(b);
        cross(rn, rd, ln, ld)
            .then_with(|| {
                cross(
                    b.count as u128,
                    b.antecedent_count as u128,
                    a.count as u128,
                    a.antecedent_count as u128,
                )
            })
            .then_with(|| {
                cross(
                    b.count as u128,
                    b.baskets as u128,
                    a.count as u128,
                    a.baskets as u128,
                )
            })
            .then_with(|| a.consequent.cmp(&b.consequent))
            .then_with(|| a.antecedent.cmp(&b.antecedent))
    }
}

/// Compares `an/ad` with `bn/bd` (denominators positive). Products of four
/// counts below 2^32 each fit in `u128` twice over; beyond that saturates.
fn cross(an: u128, ad: u128, bn: u128, bd: u128) -> Ordering {
    an.saturating_mul(bd).cmp(&bn.saturating_mul(ad))
}

/// Where a recommended product comes from (`source` in the outputs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    /// The best rule of this context (`rule:<context>`).
    Rule(Scope),
    Demographic,
    Popular,
    /// No basket at all: nothing to recommend.
    None,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Rule(scope) => write!(f, "rule:{}", scope_name(scope)),
            Source::Demographic => f.write_str("demographic"),
            Source::Popular => f.write_str("popular"),
            Source::None => f.write_str("none"),
        }
    }
}

/// A recommended product and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pick {
    pub product: Option<ProductId>,
    pub source: Source,
}

impl Pick {
    pub fn none() -> Self {
        Pick {
            product: None,
            source: Source::None,
        }
    }
}

/// One row of `recommendations.csv`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Recommendation {
    pub customer_id: Text,
    pub context: Scope,
    pub pick: Pick,
}

/// The (k+1)-itemsets all of whose k-subsets are in `sets` (all of size k,
/// sorted, distinct): the apriori candidates. For k = 1 every pair.
pub fn apriori_gen(sets: &[&Itemset]) -> Vec<Itemset> {
    let mut out = Vec::new();
    let k = match sets.first() {
        Some(s) => s.len(),
        None => return out,
    };
    for (i, a) in sets.iter().enumerate() {
        for b in &sets[i + 1..] {
            if a[..k - 1] != b[..k - 1] {
                break; // sorted: sets sharing a's prefix are contiguous
            }
            let mut cand = Vec::with_capacity(k + 1);
            cand.extend_from_slice(a);
            cand.push(b[k - 1]);
            let all_frequent = (0..k - 1).all(|skip| {
                let sub: Itemset = cand
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != skip)
                    .map(|(_, p)| *p)
                    .collect();
                sets.binary_search(&&sub).is_ok()
            });
            if all_frequent {
                out.push(cand);
            }
        }
    }
    out
}

/// The nonempty subsets of `set` with at most `max` elements, each sorted.
pub fn subsets_up_to(set: &[ProductId], max: usize) -> Vec<Itemset> {
    let mut out = Vec::new();
    let n = set.len().min(31);
    for mask in 1u32..(1 << n) {
        if (mask.count_ones() as usize) <= max {
            out.push(
                (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| set[i])
                    .collect(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_parses_exactly() {
        assert_eq!(Ratio::parse("0.01").unwrap(), Ratio { num: 1, den: 100 });
        assert_eq!(Ratio::parse("1").unwrap(), Ratio { num: 1, den: 1 });
        assert_eq!(Ratio::parse(".5").unwrap(), Ratio { num: 5, den: 10 });
        for bad in ["", ".", "-0.1", "1e-2", "0.1.2", "abc", " 0.1"] {
            assert!(Ratio::parse(bad).is_err(), "{bad:?}");
        }
        // 3 of 300 is exactly 0.01: frequent (a float 0.01 is slightly more).
        let r = Ratio::parse("0.01").unwrap();
        assert!(r.reached_by(3, 300));
        assert!(!r.reached_by(2, 300));
    }

    #[test]
    fn apriori_gen_prunes_by_subsets() {
        let pairs: Vec<Itemset> = vec![vec![1, 2], vec![1, 3], vec![2, 3], vec![2, 4]];
        let refs: Vec<&Itemset> = pairs.iter().collect();
        // {1,2,3}: all pairs frequent. {2,3,4}: {3,4} missing.
        assert_eq!(apriori_gen(&refs), vec![vec![1, 2, 3]]);
        let singles: Vec<Itemset> = vec![vec![1], vec![4], vec![7]];
        let refs: Vec<&Itemset> = singles.iter().collect();
        assert_eq!(apriori_gen(&refs), vec![vec![1, 4], vec![1, 7], vec![4, 7]]);
    }

    #[test]
    fn rank_compares_exact_ratios_then_ids() {
        let r = |ante: Itemset, cons, count, a, c, n| Rule {
            scope: None,
            antecedent: ante,
            consequent: cons,
            count,
            antecedent_count: a,
            consequent_count: c,
            baskets: n,
        };
        // Same lift (2), higher confidence first.
        let x = r(vec![1], 5, 2, 4, 10, 40);
        let y = r(vec![2], 5, 4, 5, 16, 40);
        assert_eq!(x.lift(), 2.0);
        assert_eq!(y.lift(), 2.0);
        assert_eq!(y.rank(&x), Ordering::Less);
        // All measures equal: smaller consequent, then antecedent (prefix first).
        let p = r(vec![1], 3, 2, 4, 10, 40);
        let q = r(vec![1, 2], 3, 2, 4, 10, 40);
        assert_eq!(p.rank(&q), Ordering::Less);
        assert_eq!(r(vec![9], 2, 2, 4, 10, 40).rank(&p), Ordering::Less);
    }

    #[test]
    fn subsets_bounded_by_size() {
        assert_eq!(subsets_up_to(&[1, 2, 3], 2).len(), 6);
        assert_eq!(subsets_up_to(&[1, 2, 3], 3).len(), 7);
        assert!(subsets_up_to(&[], 2).is_empty());
    }
}
