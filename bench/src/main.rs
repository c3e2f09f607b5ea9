//! `bench`: starts the whole system on embedded defaults (a private nats-server, every
//! service as a child process, SQLite files or fresh PostgreSQL databases), drives
//! simulated players through the gateway, and measures with HDR histograms, next to raw
//! baselines taken in the same run on the same machine. Prints a table, writes
//! `<out>/bench.json`, `<out>/table.txt` and `<out>/latency.svg`. Asserts no thresholds.
//!
//! # Layout
//! - [`cli`]: the flags and the durations of every phase.
//! - [`scenario`]: the phases against the running system, in order.
//! - [`baseline`]: the raw baselines (tonic unary, JetStream publish, SQL commits).
//! - [`drive`]: closed-loop workers; [`hist`]: histograms and their summaries.
//! - [`procs`]: RSS and CPU time from `/proc`; [`progress`]: the progress bar.
//! - [`report`]: the table and JSON; [`chart`]: the SVG.

mod baseline;
mod chart;
mod cli;
mod drive;
mod hist;
mod procs;
mod progress;
mod report;
mod scenario;
mod whale;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(scenario::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
