//! `cdrflow serve`: the segment lookup service (SPEC §5) over a run's output
//! directory.
//!
//! | module | owns |
//! |---|---|
//! | `rows` | the row types: [`TokenKey`], [`FeatureValue`], [`PromotionRow`], [`LoyaltySummary`], [`SubscriberRow`] |
//! | `store` | [`Snapshot`] (one date's subscribers, promotions, loyalty), its builder, [`Store`] (`ArcSwap`, `publish`) |
//! | `load` | a [`Snapshot`] from a run's output dir: the latest `segments/date=…`, `promotions.csv`, `loyalty.csv` |
//! | `auth` | the roles file, bearer tokens, 401/403 |
//! | `http` | the axum routes, JSON bodies, refusals |
//! | `live` | [`live::LiveServer`]: the service inside `run --serve`, fed by the dataflow |
//!
//! ```text
//! --snapshots DIR ─load─▶ Snapshot ─▶ Store ◀─ publish (run --serve: live)
//! --roles FILE ──▶ Roles ─┐            │
//! token key ─▶ Tokenizer ─┴─▶ Service ─┴─▶ axum Router ─▶ --listen ADDR
//! ```
//!
//! Once bound, the address is printed on stderr as `listening on http://ADDR`
//! (with `--listen 127.0.0.1:0` it names the port the system chose).

pub mod auth;
pub mod http;
pub mod live;
pub mod load;
pub mod rows;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use cdrflow_dataflows::token::Tokenizer;

use crate::config::ServeConfig;
use crate::monitor::Monitor;
use crate::source::csv_table::SourceError;

pub use self::auth::Roles;
pub use self::http::{router, Service};
pub use self::rows::{
    FeatureValue, LoyaltySummary, PromotionRow, RowError, SubscriberRow, TokenKey,
};
pub use self::store::{Snapshot, Store};

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Roles(#[from] auth::RolesError),
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no snapshot (no date=YYYY-MM-DD directory)")]
    NoSnapshot { path: PathBuf },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen for SIGINT/SIGTERM")]
    Signals(#[source] std::io::Error),
}

/// Loads the latest snapshot and the roles, binds `cfg.listen`, prints the
/// bound address, and serves until the process is stopped.
pub fn serve(cfg: ServeConfig) -> Result<(), ServeError> {
    let roles = Roles::load(&cfg.roles)?;
    let loaded = load::from_dir(&cfg.snapshots, cfg.data.as_deref())?;
    let s = &loaded.snapshot;
    eprintln!(
        "cdrflow serve: snapshot {} (as_of {}): {} subscribers, {} with a promotion; {} bearer tokens",
        loaded.dir.display(),
        s.as_of(),
        s.len(),
        s.promoted(),
        roles.len()
    );
    if loaded.loyalty_skipped > 0 {
        eprintln!(
            "cdrflow serve: loyalty.csv: {} rows left out (invalid, as the run dead-letters them)",
            loaded.loyalty_skipped
        );
    }
    let service = Arc::new(Service {
        store: Arc::new(Store::new(loaded.snapshot)),
        roles,
        tokens: Tokenizer::new(&cfg.token_key),
        monitor: Arc::new(Monitor::new(load::monitor_state(&cfg.snapshots)?)),
    });
    if let Some(data) = &cfg.data {
        let geo = crate::monitor::from_files::geo(data).map_err(|source| ServeError::Io {
            path: data.clone(),
            source,
        })?;
        service.monitor.set_geo(geo);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        let listen_err = |source| ServeError::Listen {
            addr: cfg.listen,
            source,
        };
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?;
        eprintln!("listening on http://{addr}");
        serve_on(listener, service).await.map_err(listen_err)
    })
}

/// Serves `service` on a bound listener until the task is dropped (the
/// binary, tests and benchmarks share it). Replies go out without Nagle's delay.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // Best effort: a socket that refuses it still works, only slower.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(service)).await
}
