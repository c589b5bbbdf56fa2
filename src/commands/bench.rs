//! `warren bench SCENARIO`: the command line checked into [`BenchOptions`]
//! before anything runs, the run (or runs) on the chosen broker, the result
//! printed and written, and what follows a run: `--save-baseline`,
//! `--baseline`, `--junit`.

use std::path::Path;

use anyhow::{Context, bail};

use crate::bench::progress::Reporter;
use crate::bench::routing::Routes;
use crate::bench::session::{self, BenchOptions, Finished};
use crate::bench::{repeat, scenario, setup, shard};
use crate::cli::{BenchArgs, Format, GlobalArgs};
use crate::compare::{self, Comparison, junit};
use crate::outcome::Outcome;
use crate::report::table;
use crate::result::{RunResult, RunStatus, file};
use crate::target::{EmbeddedData, Target};

/// Runs `warren bench`. A bench that fails before any run produced a result
/// still writes `--junit`, with one failed case saying why.
pub async fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<Outcome> {
    let finished = match prepare_and_run(global, &args).await {
        Ok(finished) => finished,
        Err(error) => {
            after_failed_start(&args, &error).with_context(|| format!("(after the bench failed: {error:#})"))?;
            return Err(error);
        }
    };
    report(global, &args, finished)
}

/// The options, the broker, and the run series.
async fn prepare_and_run(global: &GlobalArgs, args: &BenchArgs) -> anyhow::Result<Finished> {
    let broker_named = |scenario: &scenario::Scenario| global.broker.clone().or(scenario.broker.clone());
    let options = options(args, broker_named)?;
    let broker = broker_named(&options.scenario);
    let data = if args.in_memory { EmbeddedData::InMemory } else { EmbeddedData::TempDir };
    let target = Target::resolve_with(broker.as_deref(), global.management.as_deref(), "embedded", data).await?;
    let quiet = global.quiet || global.format == Format::Json;
    let mut reporter = Reporter::for_stderr(quiet, options.scenario.warmup + options.scenario.duration);
    let finished = session::run_series(&target, &options, &mut reporter).await;
    reporter.finish();
    target.close().await;
    finished
}

/// Checks the command line against the scenario before anything runs: the
/// overrides applied, the shard taken, the topology loaded and its
/// references checked, and a `--baseline` that must be a readable result.
fn options(
    args: &BenchArgs,
    broker_named: impl Fn(&scenario::Scenario) -> Option<String>,
) -> anyhow::Result<BenchOptions> {
    let mut scenario = scenario::load_file(&args.scenario)?;
    scenario.override_with(args.duration, args.warmup, args.rate_scale);
    scenario.override_drain(args.drain);
    scenario.override_stream_ports(args.stream_port.clone());
    if let Some(path) = &args.baseline {
        file::load(path).context("checking --baseline before the run")?;
    }
    // --shard: this process runs one slice of every group (see bench::shard).
    if let Some(shard) = args.shard {
        shard.apply(&mut scenario)?;
    }
    let vhost = shard::vhost(args.shard, args.vhost.as_deref(), broker_named(&scenario).as_deref());
    let topology = setup::load_topology(&scenario, vhost.as_deref())?;
    setup::check_references(&scenario, &topology)?;
    setup::check_streams(&mut scenario, &topology)?;
    let routes = Routes::compute(&scenario, &topology.vhost);
    Ok(BenchOptions {
        scenario,
        scenario_file: args.scenario.clone(),
        topology,
        routes,
        rate_scale: args.rate_scale,
        shard: args.shard,
        start_at: args.start_at,
        repeat: args.repeat,
        keep_topology: args.keep_topology,
    })
}

/// Writes and prints the result, then judges it: the scenario's gates, the
/// baseline, how the run ended.
fn report(global: &GlobalArgs, args: &BenchArgs, finished: Finished) -> anyhow::Result<Outcome> {
    let Finished { result, cleanup_error } = finished;
    if let Some(path) = &args.out {
        file::write(path, &result)?;
    }
    match global.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result).context("encoding the result")?),
        Format::Human => print!("{}", table::render(&result)),
    }
    if let Some(error) = cleanup_error {
        return Err(error.context("deleting the run's topology (use --keep-topology to leave it)"));
    }
    let regression = match result.status {
        RunStatus::Completed => after_bench(global, args, &result)?,
        _ => after_incomplete_bench(args, &result)?,
    };
    let written = args.out.as_ref().map(|p| format!("; partial result written to {}", p.display())).unwrap_or_default();
    match result.status {
        RunStatus::Failed => bail!("the run failed: {}{written}", result.error.as_deref().unwrap_or("unknown error")),
        RunStatus::Interrupted => bail!("the run was interrupted{written}"),
        RunStatus::Completed if result.gates.iter().any(|g| !g.passed) => Ok(Outcome::GateFailed),
        RunStatus::Completed if regression => Ok(Outcome::GateFailed),
        RunStatus::Completed => Ok(Outcome::Success),
    }
}

/// The baseline `path` against `current`.
pub(super) fn compare_with(
    path: &Path,
    current: &RunResult,
    tolerance: &crate::result::tolerance::Tolerance,
) -> anyhow::Result<Comparison> {
    let baseline = file::load(path)?;
    compare::compare(&baseline, current, tolerance)
        .with_context(|| format!("comparing against the baseline {}", path.display()))
}

/// What `bench` does with a completed result besides printing it: writes the
/// baseline, compares with `--baseline`, writes `--junit`. Returns whether
/// the comparison found a regression.
///
/// With `--format json` stdout holds the result document alone, so the
/// comparison goes to stderr there.
fn after_bench(global: &GlobalArgs, args: &BenchArgs, result: &RunResult) -> anyhow::Result<bool> {
    if let Some(repeat) = &result.repeat {
        let text = repeat::summary(repeat);
        match global.format {
            Format::Json => eprint!("{text}"),
            Format::Human => print!("\n{text}"),
        }
    }
    if let Some(path) = &args.save_baseline {
        file::write(path, result).context("writing the baseline")?;
    }
    let comparison = match &args.baseline {
        Some(path) => Some((path, compare_with(path, result, &args.tolerance.tolerance())?)),
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
    Ok(comparison.is_some_and(|(_, c)| c.failed))
}

/// For a run that failed or was interrupted: `--junit` still gets a report,
/// one failed case saying why, so CI shows the failure where it shows gates.
fn after_incomplete_bench(args: &BenchArgs, result: &RunResult) -> anyhow::Result<bool> {
    if let Some(path) = &args.junit {
        let why = result.error.clone().unwrap_or_else(|| format!("the run ended {:?}", result.status).to_lowercase());
        junit::write(path, &result.scenario.name, &[junit::Case::run_failed(why)])?;
    }
    Ok(false)
}

/// For a bench that failed before any run produced a result (a bad scenario,
/// an unreachable broker): `--junit` still gets one failed case saying why.
fn after_failed_start(args: &BenchArgs, error: &anyhow::Error) -> anyhow::Result<()> {
    if let Some(path) = &args.junit {
        let scenario = args.scenario.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        junit::write(path, &scenario, &[junit::Case::run_failed(format!("{error:#}"))])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::result::RunStatus;
    use crate::result::sample::result;

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
        assert!(!after_incomplete_bench(&args, &failed).expect("writes"), "no regression");
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
        assert_eq!(args.tolerance.metric, crate::cli::MetricArg::P999);
        assert!(Cli::try_parse_from(["warren", "bench", "s.yaml", "--shard", "4/3"]).is_err());
        assert!(Cli::try_parse_from(["warren", "bench", "s.yaml", "--repeat", "0"]).is_err());
    }
}
