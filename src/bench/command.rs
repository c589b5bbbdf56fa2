//! The bench commands: `bench` and `compare`.

use std::time::SystemTime;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use crate::bench::actors::producer::ProducerReport;
use crate::bench::analytics::{self, Routes};
use crate::bench::report::progress::Reporter;
use crate::bench::report::table;
use crate::bench::result::{
    BrokerInfo, GeneratorInfo, RunResult, RunStatus, SCHEMA_VERSION, ScenarioInfo, per_million,
};
use crate::bench::{gate, machine, runner, scenario, setup};
use crate::cli::{BenchArgs, CompareArgs, Format, GlobalArgs};
use crate::outcome::Outcome;
use crate::target::{EmbeddedData, Target, redact_url};

/// `warren bench SCENARIO`
pub async fn bench(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<Outcome> {
    let mut has_result = false;
    let outcome = bench_run(global, args.clone(), &mut has_result).await;
    if let Err(error) = &outcome
        && !has_result
    {
        // --junit: a bench that failed before any run produced a result still
        // shows up in CI as a failed case.
        crate::gate::command::after_failed_start(&args, error)
            .with_context(|| format!("(after the bench failed: {error:#})"))?;
    }
    outcome
}

/// Runs the bench; sets `has_result` once a result exists, so the caller
/// knows whether `--junit` has been written already.
async fn bench_run(global: &GlobalArgs, args: BenchArgs, has_result: &mut bool) -> anyhow::Result<Outcome> {
    let mut scenario = scenario::load_file(&args.scenario)?;
    scenario.override_with(args.duration, args.warmup, args.rate_scale);
    scenario.override_drain(args.drain);
    crate::gate::command::preflight(&args)?;
    // --shard: this process runs one slice of every group (see crate::gate::shard).
    if let Some(shard) = args.shard {
        shard.apply(&mut scenario)?;
    }
    let named_broker = global.broker.as_deref().or(scenario.broker.as_deref());
    let vhost = crate::gate::shard::vhost(args.shard, args.vhost.as_deref(), named_broker);
    let topology = setup::load_topology(&scenario, vhost.as_deref())?;
    setup::check_references(&scenario, &topology)?;
    let routes = Routes::compute(&scenario, &topology.vhost);

    let broker = global.broker.as_deref().or(scenario.broker.as_deref());
    let data = if args.in_memory { EmbeddedData::InMemory } else { EmbeddedData::TempDir };
    let target = Target::resolve_with(broker, global.management.as_deref(), "embedded", data).await?;
    let quiet = global.quiet || global.format == Format::Json;
    let mut reporter = Reporter::for_stderr(quiet, scenario.warmup + scenario.duration);
    // --repeat: every completed run is kept and the median reported; a run that
    // fails, is interrupted or leaves its topology behind ends the series and is reported as is.
    let mut finished = Vec::new();
    let mut stopped = None;
    for run in 1..=args.repeat {
        if args.repeat > 1 {
            reporter.note(&format!("run {run} of {}", args.repeat));
        }
        match run_on(&target, &scenario, &args, &topology, &routes, &mut reporter).await {
            Ok((result, None)) if result.status == RunStatus::Completed => finished.push(result),
            other => {
                stopped = Some(other);
                break;
            }
        }
    }
    reporter.finish();
    target.close().await;
    let (result, cleanup_error) = match stopped {
        Some(other) => other?,
        None => (crate::gate::repeat::median(finished).context("no run finished")?, None),
    };
    *has_result = true;

    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&result).context("encoding the result")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing the result file {}", path.display()))?;
    }
    match global.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result).context("encoding the result")?),
        Format::Human => print!("{}", table::render(&result)),
    }
    if let Some(error) = cleanup_error {
        return Err(error.context("deleting the run's topology (use --keep-topology to leave it)"));
    }
    // --save-baseline, --baseline, --junit (crate::gate::command).
    let regression = match result.status {
        RunStatus::Completed => crate::gate::command::after_bench(global, &args, &result)?,
        _ => crate::gate::command::after_incomplete_bench(&args, &result)?,
    };
    let written = args.out.as_ref().map(|p| format!("; partial result written to {}", p.display())).unwrap_or_default();
    match result.status {
        RunStatus::Failed => bail!("the run failed: {}{written}", result.error.as_deref().unwrap_or("unknown error")),
        RunStatus::Interrupted => bail!("the run was interrupted{written}"),
        RunStatus::Completed if result.gates.iter().any(|g| !g.passed) => Ok(Outcome::GateFailed),
        RunStatus::Completed if regression.is_some() => Ok(Outcome::GateFailed),
        RunStatus::Completed => Ok(Outcome::Success),
    }
}

/// Applies the topology, runs, cleans up; the cleanup's error comes back
/// beside the result so the result is still printed and written.
async fn run_on(
    target: &Target,
    scenario: &scenario::Scenario,
    args: &BenchArgs,
    topology: &setup::BenchTopology,
    routes: &Routes,
    reporter: &mut Reporter,
) -> anyhow::Result<(RunResult, Option<anyhow::Error>)> {
    let amqp_url = with_vhost(&target.amqp_url, &topology.vhost_name)?;
    let (product, version) = machine::broker_product(&target.management).await;
    reporter.note(&format!("applying the topology to vhost `{}`", topology.vhost_name));
    let created = setup::apply(target, topology).await?;

    let interrupt = CancellationToken::new();
    let on_ctrl_c = interrupt.clone();
    let listener = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    // --start-at: shards begin together (crate::gate::shard).
    let late = match args.start_at {
        Some(at) => crate::gate::shard::wait_until(at).await,
        None => None,
    };
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let cpu_before = machine::cpu_seconds();
    let own = std::mem::replace(reporter, Reporter::Silent);
    let (output, own) =
        runner::run_on_own_thread(scenario.clone(), amqp_url.clone(), own, interrupt, routes.clone()).await;
    *reporter = own;
    let cpu = cpu_before.and_then(|before| machine::cpu_seconds().map(|after| after - before));
    listener.abort();

    let cleanup = if args.keep_topology {
        Ok(())
    } else {
        reporter.note("deleting what the run created");
        setup::cleanup(target, &created).await
    };
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            if let Err(cleanup_error) = cleanup {
                return Err(error.context(format!("(and deleting the run's topology failed: {cleanup_error:#})")));
            }
            return Err(error);
        }
    };

    let analysis = analytics::analyse(scenario, &output, routes);
    let gates = gate::evaluate(&scenario.gates, &analysis.summary);
    let status = if output.failure.is_some() {
        RunStatus::Failed
    } else if output.interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Completed
    };
    let window_messages = window_messages(&output);
    // CPU covers the whole run (warmup and drain too), so it is divided by every delivery of the run.
    let consumed: u64 = analysis.time_series.iter().map(|s| s.delivered.saturating_sub(s.redelivered)).sum();
    let scenario_dir =
        args.scenario.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let result = RunResult {
        schema_version: SCHEMA_VERSION,
        warren_version: env!("CARGO_PKG_VERSION").to_owned(),
        status,
        error: output.failure.clone(),
        started_at,
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: args.scenario.display().to_string(),
            duration_s: scenario.duration.as_secs_f64(),
            warmup_s: scenario.warmup.as_secs_f64(),
            drain_s: scenario.drain.as_secs_f64(),
            rate_scale: args.rate_scale,
            vhost: topology.vhost_name.clone(),
            document: scenario.document.clone(),
        },
        broker: BrokerInfo {
            url: if target.embedded.is_some() { "embedded".to_owned() } else { redact_url(&target.amqp_url) },
            embedded: target.embedded.is_some(),
            product,
            version,
        },
        machine: machine::machine(),
        git_revision: machine::git_revision(scenario_dir),
        generator: GeneratorInfo {
            limited: !analysis.generator_reasons.is_empty(),
            reasons: analysis.generator_reasons,
            cpu_seconds: cpu,
            cpu_seconds_per_million: per_million(cpu, consumed),
            window_cpu_seconds: output.window_cpu,
            window_messages: Some(window_messages),
            window_cpu_seconds_per_million: per_million(output.window_cpu, window_messages),
            busiest_thread_share: output.busiest_thread,
        },
        summary: analysis.summary,
        drain: analysis.drain,
        producers: analysis.producers,
        consumers: analysis.consumers,
        gates,
        time_series: analysis.time_series,
        histograms: analysis.histograms,
        warnings: crate::gate::shard::with_lateness(routes.warnings(scenario), late),
        repeat: None,
        shard: crate::gate::shard::info(args.shard),
        merged: None,
    };
    Ok((result, cleanup.err()))
}

/// Messages the measured window moved ([`GeneratorInfo::window_messages`]).
fn window_messages(output: &runner::RunOutput) -> u64 {
    let published: u64 = output.producers.iter().map(ProducerReport::measured).sum();
    let delivered: u64 = output.consumers.iter().map(|c| c.delivered_in_window).sum();
    published.max(delivered)
}

/// The AMQP URL with its path set to `vhost`.
fn with_vhost(amqp_url: &str, vhost: &str) -> anyhow::Result<String> {
    let mut url =
        url::Url::parse(amqp_url).with_context(|| format!("the broker URL {} is not a URL", redact_url(amqp_url)))?;
    let encoded = percent_encoding::utf8_percent_encode(vhost, percent_encoding::NON_ALPHANUMERIC).to_string();
    url.set_path(&format!("/{encoded}"));
    Ok(url.to_string())
}

/// `warren compare BASELINE RESULT`: the CI gate lives in [`crate::gate`].
pub fn compare(global: &GlobalArgs, args: CompareArgs) -> anyhow::Result<Outcome> {
    crate::gate::command::compare_command(global, args)
}
