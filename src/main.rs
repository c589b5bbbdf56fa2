use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = warren::cli::Cli::parse();
    warren::run(cli)
}
