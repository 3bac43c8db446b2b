//! The monitor's engine panel: what timely's and differential's own logging
//! say about each worker, gathered on worker 0.
//!
//! ```text
//! every worker: timely log (Operates: names; Messages: records received)
//!               differential log (Batch / Merge / Drop: records and batches per arrangement)
//!               ─▶ EngineLog ─ ≤ 1/s ─▶ WorkerSample ─exchange(to worker 0)─▶ Engine ─▶ EngineState
//! ```
//!
//! The samples travel through a small timely dataflow of their own, so
//! workers of other processes reach process 0 too; worker 0 reads whatever has
//! arrived and never waits for it. Only aggregates: operator names and counts.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use differential_dataflow::logging::{DifferentialEvent, DifferentialEventBuilder};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Exchange, Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::logging::{TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

/// One worker's log so far, kept by its logging callbacks.
#[derive(Debug, Default)]
pub struct EngineLog {
    /// Operator names by id (timely `Operates`).
    names: HashMap<usize, String>,
    /// `(records, batches)` held by each arrangement, by operator id.
    spines: HashMap<usize, (i64, i64)>,
    /// Records this worker has received over its channels (timely `Messages`).
    received: u64,
}

impl EngineLog {
    /// Folds one timely event.
    pub fn timely(&mut self, event: &TimelyEvent) {
        match event {
            TimelyEvent::Operates(o) => {
                self.names.insert(o.id, o.name.clone());
            }
            TimelyEvent::Messages(m) if !m.is_send => {
                self.received += m.record_count.max(0) as u64;
            }
            _ => {}
        }
    }

    /// Folds one differential event: a new batch adds its records, a
    /// completed merge replaces two batches by one, a dropped batch leaves.
    pub fn differential(&mut self, event: &DifferentialEvent) {
        let (op, records, batches) = match event {
            DifferentialEvent::Batch(b) => (b.operator, b.length as i64, 1),
            DifferentialEvent::Merge(m) => match m.complete {
                Some(n) => (
                    m.operator,
                    n as i64 - m.length1 as i64 - m.length2 as i64,
                    -1,
                ),
                None => return,
            },
            DifferentialEvent::Drop(d) => (d.operator, -(d.length as i64), -1),
            _ => return,
        };
        let e = self.spines.entry(op).or_default();
        e.0 += records;
        e.1 += batches;
    }

    /// The sample this log gives now, arrangements summed by name.
    pub fn sample(&self, worker: usize, t_ms: u64, frontier_lag_s: i64) -> WorkerSample {
        WorkerSample {
            worker,
            t_ms,
            records: self.received,
            frontier_lag_s,
            arrangements: summed_by_name(self.spines.iter().map(|(op, (records, batches))| {
                let name = self.names.get(op).map_or("(unnamed)", String::as_str);
                (name, *records, *batches)
            })),
        }
    }
}

/// `(name, records, batches)` summed per name, sorted by name.
fn summed_by_name<'a>(sizes: impl Iterator<Item = (&'a str, i64, i64)>) -> Vec<Arrangement> {
    let mut by_name: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (name, records, batches) in sizes {
        let e = by_name.entry(name).or_default();
        e.0 += records;
        e.1 += batches;
    }
    by_name
        .into_iter()
        .map(|(name, (records, batches))| Arrangement {
            name: name.to_string(),
            records,
            batches,
        })
        .collect()
}

/// Registers the engine log on `worker`. Call before building the dataflows:
/// differential's arrangements pick their logger up when they are built.
pub fn register(worker: &mut Worker) -> Rc<RefCell<EngineLog>> {
    let log = Rc::new(RefCell::new(EngineLog::default()));
    if let Some(mut registry) = worker.log_register() {
        let l = log.clone();
        registry.insert::<TimelyEventBuilder, _>("timely", move |_, data| {
            let mut l = l.borrow_mut();
            for (_, e) in data.iter().flatten() {
                l.timely(e);
            }
        });
        let l = log.clone();
        registry.insert::<DifferentialEventBuilder, _>("differential/arrange", move |_, data| {
            let mut l = l.borrow_mut();
            for (_, e) in data.iter().flatten() {
                l.differential(e);
            }
        });
    }
    log
}

/// An arrangement's size: records and batches in its trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrangement {
    pub name: String,
    pub records: i64,
    pub batches: i64,
}

/// What one worker reports at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSample {
    pub worker: usize,
    /// Wall-clock milliseconds since the epoch.
    pub t_ms: u64,
    /// Records received so far.
    pub records: u64,
    /// Event-time seconds the worker's outputs trail its inputs.
    pub frontier_lag_s: i64,
    pub arrangements: Vec<Arrangement>,
}

/// The engine panel: per worker, and per arrangement name over all workers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EngineState {
    pub workers: Vec<WorkerState>,
    pub arrangements: Vec<Arrangement>,
}

/// One worker's row of the engine panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WorkerState {
    pub worker: usize,
    /// Records received so far.
    pub records: u64,
    /// Records received per second between its last two samples.
    pub records_per_s: f64,
    pub frontier_lag_s: i64,
}

/// How often a worker sends its sample.
const EVERY: Duration = Duration::from_secs(1);

type Latest = Rc<RefCell<BTreeMap<usize, (Option<WorkerSample>, WorkerSample)>>>;

/// The samples' dataflow on one worker: it sends its own (≤ 1/s); worker 0
/// keeps the latest two of every worker.
pub struct Engine {
    log: Rc<RefCell<EngineLog>>,
    /// `None` once [`Engine::finish`] closed it.
    input: Option<InputHandle<u64, CapacityContainerBuilder<Vec<WorkerSample>>>>,
    probe: ProbeHandle<u64>,
    latest: Latest,
    last: Option<Instant>,
    index: usize,
}

impl Engine {
    /// Registers the log and builds the samples' dataflow. Every worker must
    /// call it (the dataflow is built on all of them), before the others.
    pub fn build(worker: &mut Worker) -> Engine {
        let log = register(worker);
        let latest: Latest = Rc::default();
        let seen = latest.clone();
        let mut input = InputHandle::new();
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .exchange(|_| 0)
                .inspect(move |s: &WorkerSample| {
                    let mut seen = seen.borrow_mut();
                    let slot = seen.entry(s.worker).or_insert_with(|| (None, s.clone()));
                    if slot.1.t_ms < s.t_ms {
                        let last = std::mem::replace(&mut slot.1, s.clone());
                        slot.0 = Some(last);
                    }
                })
                .probe_with(&probe);
        });
        Engine {
            log,
            input: Some(input),
            probe,
            latest,
            last: None,
            index: worker.index(),
        }
    }

    /// Sends this worker's sample when a second has passed since the last
    /// (`force`: now). `frontier_lag_s`: how far its outputs trail its input.
    pub fn offer(&mut self, frontier_lag_s: i64, force: bool) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        if !force && self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let sample = self
            .log
            .borrow()
            .sample(self.index, super::now_ms(), frontier_lag_s);
        input.send(sample);
        let next = *input.time() + 1;
        input.advance_to(next);
    }

    /// Closes this worker's samples and steps `worker` until every worker's
    /// have arrived (every worker calls it once, at the end of a run).
    pub fn finish(&mut self, worker: &mut Worker) {
        drop(self.input.take());
        worker.step_or_park_while(None, || !self.probe.done());
    }

    /// The panel from the samples that have arrived (worker 0).
    pub fn state(&self) -> EngineState {
        let latest = self.latest.borrow();
        let workers = latest
            .values()
            .map(|(before, now)| {
                let records_per_s = before.as_ref().map_or(0.0, |b| {
                    let dt = now.t_ms.saturating_sub(b.t_ms) as f64 / 1000.0;
                    if dt > 0.0 {
                        now.records.saturating_sub(b.records) as f64 / dt
                    } else {
                        0.0
                    }
                });
                WorkerState {
                    worker: now.worker,
                    records: now.records,
                    records_per_s,
                    frontier_lag_s: now.frontier_lag_s,
                }
            })
            .collect();
        let arrangements = latest.values().flat_map(|(_, now)| {
            now.arrangements
                .iter()
                .map(|a| (a.name.as_str(), a.records, a.batches))
        });
        EngineState {
            workers,
            arrangements: summed_by_name(arrangements),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::logging::{BatchEvent, DropEvent, MergeEvent};
    use timely::logging::OperatesEvent;

    #[test]
    fn batches_merges_and_drops_are_summed_per_name() {
        let mut log = EngineLog::default();
        for (id, name) in [
            (3, "Arrange: dedup"),
            (4, "Arrange: dedup"),
            (5, "DailyCap"),
        ] {
            log.timely(&TimelyEvent::Operates(OperatesEvent {
                id,
                addr: vec![0, id],
                name: name.into(),
            }));
        }
        let batch = |operator, length| DifferentialEvent::Batch(BatchEvent { operator, length });
        log.differential(&batch(3, 10));
        log.differential(&batch(3, 5));
        log.differential(&batch(4, 7));
        log.differential(&batch(5, 2));
        // 10 + 5 merge into 12 (3 consolidated away): one batch fewer.
        log.differential(&DifferentialEvent::Merge(MergeEvent {
            operator: 3,
            scale: 1,
            length1: 10,
            length2: 5,
            complete: Some(12),
        }));
        // A merge still under way changes nothing.
        log.differential(&DifferentialEvent::Merge(MergeEvent {
            operator: 4,
            scale: 1,
            length1: 7,
            length2: 0,
            complete: None,
        }));
        log.differential(&DifferentialEvent::Drop(DropEvent {
            operator: 5,
            length: 2,
        }));
        let s = log.sample(1, 1000, 60);
        assert_eq!(
            s.arrangements,
            vec![
                Arrangement {
                    name: "Arrange: dedup".into(),
                    records: 19,
                    batches: 2
                },
                Arrangement {
                    name: "DailyCap".into(),
                    records: 0,
                    batches: 0
                },
            ]
        );
        assert_eq!((s.worker, s.frontier_lag_s), (1, 60));
    }

    #[test]
    fn a_worker_reports_its_records_per_second_and_every_arrangement() {
        use timely::dataflow::operators::vec::ToStream;
        use timely::dataflow::operators::Exchange as _;
        let out = timely::execute(timely::Config::process(2), |worker| {
            let mut engine = Engine::build(worker);
            let index = worker.index();
            let probe = ProbeHandle::new();
            worker.dataflow::<u64, _, _>(|scope| {
                (0..1000u64)
                    .filter(move |i| *i as usize % 2 == index)
                    .to_stream(scope)
                    .exchange(|i| *i)
                    .probe_with(&probe);
            });
            worker.step_or_park_while(None, || !probe.done());
            engine.offer(5, true);
            engine.finish(worker);
            engine.state()
        })
        .expect("timely")
        .join();
        let states: Vec<EngineState> = out.into_iter().map(|r| r.expect("worker")).collect();
        let zero = &states[0];
        assert_eq!(zero.workers.len(), 2, "{zero:?}");
        // The two workers received the 1000 records between them (and the
        // samples' own messages are not counted before they were sent).
        let received: u64 = zero.workers.iter().map(|w| w.records).sum();
        assert!(received >= 1000, "{zero:?}");
        assert!(zero.workers.iter().all(|w| w.frontier_lag_s == 5));
        assert!(states[1].workers.is_empty(), "only worker 0 gathers");
    }
}
