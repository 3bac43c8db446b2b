//! cdrflow: the parts that touch the outside world. The dataflow logic lives in
//! the `cdrflow-dataflows` crate (re-exported as [`dataflows`]).
//!
//! | module | owns |
//! |---|---|
//! | `cli` | clap flags, first stage of the CLI |
//! | `config` | the validated run configuration, timely cluster config |
//! | `run` | `cdrflow run`: timely workers, block rounds, inputs, drain, outputs |
//! | `source` | reading the dataset directory (CSV tables, change files, CDR blocks) |
//! | `sink` | gathering outputs on worker 0 and writing the files |
//! | `generate` | `cdrflow generate`: the synthetic dataset |
//! | `serve` | `cdrflow serve`: the segment lookup service over HTTP |
//! | `monitor` | the monitor's state (counts, watermark) and its Prometheus text |
//! | `kafka` | Kafka client settings (every rdkafka `ClientConfig`), the upsert sink |
//! | `progress` | the progress bar or plain progress lines of `run` and `generate` |

pub use cdrflow_dataflows as dataflows;

pub mod cli;
pub mod config;
pub mod generate;
pub mod kafka;
pub mod monitor;
pub mod progress;
pub mod run;
pub mod serve;
pub mod sink;
pub mod source;

/// `cdrflow generate`: a preset scale, flags on top, progress on stderr.
pub fn generate_cmd(args: cli::GenerateArgs) -> anyhow::Result<()> {
    let mut cfg = generate::GenerateConfig::scale(&args.scale).ok_or_else(|| {
        anyhow::anyhow!(
            "--scale {}: not one of {}",
            args.scale,
            generate::SCALES.join(", ")
        )
    })?;
    cfg.out = args.out;
    cfg.seed = args.seed;
    cfg.gzip = args.gzip;
    if let Some(n) = args.cdrs {
        cfg.cdrs = n;
    }
    if let Some(n) = args.baskets {
        cfg.baskets = n;
    }
    if let Some(n) = args.products {
        if n < 48 {
            anyhow::bail!("--products {n}: the catalogue needs at least 48 products");
        }
        cfg.products = n;
    }
    if let Some(t) = args.threads {
        cfg.threads = t;
    }
    if let Some(d) = args.days {
        cfg.days = d;
    }
    if let Some(d) = args.start_date {
        cfg.start_date = d;
    }
    if let Some(n) = args.subscribers {
        cfg.subscribers = n;
    }
    if let Some(s) = args.loyalty_share {
        cfg.loyalty_share = s;
    }
    cfg.cdr_file = !args.no_cdr_file;
    let started = std::time::Instant::now();
    let quiet = args.quiet;
    let target = cfg.out.join(if cfg.gzip {
        "cdrs.jsonl.gz"
    } else {
        "cdrs.jsonl"
    });
    let progress = std::cell::RefCell::new(progress::Progress::new(
        progress::Kind::Write(&target.display().to_string()),
        None,
        Some(cfg.cdrs),
        quiet || !cfg.cdr_file,
    ));
    let summary = generate::generate(&cfg, &|done| progress.borrow_mut().update(done, 0))?;
    progress.into_inner().finish("done");
    if !quiet && !cfg.cdr_file {
        eprintln!(
            "generate: tables and {} for {} CDR lines (no CDR file; run --cdr-source generator), in {:.1} s -> {}",
            generate::MANIFEST,
            cfg.cdrs,
            started.elapsed().as_secs_f64(),
            cfg.out.display()
        );
    } else if !quiet {
        eprintln!(
            "generate: {} CDR lines ({} duplicates, {} late, {} malformed planted), {} to {}, in {:.1} s -> {}",
            summary.cdrs,
            summary.duplicates,
            summary.late,
            summary.malformed,
            summary.first_date,
            summary.last_date,
            started.elapsed().as_secs_f64(),
            cfg.out.display()
        );
    }
    Ok(())
}
