//! Baskets, their contexts, frequent itemsets and rules (SPEC §4).
//!
//! Level-wise apriori over *distinct* scoped baskets: a basket is a
//! `(scope, items)` record whose difference is how many baskets of the scope
//! hold exactly those items. Level k counts the candidate k-sets found inside
//! baskets; level k+1 takes, per distinct basket, the frequent k-sets it holds
//! and joins them into candidates whose every k-subset is frequent
//! ([`apriori_gen`]), so a triple is counted only where its three pairs are
//! frequent. A new basket touches the counts of the sets it holds; a change of a
//! scope's size re-tests that scope's thresholds.
//!
//! The candidate records carry a [`BasketId`] (a 128-bit hash of the basket's
//! items) rather than the items themselves: the per-level arrangements hold one
//! record per (candidate set, distinct basket) and are the bulk of the memory.

use std::hash::{Hash, Hasher};

use differential_dataflow::VecCollection;

use super::{apriori_gen, Basket, BasketParams, Itemset, PurchaseRow, Rule, Scope, WeatherRow};
use crate::model::{Store, Text, Time};
use crate::time::day_start;

/// `((scope, itemset), baskets holding it)` for every frequent itemset.
pub type Counted<'s> = VecCollection<'s, Time, ((Scope, Itemset), u64)>;

/// Stands for a distinct basket's items inside the apriori levels: two
/// independently salted 64-bit SipHash values of the sorted items (a
/// collision needs about 2^64 distinct baskets). Identical baskets share it,
/// so their records merge and the difference counts them.
pub type BasketId = (u64, u64);

fn basket_id(items: &[super::ProductId]) -> BasketId {
    let half = |salt: u8| {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        items.hash(&mut h);
        h.finish()
    };
    (half(0), half(1))
}

/// One basket per `txn_id` from its line items (see [`Basket`] for which row
/// gives its customer, store and time).
pub fn baskets<'s>(rows: VecCollection<'s, Time, PurchaseRow>) -> VecCollection<'s, Time, Basket> {
    rows.map(|r| (r.txn_id, (r.ts, r.store_id, r.customer_id, r.product)))
        .reduce_named("Baskets", |txn, lines, out| {
            let mut present = lines.iter().filter(|(_, n)| *n > 0).map(|(l, _)| *l);
            let Some((ts, store, customer, _)) = present.next() else {
                return;
            };
            let mut items: Itemset = lines
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(l, _)| l.3)
                .collect();
            items.sort_unstable();
            items.dedup();
            out.push((
                Basket {
                    txn_id: txn.clone(),
                    customer_id: customer.clone(),
                    store_id: store.clone(),
                    ts: *ts,
                    items,
                },
                1,
            ))
        })
        .map(|(_, b)| b)
}

/// Every basket's items in scope `global` and, when the weather of its store's
/// region on its date is known, in scope `condition` too. Uses the current
/// store table (a store that moves region moves its baskets' context).
pub fn scoped_baskets<'s>(
    baskets: VecCollection<'s, Time, Basket>,
    stores: VecCollection<'s, Time, Store>,
    weather: VecCollection<'s, Time, WeatherRow>,
) -> VecCollection<'s, Time, (Scope, Itemset)> {
    // (store, date) → condition: stores × days, small beside the baskets.
    let store_days = stores
        .map(|s| {
            (
                Text::from(s.region.as_str()),
                Text::from(s.store_id.as_str()),
            )
        })
        .join_map(
            weather.map(|w| (w.region, (w.date, w.condition))),
            |_, store, (date, cond)| ((store.clone(), *date), cond.clone()),
        );
    let conditioned = baskets
        .clone()
        .map(|b| ((b.store_id, day_start(b.ts)), b.items))
        .join_map(store_days, |_, items, cond| {
            (Some(cond.clone()), items.clone())
        });
    baskets.map(|b| (None, b.items)).concat(conditioned)
}

/// The number of baskets per scope.
pub fn scope_sizes<'s>(
    scoped: VecCollection<'s, Time, (Scope, Itemset)>,
) -> VecCollection<'s, Time, (Scope, u64)> {
    scoped
        .map(|(s, _)| s)
        .count()
        .map(|(s, n)| (s, n.max(0) as u64))
}

/// The frequent itemsets of sizes 1 to `max_len` per scope, with their counts.
pub fn frequent_itemsets<'s>(
    scoped: VecCollection<'s, Time, (Scope, Itemset)>,
    sizes: VecCollection<'s, Time, (Scope, u64)>,
    params: &BasketParams,
) -> Vec<Counted<'s>> {
    let sizes = sizes.arrange_by_key_named("ScopeSizes");
    let min_support = params.min_support;
    // Level 1: every item of every basket is a candidate.
    let mut candidates = scoped.flat_map(|(s, items)| {
        let id = basket_id(&items);
        items.into_iter().map(move |i| ((s.clone(), vec![i]), id))
    });
    let mut levels = Vec::new();
    for k in 1..=params.max_len.max(1) {
        let frequent = candidates
            .clone()
            .map(|(key, _)| key)
            .count()
            .map(|((s, set), c)| (s, (set, c.max(0) as u64)))
            .join_core(sizes.clone(), move |s, (set, c), n| {
                min_support
                    .reached_by(*c, *n)
                    .then(|| ((s.clone(), set.clone()), *c))
            });
        levels.push(frequent.clone());
        if k == params.max_len {
            break;
        }
        // The frequent k-sets inside each distinct basket, then its candidates.
        candidates = candidates
            .semijoin(frequent.map(|(key, _)| key))
            .map(|((s, set), id)| ((s, id), set))
            .reduce_named("AprioriGen", |_, sets, out| {
                let copies = sets[0].1;
                let sets: Vec<&Itemset> = sets.iter().map(|(s, _)| *s).collect();
                let next = apriori_gen(&sets);
                if !next.is_empty() && copies > 0 {
                    out.push((next, copies));
                }
            })
            .flat_map(|((s, id), next)| next.into_iter().map(move |set| ((s.clone(), set), id)));
    }
    levels
}

/// Rules `A → c` from the frequent itemsets (level 1 first): confidence
/// `count(A∪c)/count(A) >= min_confidence` and lift `> 1`, exactly.
pub fn rules<'s>(
    levels: &[Counted<'s>],
    sizes: VecCollection<'s, Time, (Scope, u64)>,
    params: &BasketParams,
) -> VecCollection<'s, Time, Rule> {
    // `A → c` for every frequent set of two or more: keyed by (scope, A).
    let mut candidates: Vec<_> = levels
        .iter()
        .skip(1)
        .map(|level| {
            level.clone().flat_map(|((s, set), count)| {
                (0..set.len())
                    .map(|i| {
                        let mut ante = set.clone();
                        let cons = ante.remove(i);
                        ((s.clone(), ante), (cons, count))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let Some(first) = candidates.pop() else {
        // max_len 1: itemsets but no rules.
        return sizes.flat_map(|_| None::<Rule>);
    };
    let candidates = first.concatenate(candidates);
    let all = levels
        .iter()
        .cloned()
        .reduce(|a, b| a.concat(b))
        .expect("level 1 exists")
        .arrange_by_key_named("FrequentItemsets");
    let singles = levels[0].clone().map(|((s, set), c)| ((s, set[0]), c));
    let min_confidence = params.min_confidence;
    candidates
        .join_core(all, |(s, ante), (cons, count), ante_count| {
            Some(((s.clone(), *cons), (ante.clone(), *count, *ante_count)))
        })
        .join_map(
            singles,
            |(s, cons), (ante, count, ante_count), cons_count| {
                (
                    s.clone(),
                    (ante.clone(), *cons, *count, *ante_count, *cons_count),
                )
            },
        )
        .join_map(
            sizes,
            |s, (ante, cons, count, ante_count, cons_count), n| Rule {
                scope: s.clone(),
                antecedent: ante.clone(),
                consequent: *cons,
                count: *count,
                antecedent_count: *ante_count,
                consequent_count: *cons_count,
                baskets: *n,
            },
        )
        .filter(move |r| {
            min_confidence.reached_by(r.count, r.antecedent_count)
                && (r.count as u128) * (r.baskets as u128)
                    > (r.antecedent_count as u128) * (r.consequent_count as u128)
        })
}
