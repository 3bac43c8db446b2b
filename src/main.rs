//! The `cdrflow` binary: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

/// Differential's arrangements allocate and free many small strings; glibc's
/// allocator spent half the run in malloc/free (perf), mimalloc a fraction.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use cdrflow::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cdrflow::cli::RunArgs::into_config(*args).and_then(|cfg| {
            let quiet = cfg.quiet;
            let out = cfg.out.clone();
            let summary = cdrflow::run::run(cfg)?;
            if !quiet {
                eprintln!(
                    "cdrflow: {} promotions; outputs in {}",
                    summary.promotions,
                    out.display()
                );
            }
            Ok(())
        }),
        Command::Generate(args) => cdrflow::generate_cmd(args),
        Command::Serve(args) => args
            .into_config()
            .and_then(|cfg| Ok(cdrflow::serve::serve(cfg)?)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cdrflow: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
