//! The loyalty join key (SPEC §3.1).
//!
//! Maintains: for each normalised msisdn, the smallest `customer_id` among the
//! current loyalty rows with that msisdn, `opt_in` true and
//! `loyalty_points <= max_points`. A customer who has not opted in is never
//! chosen; an opt-out, points over the cap or a delete retracts the row, and the
//! next qualifying customer (if any) takes over.

use differential_dataflow::VecCollection;

use crate::model::{Loyalty, Text, Time};

/// `(msisdn, customer_id)` of the qualifying customer per number.
pub fn qualifying_by_msisdn<'s>(
    loyalty: VecCollection<'s, Time, Loyalty>,
    max_points: i64,
) -> VecCollection<'s, Time, (Text, String)> {
    loyalty
        .filter(move |l| l.opt_in && l.loyalty_points <= max_points)
        .map(|l| (Text::from(l.msisdn), l.customer_id))
        .reduce_named("QualifyingCustomer", |_msisdn, ids, out| {
            out.push((ids[0].0.clone(), 1))
        })
}
