//! `warren validate FILE...`: topology and scenario files checked without a
//! broker, every problem with its file, line and column.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use super::print_stdout;
use crate::bench::scenario::{self, ScenarioError};
use crate::cli::{Format, GlobalArgs, ValidateArgs};
use crate::outcome::Outcome;
use crate::topology::Topology;
use crate::topology::load::diagnostic::{Diagnostic, LoadError};
use crate::topology::load::env::{Env, ProcessEnv};

/// `warren validate FILE...`: every file is checked and every problem
/// reported (`error: file:line:column: message` on stderr); exit 1 when any
/// file has one. Topology and scenario files are told apart by content; a
/// scenario's topology is checked with it.
pub fn run(global: &GlobalArgs, args: ValidateArgs) -> anyhow::Result<Outcome> {
    let lenient = LenientEnv;
    let env: &dyn Env = if args.allow_unset { &lenient } else { &ProcessEnv };
    let reports: Vec<Report> = args.files.iter().map(|file| check(file, env)).collect();
    let failed = reports.iter().filter(|report| report.outcome.is_err()).count();
    match global.format {
        Format::Human => {
            for report in &reports {
                match &report.outcome {
                    Ok(summary) if !global.quiet => {
                        print_stdout(&format!("{}: ok ({summary})", report.file.display()))?
                    }
                    Ok(_) => {}
                    Err(problems) => problems.iter().for_each(|problem| eprintln!("error: {}", problem.rendered)),
                }
            }
            if failed > 0 && reports.len() > 1 {
                eprintln!("{failed} of {} files are invalid", reports.len());
            }
        }
        Format::Json => {
            let files: Vec<_> = reports.iter().map(Report::to_json).collect();
            let text =
                serde_json::to_string_pretty(&json!({ "files": files })).context("writing the report as JSON")?;
            print_stdout(&text)?;
        }
    }
    Ok(if failed > 0 { Outcome::Error } else { Outcome::Success })
}

/// What checking one file found.
struct Report {
    file: PathBuf,
    kind: &'static str,
    /// A one-line summary, or every problem.
    outcome: Result<String, Vec<Problem>>,
}

/// One problem, with its position when known.
struct Problem {
    line: Option<usize>,
    column: Option<usize>,
    message: String,
    /// `file:line:column: message`, as printed.
    rendered: String,
}

impl From<&Diagnostic> for Problem {
    fn from(diagnostic: &Diagnostic) -> Problem {
        Problem {
            line: diagnostic.pos.map(|p| p.line),
            column: diagnostic.pos.map(|p| p.column),
            message: diagnostic.message.clone(),
            rendered: diagnostic.to_string(),
        }
    }
}

impl Problem {
    /// A problem without a position; `text` names the file itself.
    fn plain(text: String) -> Problem {
        Problem { line: None, column: None, message: text.clone(), rendered: text }
    }
}

impl Report {
    fn to_json(&self) -> serde_json::Value {
        let problems: Vec<_> = match &self.outcome {
            Ok(_) => Vec::new(),
            Err(problems) => {
                problems.iter().map(|p| json!({ "line": p.line, "column": p.column, "message": p.message })).collect()
            }
        };
        json!({
            "file": self.file.display().to_string(),
            "kind": self.kind,
            "valid": self.outcome.is_ok(),
            "problems": problems,
        })
    }
}

/// The process environment, with `unset-NAME` for what it lacks (`--allow-unset`).
struct LenientEnv;

impl Env for LenientEnv {
    fn var(&self, name: &str) -> Option<String> {
        Some(ProcessEnv.var(name).unwrap_or_else(|| format!("unset-{name}")))
    }
}

fn check(file: &Path, env: &dyn Env) -> Report {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            let problem = Problem::plain(format!("cannot read {}: {error}", file.display()));
            return Report { file: file.to_path_buf(), kind: "unknown", outcome: Err(vec![problem]) };
        }
    };
    if scenario::load::looks_like_scenario(&text) {
        return Report { file: file.to_path_buf(), kind: "scenario", outcome: check_scenario(file, &text) };
    }
    let name = file.display().to_string();
    let outcome =
        crate::topology::load::load_str_with_env(&name, &text, env).map(|t| summary(&t)).map_err(|e| problems(&e));
    Report { file: file.to_path_buf(), kind: "topology", outcome }
}

fn problems(error: &LoadError) -> Vec<Problem> {
    match error {
        LoadError::Invalid { diagnostics } => diagnostics.iter().map(Problem::from).collect(),
        LoadError::Read { path, source } => vec![Problem::plain(format!("cannot read {}: {source}", path.display()))],
    }
}

/// A scenario, then the topology it names or holds.
fn check_scenario(file: &Path, text: &str) -> Result<String, Vec<Problem>> {
    let mut scenario = scenario::load_str(file, text).map_err(scenario_problems)?;
    let topology = crate::bench::setup::load_topology(&scenario, None).map_err(|error| {
        // The topology's own diagnostics point into its file; other
        // problems (e.g. more than one vhost) concern the scenario.
        match error.chain().find_map(|cause| cause.downcast_ref::<LoadError>()) {
            Some(load) => problems(load),
            None => vec![Problem::plain(format!("{}: {error:#}", file.display()))],
        }
    })?;
    // What `bench` checks before it contacts a broker: references, and what streams ask.
    crate::bench::setup::check_references(&scenario, &topology).map_err(scenario_problems)?;
    crate::bench::setup::check_streams(&mut scenario, &topology).map_err(scenario_problems)?;
    let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
    Ok(format!(
        "scenario `{}`: {}, {} in vhost `{}`",
        scenario.name,
        count(scenario.producers.len(), "producer group"),
        count(scenario.consumers.len(), "consumer group"),
        topology.vhost_name
    ))
}

fn scenario_problems(error: ScenarioError) -> Vec<Problem> {
    match error {
        ScenarioError::Invalid { path, position, message } => {
            let pos = position.map(|(line, column)| crate::topology::load::diagnostic::Pos { line, column });
            vec![Problem::from(&Diagnostic { file: path.display().to_string(), pos, message })]
        }
        read @ ScenarioError::Read { .. } => vec![Problem::plain(format!("{:#}", anyhow::Error::new(read)))],
    }
}

fn summary(topology: &Topology) -> String {
    let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let vhosts = topology.vhosts.values();
    let exchanges = vhosts.clone().map(|v| v.exchanges.len()).sum();
    let queues = vhosts.clone().map(|v| v.queues.len()).sum();
    let bindings = vhosts.clone().map(|v| v.bindings.len()).sum();
    let policies = vhosts.map(|v| v.policies.len() + v.operator_policies.len()).sum();
    [
        count(topology.vhosts.len(), "vhost", "vhosts"),
        count(exchanges, "exchange", "exchanges"),
        count(queues, "queue", "queues"),
        count(bindings, "binding", "bindings"),
        count(policies, "policy", "policies"),
        count(topology.users.len(), "user", "users"),
    ]
    .join(", ")
}
