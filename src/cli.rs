//! The command line (first stage): clap derive. Doc comments are the help
//! text. [`RunArgs::into_config`] turns the parsed flags into a validated
//! [`RunConfig`]. Timely's `-h` (hostfile) clashes with clap's help, so `-h`
//! is the hostfile and help is `--help` only.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{ArgAction, Args, Parser, Subcommand};

use cdrflow_dataflows::basket::{BasketParams, Ratio};
use cdrflow_dataflows::promotions::PromotionParams;
use cdrflow_dataflows::segments::expr::Definitions;
use cdrflow_dataflows::time::parse_duration;

use crate::config::{
    CdrSource, ClusterConfig, KafkaSink, KafkaSource, LiveServe, RunConfig, ServeConfig,
    TraceConfig,
};
use crate::kafka::{parse_option, KafkaSettings};

#[derive(Debug, Parser)]
#[command(
    name = "cdrflow",
    version,
    about = "Incremental CDR analytics: proximity promotions and customer segments"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every dataflow over a dataset directory and write the outputs.
    #[command(disable_help_flag = true)]
    Run(Box<RunArgs>),
    /// Write a synthetic dataset in the SPEC §1 layout.
    Generate(GenerateArgs),
    /// Serve segment lookups over HTTP from a run's latest snapshot.
    Serve(ServeArgs),
}

/// Timely's cluster flags.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Worker threads per process (default: the number of cores).
    #[arg(short = 'w', long = "workers")]
    pub workers: Option<usize>,
    /// Number of processes in the cluster.
    #[arg(short = 'n', long = "processes", default_value_t = 1)]
    pub processes: usize,
    /// This process's index, 0 ..= n-1.
    #[arg(short = 'p', long = "process", default_value_t = 0)]
    pub process: usize,
    /// File with one `host:port` per line, in process order (default: localhost:2101, 2102, …).
    #[arg(short = 'h', long = "hostfile")]
    pub hostfile: Option<PathBuf>,
}

impl ClusterArgs {
    pub fn into_config(self) -> anyhow::Result<ClusterConfig> {
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if workers == 0 {
            bail!("-w must be at least 1");
        }
        if self.processes == 0 || self.process >= self.processes {
            bail!(
                "-p {} is not a process of -n {}",
                self.process,
                self.processes
            );
        }
        let addresses = match &self.hostfile {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading hostfile {}", path.display()))?;
                let hosts: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                if hosts.len() < self.processes {
                    bail!(
                        "hostfile {} lists {} hosts, -n is {}",
                        path.display(),
                        hosts.len(),
                        self.processes
                    );
                }
                hosts
            }
            None => (0..self.processes)
                .map(|i| format!("localhost:{}", 2101 + i))
                .collect(),
        };
        Ok(ClusterConfig {
            workers,
            processes: self.processes,
            process: self.process,
            addresses,
        })
    }
}

/// `run --cdr-source`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CdrSourceArg {
    File,
    Generator,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The dataset directory (SPEC §1 layout).
    #[arg(long)]
    pub data: PathBuf,
    /// Where the outputs go (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Allowed lateness of event time: a CDR more than this behind the largest start read so far is dead-lettered.
    #[arg(long, default_value = "1h")]
    pub lateness: String,
    /// Dedup horizon (event time): copies of a record_id arriving within it are one record.
    #[arg(long, default_value = "24h")]
    pub dedup_horizon: String,
    /// Customers with more loyalty points than this are not promoted.
    #[arg(long, default_value_t = 9000)]
    pub max_points: i64,
    /// Stores farther than this (haversine metres) from the tower are not considered.
    #[arg(long, default_value_t = 5000.0)]
    pub radius_m: f64,
    /// Promotions need a drivable distance of at most this many metres.
    #[arg(long, default_value_t = 8000.0)]
    pub max_drive_m: f64,
    /// How long a computed drive distance is reused for its (tower, store) pair (event time).
    #[arg(long, default_value = "3h")]
    pub cache_ttl: String,
    /// Promotions older than this behind the watermark are final; their state is released.
    #[arg(long, default_value = "7d")]
    pub view_retention: String,
    /// Requests per second allowed to an external router (the embedded router is not limited).
    #[arg(long)]
    pub router_rps: Option<f64>,
    /// Smallest support of a frequent itemset (baskets holding it / baskets in the context), exact decimal.
    #[arg(long, default_value = "0.01")]
    pub min_support: String,
    /// Smallest confidence of a rule, exact decimal.
    #[arg(long, default_value = "0.2")]
    pub min_confidence: String,
    /// Largest itemset mined (antecedent plus consequent), at least 1.
    #[arg(long, default_value_t = 3)]
    pub max_len: usize,
    /// The rolling window of the segment features.
    #[arg(long, default_value = "30d")]
    pub window: String,
    /// Segment definitions (`name = expression` lines); replaces the shipped defaults.
    #[arg(long)]
    pub segments: Option<PathBuf>,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
    /// Serve the segment lookups (as `cdrflow serve` does) from the live run at this address; after the input ends, keep serving until interrupted.
    #[arg(long, value_name = "ADDR", requires = "roles")]
    pub serve: Option<std::net::SocketAddr>,
    /// With --serve: CSV `bearer_token,role` of the callers.
    #[arg(long, value_name = "FILE", requires = "serve")]
    pub roles: Option<PathBuf>,
    /// With --serve: leave timely's and differential's logging off (the monitor's engine panel stays empty).
    #[arg(long, requires = "serve")]
    pub no_engine_log: bool,
    /// Kafka bootstrap servers (`host:port[,host:port…]`), for --cdr-topic.
    #[arg(long, value_name = "HOST:PORT")]
    pub kafka_brokers: Option<String>,
    /// Read the CDRs from every partition of this topic instead of DATA/cdrs.jsonl (partition p on worker p mod W).
    #[arg(long, value_name = "TOPIC", requires = "kafka_brokers")]
    pub cdr_topic: Option<String>,
    /// A librdkafka setting for every Kafka client (SASL, TLS, client id, …); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub kafka_option: Vec<String>,
    /// Also write every output to an upsert topic PREFIX.promotions, .recommendations, .rules, .segments, .dead_letter, .metrics (needs --kafka-brokers).
    #[arg(long, value_name = "PREFIX", requires = "kafka_brokers")]
    pub sink_topic_prefix: Option<String>,
    /// How long a Kafka broker may be unreachable before the run fails with the undelivered count.
    #[arg(long, default_value = "5m")]
    pub sink_timeout: String,
    /// Headers (dataflow time, sequence) on every message, so a restarted run writes only what the killed one did not.
    #[arg(long, requires = "sink_topic_prefix")]
    pub sink_exactly_once: bool,
    /// Keep running: read lines appended to cdrs.jsonl and the change files (or new messages of --cdr-topic) until SIGINT or SIGTERM, then finish cleanly.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: how often promotions.csv, rules.csv, recommendations.csv, dead_letter.jsonl and metrics.json are rewritten.
    #[arg(long, default_value = "1s")]
    pub flush_interval: String,
    /// Where the CDRs come from: `file` (DATA/cdrs.jsonl or .gz) or `generator` (rendered in process from DATA/generator.json, as `cdrflow generate` would have written them; no file needed).
    #[arg(long, value_enum, default_value_t = CdrSourceArg::File, conflicts_with_all = ["cdr_topic", "follow"])]
    pub cdr_source: CdrSourceArg,
    /// With --cdr-source generator: render this many CDR lines instead of generator.json's count (the lines of `generate --cdrs N` with the same flags).
    #[arg(long)]
    pub cdrs: Option<u64>,
    /// Write the run's trace to FILE (JSONL): CDRs done, CDRs/s, RSS every few seconds, then a summary line; also printed to stderr unless -q.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// With --trace: also the total records held in every arrangement (turns differential's logging on, which costs CPU).
    #[arg(long, requires = "trace")]
    pub trace_records: bool,
    /// Bytes of cdrs.jsonl per block when workers split the file.
    #[arg(long, default_value_t = 4 << 20, hide = true)]
    pub block_size: u64,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The token HMAC key flags, shared by `run` and `serve` (SPEC §5).
#[derive(Debug, Args)]
pub struct TokenKeyArgs {
    /// File holding the token HMAC key (instead of the CDRFLOW_TOKEN_KEY environment variable).
    #[arg(long)]
    pub token_key_file: Option<PathBuf>,
    /// Run with a fixed, public development key when no key is given (never in production).
    #[arg(long)]
    pub insecure_dev_key: bool,
}

impl TokenKeyArgs {
    /// The key: `--token-key-file` (one trailing newline dropped), else
    /// `CDRFLOW_TOKEN_KEY`, else the public dev key if `--insecure-dev-key`.
    pub fn key(&self) -> anyhow::Result<Vec<u8>> {
        Ok(match (&self.token_key_file, std::env::var_os("CDRFLOW_TOKEN_KEY")) {
            (Some(path), _) => {
                let key = std::fs::read(path).with_context(|| format!("reading --token-key-file {}", path.display()))?;
                let key = key.strip_suffix(b"\n").map(<[u8]>::to_vec).unwrap_or(key);
                if key.is_empty() {
                    bail!("--token-key-file {} is empty", path.display());
                }
                key
            }
            (None, Some(key)) if !key.is_empty() => key.into_encoded_bytes(),
            _ if self.insecure_dev_key => b"cdrflow-insecure-dev-key".to_vec(),
            _ => bail!(
                "no token key: set CDRFLOW_TOKEN_KEY or --token-key-file (or --insecure-dev-key for a throwaway run)"
            ),
        })
    }
}

/// The Kafka client settings of `--kafka-brokers` and `--kafka-option`s.
fn kafka_settings(brokers: &str, options: &[String]) -> anyhow::Result<KafkaSettings> {
    let mut settings = KafkaSettings::new(brokers);
    for o in options {
        settings.options.push(parse_option(o)?);
    }
    Ok(settings)
}

fn duration(flag: &str, value: &str) -> anyhow::Result<i64> {
    parse_duration(value).map_err(|e| anyhow::anyhow!("--{flag} {value}: {e}"))
}

impl RunArgs {
    pub fn into_config(self) -> anyhow::Result<RunConfig> {
        let token_key = self.token_key.key()?;
        if !(self.radius_m >= 0.0 && self.max_drive_m >= 0.0) {
            bail!("--radius-m and --max-drive-m must be non-negative numbers");
        }
        let ratio = |flag: &str, value: &str| -> anyhow::Result<Ratio> {
            let r = Ratio::parse(value).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
            if r.num > r.den {
                bail!("--{flag} {value}: must lie between 0 and 1");
            }
            Ok(r)
        };
        if !(1..=16).contains(&self.max_len) {
            bail!("--max-len {}: must lie between 1 and 16", self.max_len);
        }
        let basket = BasketParams {
            min_support: ratio("min-support", &self.min_support)?,
            min_confidence: ratio("min-confidence", &self.min_confidence)?,
            max_len: self.max_len,
        };
        let segments = match &self.segments {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --segments {}", path.display()))?;
                Definitions::parse(&path.display().to_string(), &text)?
            }
            None => Definitions::defaults(),
        };
        let cdr_source = match (self.cdr_source, self.cdrs) {
            (CdrSourceArg::Generator, cdrs) => CdrSource::Generator { cdrs },
            (CdrSourceArg::File, None) => CdrSource::File,
            (CdrSourceArg::File, Some(_)) => {
                bail!("--cdrs renders that many lines of the generator: it needs --cdr-source generator")
            }
        };
        let window = duration("window", &self.window)?;
        if window <= 0 {
            bail!("--window {}: must be positive", self.window);
        }
        Ok(RunConfig {
            basket,
            window,
            segments,
            lateness: duration("lateness", &self.lateness)?,
            dedup_horizon: duration("dedup-horizon", &self.dedup_horizon)?,
            promotion: PromotionParams {
                max_points: self.max_points,
                radius_m: self.radius_m,
                max_drive_m: self.max_drive_m,
                cache_ttl: duration("cache-ttl", &self.cache_ttl)?,
                view_retention: duration("view-retention", &self.view_retention)?,
            },
            data: self.data,
            out: self.out,
            token_key,
            cluster: self.cluster.into_config()?,
            block_size: self.block_size,
            quiet: self.quiet,
            serve: self.serve.zip(self.roles).map(|(listen, roles)| LiveServe {
                listen,
                roles,
                engine_log: !self.no_engine_log,
            }),
            kafka_sink: match (&self.kafka_brokers, &self.sink_topic_prefix) {
                (Some(brokers), Some(prefix)) => Some(KafkaSink {
                    settings: kafka_settings(brokers, &self.kafka_option)?,
                    prefix: prefix.clone(),
                    timeout: std::time::Duration::from_secs(
                        duration("sink-timeout", &self.sink_timeout)?.max(1) as u64,
                    ),
                    exactly_once: self.sink_exactly_once,
                }),
                _ => None,
            },
            follow: self.follow,
            router_rps: self.router_rps,
            flush_interval: std::time::Duration::from_secs(
                duration("flush-interval", &self.flush_interval)?.max(0) as u64,
            ),
            cdr_source,
            trace: self.trace.map(|path| TraceConfig {
                path,
                records: self.trace_records,
            }),
            kafka_source: match (&self.kafka_brokers, self.cdr_topic) {
                (Some(brokers), Some(topic)) => Some(KafkaSource {
                    settings: kafka_settings(brokers, &self.kafka_option)?,
                    topic,
                }),
                _ => None,
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory for the dataset.
    #[arg(long)]
    pub out: PathBuf,
    /// Size preset: tiny, small, medium, large.
    #[arg(long, default_value = "small")]
    pub scale: String,
    /// Random seed: same seed, same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Override the number of CDRs of the preset.
    #[arg(long)]
    pub cdrs: Option<u64>,
    /// Override the number of baskets (distinct txn_ids, ~5 items each) of the preset.
    #[arg(long)]
    pub baskets: Option<u64>,
    /// Override the size of the product catalogue of the preset (at least 48).
    #[arg(long)]
    pub products: Option<u32>,
    /// Override the event-time span of the CDRs, in UTC days from --start-date.
    #[arg(long)]
    pub days: Option<u32>,
    /// Override the first CDR date (UTC, YYYY-MM-DD) of the preset.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start_date: Option<String>,
    /// Override the number of subscribers of the preset.
    #[arg(long)]
    pub subscribers: Option<u64>,
    /// Override the share of subscribers who are loyalty customers, in (0, 1].
    #[arg(long)]
    pub loyalty_share: Option<f64>,
    /// Write cdrs.jsonl.gz instead of cdrs.jsonl.
    #[arg(long, conflicts_with = "no_cdr_file")]
    pub gzip: bool,
    /// Write the tables and generator.json but no CDR file: `run --cdr-source generator` renders the lines itself.
    #[arg(long)]
    pub no_cdr_file: bool,
    /// Threads (default: the number of cores). The output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A run's output directory: serves its latest `segments/date=YYYY-MM-DD` snapshot and `promotions.csv`.
    #[arg(long)]
    pub snapshots: PathBuf,
    /// CSV `bearer_token,role` of the callers; role `crm` may read `/v1/customers`.
    #[arg(long)]
    pub roles: PathBuf,
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The dataset directory, for the loyalty summaries of `/v1/customers` (`loyalty.csv`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub token_key: TokenKeyArgs,
}

impl ServeArgs {
    pub fn into_config(self) -> anyhow::Result<ServeConfig> {
        Ok(ServeConfig {
            token_key: self.token_key.key()?,
            snapshots: self.snapshots,
            roles: self.roles,
            listen: self.listen,
            data: self.data,
        })
    }
}
