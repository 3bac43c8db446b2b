//! `cdrflow run`: the timely runtime around the dataflows.
//!
//! ```text
//! per worker:  cdrs.jsonl block ─parse─┐ (one summary per worker per round, broadcast:
//!              (or its Kafka partitions)│  lines, largest start, partition progress, stop)
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

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use differential_dataflow::input::Input;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::Input as TimelyInput;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::worker::Worker;

use cdrflow_dataflows::basket::{PurchaseRow, WeatherRow};
use cdrflow_dataflows::drive_cache::SharedRouter;
use cdrflow_dataflows::model::{
    time_of, Cdr, DeadLetter, Epoch, Loyalty, Store, Subscriber, Time, Tower,
};
use cdrflow_dataflows::pipeline::{pipeline, PipelineInputs, PipelineParams};
use cdrflow_dataflows::route::{EmbeddedRouter, RoadGraph};
use cdrflow_dataflows::segments::features::next_midnight;
use cdrflow_dataflows::token::Tokenizer;

mod changes;
mod reader;

use self::changes::{collapse, PendingChanges};
use self::reader::{CdrInput, CdrReader};
use crate::config::RunConfig;
use crate::monitor::engine::Engine;
use crate::monitor::{now_ms, Geo, Monitor, MonitorState, Sample, HISTORY};
use crate::serve::live::{LiveServer, Publisher};
use crate::serve::Store as SnapshotStore;
use crate::sink::collect::{gather, gather_counts, Counts};
use crate::sink::files;
use crate::sink::kafka::{KafkaOutputs, SegmentMessages};
use crate::sink::outputs::{GatheredOutputs, OutputViews};
use crate::sink::snapshots::{snapshots, SharedReport, SnapshotTargets};
use crate::source::cdr_file::{
    finish_block, parse_block, BlockSummary, CdrFile, Outcome, SOURCE_NAME,
};
use crate::source::kafka::{self as kafka_source, PartitionProgress};
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
    let cdr_input = match &cfg.kafka_source {
        Some(k) => {
            // Fail early, with the topic named, before the workers start.
            kafka_source::partitions(&k.settings, &k.topic)?;
            CdrInput::Kafka(k.clone())
        }
        None => {
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
    };
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

/// An upsert stream of a keyed table: `(key, Some(row) | None, time)`.
type UpsertInput<V> =
    InputHandle<Time, timely::container::CapacityContainerBuilder<Vec<(String, Option<V>, Time)>>>;
/// Each worker's summary of a round: `(round, worker, summary, its Kafka
/// partitions' progress, (more input follows, stop was asked))`.
type SummaryRecord = (u64, usize, BlockSummary, PartitionProgress, (bool, bool));

type SummaryInput =
    InputHandle<Time, timely::container::CapacityContainerBuilder<Vec<SummaryRecord>>>;

/// The inputs a worker feeds.
struct Inputs {
    cdrs: differential_dataflow::input::InputSession<Time, Cdr, isize>,
    towers: differential_dataflow::input::InputSession<Time, Tower, isize>,
    purchases: differential_dataflow::input::InputSession<Time, PurchaseRow, isize>,
    weather: differential_dataflow::input::InputSession<Time, WeatherRow, isize>,
    subscribers: differential_dataflow::input::InputSession<Time, Subscriber, isize>,
    dead: differential_dataflow::input::InputSession<Time, DeadLetter, isize>,
    counts: differential_dataflow::input::InputSession<Time, String, isize>,
    stores: UpsertInput<Store>,
    loyalty: UpsertInput<Loyalty>,
}

impl Inputs {
    fn advance_to(&mut self, t: Time) {
        self.cdrs.advance_to(t);
        self.towers.advance_to(t);
        self.purchases.advance_to(t);
        self.weather.advance_to(t);
        self.subscribers.advance_to(t);
        self.dead.advance_to(t);
        self.counts.advance_to(t);
        self.cdrs.flush();
        self.towers.flush();
        self.purchases.flush();
        self.weather.flush();
        self.subscribers.flush();
        self.dead.flush();
        self.counts.flush();
        if *self.stores.time() < t {
            self.stores.advance_to(t);
        }
        if *self.loyalty.time() < t {
            self.loyalty.advance_to(t);
        }
    }
}

/// What ties a worker to the live side of the run: the lookup service's
/// store (process 0 with `--serve`) and the stop flag (SIGINT/SIGTERM).
struct Live<'a> {
    store: Option<Arc<SnapshotStore>>,
    monitor: Option<Arc<Monitor>>,
    stop: &'a AtomicBool,
}

/// How often worker 0 republishes the monitor's counts.
const MONITOR_EVERY: Duration = Duration::from_secs(1);

/// How long a caught-up live run waits for appended input between rounds.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Outputs gathered on worker 0.
struct Gathered {
    outputs: GatheredOutputs,
    snapshots: SharedReport,
    /// The snapshot rows for the segments topic (with `--sink-topic-prefix`).
    segment_messages: Option<SegmentMessages>,
    counts: Counts,
}

fn build(
    worker: &mut Worker,
    cfg: &RunConfig,
    router: SharedRouter,
    store: Option<Arc<SnapshotStore>>,
) -> (Inputs, ProbeHandle<Time>, Gathered) {
    let probe = ProbeHandle::new();
    let params = PipelineParams {
        promotion: cfg.promotion.clone(),
        basket: cfg.basket,
        dedup_horizon: cfg.dedup_horizon.max(0) as u64,
        window: cfg.window,
    };
    worker.dataflow::<Time, _, _>(|scope| {
        let (cdr_in, cdrs) = scope.new_collection::<Cdr, isize>();
        let (tower_in, towers) = scope.new_collection::<Tower, isize>();
        let (purchase_in, purchases) = scope.new_collection::<PurchaseRow, isize>();
        let (weather_in, weather) = scope.new_collection::<WeatherRow, isize>();
        let (subscriber_in, subscribers) = scope.new_collection::<Subscriber, isize>();
        let (dead_in, dead) = scope.new_collection::<DeadLetter, isize>();
        let (count_in, counts) = scope.new_collection::<String, isize>();
        let mut store_in = InputHandle::new();
        let mut loyalty_in = InputHandle::new();
        let inputs = PipelineInputs {
            cdrs,
            towers,
            stores: scope.input_from(&mut store_in),
            loyalty: scope.input_from(&mut loyalty_in),
            purchases,
            weather,
            subscribers,
        };
        let out = pipeline(inputs, router, &params);
        let segment_messages: Option<SegmentMessages> =
            cfg.kafka_sink.as_ref().map(|_| Default::default());
        let snapshots = snapshots(
            out.features,
            out.cdr_days,
            SnapshotTargets {
                out: cfg.out.clone(),
                tokens: Tokenizer::new(&cfg.token_key),
                defs: cfg.segments.clone(),
                live: store,
                kafka: segment_messages.clone(),
            },
            &probe,
        );
        let counts = counts.concat(out.counts);
        let gathered = Gathered {
            outputs: GatheredOutputs {
                promotions: gather(out.promotions, "Promotions", &probe),
                rules: gather(out.rules, "Rules", &probe),
                recommendations: gather(out.recommendations, "Recommendations", &probe),
                dead: gather(dead, "DeadLetters", &probe),
            },
            snapshots,
            segment_messages,
            counts: gather_counts(counts, &probe),
        };
        let inputs = Inputs {
            cdrs: cdr_in,
            towers: tower_in,
            purchases: purchase_in,
            weather: weather_in,
            subscribers: subscriber_in,
            dead: dead_in,
            counts: count_in,
            stores: store_in,
            loyalty: loyalty_in,
        };
        (inputs, probe.clone(), gathered)
    })
}

/// A summary dataflow: each worker's block summary of a round, seen by all.
type Summaries = Rc<RefCell<Vec<SummaryRecord>>>;

fn build_summaries(worker: &mut Worker) -> (SummaryInput, ProbeHandle<Time>, Summaries) {
    let seen: Summaries = Rc::new(RefCell::new(Vec::new()));
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
    (input, probe, seen)
}

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

    let index = worker.index();
    let peers = worker.peers();
    // Worker 0 of process 0 publishes the counts to the monitor.
    let monitor = monitor.filter(|_| index == 0);
    let mut last_monitor: Option<std::time::Instant> = None;
    let mut history: VecDeque<Sample> = VecDeque::new();
    // The engine panel's logging (with --serve; every process builds it, so
    // the samples' dataflow exists on every worker). Registered first: the
    // arrangements pick their logger up when they are built.
    let mut engine = cfg
        .serve
        .as_ref()
        .filter(|s| s.engine_log)
        .map(|_| Engine::build(worker));
    let (mut inputs, probe, gathered) = build(worker, cfg, router, store.clone());
    // Worker 0 of process 0 publishes the promotions and loyalty to the
    // lookup service (the segments come from the snapshot sink).
    let mut publisher = store
        .filter(|_| index == 0)
        .map(|store| Publisher::new(store, &tables.loyalty));
    // Worker 0 (of process 0) folds the gathered outputs and writes the files.
    let mut views = if index == 0 {
        let views = OutputViews::create(&cfg.out, Tokenizer::new(&cfg.token_key))?;
        Some(match (&cfg.kafka_sink, &gathered.segment_messages) {
            (Some(k), Some(segments)) => views.with_kafka(
                KafkaOutputs::connect(&k.settings, &k.prefix, k.timeout, k.exactly_once)?,
                segments.clone(),
            ),
            _ => views,
        })
    } else {
        None
    };
    let mut last_flush = std::time::Instant::now();
    let (mut summary_in, summary_probe, summaries) = build_summaries(worker);

    // Worker 0 owns the tables: static rows at time 0, changes later. The
    // first worker of every other process frees its process's purchase rows.
    if index != 0 && index.is_multiple_of(cfg.cluster.workers) {
        drop(std::mem::take(
            &mut *purchases.lock().expect("purchases lock"),
        ));
    }
    let mut pending = (index == 0).then(|| PendingChanges::new(tables, cfg.follow));
    if index == 0 {
        for t in &tables.towers {
            inputs.towers.update_at(t.clone(), 0, 1);
        }
        let rows = std::mem::take(&mut *purchases.lock().expect("purchases lock"));
        for row in rows {
            inputs.purchases.update_at(row, 0, 1);
        }
        for sub in &tables.subscribers {
            inputs.subscribers.update_at(sub.clone(), 0, 1);
        }
        for w in &tables.weather {
            let row = WeatherRow {
                region: w.region.as_str().into(),
                date: w.date,
                condition: w.condition.as_str().into(),
            };
            inputs.weather.update_at(row, 0, 1);
        }
        for u in collapse(
            tables
                .stores
                .iter()
                .map(|s| (s.store_id.clone(), Some(s.clone()), 0)),
        ) {
            inputs.stores.send(u);
        }
        for u in collapse(
            tables
                .loyalty
                .iter()
                .map(|l| (l.customer_id.clone(), Some(l.clone()), 0)),
        ) {
            inputs.loyalty.send(u);
        }
        for d in &tables.dead {
            inputs.dead.update_at(d.clone(), 0, 1);
        }
        for (file, n) in &tables.dead_per_file {
            inputs
                .counts
                .update_at(format!("csv_dead_lettered/{file}"), 0, *n as isize);
        }
        for d in &tables.dead {
            inputs
                .counts
                .update_at(format!("csv_dead_lettered_by_reason/{}", d.reason), 0, 1);
        }
    }

    let block_size = cfg.block_size.max(1);
    let mut reader = CdrReader::open(cdr_input, index, peers, cfg)?;
    let mut lines_total = 0u64;
    let mut max_total: Option<Epoch> = None;
    let mut watermark: Time = 0;
    // The earliest time still open for input: the watermark, or just past it
    // once a caught-up live run has closed the watermark's time.
    let mut floor: Time = 0;
    let mut counts: BTreeMap<String, isize> = BTreeMap::new();

    let mut progress = reader.progress(cfg, index);
    for round in 0u64.. {
        // 1. Read this worker's share of the round: a block of the file
        // (parsed; lateness needs the other blocks' summaries), or Kafka
        // messages (lateness decided per partition while reading).
        let mut decided: Vec<Outcome> = Vec::new();
        let (parsed, mine, partitions, more) = match &mut reader {
            CdrReader::File {
                file,
                blocks,
                gz,
                tail,
            } => {
                let bytes = if file.gzip {
                    match gz.as_mut() {
                        Some(gz) => gz
                            .next_block(block_size)
                            .with_context(|| format!("reading {}", file.path.display()))?,
                        None => None,
                    }
                } else {
                    let b = round * peers as u64 + index as u64;
                    if b < *blocks {
                        Some(
                            file.read_block(b, block_size)
                                .with_context(|| format!("reading {}", file.path.display()))?,
                        )
                    } else if round * (peers as u64) >= *blocks {
                        // Every worker is past the blocks: worker 0 reads
                        // what was appended (--follow), so lines keep their order.
                        match tail.as_mut() {
                            Some(t) => t
                                .next_block(block_size)
                                .with_context(|| format!("reading {}", file.path.display()))?,
                            None => None,
                        }
                    } else {
                        None
                    }
                };
                let parsed = bytes.map(parse_block);
                let more = if cfg.follow {
                    true
                } else if file.gzip {
                    gz.as_ref().is_some_and(|g| !g.is_done())
                } else {
                    (round + 1) * (peers as u64) < *blocks
                };
                let mine = parsed.as_ref().map(|p| p.summary).unwrap_or_default();
                (parsed, mine, PartitionProgress::default(), more)
            }
            CdrReader::Kafka(k) => {
                let max_start = k.read_round(block_size, |o| decided.push(o))?;
                let mine = BlockSummary {
                    lines: decided.len() as u64,
                    max_start,
                };
                (None, mine, k.progress(), !k.done())
            }
        };

        // 2. Swap summaries with every worker.
        let stopping = stop.load(Ordering::Relaxed);
        summary_in.send((round, index, mine, partitions, (more, stopping)));
        summary_in.advance_to(round + 1);
        worker.step_or_park_while(None, || summary_probe.less_than(&(round + 1)));
        if summaries.borrow().iter().filter(|s| s.0 == round).count() < peers {
            anyhow::bail!("round {round}: block summaries missing (worker {index})");
        }
        // A faster worker may already have sent its next round: keep those.
        let mut round_sums: Vec<(usize, BlockSummary, PartitionProgress, (bool, bool))> =
            Vec::new();
        summaries.borrow_mut().retain(|&(r, w, s, p, m)| {
            if r == round {
                round_sums.push((w, s, p, m));
            }
            r != round
        });
        round_sums.sort_by_key(|s| s.0);
        let (mut lines_before, mut max_before) = (lines_total, max_total);
        for (w, s, _, _) in &round_sums {
            if *w < index {
                lines_before += s.lines;
                max_before = max_before.max(s.max_start);
            }
            lines_total += s.lines;
            max_total = max_total.max(s.max_start);
        }
        // A stop asked of any worker (SIGINT/SIGTERM) ends the input for all.
        let any_more = round_sums.iter().any(|s| s.3 .0) && !round_sums.iter().any(|s| s.3 .1);
        let idle = round_sums.iter().all(|s| s.1.lines == 0);
        progress.update(lines_total, reader.bytes_done(round, peers, block_size));

        // 3. Lateness and line numbers (file), then into the dataflow.
        let mut accept = |outcome| {
            *counts.entry("cdrs_read".into()).or_default() += 1;
            match outcome {
                Outcome::Valid(cdr, w) => {
                    *counts.entry("cdrs_valid".into()).or_default() += 1;
                    inputs.cdrs.update_at(cdr, time_of(w).max(floor), 1);
                }
                Outcome::Dead(dead, w) => {
                    *counts.entry("cdrs_dead_lettered".into()).or_default() += 1;
                    if dead.reason == cdrflow_dataflows::model::Reason::Late {
                        *counts.entry("cdrs_late".into()).or_default() += 1;
                    }
                    *counts
                        .entry(format!("dead_letter_reasons/{}", dead.reason))
                        .or_default() += 1;
                    let t = w.map_or(0, time_of).max(floor);
                    inputs.dead.update_at(dead, t, 1);
                }
            }
        };
        if let Some(block) = parsed {
            finish_block(
                block,
                lines_before,
                max_before,
                cfg.lateness,
                SOURCE_NAME,
                &mut accept,
            );
        }
        decided.into_iter().for_each(accept);
        if let Some(pending) = pending.as_mut() {
            for dead in pending.poll().context("reading the change files")? {
                *counts
                    .entry(format!("csv_dead_lettered/{}", dead.source))
                    .or_default() += 1;
                *counts
                    .entry(format!("csv_dead_lettered_by_reason/{}", dead.reason))
                    .or_default() += 1;
                inputs.dead.update(dead, 1);
            }
        }
        for (name, n) in std::mem::take(&mut counts) {
            inputs.counts.update(name, n);
        }

        // 4. Changes whose `at` the watermark has reached, then advance.
        let next = match reader {
            CdrReader::File { .. } => {
                max_total.map_or(0, |m| time_of(m.saturating_sub(cfg.lateness)))
            }
            CdrReader::Kafka(_) => {
                kafka_source::global_watermark(round_sums.iter().map(|s| s.2)).map_or(0, time_of)
            }
        }
        .max(watermark);
        if let Some(pending) = pending.as_mut() {
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
        let previous = floor;
        watermark = next;
        floor = floor.max(watermark);
        inputs.advance_to(floor);
        // Let the dataflow catch up to the previous round, so memory stays bounded.
        worker.step_or_park_while(None, || probe.less_than(&previous));
        if let Some(e) = engine.as_mut() {
            e.offer(frontier_lag(&probe, floor), false);
        }
        if let Some(views) = views.as_mut() {
            // Fold what the dataflow has completed into the views.
            let completed = probe
                .with_frontier(|f| f.first().copied())
                .and_then(|t| t.checked_sub(1));
            if let Some(upto) = completed.map(|c| c.min(watermark)) {
                views.advance(&gathered.outputs, upto, &tables.catalogue)?;
            }
            if cfg.follow && last_flush.elapsed() >= cfg.flush_interval {
                last_flush = std::time::Instant::now();
                write_views(views, tables, &gathered, watermark, false)?;
            }
            if let Some(p) = publisher.as_mut() {
                p.publish(views, &tables.catalogue, false);
            }
            if let Some(m) = &monitor {
                if last_monitor.is_none_or(|t| t.elapsed() >= MONITOR_EVERY) {
                    last_monitor = Some(std::time::Instant::now());
                    let metrics = metrics_now(views.promotions_count(), &gathered, watermark);
                    let mut state = monitor_state(metrics, true, &mut history, views, &gathered);
                    state.router_rps = cfg.router_rps;
                    state.engine = engine.as_ref().map(Engine::state).unwrap_or_default();
                    m.publish(state);
                }
            }
        }
        if !any_more {
            progress.finish("input done");
            break;
        }
        if idle && cfg.follow {
            // Nothing new anywhere (a live run caught up): close the
            // watermark's time, so what arrived at it shows in the outputs,
            // and wait a little for appended input instead of spinning.
            floor = watermark + 1;
            inputs.advance_to(floor);
            worker.step_or_park(Some(FOLLOW_POLL));
        }
    }
    // The input has ended at `watermark`: the outputs are the view at that
    // watermark. Expiries scheduled past it (retention, dedup horizon) belong to
    // event time that never came, so the run stops there instead of draining.
    // The segment snapshots run to the last CDR date: its midnight must pass
    // too (no change file is applied beyond `watermark`).
    let last_midnight = max_total.map_or(0, |m| time_of(next_midnight(m)));
    let end = (watermark + 1).max(last_midnight + 1);
    inputs.advance_to(end);
    summary_in.advance_to(u64::MAX);
    worker.step_or_park_while(None, || probe.less_than(&end));
    if let Some(e) = engine.as_mut() {
        e.offer(frontier_lag(&probe, end), true);
        e.finish(worker);
    }
    let result = match views.as_mut() {
        Some(views) => {
            views.advance(&gathered.outputs, watermark, &tables.catalogue)?;
            if let Some(p) = publisher.as_mut() {
                p.publish(views, &tables.catalogue, true);
            }
            let summary = write_views(views, tables, &gathered, watermark, true)?;
            if let Some(m) = &monitor {
                let metrics = summary.metrics.clone();
                let mut state = monitor_state(metrics, false, &mut history, views, &gathered);
                state.router_rps = cfg.router_rps;
                state.engine = engine.as_ref().map(Engine::state).unwrap_or_default();
                m.publish(state);
            }
            Ok(Some(summary))
        }
        None => Ok(None),
    };
    // Every worker reached `end`; what is left are retractions scheduled for
    // later event time. Drop the dataflows rather than compute them.
    drop(inputs);
    drop(summary_in);
    for id in worker.installed_dataflows() {
        worker.drop_dataflow(id);
    }
    result
}

/// Rewrites the view files and `metrics.json` (worker 0) at `watermark`.
/// With Kafka sinks, every message is acknowledged before `metrics.json` is
/// written (`last`: the producer is closed too).
fn write_views(
    views: &mut OutputViews,
    tables: &Tables,
    gathered: &Gathered,
    watermark: Time,
    last: bool,
) -> anyhow::Result<RunSummary> {
    let promotions = views.write_views(&tables.catalogue)?;
    if let Some(e) = &gathered.snapshots.borrow().error {
        anyhow::bail!("writing the segment snapshots: {e}");
    }
    let metrics = metrics_now(promotions, gathered, watermark);
    views.deliver(&metrics, last)?;
    files::write_metrics(views.out(), &metrics)?;
    Ok(RunSummary {
        metrics,
        promotions,
    })
}

/// The monitor's state now: `metrics`, one more history sample (the oldest
/// dropped past [`HISTORY`]), the views' breakdown and the segment counts.
fn monitor_state(
    metrics: serde_json::Value,
    live: bool,
    history: &mut VecDeque<Sample>,
    views: &OutputViews,
    gathered: &Gathered,
) -> MonitorState {
    let now = now_ms();
    history.push_back(Sample::of(&metrics, now));
    while history.len() > HISTORY {
        history.pop_front();
    }
    MonitorState {
        metrics,
        live,
        updated_ms: now,
        history: history.iter().copied().collect(),
        breakdown: views.breakdown(),
        segments: gathered.snapshots.borrow().segments.clone(),
        ..MonitorState::default()
    }
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

/// `metrics.json` as it stands: the gathered counts, the snapshots written,
/// the watermark and the promotions in the view.
fn metrics_now(promotions: usize, gathered: &Gathered, watermark: Time) -> serde_json::Value {
    let mut counts = gathered.counts.borrow().clone();
    counts.insert(
        "snapshots".into(),
        gathered.snapshots.borrow().dates.len() as i64,
    );
    counts.insert("watermark".into(), watermark as i64);
    files::metrics_json(&counts, promotions)
}
