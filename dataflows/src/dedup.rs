//! Dedup by `record_id` with a horizon (SPEC §2).
//!
//! Maintains: for each `record_id`, the smallest copy by the SPEC tie-break
//! (`Cdr`'s derived `Ord`, fields in tie-break order), among copies that arrived
//! while the id was held.
//!
//! ```text
//! valid ──expire(start+H)──▶ reduce(xxh3-128(record_id): min per record_id) ──keep-filter──▶ unique
//! ```
//!
//! Keyed by a hash: the reduce is keyed by the 128-bit xxh3 hash of the
//! `record_id` text (a fixed, seedless function: the same key in every process
//! and on every platform), so the arrangement sorts and compares integers, not
//! strings. A collision cannot change an output: the copies of one hash are
//! grouped, and inside the group the reduce emits the smallest copy of *each
//! distinct `record_id` text* (the copies are sorted by `Cdr`'s order, whose
//! last field is the text, so the first copy of each text is its smallest).
//! Two ids that collide are then two outputs of one key, exactly as if they
//! had had keys of their own.
//!
//! State release: each copy leaves the reduce at `start + horizon` (its own
//! start), so the arrangements hold one horizon of records. The keep-filter
//! makes release invisible downstream: an insertion passes only at the moment
//! its own copy arrived, a retraction only before the copy's own horizon. So the
//! kept copy is never retracted by expiry, and when the smallest copy expires
//! before a larger sibling, the sibling's late "promotion" is suppressed.
//! A copy arriving after the id was released counts as a new record (SPEC: only
//! such copies may).
//!
//! Unchecked assumption: copies of one id do not differ in `start` by more than
//! `horizon − lateness` (else a copy could first appear after its smaller
//! sibling expired and be retracted without having been shown).

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::operators::vec::{Filter, Map};

use std::sync::Arc;

use crate::expiry::expire;
use crate::model::{time_of, Cdr, Time};

/// The dedup key of a `record_id`: its xxh3-128 hash (seedless, stable).
pub fn record_key(record_id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(record_id.as_bytes())
}

/// The copies travel as `Arc<Cdr>` inside the operator: the arrangements then
/// hold and merge a pointer per copy, not the record (measured: the dedup
/// arrangement's merges and drops were the top of the profile).
///
/// Unique CDRs from valid copies; `horizon` in seconds of event time.
pub fn dedup<'s>(
    valid: VecCollection<'s, Time, Cdr>,
    horizon: u64,
) -> VecCollection<'s, Time, Cdr> {
    let arrived = valid
        .inner
        .map(|(cdr, t, r)| ((record_key(&cdr.record_id), (Arc::new(cdr), t)), t, r))
        .as_collection();
    let copies = expire(arrived, move |(_, (cdr, _))| time_of(cdr.start) + horizon);
    copies
        .reduce_named("Dedup", |_key, copies, out| {
            // The smallest copy of each distinct text (one, unless the hash
            // collides: see the module doc).
            for (i, ((cdr, t), _)) in copies.iter().enumerate() {
                let first = copies[..i]
                    .iter()
                    .all(|((other, _), _)| other.record_id != cdr.record_id);
                if first {
                    out.push(((cdr.clone(), *t), 1));
                }
            }
        })
        .inner
        .filter(move |((_, (cdr, arrived)), t, r)| {
            if *r > 0 {
                t == arrived
            } else {
                *t < time_of(cdr.start) + horizon
            }
        })
        .map(|((_, (cdr, _)), t, r)| (Arc::unwrap_or_clone(cdr), t, r))
        .as_collection()
}
