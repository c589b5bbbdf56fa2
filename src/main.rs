use std::process::ExitCode;

use clap::Parser;

/// mimalloc (its v2: see Cargo.toml) for the bench's many small, short-lived
/// allocations per message and the embedded broker's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = warren::cli::Cli::parse();
    warren::run(cli)
}
