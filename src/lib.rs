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

pub use cdrflow_dataflows as dataflows;

pub mod cli;
pub mod config;
pub mod generate;
pub mod run;
pub mod sink;
pub mod source;

/// `cdrflow generate`.
pub fn generate_cmd(_args: cli::GenerateArgs) -> anyhow::Result<()> {
    anyhow::bail!("generate: not wired yet")
}
