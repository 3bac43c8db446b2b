//! The round protocol's shared state: every worker's summary of a round,
//! swapped through a small broadcast dataflow, and the totals they give
//! (lines, largest start, the watermark and the earliest open time).
//!
//! ```text
//! worker w: RoundInput.summary ─broadcast─▶ every worker: RoundSums of round r
//!           Clock: lines and largest start of the rounds before, and of the
//!                  workers before w in this round (line numbers, lateness)
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::Input as TimelyInput;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::worker::Worker;

use cdrflow_dataflows::model::{Epoch, Time};

use super::source::RoundInput;
use crate::source::cdr_file::BlockSummary;
use crate::source::kafka::PartitionProgress;

/// Each worker's summary of a round: `(round, worker, summary, its Kafka
/// partitions' progress, (more input follows, stop was asked))`.
type SummaryRecord = (u64, usize, BlockSummary, PartitionProgress, (bool, bool));

type SummaryInput =
    InputHandle<Time, timely::container::CapacityContainerBuilder<Vec<SummaryRecord>>>;

/// A worker's summary of a round, as every worker sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct WorkerSummary {
    pub(super) worker: usize,
    pub(super) block: BlockSummary,
    pub(super) partitions: PartitionProgress,
    pub(super) more: bool,
    pub(super) stopping: bool,
}

/// Every worker's summary of one round, by worker.
pub(super) struct RoundSums(Vec<WorkerSummary>);

impl RoundSums {
    /// Whether input follows: some worker has more, and none was asked to
    /// stop (SIGINT/SIGTERM on any worker ends the input for all).
    pub(super) fn more(&self) -> bool {
        self.0.iter().any(|s| s.more) && !self.0.iter().any(|s| s.stopping)
    }

    /// Whether no worker read a line.
    pub(super) fn idle(&self) -> bool {
        self.0.iter().all(|s| s.block.lines == 0)
    }

    /// Every worker's partition progress (Kafka).
    pub(super) fn partitions(&self) -> impl Iterator<Item = PartitionProgress> + '_ {
        self.0.iter().map(|s| s.partitions)
    }
}

/// The summaries' dataflow on one worker.
pub(super) struct Summaries {
    input: SummaryInput,
    probe: ProbeHandle<Time>,
    seen: Rc<RefCell<Vec<SummaryRecord>>>,
}

impl Summaries {
    pub(super) fn build(worker: &mut Worker) -> Summaries {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = seen.clone();
        let probe = ProbeHandle::new();
        let mut input = InputHandle::new();
        worker.dataflow::<Time, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .broadcast()
                .inspect(move |s| sink.borrow_mut().push(*s))
                .probe_with(&probe);
        });
        Summaries { input, probe, seen }
    }

    /// Sends this worker's summary of `round` and waits for every worker's.
    pub(super) fn swap(
        &mut self,
        worker: &mut Worker,
        round: u64,
        read: &RoundInput,
        stopping: bool,
    ) -> anyhow::Result<RoundSums> {
        let (index, peers) = (worker.index(), worker.peers());
        let mine = (read.more, stopping);
        self.input
            .send((round, index, read.summary, read.partitions, mine));
        self.input.advance_to(round + 1);
        let probe = &self.probe;
        worker.step_or_park_while(None, || probe.less_than(&(round + 1)));
        if self.seen.borrow().iter().filter(|s| s.0 == round).count() < peers {
            anyhow::bail!("round {round}: block summaries missing (worker {index})");
        }
        // A faster worker may already have sent its next round: keep those.
        let mut sums = Vec::new();
        self.seen.borrow_mut().retain(|&(r, w, s, p, m)| {
            if r == round {
                sums.push(WorkerSummary {
                    worker: w,
                    block: s,
                    partitions: p,
                    more: m.0,
                    stopping: m.1,
                });
            }
            r != round
        });
        sums.sort_by_key(|s| s.worker);
        Ok(RoundSums(sums))
    }

    /// Closes the summaries' input (the end of the run).
    pub(super) fn close(&mut self) {
        self.input.advance_to(u64::MAX);
    }
}

/// Where the input stands: lines and largest valid start of all rounds so
/// far, the watermark, and the earliest time still open for input (the
/// watermark, or just past it once a caught-up live run has closed it).
#[derive(Debug, Default)]
pub(super) struct Clock {
    pub(super) lines: u64,
    pub(super) max_start: Option<Epoch>,
    pub(super) watermark: Time,
    pub(super) floor: Time,
}

/// The lines and largest valid start before a worker's share of a round.
#[derive(Clone, Copy, Debug)]
pub(super) struct Before {
    pub(super) lines: u64,
    pub(super) max_start: Option<Epoch>,
}

impl Clock {
    /// Adds a round's summaries; returns what lies before worker `index`'s share.
    pub(super) fn count(&mut self, index: usize, sums: &RoundSums) -> Before {
        let mut before = Before {
            lines: self.lines,
            max_start: self.max_start,
        };
        for s in &sums.0 {
            if s.worker < index {
                before.lines += s.block.lines;
                before.max_start = before.max_start.max(s.block.max_start);
            }
            self.lines += s.block.lines;
            self.max_start = self.max_start.max(s.block.max_start);
        }
        before
    }

    /// Moves the watermark to `next` (never back); returns the floor before.
    pub(super) fn advance(&mut self, next: Time) -> Time {
        let previous = self.floor;
        self.watermark = next.max(self.watermark);
        self.floor = self.floor.max(self.watermark);
        previous
    }
}
