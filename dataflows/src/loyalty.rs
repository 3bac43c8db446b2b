//! The loyalty join key (SPEC §3.1).
//!
//! Maintains: for each normalised msisdn, the smallest `customer_id` among the
//! current loyalty rows with that msisdn, `opt_in` true and
//! `loyalty_points <= max_points`. A customer who has not opted in is never
//! chosen; an opt-out, points over the cap or a delete retracts the row, and the
//! next qualifying customer (if any) takes over.
//!
//! Keyed by the packed [`Msisdn`] (loyalty numbers are normalised when the
//! table is read, and a normalised number always packs), so the join with the
//! CDRs compares integers.

use differential_dataflow::VecCollection;

use crate::model::{Loyalty, Msisdn, Text, Time};

/// `(msisdn, customer_id)` of the qualifying customer per number.
pub fn qualifying_by_msisdn<'s>(
    loyalty: VecCollection<'s, Time, Loyalty>,
    max_points: i64,
) -> VecCollection<'s, Time, (Msisdn, Text)> {
    loyalty
        .flat_map(move |l| {
            let qualifies = l.opt_in && l.loyalty_points <= max_points;
            let msisdn = Msisdn::pack(&l.msisdn).filter(|_| qualifies)?;
            Some((msisdn, Text::from(l.customer_id)))
        })
        .reduce_named("QualifyingCustomer", |_msisdn, ids, out| {
            out.push((ids[0].0.clone(), 1))
        })
}
