//! Worker 0's side of a run: it folds the gathered outputs into the views,
//! writes the files (at the end, and every `--flush-interval` of a live
//! run), and publishes to the lookup service and the monitor (`--serve`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::dataflow::ProbeHandle;

use cdrflow_dataflows::model::Time;
use cdrflow_dataflows::token::Tokenizer;

use super::dataflow::Gathered;
use super::RunSummary;
use crate::config::RunConfig;
use crate::monitor::engine::Engine;
use crate::monitor::{now_ms, rss_bytes, Monitor, MonitorState, Sample, HISTORY};
use crate::serve::live::Publisher;
use crate::serve::Store as SnapshotStore;
use crate::sink::files;
use crate::sink::kafka::KafkaOutputs;
use crate::sink::outputs::OutputViews;
use crate::source::tables::Tables;

/// How often worker 0 republishes the monitor's counts.
const MONITOR_EVERY: Duration = Duration::from_secs(1);

/// Worker 0's views and where they go.
pub(super) struct Front {
    views: OutputViews,
    /// The lookup service's promotions and loyalty (`--serve`; the segments
    /// come from the snapshot sink).
    pub(super) publisher: Option<Publisher>,
    monitor: Option<Arc<Monitor>>,
    history: VecDeque<Sample>,
    last_monitor: Option<Instant>,
    last_flush: Instant,
}

impl Front {
    /// The views of `cfg.out` (and the Kafka sinks), the publisher and the
    /// monitor.
    pub(super) fn create(
        cfg: &RunConfig,
        tables: &Tables,
        gathered: &Gathered,
        store: Option<Arc<SnapshotStore>>,
        monitor: Option<Arc<Monitor>>,
    ) -> anyhow::Result<Front> {
        let views = OutputViews::create(&cfg.out, Tokenizer::new(&cfg.token_key))?;
        let views = match (&cfg.kafka_sink, &gathered.segment_messages) {
            (Some(k), Some(segments)) => views.with_kafka(
                KafkaOutputs::connect(&k.settings, &k.prefix, k.timeout, k.exactly_once)?,
                segments.clone(),
            ),
            _ => views,
        };
        Ok(Front {
            views,
            publisher: store.map(|store| Publisher::new(store, &tables.loyalty)),
            monitor,
            history: VecDeque::new(),
            last_monitor: None,
            last_flush: Instant::now(),
        })
    }

    /// After a round: folds what the dataflow has completed (up to the
    /// watermark) into the views, rewrites the files of a live run when due,
    /// and publishes.
    pub(super) fn fold(
        &mut self,
        cfg: &RunConfig,
        tables: &Tables,
        gathered: &Gathered,
        probe: &ProbeHandle<Time>,
        watermark: Time,
        engine: Option<&Engine>,
    ) -> anyhow::Result<()> {
        let views = &mut self.views;
        let completed = probe
            .with_frontier(|f| f.first().copied())
            .and_then(|t| t.checked_sub(1));
        if let Some(upto) = completed.map(|c| c.min(watermark)) {
            views.advance(&gathered.outputs, upto, &tables.catalogue)?;
        }
        if cfg.follow && self.last_flush.elapsed() >= cfg.flush_interval {
            self.last_flush = Instant::now();
            write_views(views, tables, gathered, watermark, false)?;
        }
        if let Some(p) = self.publisher.as_mut() {
            p.publish(views, &tables.catalogue, false);
        }
        if let Some(m) = &self.monitor {
            if self
                .last_monitor
                .is_none_or(|t| t.elapsed() >= MONITOR_EVERY)
            {
                self.last_monitor = Some(Instant::now());
                let metrics = metrics_now(views.promotions_count(), gathered, watermark);
                let mut state = monitor_state(metrics, true, &mut self.history, views, gathered);
                state.router_rps = cfg.router_rps;
                state.engine = engine.map(Engine::state).unwrap_or_default();
                m.publish(state);
            }
        }
        Ok(())
    }

    /// The end of the input at `watermark`: the views at it, the files and
    /// `metrics.json`, the last publication.
    pub(super) fn finish(
        &mut self,
        cfg: &RunConfig,
        tables: &Tables,
        gathered: &Gathered,
        watermark: Time,
        engine: Option<&Engine>,
    ) -> anyhow::Result<RunSummary> {
        let views = &mut self.views;
        views.advance(&gathered.outputs, watermark, &tables.catalogue)?;
        if let Some(p) = self.publisher.as_mut() {
            p.publish(views, &tables.catalogue, true);
        }
        let summary = write_views(views, tables, gathered, watermark, true)?;
        if let Some(m) = &self.monitor {
            let metrics = summary.metrics.clone();
            let mut state = monitor_state(metrics, false, &mut self.history, views, gathered);
            state.router_rps = cfg.router_rps;
            state.engine = engine.map(Engine::state).unwrap_or_default();
            m.publish(state);
        }
        Ok(summary)
    }
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
        rss_bytes: rss_bytes(),
        ..MonitorState::default()
    }
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
