//! The change files' updates on worker 0, waiting for the watermark (SPEC §1:
//! applied in `at` order, then file order, each once the watermark passes
//! `at`). A `--follow` run reads the lines appended to the files each round.
//!
//! ```text
//! Tables (loaded) ─┐
//! tails (--follow) ┴▶ pending, by time ─ready(next, watermark)─▶ collapse ─▶ upsert inputs
//! ```
//!
//! A change reaches the dataflow at `max(at, watermark)`: one appended after
//! the watermark passed its `at` applies at once. Among several changes of
//! one key at one time the last (in `at`, then file, order) wins.

use std::collections::BTreeMap;

use cdrflow_dataflows::model::{time_of, Change, DeadLetter, Loyalty, Store, Time};

use crate::source::changes::ChangeTail;
use crate::source::tables::{read_loyalty_changes, read_store_changes, Tables};

/// An upsert of a keyed table: `(key, Some(row) | None, time)`.
pub type Upsert<V> = (String, Option<V>, Time);

/// Changes waiting for the watermark.
pub struct PendingChanges {
    loyalty: Vec<Upsert<Loyalty>>,
    stores: Vec<Upsert<Store>>,
    /// The change files read on (`--follow`).
    tails: Option<(ChangeTail, ChangeTail)>,
}

impl PendingChanges {
    /// The loaded changes; with `follow`, the files are read on from where
    /// the load stopped.
    pub fn new(tables: &Tables, follow: bool) -> PendingChanges {
        let tails = match (&tables.loyalty_tail, &tables.store_tail) {
            (Some(l), Some(s)) if follow => Some((l.clone(), s.clone())),
            _ => None,
        };
        PendingChanges {
            loyalty: updates(&tables.loyalty_changes),
            stores: updates(&tables.store_changes),
            tails,
        }
    }

    /// Reads the complete lines appended to the change files; returns the
    /// dead letters among them.
    pub fn poll(&mut self) -> std::io::Result<Vec<DeadLetter>> {
        let Some((loyalty, stores)) = self.tails.as_mut() else {
            return Ok(Vec::new());
        };
        let (l, mut dead) = read_loyalty_changes(loyalty, true)?;
        let (s, d) = read_store_changes(stores, true)?;
        dead.extend(d);
        push(&mut self.loyalty, updates(&l));
        push(&mut self.stores, updates(&s));
        Ok(dead)
    }

    /// The loyalty changes with time `≤ next`, at `max(time, watermark)`.
    pub fn ready_loyalty(&mut self, next: Time, watermark: Time) -> Vec<Upsert<Loyalty>> {
        ready(&mut self.loyalty, next, watermark)
    }

    /// The store changes with time `≤ next`, at `max(time, watermark)`.
    pub fn ready_stores(&mut self, next: Time, watermark: Time) -> Vec<Upsert<Store>> {
        ready(&mut self.stores, next, watermark)
    }
}

fn updates<V: Clone>(changes: &[Change<String, V>]) -> Vec<Upsert<V>> {
    changes
        .iter()
        .map(|c| match c {
            Change::Upsert { at, key, value } => (key.clone(), Some(value.clone()), time_of(*at)),
            Change::Delete { at, key } => (key.clone(), None, time_of(*at)),
        })
        .collect()
}

/// Appends `new` (sorted by time) and keeps the queue sorted by time, the
/// earlier arrivals first among equal times.
fn push<V>(queue: &mut Vec<Upsert<V>>, new: Vec<Upsert<V>>) {
    if !new.is_empty() {
        queue.extend(new);
        queue.sort_by_key(|u| u.2);
    }
}

fn ready<V: Clone>(queue: &mut Vec<Upsert<V>>, next: Time, watermark: Time) -> Vec<Upsert<V>> {
    let n = queue.partition_point(|u| u.2 <= next);
    collapse(queue.drain(..n).map(|(k, v, t)| (k, v, t.max(watermark))))
}

/// Upserts of a keyed table; among several for one key at one time the last
/// wins (arrival order), which `arrange_from_upsert` would not guarantee by
/// itself. Sorted by (time, key).
pub fn collapse<V: Clone>(changes: impl IntoIterator<Item = Upsert<V>>) -> Vec<Upsert<V>> {
    let mut last: BTreeMap<(Time, String), Option<V>> = BTreeMap::new();
    for (k, v, t) in changes {
        last.insert((t, k), v);
    }
    last.into_iter().map(|((t, k), v)| (k, v, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_changes_apply_at_the_watermark_and_the_last_wins() {
        let mut q: Vec<Upsert<i32>> = Vec::new();
        push(
            &mut q,
            vec![("a".into(), Some(1), 5), ("b".into(), Some(2), 9)],
        );
        push(
            &mut q,
            vec![("a".into(), Some(3), 7), ("a".into(), None, 20)],
        );
        // Watermark already at 10: `a` at 5 and at 7 both land at 10; 7 wins.
        assert_eq!(
            ready(&mut q, 10, 10),
            vec![("a".into(), Some(3), 10), ("b".into(), Some(2), 10)]
        );
        assert_eq!(ready(&mut q, 19, 10), vec![]);
        assert_eq!(ready(&mut q, 25, 19), vec![("a".into(), None, 20)]);
        assert!(q.is_empty());
    }
}
