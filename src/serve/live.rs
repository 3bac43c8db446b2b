//! `run --serve ADDR`: the lookup service inside a run (SPEC §5), answering
//! from the live dataflow instead of a run's output directory.
//!
//! ```text
//! snapshot sink (worker 0) ── a day closes ──▶ with_subscribers ─┐
//! promotions view (worker 0, ≤ 1/s) ─────────▶ with_promotions ──┼▶ Store::publish ◀─ requests
//! loyalty table + applied changes (worker 0) ▶ with_loyalty ─────┘   (tokio threads)
//! ```
//!
//! The server runs on its own tokio runtime (two threads), beside the timely
//! workers: a request takes the current [`Snapshot`] with one atomic load,
//! so readers never block the dataflow, and every publish swaps in a whole
//! snapshot (one part replaced, the others shared), so no reader sees half an
//! update. Only process 0 serves: its worker 0 holds every gathered output.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdrflow_dataflows::basket::Catalogue;
use cdrflow_dataflows::model::Loyalty;
use cdrflow_dataflows::token::Tokenizer;

use super::{serve_on, Roles, ServeError, Service, Snapshot, Store};
use crate::monitor::Monitor;
use crate::sink::outputs::OutputViews;

/// A lookup service started beside a run.
pub struct LiveServer {
    store: Arc<Store>,
    monitor: Arc<Monitor>,
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl LiveServer {
    /// Loads the roles, binds `listen`, prints `listening on http://ADDR` on
    /// stderr and starts serving an empty snapshot (every subscriber 404)
    /// until the run publishes its first day.
    pub fn start(
        listen: SocketAddr,
        roles: &Path,
        token_key: &[u8],
    ) -> Result<LiveServer, ServeError> {
        let roles = Roles::load(roles)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cdrflow-serve")
            .enable_all()
            .build()
            .map_err(ServeError::Runtime)?;
        let listen_err = |source| ServeError::Listen {
            addr: listen,
            source,
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?;
        let store = Arc::new(Store::new(Snapshot::empty()));
        let monitor = Arc::new(Monitor::default());
        let service = Arc::new(Service {
            store: store.clone(),
            roles,
            tokens: Tokenizer::new(token_key),
            monitor: monitor.clone(),
        });
        runtime.spawn(async move {
            if let Err(e) = serve_on(listener, service).await {
                eprintln!("cdrflow: the lookup service stopped: {e}");
            }
        });
        eprintln!("listening on http://{addr}");
        Ok(LiveServer {
            store,
            monitor,
            addr,
            runtime,
        })
    }

    /// The monitor the run publishes its counts to.
    pub fn monitor(&self) -> Arc<Monitor> {
        self.monitor.clone()
    }

    /// The store the run publishes to.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keeps serving the last published snapshot until SIGINT or SIGTERM,
    /// then stops the server.
    pub fn serve_until_signal(self) -> Result<(), ServeError> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals =
            signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(ServeError::Signals)?;
        eprintln!(
            "cdrflow: run finished; serving its final snapshot on http://{} until interrupted (Ctrl-C)",
            self.addr
        );
        let _ = signals.forever().next();
        self.runtime.shutdown_background();
        Ok(())
    }
}

/// What worker 0 publishes besides the daily subscribers: the promotions view
/// (at most once a second, and at the end) and the loyalty table with the
/// changes applied so far.
pub struct Publisher {
    store: Arc<Store>,
    /// Loyalty customers by customer_id, as the dataflow sees them now.
    loyalty: BTreeMap<String, Loyalty>,
    loyalty_dirty: bool,
    /// The version of the promotions view last published.
    promotions_seen: Option<u64>,
    last: Option<Instant>,
}

/// How often the promotions view is republished during a run.
const REPUBLISH: Duration = Duration::from_secs(1);

impl Publisher {
    /// A publisher to `store`; `loyalty` is `loyalty.csv` in file order (a
    /// repeated customer_id: the last row wins, as in the dataflow).
    pub fn new(store: Arc<Store>, loyalty: &[Loyalty]) -> Publisher {
        Publisher {
            store,
            loyalty: loyalty
                .iter()
                .map(|l| (l.customer_id.clone(), l.clone()))
                .collect(),
            loyalty_dirty: true,
            promotions_seen: None,
            last: None,
        }
    }

    /// A loyalty change the dataflow has been given (`None`: deleted).
    pub fn loyalty_change(&mut self, customer_id: &str, row: Option<&Loyalty>) {
        match row {
            Some(l) => self.loyalty.insert(customer_id.to_string(), l.clone()),
            None => self.loyalty.remove(customer_id),
        };
        self.loyalty_dirty = true;
    }

    /// Publishes what changed: the loyalty table, and the promotions view.
    /// Unless `now`, at most once per second.
    pub fn publish(&mut self, views: &OutputViews, catalogue: &Catalogue, now: bool) {
        if !now && self.last.is_some_and(|t| t.elapsed() < REPUBLISH) {
            return;
        }
        self.last = Some(Instant::now());
        let mut snapshot = Snapshot::clone(&self.store.current());
        let mut changed = false;
        if self.loyalty_dirty {
            match snapshot.with_loyalty(self.loyalty.values()) {
                Ok(s) => snapshot = s,
                // loyalty.csv and the change files were validated at load.
                Err(e) => eprintln!("cdrflow: the loyalty table is not served: {e}"),
            }
            self.loyalty_dirty = false;
            changed = true;
        }
        let seen = Some(views.promotions_version());
        if seen != self.promotions_seen {
            self.promotions_seen = seen;
            match snapshot.with_promotions(views.promotion_rows(catalogue)) {
                Ok(s) => snapshot = s,
                Err(e) => eprintln!("cdrflow: the promotions view is not served: {e}"),
            }
            changed = true;
        }
        if changed {
            self.store.publish(snapshot);
        }
    }
}
