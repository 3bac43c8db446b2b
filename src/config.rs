//! The validated, clap-free configuration of a run (the second stage of the CLI:
//! `cli` parses, this module checks and converts).

use std::path::PathBuf;

use cdrflow_dataflows::basket::BasketParams;
use cdrflow_dataflows::promotions::PromotionParams;
use cdrflow_dataflows::segments::expr::Definitions;

/// Timely's cluster flags (`-w -n -p -h`).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub workers: usize,
    pub processes: usize,
    pub process: usize,
    /// `host:port` of every process, in process order.
    pub addresses: Vec<String>,
}

impl ClusterConfig {
    pub fn single(workers: usize) -> Self {
        ClusterConfig {
            workers,
            processes: 1,
            process: 0,
            addresses: Vec::new(),
        }
    }

    pub fn timely(&self) -> timely::Config {
        let communication = if self.processes > 1 {
            timely::CommunicationConfig::Cluster {
                threads: self.workers,
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            }
        } else if self.workers > 1 {
            timely::CommunicationConfig::Process(self.workers)
        } else {
            timely::CommunicationConfig::Thread
        };
        let mut worker = timely::WorkerConfig::default();
        differential_dataflow::configure(
            &mut worker,
            &differential_dataflow::Config::default().idle_merge_effort(Some(1000)),
        );
        timely::Config {
            communication,
            worker,
        }
    }
}

/// Everything `cdrflow run` needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub data: PathBuf,
    pub out: PathBuf,
    pub lateness: i64,
    pub dedup_horizon: i64,
    pub promotion: PromotionParams,
    pub basket: BasketParams,
    /// The segment features' window, seconds.
    pub window: i64,
    /// The segment definitions (`--segments FILE`, else the shipped defaults).
    pub segments: Definitions,
    /// The HMAC key of subscriber tokens.
    pub token_key: Vec<u8>,
    pub cluster: ClusterConfig,
    /// Bytes per block when splitting `cdrs.jsonl` among workers.
    pub block_size: u64,
    pub quiet: bool,
    /// `--serve ADDR --roles FILE`: the lookup service inside the run.
    pub serve: Option<LiveServe>,
    /// `--kafka-brokers … --cdr-topic T`: CDRs from a topic, not `cdrs.jsonl`.
    pub kafka_source: Option<KafkaSource>,
    /// `--cdr-source`: the dataset's CDR file, or its generator (without a topic).
    pub cdr_source: CdrSource,
    /// `--trace FILE`: the run's trace (worker 0 of process 0).
    pub trace: Option<TraceConfig>,
    /// `--sink-topic-prefix P`: every output also as an upsert topic.
    pub kafka_sink: Option<KafkaSink>,
    /// `--follow`: keep reading appended input until SIGINT/SIGTERM.
    pub follow: bool,
    /// How often a live run rewrites its view files and metrics.
    pub flush_interval: std::time::Duration,
    /// `--router-rps`: the router's call budget, shown on the monitor page.
    pub router_rps: Option<f64>,
}

/// Where the CDRs of a dataset directory come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CdrSource {
    /// `cdrs.jsonl` or `cdrs.jsonl.gz`.
    #[default]
    File,
    /// Rendered in process from `generator.json` (`cdrs`: its count overridden).
    Generator { cdrs: Option<u64> },
}

/// `--trace FILE [--trace-records]`.
#[derive(Clone, Debug)]
pub struct TraceConfig {
    /// Where the JSONL trace goes.
    pub path: PathBuf,
    /// Count the arrangements' records (turns differential's logging on).
    pub records: bool,
}

/// The CDR topic and how to reach it.
#[derive(Clone, Debug)]
pub struct KafkaSource {
    pub settings: crate::kafka::KafkaSettings,
    pub topic: String,
}

/// The output topics and their delivery settings.
#[derive(Clone, Debug)]
pub struct KafkaSink {
    pub settings: crate::kafka::KafkaSettings,
    pub prefix: String,
    /// How long a broker may be away before the run fails.
    pub timeout: std::time::Duration,
    /// `--sink-exactly-once`: resume after a restart without duplicates.
    pub exactly_once: bool,
}

/// Where `run --serve` listens and who may call it.
#[derive(Clone, Debug)]
pub struct LiveServe {
    pub listen: std::net::SocketAddr,
    pub roles: PathBuf,
    /// Register timely's and differential's loggers for the engine panel.
    pub engine_log: bool,
}

/// The validated configuration of `cdrflow serve` (SPEC §5).
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// A run's output directory (`segments/date=…`, `promotions.csv`).
    pub snapshots: PathBuf,
    /// The roles file, CSV `bearer_token,role`.
    pub roles: PathBuf,
    pub listen: std::net::SocketAddr,
    /// The dataset directory, for `loyalty.csv` (none: no loyalty summaries).
    pub data: Option<PathBuf>,
    /// The HMAC key of subscriber tokens (the run's).
    pub token_key: Vec<u8>,
}
