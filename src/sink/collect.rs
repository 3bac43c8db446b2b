//! Gathers output collections on worker 0 (global index 0, so process 0 of a
//! cluster), where the file sink writes them once the run ends.
//!
//! Each sink keeps the updates it saw as `(data, time, diff)`; nothing is
//! reported as written until the files are (the writer runs after the dataflow
//! has drained).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use differential_dataflow::{ExchangeData, VecCollection};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

use cdrflow_dataflows::model::Time;

/// Updates of one output, on worker 0.
pub type Updates<D> = Rc<RefCell<Vec<(D, Time, isize)>>>;

/// Sends every update of `c` to worker 0 and keeps it there.
pub fn gather<'s, D: ExchangeData>(
    c: VecCollection<'s, Time, D>,
    name: &str,
    probe: &ProbeHandle<Time>,
) -> Updates<D> {
    let store: Updates<D> = Rc::new(RefCell::new(Vec::new()));
    let sink = store.clone();
    // The probe sits after the operator that keeps the data, so "probe done"
    // means every update has been kept.
    c.inner
        .unary(Exchange::new(|_| 0u64), name, move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    sink.borrow_mut().extend(data.iter().cloned());
                    output.session(&cap).give_container(&mut Vec::<()>::new());
                });
            }
        })
        .probe_with(probe);
    store
}

/// Metric counts by name, summed on worker 0.
pub type Counts = Rc<RefCell<BTreeMap<String, i64>>>;

pub fn gather_counts<'s>(c: VecCollection<'s, Time, String>, probe: &ProbeHandle<Time>) -> Counts {
    let store: Counts = Rc::new(RefCell::new(BTreeMap::new()));
    let sink = store.clone();
    c.inner
        .unary(Exchange::new(|_| 0u64), "Metrics", move |_, _| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut sink = sink.borrow_mut();
                    for (name, _t, r) in data.drain(..) {
                        *sink.entry(name).or_default() += r as i64;
                    }
                    output.session(&cap).give_container(&mut Vec::<()>::new());
                });
            }
        })
        .probe_with(probe);
    store
}

/// The net rows of an update list (diffs summed, zero dropped), sorted.
pub fn consolidated<D: Ord + Clone>(updates: &[(D, Time, isize)]) -> Vec<(D, isize)> {
    let mut rows: Vec<(D, isize)> = updates.iter().map(|(d, _, r)| (d.clone(), *r)).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(D, isize)> = Vec::with_capacity(rows.len());
    for (d, r) in rows {
        match out.last_mut() {
            Some((last, n)) if *last == d => *n += r,
            _ => out.push((d, r)),
        }
    }
    out.retain(|(_, n)| *n != 0);
    out
}
