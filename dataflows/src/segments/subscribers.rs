//! `subscribers.csv` by packed msisdn, where a snapshot row is built: the
//! demographics (fee, birth year, gender, plan) stay out of the features
//! dataflow, whose records are integers, and are attached at the edge by a
//! lookup (SPEC §5: unknown demographics and fee 0 for a caller the table
//! does not list).

use std::collections::HashMap;

use crate::model::Subscriber;
use crate::msisdn::Msisdn;

/// The subscribers table as the updates applied so far say.
#[derive(Debug, Default)]
pub struct SubscriberTable {
    /// Rows per number with their multiplicities (`subscribers.csv` has one
    /// row per number; kept general, so any updates apply exactly).
    rows: HashMap<Msisdn, Vec<(Subscriber, isize)>>,
}

impl SubscriberTable {
    /// Applies one update; returns the number whose row may have changed
    /// (`None` for a row whose msisdn does not pack: it matches no caller).
    pub fn update(&mut self, s: Subscriber, r: isize) -> Option<Msisdn> {
        let m = Msisdn::pack(&s.msisdn)?;
        let rows = self.rows.entry(m).or_default();
        match rows.iter_mut().find(|(row, _)| *row == s) {
            Some((_, n)) => *n += r,
            None => rows.push((s, r)),
        }
        rows.retain(|(_, n)| *n != 0);
        if rows.is_empty() {
            self.rows.remove(&m);
        }
        Some(m)
    }

    /// The row of `m` (of several present, the greatest), if listed.
    pub fn get(&self, m: Msisdn) -> Option<&Subscriber> {
        self.rows
            .get(&m)?
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, _)| s)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(msisdn: &str, fee: i64) -> Subscriber {
        Subscriber {
            msisdn: msisdn.into(),
            gender: "F".into(),
            birth_year: Some(1990),
            plan: "basic".into(),
            monthly_fee_cents: fee,
        }
    }

    #[test]
    fn updates_apply_exactly() {
        let mut t = SubscriberTable::default();
        let m = Msisdn::pack("+4915100000001").unwrap();
        assert_eq!(t.update(sub("+4915100000001", 100), 1), Some(m));
        assert_eq!(t.get(m).map(|s| s.monthly_fee_cents), Some(100));
        t.update(sub("+4915100000001", 200), 1);
        t.update(sub("+4915100000001", 100), -1);
        assert_eq!(t.get(m).map(|s| s.monthly_fee_cents), Some(200));
        t.update(sub("+4915100000001", 200), -1);
        assert_eq!(t.get(m), None);
        assert_eq!(t.update(sub("4915100000001", 1), 1), None);
    }
}
