use std::process::ExitCode;

use clap::Parser;

/// mimalloc (its v2: see Cargo.toml) for the bench's many small, short-lived
/// allocations per message and the embedded broker's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match warren::cli::Cli::try_parse() {
        Ok(cli) => warren::run(cli),
        Err(error) => {
            // --help and --version are not errors; everything else clap
            // refuses is a usage error, exit 64 (never 2: `plan`'s "changes pending").
            let _ = error.print();
            if error.use_stderr() { ExitCode::from(warren::Outcome::Usage.code()) } else { ExitCode::SUCCESS }
        }
    }
}
