//! `warren compare`, and the steps `warren bench` takes after a run:
//! `--save-baseline`, `--baseline`, `--junit`.

use std::path::Path;

use anyhow::Context;

use crate::bench::result::RunResult;
use crate::cli::{BenchArgs, CompareArgs, Format, GlobalArgs};
use crate::gate::compare::{self, Comparison, Tolerance};
use crate::gate::junit;
use crate::outcome::Outcome;

/// Why a result file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read the result file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a result file.
    #[error("{path}:{line}:{column}: not a warren result file: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// What serde said, without its own location.
        message: String,
    },
}

/// Reads a result file (`bench --out`).
pub fn load_result(path: &Path) -> Result<RunResult, LoadError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
    serde_json::from_str(&text).map_err(|error| {
        let full = error.to_string();
        let message = full.split(" at line ").next().unwrap_or(&full).to_owned();
        LoadError::Parse { path: path.display().to_string(), line: error.line(), column: error.column(), message }
    })
}

fn compare_files(baseline_path: &Path, current: &RunResult, tolerance: &Tolerance) -> anyhow::Result<Comparison> {
    let baseline = load_result(baseline_path)?;
    compare::compare(&baseline, current, tolerance)
        .with_context(|| format!("comparing against the baseline {}", baseline_path.display()))
}

/// `warren compare BASELINE RESULT`
pub fn compare_command(global: &GlobalArgs, args: CompareArgs) -> anyhow::Result<Outcome> {
    let current = load_result(&args.result)?;
    let tolerance = Tolerance::from(&args.tolerance);
    let comparison = compare_files(&args.baseline, &current, &tolerance)?;
    match global.format {
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&comparison).context("encoding the comparison")?);
        }
        Format::Human => print!(
            "{}",
            compare::render(&comparison, &args.baseline.display().to_string(), &args.result.display().to_string())
        ),
    }
    if let Some(path) = &args.junit {
        junit::write(path, &comparison.scenario, &junit::comparison_cases(&comparison))?;
    }
    Ok(if comparison.failed { Outcome::GateFailed } else { Outcome::Success })
}

/// Checks, before a bench runs, what would otherwise only fail after it:
/// the baseline must be a readable result file.
pub fn preflight(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.baseline {
        load_result(path).context("checking --baseline before the run")?;
    }
    Ok(())
}

/// What `bench` does with a finished result besides printing it: writes the
/// baseline, compares with `--baseline`, writes `--junit`. Returns
/// [`Outcome::GateFailed`] when the comparison found a regression.
///
/// With `--format json` stdout holds the result document alone, so the
/// comparison goes to stderr there.
pub fn after_bench(global: &GlobalArgs, args: &BenchArgs, result: &RunResult) -> anyhow::Result<Option<Outcome>> {
    if let Some(repeat) = &result.repeat {
        let text = crate::gate::repeat::summary(repeat);
        match global.format {
            Format::Json => eprint!("{text}"),
            Format::Human => print!("\n{text}"),
        }
    }
    if let Some(path) = &args.save_baseline {
        let json = serde_json::to_string_pretty(result).context("encoding the result")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing the baseline {}", path.display()))?;
    }
    let comparison = match &args.baseline {
        Some(path) => Some((path, compare_files(path, result, &Tolerance::from(&args.tolerance))?)),
        None => None,
    };
    if let Some((path, comparison)) = &comparison {
        let table = compare::render(comparison, &path.display().to_string(), "this run");
        match global.format {
            Format::Json => eprint!("{table}"),
            Format::Human => print!("\n{table}"),
        }
    }
    if let Some(junit_path) = &args.junit {
        let cases = match &comparison {
            Some((_, comparison)) => junit::comparison_cases(comparison),
            None => junit::gate_cases(&result.gates),
        };
        junit::write(junit_path, &result.scenario.name, &cases)?;
    }
    Ok(comparison.filter(|(_, c)| c.failed).map(|_| Outcome::GateFailed))
}
