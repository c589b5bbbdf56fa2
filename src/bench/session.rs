//! One `warren bench` from validated options to a result: the scenario's
//! topology applied, the run (or `--repeat` runs), the cleanup, and the
//! result file's document assembled from what the actors measured.
//!
//! ```text
//! BenchOptions ──▶ run_series ──▶ run_once ×N ──▶ setup::apply ─▶ runner ─▶ analytics ─▶ RunResult
//!                       │                      └─ setup::cleanup (unless keep_topology)
//!                       └─ repeat::median of the completed runs
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::actors::producer::ProducerReport;
use super::analytics;
use super::progress::Reporter;
use super::routing::Routes;
use super::scenario::Scenario;
use super::setup::BenchTopology;
use super::shard::Shard;
use super::{broker_view, host, repeat, runner, setup, shard, thresholds};
use crate::management::Management;
use crate::result::{BrokerInfo, GeneratorInfo, RunResult, RunStatus, SCHEMA_VERSION, ScenarioInfo, per_million};
use crate::target::{Target, redact_url};

/// A bench as the command line asked for it, checked before anything runs:
/// the scenario loaded with every override applied (duration, warmup,
/// drain, rate scale, shard), its topology and routes.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The scenario, overrides and shard applied.
    pub scenario: Scenario,
    /// The scenario file as given, for the result.
    pub scenario_file: PathBuf,
    /// The topology the run applies, in the vhost it runs in.
    pub topology: BenchTopology,
    /// Where each producer's messages are expected.
    pub routes: Routes,
    /// `--rate-scale`, recorded in the result.
    pub rate_scale: Option<f64>,
    /// `--shard`.
    pub shard: Option<Shard>,
    /// `--start-at`.
    pub start_at: Option<SystemTime>,
    /// `--repeat`: how many runs.
    pub repeat: u32,
    /// `--keep-topology`.
    pub keep_topology: bool,
}

/// How a series of runs ended: the result to report, and the error of a
/// cleanup that failed after it (the result is still printed and written).
pub struct Finished {
    /// The run's result (the median run with `--repeat`).
    pub result: RunResult,
    /// Deleting what the run created failed.
    pub cleanup_error: Option<anyhow::Error>,
}

/// Runs the series `options.repeat` asks for against `target`. Every
/// completed run is kept and the median reported; a run that fails, is
/// interrupted or leaves its topology behind ends the series and is
/// reported as it is.
pub async fn run_series(target: &Target, options: &BenchOptions, reporter: &mut Reporter) -> anyhow::Result<Finished> {
    let mut finished = Vec::new();
    for run in 1..=options.repeat {
        if options.repeat > 1 {
            reporter.note(&format!("run {run} of {}", options.repeat));
        }
        let once = run_once(target, options, reporter).await?;
        if once.result.status != RunStatus::Completed || once.cleanup_error.is_some() {
            return Ok(once);
        }
        finished.push(once.result);
    }
    let result = repeat::median(finished).context("no run finished")?;
    Ok(Finished { result, cleanup_error: None })
}

/// Applies the topology, runs, cleans up, and assembles the result.
async fn run_once(target: &Target, options: &BenchOptions, reporter: &mut Reporter) -> anyhow::Result<Finished> {
    let BenchOptions { scenario, topology, routes, .. } = options;
    let amqp_urls =
        target.amqp_urls.iter().map(|url| with_vhost(url, &topology.vhost_name)).collect::<anyhow::Result<Vec<_>>>()?;
    runner::stream_endpoint(scenario, &amqp_urls)?;
    let management = Arc::new(Management::new(&target.management)?);
    let (product, version) = management.product().await;
    reporter.note(&format!("applying the topology to vhost `{}`", topology.vhost_name));
    let created = setup::apply(target, topology).await?;

    let interrupt = CancellationToken::new();
    let on_ctrl_c = interrupt.clone();
    let listener = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    // --start-at: shards begin together (see `shard`).
    let late = match options.start_at {
        Some(at) => shard::wait_until(at).await,
        None => None,
    };
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let cpu_before = host::cpu::cpu_seconds();
    let sampler = broker_view::Sampler::start(management, topology.vhost_name.clone(), target.embedded.is_some());
    let own = std::mem::replace(reporter, Reporter::Silent);
    let (output, own) = runner::run_on_own_thread(scenario.clone(), amqp_urls, own, interrupt, routes.clone()).await;
    *reporter = own;
    let cpu = cpu_before.and_then(|before| host::cpu::cpu_seconds().map(|after| after - before));
    listener.abort();
    let broker_view = match &output {
        Ok(output) => Some(sampler.finish(&output.clock).await),
        Err(_) => None,
    };

    let cleanup = if options.keep_topology {
        Ok(())
    } else {
        reporter.note("deleting what the run created");
        setup::cleanup(target, &created).await
    };
    let (output, cleanup) = match (output, cleanup) {
        (Ok(output), cleanup) => (output, cleanup),
        (Err(error), Err(cleanup_error)) => {
            return Err(error.context(format!("(and deleting the run's topology failed: {cleanup_error:#})")));
        }
        (Err(error), Ok(())) => return Err(error),
    };
    let broker = BrokerInfo {
        url: if target.embedded.is_some() {
            "embedded".to_owned()
        } else {
            target.amqp_urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>().join(",")
        },
        embedded: target.embedded.is_some(),
        product,
        version,
    };
    let mut result = assemble(options, &output, Measured { started_at, cpu, late, broker });
    if let Some((view, warning)) = broker_view {
        result.broker_view = view;
        result.warnings.extend(warning);
    }
    Ok(Finished { result, cleanup_error: cleanup.err() })
}

/// What the session measured around the runner.
struct Measured {
    started_at: String,
    /// Whole-process CPU seconds over the run.
    cpu: Option<f64>,
    /// How late producers started after `--start-at`.
    late: Option<std::time::Duration>,
    broker: BrokerInfo,
}

/// The result document of one run.
fn assemble(options: &BenchOptions, output: &runner::RunOutput, measured: Measured) -> RunResult {
    let BenchOptions { scenario, routes, topology, .. } = options;
    let analysis = analytics::analyse(scenario, output, routes);
    let gates = thresholds::evaluate(&scenario.gates, &analysis.summary);
    let status = if output.failure.is_some() {
        RunStatus::Failed
    } else if output.interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Completed
    };
    let window_messages = window_messages(output);
    // CPU covers the whole run (warmup and drain too), so it is divided by every delivery of the run.
    let consumed: u64 = analysis.time_series.iter().map(|s| s.delivered.saturating_sub(s.redelivered)).sum();
    let scenario_dir =
        options.scenario_file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let cpu = measured.cpu;
    RunResult {
        schema_version: SCHEMA_VERSION,
        warren_version: env!("CARGO_PKG_VERSION").to_owned(),
        status,
        error: output.failure.clone(),
        started_at: measured.started_at,
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: options.scenario_file.display().to_string(),
            duration_s: scenario.duration.as_secs_f64(),
            measured_s: Some(output.clock.window_ns(output.producers_stopped_ns) as f64 / 1e9),
            warmup_s: scenario.warmup.as_secs_f64(),
            drain_s: scenario.drain.as_secs_f64(),
            rate_scale: options.rate_scale,
            vhost: topology.vhost_name.clone(),
            document: scenario.document.clone(),
        },
        broker: measured.broker,
        machine: host::machine(),
        git_revision: host::git_revision(scenario_dir),
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
        broker_pace: analysis.broker_pace,
        summary: analysis.summary,
        drain: analysis.drain,
        producers: analysis.producers,
        consumers: analysis.consumers,
        gates,
        outages: analysis.outages,
        time_series: analysis.time_series,
        histograms: analysis.histograms,
        warnings: shard::with_lateness(routes.warnings(scenario), measured.late),
        repeat: None,
        shard: shard::info(options.shard),
        merged: None,
        broker_view: None,
    }
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
