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

/// For a run that failed or was interrupted: `--junit` still gets a report,
/// one failed case saying why, so CI shows the failure where it shows gates.
pub fn after_incomplete_bench(args: &BenchArgs, result: &RunResult) -> anyhow::Result<Option<Outcome>> {
    if let Some(path) = &args.junit {
        let why = result.error.clone().unwrap_or_else(|| format!("the run ended {:?}", result.status).to_lowercase());
        let case = junit::Case {
            suite: "run".to_owned(),
            name: "run completed".to_owned(),
            failure: Some(why.clone()),
            detail: why,
        };
        junit::write(path, &result.scenario.name, &[case])?;
    }
    Ok(None)
}

/// For a bench that failed before any run produced a result (a bad scenario,
/// an unreachable broker): `--junit` still gets one failed case saying why.
pub fn after_failed_start(args: &BenchArgs, error: &anyhow::Error) -> anyhow::Result<()> {
    if let Some(path) = &args.junit {
        let why = format!("{error:#}");
        let scenario = args.scenario.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let case = junit::Case {
            suite: "run".to_owned(),
            name: "run completed".to_owned(),
            failure: Some(why.clone()),
            detail: why,
        };
        junit::write(path, &scenario, &[case])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::bench::result::RunStatus;
    use crate::cli::{Cli, Command};
    use crate::gate::sample::result;

    fn bench_args(extra: &[&str]) -> BenchArgs {
        let mut argv = vec!["warren", "bench", "scenario.yaml"];
        argv.extend(extra);
        match Cli::try_parse_from(argv).expect("the arguments parse").command {
            Command::Bench(args) => args,
            other => panic!("not bench: {other:?}"),
        }
    }

    #[test]
    fn a_failed_run_still_writes_a_junit_report_with_one_failed_case() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("junit.xml");
        let args = bench_args(&["--junit", path.to_str().expect("a UTF-8 path")]);
        let mut failed = result("seed", 100, &[1000], &[]);
        failed.status = RunStatus::Failed;
        failed.error = Some("connection to the broker lost".into());
        assert_eq!(after_incomplete_bench(&args, &failed).expect("writes"), None);
        let xml = std::fs::read_to_string(&path).expect("the report exists");
        assert!(xml.contains("tests=\"1\" failures=\"1\""), "{xml}");
        assert!(xml.contains("message=\"connection to the broker lost\""), "{xml}");
    }

    #[test]
    fn a_bench_that_never_started_still_writes_a_junit_report() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("junit.xml");
        let args = bench_args(&["--junit", path.to_str().expect("a UTF-8 path")]);
        let error = anyhow::anyhow!("connection refused").context("connecting to the broker");
        after_failed_start(&args, &error).expect("writes");
        let xml = std::fs::read_to_string(&path).expect("the report exists");
        assert!(xml.contains("tests=\"1\" failures=\"1\""), "{xml}");
        assert!(xml.contains("connecting to the broker: connection refused"), "{xml}");
    }

    #[test]
    fn bench_flags_parse_with_their_defaults() {
        let args = bench_args(&[]);
        assert_eq!(args.repeat, 1);
        assert_eq!(args.tolerance.max_throughput_drop, 0.10);
        assert_eq!(args.tolerance.max_latency_rise, 0.20);
        let args = bench_args(&["--shard", "2/3", "--max-throughput-drop", "5%", "--metric", "p999"]);
        assert_eq!(args.shard.map(|s| (s.index, s.count)), Some((2, 3)));
        assert_eq!(args.tolerance.max_throughput_drop, 0.05);
        assert_eq!(args.tolerance.metric, crate::cli::Metric::P999);
        assert!(Cli::try_parse_from(["warren", "bench", "s.yaml", "--shard", "4/3"]).is_err());
        assert!(Cli::try_parse_from(["warren", "bench", "s.yaml", "--repeat", "0"]).is_err());
    }
}
