//! Command-line arguments. Parsing only: every command runs in its own module.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Declare, converge and load-test RabbitMQ topologies.
#[derive(Debug, Parser)]
#[command(name = "warren", version, about, propagate_version = true, after_help = crate::outcome::EXIT_CODES)]
pub struct Cli {
    /// Options every command shares.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command shares.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The broker: an `amqp://` or `amqps://` URL (a comma-separated list for
    /// a cluster's nodes), or `embedded` for an in-process broker on free loopback ports.
    #[arg(long, global = true, env = "WARREN_BROKER", hide_env_values = true)]
    pub broker: Option<String>,
    /// The management HTTP API (a comma-separated list for a cluster's nodes),
    /// when not at each broker host's port 15672 with the broker's credentials.
    #[arg(long, global = true, env = "WARREN_MANAGEMENT", hide_env_values = true)]
    pub management: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// No progress output.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and colours for people.
    Human,
    /// One JSON document on stdout, for scripts.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan, show the plan and converge the broker to a topology file.
    Apply(ApplyArgs),
    /// Show what `apply` would change; exits 2 when changes are pending.
    Plan(PlanArgs),
    /// Write the broker's current state as a topology file.
    Export(ExportArgs),
    /// Check topology or scenario files without a broker.
    Validate(ValidateArgs),
    /// Run a load-test scenario and report throughput and latency.
    Bench(BenchArgs),
    /// Compare a result file against a baseline; exits 3 on a regression.
    Compare(CompareArgs),
    /// Report on result files: an HTML report, a table of several runs, or a merge of shards.
    Report(ReportArgs),
    /// Run the embedded broker as a server.
    Broker(BrokerArgs),
    /// Print a JSON Schema for editors and CI linting.
    Schema(SchemaArgs),
}

/// Options of `plan` and `apply`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// The topology file (YAML, or a RabbitMQ definitions export in JSON).
    pub topology: PathBuf,
    /// Also delete exchanges, queues, bindings and policies of the file's
    /// vhosts that the file does not declare.
    #[arg(long)]
    pub prune: bool,
}

/// Options of `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// What to plan.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Allow replacing or deleting queues that hold messages or have consumers.
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Apply without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show the plan and the guards' verdicts, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Only this vhost (repeatable); all vhosts by default.
    #[arg(long)]
    pub vhost: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Include users' password hashes (to move users to another broker).
    /// Without it users are exported without a password, which `apply`
    /// reads as "keep the stored one".
    #[arg(long)]
    pub include_password_hashes: bool,
}

/// Options of `validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Topology or scenario files; the kind is detected from the content.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Check files whose secrets are not in this environment: an unset
    /// `${VAR}` without a default stands for the text `unset-VAR` instead of
    /// being an error. Everything else is checked as usual.
    #[arg(long)]
    pub allow_unset: bool,
}

/// Options of `bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Write the result file here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the scenario's measured duration (e.g. `5s`).
    #[arg(long, value_parser = parse_positive_duration)]
    pub duration: Option<std::time::Duration>,
    /// Override the scenario's warmup (e.g. `1s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<std::time::Duration>,
    /// Override how long consumers may finish after producers stop (e.g. `30s`);
    /// the drain ends as soon as every expected message arrived.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub drain: Option<std::time::Duration>,
    /// Multiply every producer rate by this factor.
    #[arg(long, value_parser = parse_positive_factor)]
    pub rate_scale: Option<f64>,
    /// The port of RabbitMQ's stream protocol on the broker's hosts, for groups with
    /// `protocol: stream`: one for every node, or one per broker URL, comma-separated
    /// (default: the scenario's `stream_port`, else 5552).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..))]
    pub stream_port: Option<Vec<u16>>,
    /// Keep the queues and exchanges the run created.
    #[arg(long)]
    pub keep_topology: bool,
    /// Run in this vhost instead of the one the scenario's topology declares
    /// (created when missing, and then deleted afterwards unless --keep-topology).
    #[arg(long)]
    pub vhost: Option<String>,
    /// Compare the run against this baseline result file (exit 3 on a regression).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Also write the result here, to serve as a later run's baseline.
    #[arg(long)]
    pub save_baseline: Option<PathBuf>,
    /// With the embedded broker: keep messages in memory only. By default the in-process
    /// broker runs on a temporary data directory, so persistent messages cost what they cost.
    #[arg(long)]
    pub in_memory: bool,
    /// Run the scenario N times and report the median run and the spread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Write a JUnit XML report (one test case per gate and per compared figure).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Run only the K-th of N equal slices of every group (`2/4`), for load
    /// generated from several machines; merge the results with `warren report merge`.
    #[arg(long, value_name = "K/N", value_parser = crate::bench::shard::Shard::parse)]
    pub shard: Option<crate::bench::shard::Shard>,
    /// Start producers at this wall-clock time (RFC 3339, e.g. `2026-01-01T12:00:00Z`,
    /// or Unix seconds), so shards begin together. Not with --repeat: later runs could not begin together.
    #[arg(long, value_parser = crate::bench::shard::parse_start_at, conflicts_with = "repeat")]
    pub start_at: Option<std::time::SystemTime>,
    /// What counts as a regression against `--baseline`.
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
}

/// What counts as a regression when a run is compared with a baseline.
#[derive(Debug, Clone, Args)]
pub struct ToleranceArgs {
    /// Largest accepted drop of throughput (msgs/s), as a percentage.
    #[arg(long, default_value = "10%", value_parser = crate::result::tolerance::parse_percent)]
    pub max_throughput_drop: f64,
    /// Largest accepted rise of latency, as a percentage.
    #[arg(long, default_value = "20%", value_parser = crate::result::tolerance::parse_percent)]
    pub max_latency_rise: f64,
    /// A latency rise smaller than this is noise, whatever its percentage.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    pub min_latency_rise: std::time::Duration,
    /// Which latency percentile to compare.
    #[arg(long, value_enum, default_value_t = MetricArg::P99)]
    pub metric: MetricArg,
}

/// A latency percentile (`--metric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest value.
    Max,
}

/// Options of `compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The baseline result file.
    pub baseline: PathBuf,
    /// The result file to judge.
    pub result: PathBuf,
    /// What counts as a regression.
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    /// Write a JUnit XML report (one test case per gate and per compared figure).
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

/// Options of `report`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    /// `merge`, or nothing to report on the files.
    #[command(subcommand)]
    pub action: Option<ReportAction>,
    /// Result files: one for an HTML report, several for a comparison table.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write a self-contained HTML report of the result file (give one) here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Overlay this baseline result in the HTML report, with the verdicts of `compare`.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// What counts as a regression against `--baseline`.
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
}

/// What `report` does besides reporting.
#[derive(Debug, Clone, Subcommand)]
pub enum ReportAction {
    /// Merge the results of shards (`bench --shard K/N`) into one, exactly.
    Merge(MergeArgs),
}

/// Options of `report merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The shards' result files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Where to write the merged result.
    #[arg(long, short)]
    pub output: PathBuf,
}

/// Options of `broker`.
#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// AMQP listen address.
    #[arg(long, default_value = "127.0.0.1:5672")]
    pub amqp: SocketAddr,
    /// Management HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:15672")]
    pub http: SocketAddr,
    /// Keep durable definitions, and the persistent messages of durable queues, here: what the
    /// broker confirmed survives a restart or a crash (without it, everything is in memory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// With a data directory: block publishers while its disk has less free space than this
    /// (RabbitMQ's `disk_free_limit.absolute`), in bytes or with a unit: 50MB, 1GiB.
    #[arg(long, default_value = "50MB", value_parser = parse_bytes)]
    pub disk_free_limit: u64,
}

/// A size in bytes, with an optional unit as RabbitMQ writes them (`kB`, `MB`, `GB` are powers
/// of 1000; `KiB`, `MiB`, `GiB` of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a size (e.g. 50MB, 1GiB, 1000000)"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?}: use kB, MB, GB, KiB, MiB or GiB")),
    };
    number.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

/// Options of `schema`.
#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Which file format.
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

/// A file format with a JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// Topology files.
    Topology,
    /// Scenario files.
    Scenario,
}

/// A duration longer than zero (`--duration`).
fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be longer than 0s".to_owned());
    }
    Ok(duration)
}

/// A finite number above zero (`--rate-scale`).
fn parse_positive_factor(text: &str) -> Result<f64, String> {
    let factor: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !(factor.is_finite() && factor > 0.0) {
        return Err("must be a positive number".to_owned());
    }
    Ok(factor)
}

impl ToleranceArgs {
    /// The tolerance these flags ask for.
    pub fn tolerance(&self) -> crate::result::tolerance::Tolerance {
        use crate::result::tolerance::{Metric, Tolerance};
        Tolerance {
            max_throughput_drop: self.max_throughput_drop,
            max_latency_rise: self.max_latency_rise,
            min_latency_rise_us: self.min_latency_rise.as_secs_f64() * 1e6,
            metric: match self.metric {
                MetricArg::P50 => Metric::P50,
                MetricArg::P90 => Metric::P90,
                MetricArg::P99 => Metric::P99,
                MetricArg::P999 => Metric::P999,
                MetricArg::Max => Metric::Max,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_read_as_rabbitmq_writes_them() {
        assert_eq!(parse_bytes("1000000"), Ok(1_000_000));
        assert_eq!(parse_bytes("50MB"), Ok(50_000_000));
        assert_eq!(parse_bytes("2kB"), Ok(2000));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("50 furlongs").expect_err("unknown unit").contains("unknown unit"));
        assert!(parse_bytes("MB").expect_err("no number").contains("not a size"));
        assert!(parse_bytes("99999999999GiB").expect_err("overflow").contains("too large"));
    }
}
