//! warren: declare a RabbitMQ topology in one file, converge any broker to it
//! safely, and load-test it.
//!
//! # Layout
//!
//! ```text
//! cli ──▶ commands/ (one file per command: raw flags → validated options → typed Outcome)
//!            │
//!            ├─ plan, apply, export ──▶ topology/ (load → model → plan → apply) ──▶ management (HTTP)
//!            ├─ bench ──▶ bench/ (scenario → session → runner → actors → metrics → analytics)
//!            │                └──▶ result/ (the result file) ──▶ compare/ (vs a baseline), report/
//!            ├─ compare, report ──▶ result/, compare/, report/
//!            └─ broker ──▶ warren_broker (the embedded broker crate)
//! ```
//!
//! - [`cli`]: command-line arguments, parsing only.
//! - [`commands`]: one module per command, from raw flags to a typed outcome.
//! - [`target`]: which broker a command talks to (a URL, or the embedded one).
//! - [`topology`]: the topology file: loading, the model, the diff, the apply.
//! - [`management`]: the one place that talks to a management HTTP API.
//! - [`bench`](mod@bench): load-test scenarios, from the file to a result.
//! - [`result`]: the result file every bench writes and `compare`/`report` read.
//! - [`compare`]: a result judged against a baseline (the CI gate), JUnit.
//! - [`report`]: the summary table, HTML report, runs side by side, shard merge.
//! - [`outcome`]: what a command ended with, and its exit code.
//!
//! `main.rs` only parses and calls [`run`], so tests can run a command in-process.

pub mod bench;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod management;
pub mod outcome;
pub mod report;
pub mod result;
pub mod target;
pub mod topology;

use std::process::ExitCode;

use cli::Cli;
pub use outcome::{Outcome, Usage};

/// Runs one command to completion and returns its exit code, printing any
/// error once, with its context chain, on stderr.
pub fn run(cli: Cli) -> ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(Outcome::Error.code());
        }
    };
    let result = runtime.block_on(commands::execute(cli));
    match result {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(error) => {
            eprintln!("error: {error:#}");
            let outcome = if error.downcast_ref::<topology::plan::guard::DataLossRefused>().is_some() {
                Outcome::Refused
            } else if error.downcast_ref::<Usage>().is_some() {
                Outcome::Usage
            } else {
                Outcome::Error
            };
            ExitCode::from(outcome.code())
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    // The stream client warns "Stream closed" at every ordinary close of its connections;
    // what matters reaches the stream actors as errors, which say so.
    let filter =
        EnvFilter::try_from_env("WARREN_LOG").unwrap_or_else(|_| EnvFilter::new("warn,rabbitmq_stream_client=error"));
    // Colours only on a terminal, and never with NO_COLOR set.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}
