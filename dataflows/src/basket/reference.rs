//! A naive batch implementation of SPEC §4, the oracle of the property tests:
//! every subset of every basket is counted (no apriori pruning), every rule
//! is scanned for every customer. Slow and obviously right. It shares no
//! comparison with the dataflow: thresholds and the rule order are written
//! out again here ([`Frac`], [`meets`]), so a fault in [`Rule::rank`] or
//! [`Ratio::reached_by`] shows up as a difference.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet};

use super::{
    subsets_up_to, BasketParams, Itemset, Pick, ProductId, PurchaseRow, Ratio, Recommendation,
    Rule, Scope, Source, WeatherRow,
};
use crate::demographics::{AgeBand, Gender};
use crate::model::{Epoch, Loyalty, Store, Text};
use crate::time::{day_start, year_of};

/// An exact fraction `n / d` (d > 0), ordered by value.
#[derive(Clone, Copy, Debug)]
struct Frac(u128, u128);

impl PartialEq for Frac {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Frac {}
impl PartialOrd for Frac {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Frac {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.0 * o.1).cmp(&(o.0 * self.1))
    }
}

/// `count / total >= threshold` (`total` > 0: a scope or an antecedent
/// that occurs).
fn meets(count: u64, total: u64, threshold: &Ratio) -> bool {
    Frac(count as u128, total as u128) >= Frac(threshold.num, threshold.den)
}

/// The §4 order as a sort key: lift, confidence, support descending, then
/// consequent, then antecedent ascending.
#[allow(clippy::type_complexity)]
fn order(
    r: &Rule,
) -> (
    Reverse<Frac>,
    Reverse<Frac>,
    Reverse<Frac>,
    ProductId,
    Itemset,
) {
    let (c, a, k, n) = (
        r.count as u128,
        r.antecedent_count as u128,
        r.consequent_count as u128,
        r.baskets as u128,
    );
    (
        Reverse(Frac(c * n, a * k)),
        Reverse(Frac(c, a)),
        Reverse(Frac(c, n)),
        r.consequent,
        r.antecedent.clone(),
    )
}

/// Rules and recommendations, each sorted.
pub fn market_basket(
    rows: &[PurchaseRow],
    weather: &[WeatherRow],
    stores: &[Store],
    loyalty: &[Loyalty],
    params: &BasketParams,
) -> (Vec<Rule>, Vec<Recommendation>) {
    // Baskets: header from the smallest (ts, store, customer) row.
    let mut txns: BTreeMap<&Text, Vec<&PurchaseRow>> = BTreeMap::new();
    for r in rows {
        txns.entry(&r.txn_id).or_default().push(r);
    }
    let baskets: Vec<(Text, Text, Epoch, Itemset)> = txns
        .values()
        .map(|lines| {
            let head = lines
                .iter()
                .min_by(|a, b| {
                    (a.ts, &a.store_id, &a.customer_id).cmp(&(b.ts, &b.store_id, &b.customer_id))
                })
                .expect("a transaction has a row");
            let items: BTreeSet<ProductId> = lines.iter().map(|l| l.product).collect();
            (
                head.customer_id.clone(),
                head.store_id.clone(),
                head.ts,
                items.into_iter().collect(),
            )
        })
        .collect();

    let region: BTreeMap<&str, &str> = stores
        .iter()
        .map(|s| (s.store_id.as_str(), s.region.as_str()))
        .collect();
    let condition: BTreeMap<(&str, Epoch), &Text> = weather
        .iter()
        .map(|w| ((w.region.as_ref(), w.date), &w.condition))
        .collect();

    // Counts of every subset up to max_len, per scope.
    let mut sizes: BTreeMap<Scope, u64> = BTreeMap::new();
    let mut counts: BTreeMap<(Scope, Itemset), u64> = BTreeMap::new();
    for (_, store, ts, items) in &baskets {
        let cond = region
            .get(store.as_ref())
            .and_then(|r| condition.get(&(*r, day_start(*ts))))
            .map(|c| (*c).clone());
        let scopes: Vec<Scope> = std::iter::once(None).chain(cond.map(Some)).collect();
        for s in scopes {
            *sizes.entry(s.clone()).or_default() += 1;
            for sub in subsets_up_to(items, params.max_len) {
                *counts.entry((s.clone(), sub)).or_default() += 1;
            }
        }
    }
    let frequent: BTreeMap<&(Scope, Itemset), u64> = counts
        .iter()
        .filter(|((s, _), c)| meets(**c, sizes[s], &params.min_support))
        .map(|(k, c)| (k, *c))
        .collect();

    let mut rules = Vec::new();
    for ((s, set), count) in &frequent {
        if set.len() < 2 {
            continue;
        }
        for (i, cons) in set.iter().enumerate() {
            let mut ante = set.clone();
            ante.remove(i);
            let rule = Rule {
                scope: s.clone(),
                antecedent: ante.clone(),
                consequent: *cons,
                count: *count,
                antecedent_count: counts[&(s.clone(), ante)],
                consequent_count: counts[&(s.clone(), vec![*cons])],
                baskets: sizes[s],
            };
            let lift_above_one = (rule.count as u128) * (rule.baskets as u128)
                > (rule.antecedent_count as u128) * (rule.consequent_count as u128);
            if meets(rule.count, rule.antecedent_count, &params.min_confidence) && lift_above_one {
                rules.push(rule);
            }
        }
    }
    rules.sort();

    // Per-customer basket counts, profiles, the popular and group rankings.
    let mut bought: BTreeMap<&Text, BTreeMap<ProductId, u64>> = BTreeMap::new();
    let mut overall: BTreeMap<ProductId, u64> = BTreeMap::new();
    for (customer, _, _, items) in &baskets {
        for p in items {
            *bought.entry(customer).or_default().entry(*p).or_default() += 1;
            *overall.entry(*p).or_default() += 1;
        }
    }
    let ranked = |counts: &BTreeMap<ProductId, u64>| -> Vec<ProductId> {
        let mut v: Vec<(u64, ProductId)> = counts.iter().map(|(p, c)| (*c, *p)).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.into_iter().map(|(_, p)| p).collect()
    };
    let profile = |customer: &Text| -> Vec<ProductId> {
        let mut p: Vec<ProductId> = bought.get(customer).map(&ranked).unwrap_or_default();
        p.truncate(3);
        p.sort_unstable();
        p
    };
    let year = rows.iter().map(|r| r.ts).max().map(year_of);
    let group_of = |l: &Loyalty| {
        (
            Gender::of(&l.gender),
            year.map(|y| AgeBand::in_year(l.birth_year, y)),
        )
    };
    let mut by_group: BTreeMap<_, BTreeMap<ProductId, u64>> = BTreeMap::new();
    for l in loyalty {
        if let Some(counts) = bought.get(&Text::from(l.customer_id.as_str())) {
            let g = by_group.entry(group_of(l)).or_default();
            for (p, c) in counts {
                *g.entry(*p).or_default() += c;
            }
        }
    }
    let popular = ranked(&overall);
    let contexts: Vec<Scope> = std::iter::once(None)
        .chain(
            weather
                .iter()
                .map(|w| Some(w.condition.clone()))
                .collect::<BTreeSet<_>>(),
        )
        .collect();

    let mut recommendations = Vec::new();
    for l in loyalty {
        let customer = Text::from(l.customer_id.as_str());
        let prof = profile(&customer);
        let best = |scope: &Scope| {
            rules
                .iter()
                .filter(|r| {
                    &r.scope == scope
                        && r.antecedent.iter().all(|p| prof.contains(p))
                        && !prof.contains(&r.consequent)
                })
                .min_by_key(|r| order(r))
                .map(|r| r.consequent)
        };
        let first_new = |list: &[ProductId]| list.iter().copied().find(|p| !prof.contains(p));
        let group = by_group.get(&group_of(l)).map(&ranked).unwrap_or_default();
        let fallback = if let Some(p) = best(&None) {
            (Some(p), Source::Rule(None))
        } else if let Some(p) = first_new(&group) {
            (Some(p), Source::Demographic)
        } else if let Some(p) = first_new(&popular) {
            (Some(p), Source::Popular)
        } else {
            (None, Source::None)
        };
        for x in &contexts {
            let (product, source) = match best(x) {
                Some(p) => (Some(p), Source::Rule(x.clone())),
                None => fallback.clone(),
            };
            recommendations.push(Recommendation {
                customer_id: customer.clone(),
                context: x.clone(),
                pick: Pick { product, source },
            });
        }
    }
    recommendations.sort();
    (rules, recommendations)
}
