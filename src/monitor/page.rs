//! The monitor page (`GET /`) and its panels (`GET /api/panels`), rendered
//! on the server with `maud` from one [`MonitorState`]: the page's script
//! listens to `/api/events` and swaps the panels in on every `monitor`
//! event, so it updates itself without a reload. Every number is written as
//! `<b data-metric="NAME" data-value="N">` (NAME as in `metrics.json`, or
//! `group/key` for breakdowns), which the browser test reads back.
//!
//! Only aggregates reach the page: counts by name, store, cell, hour,
//! segment, context and worker; never a phone number, token or customer id.

use std::collections::BTreeMap;

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::charts::{self, Line, BLUE, GREEN, GREY, ORANGE, PURPLE, RED};
use super::{Geo, MonitorState, Sample};
use cdrflow_dataflows::time::format_rfc3339;

const WIDE: u32 = 620;
const NARROW: u32 = 420;

/// The whole page: the panels now, the style and the updating script.
pub fn page(state: &MonitorState, geo: &Geo) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "cdrflow monitor" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "cdrflow monitor" }
                    span #connection { "connecting…" }
                }
                main #panels { (panels(state, geo)) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
    .into_string()
}

/// The panels alone (what the script swaps in).
pub fn panels(state: &MonitorState, geo: &Geo) -> Markup {
    let m = &state.metrics;
    html! {
        section #status .wide {
            (status(state))
        }
        section #input {
            h2 { "Input health" }
            (tiles(m, &[
                ("cdrs_read", "CDRs read"),
                ("cdrs_valid", "valid"),
                ("cdrs_unique", "unique"),
                ("cdrs_duplicate", "duplicate"),
                ("cdrs_late", "late"),
                ("cdrs_dead_lettered", "dead-lettered"),
                ("cdrs_unknown_cell", "unknown cell"),
            ]))
            h3 { "Per second (last " (window_label(&state.history)) ")" }
            (PreEscaped(charts::lines("CDRs / s", &input_rates(&state.history), None, WIDE, 220)))
            @if state.live {
                h3 { "Watermark lag behind the wall clock" }
                (PreEscaped(charts::lines("seconds", &[watermark_lag(&state.history)], None, WIDE, 160)))
            }
            h3 { "Dead letters by reason" }
            (group_table(m, "dead_letter_reasons", "reason"))
            h3 { "Table rows dead-lettered, by file" }
            (group_table(m, "csv_dead_lettered", "file"))
            h3 { "… and by reason" }
            (group_table(m, "csv_dead_lettered_by_reason", "reason"))
        }
        section #campaign {
            h2 { "Campaign" }
            (tiles(m, &[("promotions", "promotions in the view")]))
            (count_tile("promotions_retracted", "retracted (opt-outs, points, …)", state.breakdown.promotions_retracted as i64))
            h3 { "Funnel: daily cap and drive limit" }
            (funnel(m))
            h3 { "Promotions per hour (of the CDR's start, UTC)" }
            (hourly(&state.breakdown.promotions_by_hour))
            h3 { "By product source" }
            (breakdown_bars(&state.breakdown.promotions_by_source, "promotions_by_source", PURPLE, None))
            h3 { "By store" }
            (breakdown_bars(&state.breakdown.promotions_by_store, "promotions_by_store", BLUE, Some(15)))
        }
        section #map .wide {
            h2 { "Map" }
            p .note {
                (geo.towers.len()) " towers, " (geo.stores.len()) " stores, promotions in "
                (state.breakdown.promotions_by_cell.len()) " cells; drawn from the dataset's own coordinates"
            }
            (PreEscaped(map(state, geo)))
        }
        section #router {
            h2 { "Router" }
            (tiles(m, &[
                ("router_requests", "requests"),
                ("router_calls", "calls"),
                ("cache_hits", "cache hits"),
            ]))
            (hit_ratio(m))
            (rps_tile(state.router_rps))
            h3 { "Router calls per second" }
            (PreEscaped(charts::lines(
                "calls / s",
                &[rate_line("calls", BLUE, &state.history, |s| s.router_calls)],
                state.router_rps.map(|r| ("--router-rps", r)),
                NARROW,
                200,
            )))
        }
        section #segments {
            h2 { "Segments and basket rules" }
            (tiles(m, &[
                ("snapshots", "snapshots"),
                ("baskets", "baskets"),
                ("rules", "rules"),
                ("recommendations", "recommendations"),
            ]))
            (segments(state))
            h3 { "Basket rules per context" }
            (breakdown_bars(&state.breakdown.rules_by_context, "rules_by_context", GREEN, None))
        }
        section #engine .wide {
            h2 { "Engine" }
            (engine(state))
        }
    }
}

fn status(state: &MonitorState) -> Markup {
    let watermark = state.metrics.get("watermark").and_then(Value::as_i64);
    let lag = watermark.map(|w| state.updated_ms as i64 / 1000 - w);
    html! {
        span .badge .(if state.live { "live" } else { "done" }) {
            @if state.live { "live run" } @else { "finished run" }
        }
        " watermark "
        @match watermark {
            Some(w) => b data-metric="watermark" data-value=(w) { (format_rfc3339(w)) },
            None => b { "–" },
        }
        @if state.live {
            @if let Some(lag) = lag {
                " · " b data-metric="watermark_lag_seconds" data-value=(lag) { (duration(lag)) }
                " behind the wall clock"
            }
        }
        " · updated "
        span #updated data-value=(state.updated_ms) { (format_rfc3339((state.updated_ms / 1000) as i64)) }
    }
}

/// A tile per `metrics.json` count.
fn tiles(m: &Value, names: &[(&str, &str)]) -> Markup {
    html! {
        div .tiles {
            @for (key, label) in names {
                (count_tile(key, label, m.get(*key).and_then(Value::as_i64).unwrap_or(0)))
            }
        }
    }
}

fn count_tile(key: &str, label: &str, n: impl Into<i64>) -> Markup {
    let n = n.into();
    html! {
        div .tile {
            b data-metric=(key) data-value=(n) { (grouped(n)) }
            span { (label) }
        }
    }
}

/// A `metrics.json` group (`{name: count}`) as a table, largest first; zero
/// rows are left out.
fn group_table(m: &Value, group: &str, what: &str) -> Markup {
    let mut rows: Vec<(&String, i64)> = m
        .get(group)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k, v.as_i64().unwrap_or(0)))
                .filter(|(_, v)| *v != 0)
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    html! {
        @if rows.is_empty() {
            p .note { "none" }
        } @else {
            table {
                tr { th { (what) } th .num { "count" } }
                @for (k, v) in rows {
                    tr {
                        td { (k) }
                        td .num { b data-metric={(group) "/" (k)} data-value=(v) { (grouped(v)) } }
                    }
                }
            }
        }
    }
}

/// CDRs → loyalty matches → store in range → routed → within drive limit →
/// after the cap, each with its share of the step before.
fn funnel(m: &Value) -> Markup {
    let steps = [
        ("cdrs_unique", "unique CDRs"),
        ("loyalty_matches", "loyalty matches"),
        ("router_requests", "store in range"),
        ("requests_routed", "routed"),
        ("requests_within_drive_limit", "within drive limit"),
        ("promotions", "after the daily cap"),
    ];
    let get = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
    let items: Vec<(String, f64)> = steps
        .iter()
        .map(|(k, label)| (label.to_string(), get(k) as f64))
        .collect();
    html! {
        (PreEscaped(charts::bars(&items, ORANGE, NARROW)))
        table {
            tr { th { "step" } th .num { "count" } th .num { "of the step before" } }
            @for (i, (key, label)) in steps.iter().enumerate() {
                @let n = get(key);
                tr {
                    td { (label) }
                    td .num { b data-metric=(key) data-value=(n) { (grouped(n)) } }
                    td .num {
                        @if i > 0 { (share(n, get(steps[i - 1].0))) }
                    }
                }
            }
        }
    }
}

fn hourly(by_hour: &BTreeMap<String, u64>) -> Markup {
    // The last 48 hours that have promotions (the view can span weeks).
    let items: Vec<(String, f64)> = by_hour
        .iter()
        .rev()
        .take(48)
        .rev()
        .map(|(h, n)| (h.get(5..).unwrap_or(h).replace('T', " ") + "h", *n as f64))
        .collect();
    html! {
        @if items.is_empty() {
            p .note { "no promotions yet" }
        } @else {
            (PreEscaped(charts::columns(&items, RED, WIDE, 200)))
            @if by_hour.len() > items.len() {
                p .note { "last " (items.len()) " of " (by_hour.len()) " hours" }
            }
        }
    }
}

/// A breakdown as bars (the `top` largest) and a table of every entry.
fn breakdown_bars(
    counts: &BTreeMap<String, u64>,
    name: &str,
    color: plotters::style::RGBColor,
    top: Option<usize>,
) -> Markup {
    let mut rows: Vec<(&String, u64)> = counts.iter().map(|(k, v)| (k, *v)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown = top.unwrap_or(rows.len()).min(rows.len());
    let items: Vec<(String, f64)> = rows[..shown]
        .iter()
        .map(|(k, v)| ((*k).clone(), *v as f64))
        .collect();
    html! {
        @if rows.is_empty() {
            p .note { "none" }
        } @else {
            (PreEscaped(charts::bars(&items, color, NARROW)))
            details {
                summary { "all " (rows.len()) }
                table {
                    @for (k, v) in &rows {
                        tr {
                            td { (k) }
                            td .num { b data-metric={(name) "/" (k)} data-value=(v) { (grouped(*v as i64)) } }
                        }
                    }
                }
            }
        }
    }
}

fn map(state: &MonitorState, geo: &Geo) -> String {
    let towers: Vec<(f64, f64)> = geo.towers.values().copied().collect();
    let stores: Vec<(f64, f64)> = geo.stores.values().copied().collect();
    let fired: Vec<(f64, f64, u64)> = state
        .breakdown
        .promotions_by_cell
        .iter()
        .filter_map(|(cell, n)| geo.towers.get(cell).map(|(lat, lon)| (*lat, *lon, *n)))
        .collect();
    charts::map(&towers, &stores, &fired, 1000)
}

fn hit_ratio(m: &Value) -> Markup {
    let get = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
    html! {
        div .tile {
            b { (share(get("cache_hits"), get("router_requests"))) }
            span { "hit ratio" }
        }
    }
}

fn rps_tile(rps: Option<f64>) -> Markup {
    html! {
        div .tile {
            @match rps {
                Some(r) => b data-metric="router_rps" data-value=(r) { (r) },
                None => b { "unlimited" },
            }
            span { "--router-rps" }
        }
    }
}

fn segments(state: &MonitorState) -> Markup {
    let s = &state.segments;
    let Some((date, latest)) = &s.latest else {
        return html! { p .note { "no snapshot yet" } };
    };
    let previous = s.previous.as_ref();
    let mut names: Vec<&String> = latest.keys().collect();
    if let Some((_, p)) = previous {
        names.extend(p.keys().filter(|k| !latest.contains_key(*k)));
    }
    names.sort();
    let items: Vec<(String, f64)> = names
        .iter()
        .map(|n| ((*n).clone(), latest.get(*n).copied().unwrap_or(0) as f64))
        .collect();
    html! {
        h3 { "Subscribers per segment, snapshot " (date) }
        (PreEscaped(charts::bars(&items, GREEN, NARROW)))
        table {
            tr {
                th { "segment" } th .num { "subscribers" }
                th .num { "change from " (previous.map_or("–", |p| p.0.as_str())) }
            }
            @for n in &names {
                @let now = latest.get(*n).copied().unwrap_or(0) as i64;
                tr {
                    td { (n) }
                    td .num { b data-metric={"segments/" (n)} data-value=(now) { (grouped(now)) } }
                    td .num {
                        @if let Some((_, p)) = previous {
                            @let d = now - p.get(*n).copied().unwrap_or(0) as i64;
                            (if d > 0 { format!("+{}", grouped(d)) } else { grouped(d) })
                        }
                    }
                }
            }
        }
    }
}

fn engine(state: &MonitorState) -> Markup {
    let e = &state.engine;
    let mut arrangements = e.arrangements.clone();
    arrangements.sort_by(|a, b| b.records.cmp(&a.records).then(a.name.cmp(&b.name)));
    let total: i64 = arrangements.iter().map(|a| a.records).sum();
    html! {
        div .tiles {
            @if let Some(rss) = state.rss_bytes {
                div .tile {
                    b data-metric="rss_bytes" data-value=(rss) { (format!("{:.1} MiB", rss as f64 / (1 << 20) as f64)) }
                    span { "resident memory (process 0)" }
                }
            }
            @if !e.workers.is_empty() {
                div .tile {
                    b data-metric="arrangement_records_total" data-value=(total) { (grouped(total)) }
                    span { "records in all arrangements" }
                }
            }
        }
        @if e.workers.is_empty() {
            p .note { "no engine samples (a finished run read from files, or the run has not started)" }
        } @else {
            div .cols {
                div {
                    h3 { "Workers" }
                    table {
                        tr { th { "worker" } th .num { "records received" } th .num { "records / s" } th .num { "frontier lag" } }
                        @for w in &e.workers {
                            tr {
                                td { (w.worker) }
                                td .num { b data-metric={"worker_records/" (w.worker)} data-value=(w.records) { (grouped(w.records as i64)) } }
                                td .num { (grouped(w.records_per_s.round() as i64)) }
                                td .num { (duration(w.frontier_lag_s)) }
                            }
                        }
                    }
                }
                div {
                    h3 { "Arrangements (all workers)" }
                    table {
                        tr { th { "arrangement" } th .num { "records" } th .num { "batches" } }
                        @for a in &arrangements {
                            tr {
                                td { (a.name) }
                                td .num { b data-metric={"arrangement_records/" (a.name)} data-value=(a.records) { (grouped(a.records)) } }
                                td .num { (a.batches) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The rates of the input counts between consecutive samples.
fn input_rates(history: &[Sample]) -> Vec<Line<'static>> {
    vec![
        rate_line("read", BLUE, history, |s| s.cdrs_read),
        rate_line("valid", GREEN, history, |s| s.cdrs_valid),
        rate_line("duplicate", PURPLE, history, |s| s.cdrs_duplicate),
        rate_line("late", ORANGE, history, |s| s.cdrs_late),
        rate_line("dead-lettered", RED, history, |s| s.cdrs_dead_lettered),
    ]
}

fn rate_line(
    name: &'static str,
    color: plotters::style::RGBColor,
    history: &[Sample],
    get: impl Fn(&Sample) -> i64,
) -> Line<'static> {
    let now = history.last().map_or(0, |s| s.t_ms) as f64;
    let points = history
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].t_ms.saturating_sub(w[0].t_ms) as f64 / 1000.0;
            (dt > 0.0).then(|| {
                let rate = (get(&w[1]) - get(&w[0])).max(0) as f64 / dt;
                ((w[1].t_ms as f64 - now) / 1000.0, rate)
            })
        })
        .collect();
    Line {
        name,
        color,
        points,
    }
}

fn watermark_lag(history: &[Sample]) -> Line<'static> {
    let now = history.last().map_or(0, |s| s.t_ms) as f64;
    Line {
        name: "lag",
        color: GREY,
        points: history
            .iter()
            .filter(|s| s.watermark > 0)
            .map(|s| {
                let lag = (s.t_ms / 1000) as i64 - s.watermark;
                ((s.t_ms as f64 - now) / 1000.0, lag.max(0) as f64)
            })
            .collect(),
    }
}

fn window_label(history: &[Sample]) -> String {
    match (history.first(), history.last()) {
        (Some(a), Some(b)) if b.t_ms > a.t_ms => duration(((b.t_ms - a.t_ms) / 1000) as i64),
        _ => "–".to_string(),
    }
}

/// `n` with thin spaces between groups of three digits.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('−');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

fn share(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

/// Seconds as `1 d 2 h`, `3 h 4 min`, `5 min 6 s` or `7 s`.
fn duration(s: i64) -> String {
    let sign = if s < 0 { "−" } else { "" };
    let s = s.unsigned_abs();
    let body = match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    };
    format!("{sign}{body}")
}

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #222; }
header { display: flex; align-items: baseline; gap: 1em; padding: .6em 1.2em; background: #1f2937; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; }
#connection { font-size: .85em; opacity: .8; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(640px, 1fr)); gap: 1em; padding: 1em; }
section { background: #fff; border-radius: 6px; padding: .4em 1em 1em; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 1.05em; margin: .5em 0; }
h3 { font-size: .9em; margin: 1em 0 .3em; color: #555; font-weight: 600; }
.tiles { display: flex; flex-wrap: wrap; gap: .5em; }
.tile { display: inline-flex; flex-direction: column; min-width: 7em; padding: .3em .6em; background: #f4f5f7; border-radius: 4px; margin: 0 .5em .5em 0; }
.tile b { font-size: 1.25em; font-variant-numeric: tabular-nums; }
.tile span { font-size: .8em; color: #666; }
table { border-collapse: collapse; font-size: .9em; }
td, th { padding: .15em .7em .15em 0; text-align: left; }
th { color: #666; font-weight: 600; border-bottom: 1px solid #ddd; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td b { font-weight: 500; }
.note { color: #777; font-size: .85em; }
.badge { padding: .1em .5em; border-radius: 3px; color: #fff; font-size: .85em; }
.badge.live { background: #16a34a; } .badge.done { background: #6b7280; }
.cols { display: flex; flex-wrap: wrap; gap: 2em; }
svg { max-width: 100%; height: auto; }
"#;

/// Swaps the panels in on every `monitor` event (one fetch at a time).
const SCRIPT: &str = r#"
(function () {
  const panels = document.getElementById('panels');
  const connection = document.getElementById('connection');
  let busy = false, again = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const r = await fetch('/api/panels', { cache: 'no-store' });
      if (r.ok) { panels.innerHTML = await r.text(); }
    } catch (e) { connection.textContent = 'refresh failed: ' + e; }
    busy = false;
    if (again) { again = false; refresh(); }
  }
  const events = new EventSource('/api/events');
  events.addEventListener('monitor', refresh);
  events.onopen = () => { connection.textContent = 'connected: updates as the run goes on'; };
  events.onerror = () => { connection.textContent = 'disconnected: retrying…'; };
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::engine::{Arrangement, EngineState, WorkerState};
    use crate::monitor::{Breakdown, SegmentCounts};

    fn state() -> MonitorState {
        let mut b = Breakdown::default();
        b.promotions_by_store.insert("S001".into(), 2);
        b.promotions_by_source.insert("rule:global".into(), 2);
        b.promotions_by_hour.insert("2026-03-02T10".into(), 2);
        b.promotions_by_cell.insert("C1".into(), 2);
        b.rules_by_context.insert("global".into(), 5);
        b.promotions_retracted = 1;
        MonitorState {
            metrics: serde_json::json!({
                "cdrs_read": 1234567, "cdrs_unique": 900, "loyalty_matches": 40,
                "router_requests": 20, "requests_routed": 18,
                "requests_within_drive_limit": 9, "promotions": 2, "cache_hits": 15,
                "watermark": 1_772_452_800,
                "dead_letter_reasons": {"late": 3, "malformed_json": 0}
            }),
            live: true,
            updated_ms: 1_772_452_860_000,
            history: vec![],
            breakdown: b,
            segments: SegmentCounts {
                latest: Some(("2026-03-02".into(), [("heavy".to_string(), 7)].into())),
                previous: Some(("2026-03-01".into(), [("heavy".to_string(), 9)].into())),
            },
            router_rps: Some(50.0),
            engine: EngineState {
                workers: vec![WorkerState {
                    worker: 0,
                    records: 99,
                    records_per_s: 10.0,
                    frontier_lag_s: 3,
                }],
                arrangements: vec![Arrangement {
                    name: "DailyCap".into(),
                    records: 12,
                    batches: 2,
                }],
            },
            rss_bytes: Some(52_428_800),
        }
    }

    #[test]
    fn every_number_is_tagged_with_its_metric() {
        let mut geo = Geo::default();
        geo.towers.insert("C1".into(), (50.0, 8.0));
        geo.stores.insert("S001".into(), (50.01, 8.01));
        let html = page(&state(), &geo);
        for (metric, value) in [
            ("cdrs_read", "1234567"),
            ("loyalty_matches", "40"),
            ("requests_within_drive_limit", "9"),
            ("promotions_retracted", "1"),
            ("dead_letter_reasons/late", "3"),
            ("promotions_by_store/S001", "2"),
            ("rules_by_context/global", "5"),
            ("segments/heavy", "7"),
            ("arrangement_records/DailyCap", "12"),
            ("arrangement_records_total", "12"),
            ("rss_bytes", "52428800"),
            ("watermark_lag_seconds", "60"),
            ("router_rps", "50"),
        ] {
            let tag = format!("data-metric=\"{metric}\" data-value=\"{value}\"");
            assert!(html.contains(&tag), "{tag} not in the page");
        }
        // Zero rows of a group are left out; the change from the day before.
        assert!(!html.contains("dead_letter_reasons/malformed_json"));
        assert!(html.contains(">−2<"), "segment change");
        assert!(html.contains("1\u{202f}234\u{202f}567"));
        assert!(html.contains("new EventSource('/api/events')"));
    }

    #[test]
    fn durations_and_groups() {
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(3725), "1 h 2 min");
        assert_eq!(duration(-90), "−1 min 30 s");
        assert_eq!(grouped(-1000), "−1\u{202f}000");
        assert_eq!(share(1, 3), "33.3 %");
    }
}
