//! The monitor's data (issue 7): what the run has counted so far, published
//! by worker 0 and read by the HTTP service (`/metrics`, `/api/monitor`)
//! without ever blocking the dataflow.
//!
//! ```text
//! worker 0 (each round, ≤ 1/s, and at the end) ─ metrics.json value ─▶ Monitor (ArcSwap)
//! serve --snapshots DIR ─ DIR/metrics.json ─────────────────────────▶ Monitor
//! GET /metrics ─ prometheus-client registry built from the current state + lookup latency
//! GET /api/monitor ─ the current state as JSON
//! ```
//!
//! Only aggregates are kept: counts by name and by reason or file, the
//! watermark. No phone number, token or customer id ever enters a
//! [`MonitorState`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;
use serde_json::Value;

mod charts;
pub mod engine;
pub mod from_files;
pub mod page;

use self::engine::EngineState;

/// What the monitor shows at one moment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MonitorState {
    /// `metrics.json` as it would be written now.
    pub metrics: Value,
    /// Whether a run is feeding this state (`false`: loaded from a run's output).
    pub live: bool,
    /// Wall-clock milliseconds since the epoch when the state was published.
    pub updated_ms: u64,
    /// The input counts over time (oldest first, at most [`HISTORY`]).
    pub history: Vec<Sample>,
    /// The campaign and the basket rules, broken down.
    pub breakdown: Breakdown,
    /// Subscribers per segment in the latest snapshot and the one before.
    pub segments: SegmentCounts,
    /// The run's `--router-rps` (calls per second allowed), if any.
    pub router_rps: Option<f64>,
    /// Per worker and per arrangement, from timely's and differential's logging.
    pub engine: EngineState,
    /// Process 0's resident memory when the state was published, bytes.
    pub rss_bytes: Option<u64>,
}

/// How many samples [`MonitorState::history`] keeps (one a second: 10 min).
pub const HISTORY: usize = 600;

/// The input counts at one moment (rates are differences of samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    pub t_ms: u64,
    pub cdrs_read: i64,
    pub cdrs_valid: i64,
    pub cdrs_late: i64,
    pub cdrs_duplicate: i64,
    pub cdrs_dead_lettered: i64,
    pub router_requests: i64,
    pub router_calls: i64,
    pub promotions: i64,
    pub watermark: i64,
}

impl Sample {
    /// The sample of a `metrics.json` value at `t_ms`.
    pub fn of(metrics: &Value, t_ms: u64) -> Sample {
        let get = |k: &str| metrics.get(k).and_then(Value::as_i64).unwrap_or(0);
        Sample {
            t_ms,
            cdrs_read: get("cdrs_read"),
            cdrs_valid: get("cdrs_valid"),
            cdrs_late: get("cdrs_late"),
            cdrs_duplicate: get("cdrs_duplicate"),
            cdrs_dead_lettered: get("cdrs_dead_lettered"),
            router_requests: get("router_requests"),
            router_calls: get("router_calls"),
            promotions: get("promotions"),
            watermark: get("watermark"),
        }
    }
}

/// Aggregates of the output views (names and counts only).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Breakdown {
    /// Promotions in the view by `store_id`.
    pub promotions_by_store: std::collections::BTreeMap<String, u64>,
    /// … by product source (`rule:<context>`, `demographic`, `popular`, `none`).
    pub promotions_by_source: std::collections::BTreeMap<String, u64>,
    /// … by UTC hour of the CDR's start (`YYYY-MM-DDTHH`).
    pub promotions_by_hour: std::collections::BTreeMap<String, u64>,
    /// Promotions retracted so far (opt-outs, points, deleted customers, …).
    pub promotions_retracted: u64,
    /// Basket rules by context.
    pub rules_by_context: std::collections::BTreeMap<String, u64>,
    /// Promotions in the view by the `cell_id` they fired in (the map).
    pub promotions_by_cell: std::collections::BTreeMap<String, u64>,
}

/// Where things are, for the map: towers and stores (ids and coordinates
/// only), from the run's tables. Set once; not part of `/api/monitor`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Geo {
    /// `cell_id → (lat, lon)`.
    pub towers: BTreeMap<String, (f64, f64)>,
    /// `store_id → (lat, lon)`.
    pub stores: BTreeMap<String, (f64, f64)>,
}

/// Subscribers per segment of two snapshot dates.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SegmentCounts {
    /// `(date, segment → subscribers)` of the latest snapshot.
    pub latest: Option<(String, std::collections::BTreeMap<String, u64>)>,
    /// The same for the snapshot before it.
    pub previous: Option<(String, std::collections::BTreeMap<String, u64>)>,
}

/// The current [`MonitorState`], swapped whole by the publisher.
pub struct Monitor {
    state: ArcSwap<MonitorState>,
    geo: ArcSwap<Geo>,
    /// Latency of the lookup routes, by route.
    pub lookups: Family<Vec<(String, String)>, Histogram>,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor::new(MonitorState::default())
    }
}

/// This process's resident memory now (`VmRSS` of `/proc/self/status`),
/// bytes; `None` where there is no such file.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kb("VmRSS:")
}

/// This process's peak resident memory so far (`VmHWM`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kb("VmHWM:")
}

fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The counts of `metrics.json` that only grow (Prometheus counters); every
/// other number is a gauge (views: promotions, rules, …; the watermark).
const COUNTERS: [&str; 13] = [
    "cdrs_read",
    "cdrs_valid",
    "cdrs_dead_lettered",
    "cdrs_late",
    "cdrs_duplicate",
    "cdrs_unique",
    "cdrs_unknown_cell",
    "loyalty_matches",
    "router_requests",
    "requests_routed",
    "requests_within_drive_limit",
    "router_calls",
    "cache_hits",
];

/// Groups of `metrics.json` (name → count) and the label their names become.
const GROUPS: [(&str, &str); 3] = [
    ("dead_letter_reasons", "reason"),
    ("csv_dead_lettered", "file"),
    ("csv_dead_lettered_by_reason", "reason"),
];

impl Monitor {
    pub fn new(state: MonitorState) -> Monitor {
        Monitor {
            state: ArcSwap::from_pointee(state),
            geo: ArcSwap::from_pointee(Geo::default()),
            lookups: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_025, 2.0, 16))
            }),
        }
    }

    /// The state now (one atomic load).
    pub fn current(&self) -> Arc<MonitorState> {
        self.state.load_full()
    }

    /// Replaces the state.
    pub fn publish(&self, state: MonitorState) {
        self.state.store(Arc::new(state));
    }

    /// The towers and stores of the map.
    pub fn geo(&self) -> Arc<Geo> {
        self.geo.load_full()
    }

    /// Sets the towers and stores of the map.
    pub fn set_geo(&self, geo: Geo) {
        self.geo.store(Arc::new(geo));
    }

    /// Records one lookup's latency.
    pub fn observe_lookup(&self, route: &str, seconds: f64) {
        self.lookups
            .get_or_create(&vec![("route".to_string(), route.to_string())])
            .observe(seconds);
    }

    /// The Prometheus (OpenMetrics) text of the current state: a counter or
    /// gauge per `metrics.json` number (`cdrflow_<name>[_total]`, groups as
    /// labels), the watermark in seconds, and the lookup latency histogram.
    pub fn prometheus_text(&self) -> String {
        let state = self.current();
        let mut registry = Registry::with_prefix("cdrflow");
        let metrics = state.metrics.as_object().cloned().unwrap_or_default();
        for (name, value) in &metrics {
            let Some(n) = value.as_i64() else {
                continue;
            };
            if name == "watermark" {
                let g: Gauge = Gauge::default();
                g.set(n);
                registry.register_with_unit(
                    "watermark",
                    "Event-time watermark (epoch seconds) the outputs are at",
                    Unit::Seconds,
                    g,
                );
            } else if COUNTERS.contains(&name.as_str()) {
                let c: Counter = Counter::default();
                c.inc_by(n.max(0) as u64);
                registry.register(name.as_str(), format!("metrics.json {name}"), c);
            } else {
                let g: Gauge = Gauge::default();
                g.set(n);
                registry.register(name.as_str(), format!("metrics.json {name}"), g);
            }
        }
        for (group, label) in GROUPS {
            let Some(map) = metrics.get(group).and_then(Value::as_object) else {
                continue;
            };
            let family = Family::<Vec<(String, String)>, Counter>::default();
            for (k, v) in map {
                family
                    .get_or_create(&vec![(label.to_string(), k.clone())])
                    .inc_by(v.as_i64().unwrap_or(0).max(0) as u64);
            }
            registry.register(group, format!("metrics.json {group}, by {label}"), family);
        }
        let records = Family::<Vec<(String, String)>, Counter>::default();
        let lag = Family::<Vec<(String, String)>, Gauge>::default();
        for w in &state.engine.workers {
            let label = vec![("worker".to_string(), w.worker.to_string())];
            records.get_or_create(&label).inc_by(w.records);
            lag.get_or_create(&label).set(w.frontier_lag_s);
        }
        registry.register(
            "worker_records",
            "Records each worker received (timely logging)",
            records,
        );
        registry.register_with_unit(
            "worker_frontier_lag",
            "Event time each worker's outputs trail its input",
            Unit::Seconds,
            lag,
        );
        let arranged = Family::<Vec<(String, String)>, Gauge>::default();
        let batches = Family::<Vec<(String, String)>, Gauge>::default();
        for a in &state.engine.arrangements {
            let label = vec![("arrangement".to_string(), a.name.clone())];
            arranged.get_or_create(&label).set(a.records);
            batches.get_or_create(&label).set(a.batches);
        }
        registry.register(
            "arrangement_records",
            "Records held by each named arrangement, all workers (differential logging)",
            arranged,
        );
        registry.register(
            "arrangement_batches",
            "Batches held by each named arrangement, all workers (differential logging)",
            batches,
        );
        let live: Gauge = Gauge::default();
        live.set(i64::from(state.live));
        registry.register("live", "1 while a run feeds the monitor", live);
        registry.register_with_unit(
            "lookup_duration",
            "Latency of the lookup routes",
            Unit::Seconds,
            self.lookups.clone(),
        );
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_become_counters_gauges_and_labelled_families() {
        let monitor = Monitor::new(MonitorState {
            metrics: serde_json::json!({
                "cdrs_read": 12, "promotions": 3, "watermark": 1_772_452_800,
                "dead_letter_reasons": {"late": 2, "malformed_json": 1}
            }),
            live: true,
            ..MonitorState::default()
        });
        monitor.observe_lookup("segments", 0.0002);
        let text = monitor.prometheus_text();
        for line in [
            "cdrflow_cdrs_read_total 12",
            "cdrflow_promotions 3",
            "cdrflow_watermark_seconds 1772452800",
            "cdrflow_dead_letter_reasons_total{reason=\"late\"} 2",
            "cdrflow_live 1",
            "cdrflow_lookup_duration_seconds_count{route=\"segments\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
