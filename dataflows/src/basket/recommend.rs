//! Profiles, the recommendation with its fallbacks, and the product of each
//! promotion (SPEC §4, §3 step 6).
//!
//! For a current loyalty customer and context `x` the pick is the first of:
//! the best rule of `x` (`rule:x`), the best `global` rule (`rule:global`),
//! the demographic group's most bought product (`demographic`), the most
//! bought product overall (`popular`), each excluding the profile. A rule is
//! *usable* when its antecedent lies inside the profile and its consequent
//! does not; "best" is [`Rule::rank`].
//!
//! Rules reach the profiles as their place in their scope's order, so new
//! baskets that change every rule's measures but not the order touch no
//! profile; the best rule is found once per distinct (profile, scope) and
//! reaches a customer only when their winner changes. One reduce per customer
//! gathers its [`Fact`]s and writes its rows for every context, so a new rule,
//! a loyalty change or a new weather condition rewrites only the customers it
//! touches (a change of the popular top list or
//! of the context list touches all of them: both are one record joined to
//! every customer).

use std::collections::BTreeMap;

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use super::{
    subsets_up_to, Basket, BasketParams, Itemset, Pick, ProductId, Recommendation, Rule, Scope,
    Source, WeatherRow,
};
use crate::demographics::{AgeBand, Gender};
use crate::model::{Loyalty, Text, Time};
use crate::promotions::Promotion;

/// Profile size (SPEC §4: the 3 most bought products).
const PROFILE: usize = 3;

/// What one reduce per customer needs to pick.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Fact {
    /// The customer is in the current loyalty table.
    Member,
    Profile(Itemset),
    /// The consequent of the best usable rule of a scope.
    Best(Scope, ProductId),
    /// The top products of the customer's demographic group.
    Group(Itemset),
    Globals(Globals),
}

/// Facts shared by every customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Globals {
    /// Distinct weather conditions, sorted.
    conditions: Vec<Text>,
    /// The most bought products overall, best first (enough to skip a profile).
    popular: Itemset,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum GlobalFact {
    Condition(Text),
    Product(u64, ProductId),
}

/// The `PROFILE + 1` products with the most baskets, best first (ties: the
/// smaller id), from `(product, baskets)` pairs.
fn top(mut counted: Vec<(u64, ProductId)>, n: usize) -> Itemset {
    counted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    counted.into_iter().take(n).map(|(_, p)| p).collect()
}

/// The recommendation of every current loyalty customer in `global` and in
/// every weather condition.
pub fn recommendations<'s>(
    baskets: VecCollection<'s, Time, Basket>,
    rules: VecCollection<'s, Time, Rule>,
    weather: VecCollection<'s, Time, WeatherRow>,
    loyalty: VecCollection<'s, Time, Loyalty>,
    latest_year: VecCollection<'s, Time, i64>,
    params: &BasketParams,
) -> VecCollection<'s, Time, Recommendation> {
    // (customer, product): the difference counts the customer's baskets holding it.
    let bought = baskets.flat_map(|b| {
        let customer = b.customer_id;
        b.items.into_iter().map(move |p| (customer.clone(), p))
    });
    let profiles = bought.clone().reduce_named("Profiles", |_, products, out| {
        let counted = products
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(p, n)| (*n as u64, **p))
            .collect();
        let mut profile = top(counted, PROFILE);
        profile.sort_unstable();
        out.push((profile, 1));
    });

    // The best usable rule per (profile, scope), then per customer: customers
    // sharing a profile share the work, and a change of rule measures that
    // keeps the winner reaches no customer.
    let max_antecedent = params.max_len.saturating_sub(1);
    // Each rule's place in its scope's order ([`Rule::rank`], 0 = best): new
    // baskets change every rule's measures but seldom the order, and only a
    // change of place reaches the profiles.
    let rules_by_antecedent = rules
        .map(|r| (r.scope.clone(), r))
        .reduce_named("RankRules", |_, rules, out| {
            let mut ranked: Vec<&Rule> = rules
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, _)| *r)
                .collect();
            ranked.sort_by(|a, b| a.rank(b));
            for (place, r) in ranked.into_iter().enumerate() {
                out.push(((r.antecedent.clone(), r.consequent, place as u64), 1));
            }
        })
        .map(|(scope, (antecedent, consequent, place))| (antecedent, (scope, consequent, place)))
        .arrange_by_key_named("RulesByAntecedent");
    let best_by_profile = profiles
        .clone()
        .map(|(_, profile)| profile)
        .distinct()
        .flat_map(move |profile| {
            subsets_up_to(&profile, max_antecedent)
                .into_iter()
                .map(move |a| (a, profile.clone()))
        })
        .join_core(
            rules_by_antecedent,
            |_, profile, (scope, consequent, place)| {
                (!profile.contains(consequent))
                    .then(|| ((profile.clone(), scope.clone()), (*place, *consequent)))
            },
        )
        .reduce_named("BestRule", |_, rules, out| {
            let best = rules.iter().filter(|(_, n)| *n > 0).map(|(r, _)| *r).min();
            if let Some((_, consequent)) = best {
                out.push((*consequent, 1));
            }
        })
        .map(|((profile, scope), p)| (profile, (scope, p)));
    let best = profiles
        .clone()
        .map(|(customer, profile)| (profile, customer))
        .join_map(best_by_profile, |_, customer, (scope, p)| {
            (customer.clone(), Fact::Best(scope.clone(), *p))
        });

    // Demographic groups: the current loyalty table (opted in or not), age in
    // the year of the latest purchase.
    let members = loyalty.map(|l| {
        (
            Text::from(l.customer_id.as_str()),
            (Gender::of(&l.gender), l.birth_year),
        )
    });
    let groups = members.clone().map(|(c, g)| ((), (c, g))).join_map(
        latest_year.map(|y| ((), y)),
        |_, (c, (gender, born)), year| (c.clone(), (*gender, AgeBand::in_year(*born, *year))),
    );
    let group_top = bought
        .clone()
        .join_map(groups.clone(), |_, p, group| (*group, *p))
        .reduce_named("GroupTop", |_, products, out| {
            let counted = products
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(p, n)| (*n as u64, **p))
                .collect();
            out.push((top(counted, PROFILE + 1), 1));
        });
    let group_facts = groups
        .map(|(c, g)| (g, c))
        .join_map(group_top, |_, c, top| (c.clone(), Fact::Group(top.clone())));

    // Conditions and the popular products: one record, joined to every member.
    let globals = weather
        .map(|w| ((), GlobalFact::Condition(w.condition)))
        .concat(
            bought
                .map(|(_, p)| p)
                .count()
                .map(|(p, n)| ((), GlobalFact::Product(n.max(0) as u64, p))),
        )
        .reduce_named("Globals", |_, facts, out| {
            let mut g = Globals::default();
            let mut counted = Vec::new();
            for (fact, n) in facts {
                match fact {
                    GlobalFact::Condition(c) if *n > 0 => g.conditions.push(c.clone()),
                    GlobalFact::Product(count, p) if *n > 0 => counted.push((*count, *p)),
                    _ => {}
                }
            }
            g.conditions.dedup();
            g.popular = top(counted, PROFILE + 1);
            out.push((g, 1));
        });
    let global_facts = members
        .clone()
        .map(|(c, _)| ((), c))
        .join_map(globals, |_, c, g| (c.clone(), Fact::Globals(g.clone())));

    members
        .map(|(c, _)| (c, Fact::Member))
        .concatenate([
            profiles.map(|(c, p)| (c, Fact::Profile(p))),
            best,
            group_facts,
            global_facts,
        ])
        .reduce_named("Recommend", |_, facts, out| {
            for (context, pick) in pick_all(facts) {
                out.push(((context, pick), 1));
            }
        })
        .map(|(customer_id, (context, pick))| Recommendation {
            customer_id,
            context,
            pick,
        })
}

/// The rows of one customer from their facts (none unless a member).
fn pick_all(facts: &[(&Fact, isize)]) -> Vec<(Scope, Pick)> {
    let mut member = false;
    let mut profile: &[ProductId] = &[];
    let mut best: BTreeMap<&Scope, ProductId> = BTreeMap::new();
    let mut group: &[ProductId] = &[];
    let default = Globals::default();
    let mut globals = &default;
    for (fact, n) in facts {
        if *n <= 0 {
            continue;
        }
        match fact {
            Fact::Member => member = true,
            Fact::Profile(p) => profile = p,
            Fact::Best(scope, p) => {
                best.insert(scope, *p);
            }
            Fact::Group(g) => group = g,
            Fact::Globals(g) => globals = g,
        }
    }
    if !member {
        return Vec::new();
    }
    let first_new = |list: &[ProductId]| list.iter().copied().find(|p| !profile.contains(p));
    let fallback = if let Some(p) = best.get(&None) {
        Pick {
            product: Some(*p),
            source: Source::Rule(None),
        }
    } else if let Some(p) = first_new(group) {
        Pick {
            product: Some(p),
            source: Source::Demographic,
        }
    } else if let Some(p) = first_new(&globals.popular) {
        Pick {
            product: Some(p),
            source: Source::Popular,
        }
    } else {
        Pick::none()
    };
    std::iter::once(None)
        .chain(globals.conditions.iter().cloned().map(Some))
        .map(|context| {
            let pick = match best.get(&context) {
                Some(p) => Pick {
                    product: Some(*p),
                    source: Source::Rule(context.clone()),
                },
                None => fallback.clone(),
            };
            (context, pick)
        })
        .collect()
}

/// Each promotion with the product of its customer's recommendation in the
/// context of the weather of the store's region on the promotion date
/// (`global` without a weather row). A promotion without a recommendation
/// (it cannot happen while both read the same loyalty table) keeps an empty
/// pick rather than leave the view.
pub fn with_picks<'s>(
    promotions: VecCollection<'s, Time, Promotion>,
    weather: VecCollection<'s, Time, WeatherRow>,
    recommendations: VecCollection<'s, Time, Recommendation>,
) -> VecCollection<'s, Time, (Promotion, Pick)> {
    let by_place = promotions.map(|p| ((p.region.clone(), p.date), p));
    let conditions = weather.map(|w| ((w.region, w.date), w.condition));
    let in_context = by_place
        .clone()
        .join_map(conditions.clone(), |_, p, c| {
            ((p.customer_id.clone(), Some(c.clone())), p.clone())
        })
        .concat(
            by_place
                .antijoin(conditions.map(|(k, _)| k))
                .map(|(_, p)| ((p.customer_id.clone(), None), p)),
        );
    let picks = recommendations.map(|r| ((r.customer_id, r.context), r.pick));
    in_context
        .clone()
        .join_map(picks.clone(), |_, p, pick| (p.clone(), pick.clone()))
        .concat(
            in_context
                .antijoin(picks.map(|(k, _)| k))
                .map(|(_, p)| (p, Pick::none())),
        )
}
