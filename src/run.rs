//! `cdrflow run`: the timely runtime around the dataflows.
//!
//! ```text
//! per worker:  cdrs.jsonl block ─parse─┐ (one summary per worker per round, broadcast:
//!              (or its Kafka partitions,│  lines, largest start, partition progress, stop)
//!              or the generator's lines)│
//!                                      ▼
//!              lateness, line numbers ─▶ cdrs / dead letters / counts inputs
//! worker 0:    tables at time 0, change files (run/changes) at their `at` once the
//!              watermark reaches it; --follow: the file's and change files' new lines
//! dataflow:    pipeline ─▶ outputs gathered on worker 0 ─▶ OutputViews (sink/outputs)
//!                                                        ├▶ files, Kafka topics (sink/kafka)
//!                                                        └▶ lookup service (serve/live)
//! ```
//!
//! Time is the event-time watermark (seconds): after each round every worker
//! advances its inputs to the global watermark, so the dataflow's frontier
//! follows event time and the expiries scheduled in the fragments fire. A
//! record enters at the watermark when it was read (its file's or its Kafka
//! partition's), which does not depend on the worker count. A caught-up live
//! run closes the watermark's time (`floor`), so the newest input shows.
//!
//! Module map: `source` (one type per CDR source behind `CdrSource`),
//! `rounds` (the summaries swapped each round, the watermark's clock),
//! `dataflow` (the dataflow, its inputs, feeding the tables and the CDRs),
//! `front` (worker 0's views, files and publishing), `changes` (change
//! files waiting for the watermark), `trace` (`--trace`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use cdrflow_dataflows::basket::PurchaseRow;
use cdrflow_dataflows::drive_cache::SharedRouter;
use cdrflow_dataflows::model::{time_of, Time};
use cdrflow_dataflows::route::{EmbeddedRouter, RoadGraph};
use cdrflow_dataflows::segments::features::next_midnight;

mod changes;
mod dataflow;
mod front;
mod rounds;
mod source;
mod trace;

use self::changes::PendingChanges;
use self::dataflow::{build, feed_cdr, feed_change_dead, feed_counts, feed_tables, Inputs};
use self::front::Front;
use self::rounds::{Clock, Summaries};
use self::source::{CdrInput, RoundInput};
use self::trace::Trace;
use crate::config::{CdrSource, RunConfig};
use crate::generate::Generator;
use crate::monitor::engine::Engine;
use crate::monitor::{Geo, Monitor};
use crate::serve::live::LiveServer;
use crate::serve::Store as SnapshotStore;
use crate::source::cdr_file::{finish_block, CdrFile, SOURCE_NAME};
use crate::source::kafka as kafka_source;
use crate::source::tables::{self, Tables};

/// What a finished run reports (from process 0).
#[derive(Debug, Default)]
pub struct RunSummary {
    pub metrics: serde_json::Value,
    pub promotions: usize,
}

/// Runs the whole job: loads the tables, starts the workers, writes the
/// outputs. With `--serve` (process 0), the lookup service runs beside the
/// workers and keeps serving the final snapshot after the run, until SIGINT
/// or SIGTERM.
pub fn run(cfg: RunConfig) -> anyhow::Result<RunSummary> {
    let server = match &cfg.serve {
        Some(s) if cfg.cluster.process == 0 => {
            Some(LiveServer::start(s.listen, &s.roles, &cfg.token_key)?)
        }
        _ => None,
    };
    let store = server.as_ref().map(LiveServer::store);
    let monitor = server.as_ref().map(LiveServer::monitor);
    let mut tables = tables::load(&cfg.data)?;
    if let Some(m) = &monitor {
        m.set_geo(geo_of(&tables));
    }
    // The purchase rows move into the dataflow (worker 0 feeds them): the
    // host keeps no copy of what can be the largest table.
    let purchases = Arc::new(Mutex::new(std::mem::take(&mut tables.purchases)));
    let cdr_input = cdr_input(&cfg)?;
    // SIGINT/SIGTERM end a live run cleanly: the input ends where it is.
    let stop = Arc::new(AtomicBool::new(false));
    if cfg.follow {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, stop.clone())
                .context("listening for SIGINT/SIGTERM")?;
        }
    }
    let nodes = tables
        .nodes
        .iter()
        .map(|n| (n.node_id.clone(), n.at))
        .collect();
    let edges = tables
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone(), e.length_m))
        .collect();
    let (graph, _unknown) = RoadGraph::build(nodes, edges);
    let router: SharedRouter = Arc::new(EmbeddedRouter::new(graph));
    let tables = Arc::new(tables);
    let cfg = Arc::new(cfg);
    let timely_config = cfg.cluster.timely();
    let guards = timely::execute(timely_config, {
        let cfg = cfg.clone();
        move |worker| {
            let rows = &purchases;
            let store = store.clone();
            run_worker(
                worker,
                &cfg,
                &tables,
                rows,
                &cdr_input,
                router.clone(),
                Live {
                    store,
                    monitor: monitor.clone(),
                    stop: &stop,
                },
            )
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot start the timely workers: {e}"))?;
    let mut summary = RunSummary::default();
    for result in guards.join() {
        let result = result.map_err(|e| anyhow::anyhow!("a worker failed: {e}"))?;
        if let Some(s) = result? {
            summary = s;
        }
    }
    if let Some(server) = server.filter(|_| !cfg.follow) {
        if !cfg.quiet {
            eprintln!(
                "cdrflow: {} promotions; outputs in {}",
                summary.promotions,
                cfg.out.display()
            );
        }
        server.serve_until_signal()?;
    }
    Ok(summary)
}

/// Where the CDRs come from: the topic (checked before the workers start),
/// the generator of `generator.json`, or the CDR file (up to its last
/// complete line with `--follow`).
fn cdr_input(cfg: &RunConfig) -> anyhow::Result<CdrInput> {
    Ok(match (&cfg.kafka_source, &cfg.cdr_source) {
        (Some(k), _) => {
            // Fail early, with the topic named, before the workers start.
            kafka_source::partitions(&k.settings, &k.topic)?;
            CdrInput::Kafka(k.clone())
        }
        (None, CdrSource::Generator { cdrs }) => {
            CdrInput::Generator(Arc::new(Generator::load(&cfg.data, *cdrs)?))
        }
        (None, CdrSource::File) => {
            let file = CdrFile::open(&cfg.data)?;
            if cfg.follow && file.gzip {
                anyhow::bail!(
                    "--follow reads a growing cdrs.jsonl; {} is gzip",
                    file.path.display()
                );
            }
            if cfg.follow {
                let path = file.path.clone();
                CdrInput::File(
                    file.complete_lines()
                        .with_context(|| format!("reading {}", path.display()))?,
                )
            } else {
                CdrInput::File(file)
            }
        }
    })
}

/// What ties a worker to the live side of the run: the lookup service's
/// store (process 0 with `--serve`) and the stop flag (SIGINT/SIGTERM).
struct Live<'a> {
    store: Option<Arc<SnapshotStore>>,
    monitor: Option<Arc<Monitor>>,
    stop: &'a AtomicBool,
}

/// How long a caught-up live run waits for appended input between rounds.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// One worker's run: the dataflow, the tables (worker 0), then rounds until
/// the input ends; returns the summary on worker 0.
///
/// A round: (1) read this worker's share; (2) swap summaries with every
/// worker; (3) decide lateness and line numbers, feed the CDRs and counts;
/// (4) apply the changes the watermark has reached, advance the inputs to
/// it and let the dataflow catch up to the previous round; (5) worker 0
/// folds the completed outputs into its views.
fn run_worker(
    worker: &mut Worker,
    cfg: &RunConfig,
    tables: &Tables,
    purchases: &Mutex<Vec<PurchaseRow>>,
    cdr_input: &CdrInput,
    router: SharedRouter,
    live: Live<'_>,
) -> anyhow::Result<Option<RunSummary>> {
    let Live {
        store,
        monitor,
        stop,
    } = live;
    let (index, peers) = (worker.index(), worker.peers());
    // The engine's logging (the monitor's engine panel with --serve, the
    // trace's records with --trace-records; every process builds it, so the
    // samples' dataflow exists on every worker). Registered first: the
    // arrangements pick their logger up when they are built.
    let engine_log = cfg.serve.as_ref().is_some_and(|s| s.engine_log)
        || cfg.trace.as_ref().is_some_and(|t| t.records);
    let mut engine = engine_log.then(|| Engine::build(worker));
    let (mut inputs, probe, gathered) = build(worker, cfg, router, store.clone());
    // Worker 0 (of process 0) folds the gathered outputs, writes the files
    // and publishes to the lookup service and the monitor.
    let mut front = match index {
        0 => Some(Front::create(cfg, tables, &gathered, store, monitor)?),
        _ => None,
    };
    let mut summaries = Summaries::build(worker);
    // Worker 0 owns the tables: static rows at time 0, changes later. The
    // first worker of every other process frees its process's purchase rows.
    if index != 0 && index.is_multiple_of(cfg.cluster.workers) {
        drop(std::mem::take(
            &mut *purchases.lock().expect("purchases lock"),
        ));
    }
    let mut pending = (index == 0).then(|| PendingChanges::new(tables, cfg.follow));
    if index == 0 {
        feed_tables(&mut inputs, tables, purchases);
    }

    let mut source = cdr_input.open(index, peers, cfg)?;
    let mut progress = source.progress(cfg.quiet || index != 0);
    let mut trace = match (&cfg.trace, index) {
        (Some(t), 0) => Some(Trace::create(&t.path, !cfg.quiet)?),
        _ => None,
    };
    let mut clock = Clock::default();
    for round in 0u64.. {
        // 1. This worker's share: a parsed block (lateness needs the other
        // blocks' summaries), or Kafka messages (decided per partition).
        let read = source.read_round(round)?;
        // 2. Swap summaries with every worker.
        let sums = summaries.swap(worker, round, &read, stop.load(Ordering::Relaxed))?;
        let before = clock.count(index, &sums);
        progress.update(clock.lines, source.bytes_done(round));
        // 3. Lateness and line numbers, then into the dataflow.
        let mut counts = Default::default();
        let RoundInput { block, decided, .. } = read;
        let mut accept = |o| feed_cdr(&mut inputs, &mut counts, clock.floor, o);
        if let Some(block) = block {
            let (lines, max) = (before.lines, before.max_start);
            finish_block(block, lines, max, cfg.lateness, SOURCE_NAME, &mut accept);
        }
        decided.into_iter().for_each(accept);
        if let Some(pending) = pending.as_mut() {
            let dead = pending.poll().context("reading the change files")?;
            feed_change_dead(&mut inputs, &mut counts, dead);
        }
        feed_counts(&mut inputs, counts);
        // 4. Changes whose `at` the watermark has reached, then advance.
        let next = source
            .watermark(clock.max_start, cfg.lateness, &mut sums.partitions())
            .max(clock.watermark);
        if let Some(pending) = pending.as_mut() {
            let publisher = front.as_mut().and_then(|f| f.publisher.as_mut());
            feed_changes(pending, &mut inputs, publisher, next, clock.floor);
        }
        let previous = clock.advance(next);
        inputs.advance_to(clock.floor);
        // Let the dataflow catch up to the previous round, so memory stays bounded.
        worker.step_or_park_while(None, || probe.less_than(&previous));
        if let Some(e) = engine.as_mut() {
            e.offer(frontier_lag(&probe, clock.floor), false);
        }
        // 5. Worker 0 folds what the dataflow has completed into the views.
        if let Some(front) = front.as_mut() {
            front.fold(
                cfg,
                tables,
                &gathered,
                &probe,
                clock.watermark,
                engine.as_ref(),
            )?;
        }
        if let Some(trace) = trace.as_mut() {
            trace.round(clock.lines, || engine.as_ref().map(records))?;
        }
        if !sums.more() {
            progress.finish("input done");
            break;
        }
        if sums.idle() && cfg.follow {
            // Nothing new anywhere (a live run caught up): close the
            // watermark's time, so what arrived at it shows in the outputs,
            // and wait a little for appended input instead of spinning.
            clock.floor = clock.watermark + 1;
            inputs.advance_to(clock.floor);
            worker.step_or_park(Some(FOLLOW_POLL));
        }
    }
    let end = end_of_input(worker, &mut inputs, &mut summaries, &probe, &clock);
    if let Some(e) = engine.as_mut() {
        e.offer(frontier_lag(&probe, end), true);
        e.finish(worker);
    }
    if let Some(trace) = trace.as_mut() {
        trace.finish(clock.lines, engine.as_ref().map(records))?;
    }
    let result = match front.as_mut() {
        Some(f) => f
            .finish(cfg, tables, &gathered, clock.watermark, engine.as_ref())
            .map(Some),
        None => Ok(None),
    };
    // Every worker reached the end; what is left are retractions scheduled
    // for later event time. Drop the dataflows rather than compute them.
    drop(inputs);
    drop(summaries);
    for id in worker.installed_dataflows() {
        worker.drop_dataflow(id);
    }
    result
}

/// The records held by every arrangement of every worker (the samples
/// that have reached worker 0).
fn records(engine: &Engine) -> i64 {
    engine.state().arrangements.iter().map(|a| a.records).sum()
}

/// The change files' updates whose `at` is at most `next`, at
/// `max(at, floor)`; the loyalty ones also go to the lookup service.
fn feed_changes(
    pending: &mut PendingChanges,
    inputs: &mut Inputs,
    mut publisher: Option<&mut crate::serve::live::Publisher>,
    next: Time,
    floor: Time,
) {
    for u in pending.ready_loyalty(next, floor) {
        if let Some(p) = publisher.as_mut() {
            p.loyalty_change(&u.0, u.1.as_ref());
        }
        inputs.loyalty.send(u);
    }
    for u in pending.ready_stores(next, floor) {
        inputs.stores.send(u);
    }
}

/// The input has ended at the watermark: the outputs are the view at that
/// watermark. Expiries scheduled past it (retention, dedup horizon) belong
/// to event time that never came, so the run stops there instead of
/// draining. The segment snapshots run to the last CDR date: its midnight
/// must pass too (no change file is applied beyond the watermark). Returns
/// the time every worker's dataflow has reached.
fn end_of_input(
    worker: &mut Worker,
    inputs: &mut Inputs,
    summaries: &mut Summaries,
    probe: &ProbeHandle<Time>,
    clock: &Clock,
) -> Time {
    let last_midnight = clock.max_start.map_or(0, |m| time_of(next_midnight(m)));
    let end = (clock.watermark + 1).max(last_midnight + 1);
    inputs.advance_to(end);
    summaries.close();
    worker.step_or_park_while(None, || probe.less_than(&end));
    end
}

/// How far the dataflow's outputs trail the input's time `floor`, in
/// event-time seconds (0 when it has caught up or is done).
fn frontier_lag(probe: &ProbeHandle<Time>, floor: Time) -> i64 {
    probe
        .with_frontier(|f| f.first().copied())
        .map_or(0, |t| floor.saturating_sub(t) as i64)
}

/// The map's towers and stores: the tables' rows and the stores the change
/// file opens.
fn geo_of(tables: &Tables) -> Geo {
    let at = |p: &cdrflow_dataflows::model::Point| (p.lat.0, p.lon.0);
    let mut geo = Geo::default();
    for t in &tables.towers {
        geo.towers.insert(t.cell_id.to_string(), at(&t.at));
    }
    for s in &tables.stores {
        geo.stores.insert(s.store_id.clone(), at(&s.at));
    }
    for c in &tables.store_changes {
        if let cdrflow_dataflows::model::Change::Upsert { value: s, .. } = c {
            geo.stores
                .entry(s.store_id.clone())
                .or_insert_with(|| at(&s.at));
        }
    }
    geo
}
