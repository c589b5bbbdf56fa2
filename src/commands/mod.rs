//! One module per command. Each turns the command line's raw flags
//! ([`crate::cli`]) into what the domain code takes, runs it, and returns a
//! typed [`Outcome`]; clap's types go no further than this layer, and the exit
//! code is decided once, from the outcome, in [`crate::run`].

pub mod apply;
pub mod bench;
pub mod broker;
pub mod compare;
pub mod export;
pub mod plan;
pub mod report;
pub mod schema;
pub mod validate;

use anyhow::Context;

use crate::cli::{Cli, Command};
use crate::outcome::Outcome;

/// Runs one command; the error carries its context for the caller to print.
pub async fn execute(cli: Cli) -> anyhow::Result<Outcome> {
    let global = cli.global;
    match cli.command {
        Command::Apply(args) => apply::run(&global, args).await,
        Command::Plan(args) => plan::run(&global, args).await,
        Command::Export(args) => export::run(&global, args).await,
        Command::Validate(args) => validate::run(&global, args),
        Command::Schema(args) => schema::run(args),
        Command::Bench(args) => bench::run(&global, args).await,
        Command::Compare(args) => compare::run(&global, args),
        Command::Report(args) => report::run(&global, args),
        Command::Broker(args) => broker::run(args).await,
    }
}

/// Writes a line to stdout; a closed pipe (`warren schema topology | head`)
/// ends the output quietly instead of failing.
pub(crate) fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to stdout"),
    }
}
