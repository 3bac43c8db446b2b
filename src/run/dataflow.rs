//! The dataflow a worker builds and the inputs it feeds: the pipeline, the
//! segment snapshots and the outputs gathered on worker 0; the tables at
//! time 0 (worker 0); the CDRs of a round with their counts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use timely::dataflow::operators::Input as TimelyInput;
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::worker::Worker;

use cdrflow_dataflows::basket::{PurchaseRow, WeatherRow};
use cdrflow_dataflows::drive_cache::SharedRouter;
use cdrflow_dataflows::model::{
    time_of, Cdr, DeadLetter, Loyalty, Reason, Store, Subscriber, Time, Tower,
};
use cdrflow_dataflows::pipeline::{pipeline, PipelineInputs, PipelineParams};
use cdrflow_dataflows::token::Tokenizer;

use super::changes::collapse;
use crate::config::RunConfig;
use crate::serve::Store as SnapshotStore;
use crate::sink::collect::{gather, gather_counts, Counts};
use crate::sink::kafka::SegmentMessages;
use crate::sink::outputs::GatheredOutputs;
use crate::sink::snapshots::{snapshots, SharedReport, SnapshotTargets};
use crate::source::cdr_file::Outcome;
use crate::source::tables::Tables;

/// An upsert stream of a keyed table: `(key, Some(row) | None, time)`.
pub(super) type UpsertInput<V> =
    InputHandle<Time, timely::container::CapacityContainerBuilder<Vec<(String, Option<V>, Time)>>>;
/// The inputs a worker feeds.
pub(super) struct Inputs {
    pub(super) cdrs: differential_dataflow::input::InputSession<Time, Cdr, isize>,
    pub(super) towers: differential_dataflow::input::InputSession<Time, Tower, isize>,
    pub(super) purchases: differential_dataflow::input::InputSession<Time, PurchaseRow, isize>,
    pub(super) weather: differential_dataflow::input::InputSession<Time, WeatherRow, isize>,
    pub(super) subscribers: differential_dataflow::input::InputSession<Time, Subscriber, isize>,
    pub(super) dead: differential_dataflow::input::InputSession<Time, DeadLetter, isize>,
    pub(super) counts: differential_dataflow::input::InputSession<Time, String, isize>,
    pub(super) stores: UpsertInput<Store>,
    pub(super) loyalty: UpsertInput<Loyalty>,
}

impl Inputs {
    pub(super) fn advance_to(&mut self, t: Time) {
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

/// Outputs gathered on worker 0.
pub(super) struct Gathered {
    pub(super) outputs: GatheredOutputs,
    pub(super) snapshots: SharedReport,
    /// The snapshot rows for the segments topic (with `--sink-topic-prefix`).
    pub(super) segment_messages: Option<SegmentMessages>,
    pub(super) counts: Counts,
}

pub(super) fn build(
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

/// Worker 0's tables at time 0: towers, purchases (moved out of the shared
/// rows, so the host keeps no copy), subscribers, weather, the stores and
/// loyalty upserts, the tables' dead letters and their counts.
pub(super) fn feed_tables(
    inputs: &mut Inputs,
    tables: &Tables,
    purchases: &Mutex<Vec<PurchaseRow>>,
) {
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

/// Counts of the input (`cdrs_read`, dead letters by reason, …) by name,
/// fed as one update per name and round.
pub(super) type InputCounts = BTreeMap<String, isize>;

/// Feeds one CDR line's outcome at its time (never before `floor`, the
/// earliest time still open) and counts it.
pub(super) fn feed_cdr(
    inputs: &mut Inputs,
    counts: &mut InputCounts,
    floor: Time,
    outcome: Outcome,
) {
    *counts.entry("cdrs_read".into()).or_default() += 1;
    match outcome {
        Outcome::Valid(cdr, w) => {
            *counts.entry("cdrs_valid".into()).or_default() += 1;
            inputs.cdrs.update_at(cdr, time_of(w).max(floor), 1);
        }
        Outcome::Dead(dead, w) => {
            *counts.entry("cdrs_dead_lettered".into()).or_default() += 1;
            if dead.reason == Reason::Late {
                *counts.entry("cdrs_late".into()).or_default() += 1;
            }
            *counts
                .entry(format!("dead_letter_reasons/{}", dead.reason))
                .or_default() += 1;
            let t = w.map_or(0, time_of).max(floor);
            inputs.dead.update_at(dead, t, 1);
        }
    }
}

/// Feeds a change file's dead letters (read on with `--follow`) and counts them.
pub(super) fn feed_change_dead(
    inputs: &mut Inputs,
    counts: &mut InputCounts,
    dead: Vec<DeadLetter>,
) {
    for dead in dead {
        *counts
            .entry(format!("csv_dead_lettered/{}", dead.source))
            .or_default() += 1;
        *counts
            .entry(format!("csv_dead_lettered_by_reason/{}", dead.reason))
            .or_default() += 1;
        inputs.dead.update(dead, 1);
    }
}

/// Feeds the round's counts, one update per name.
pub(super) fn feed_counts(inputs: &mut Inputs, counts: InputCounts) {
    for (name, n) in counts {
        inputs.counts.update(name, n);
    }
}
