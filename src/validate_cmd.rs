//! `warren validate FILE...` and `warren schema topology|scenario`: checks
//! and schemas that need no broker.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::cli::{Format, GlobalArgs, SchemaArgs, SchemaKind, ValidateArgs};
use crate::outcome::Outcome;
use crate::topology::Topology;
use crate::topology::diagnostic::{Diagnostic, LoadError};
use crate::topology::load::load_file;

/// `warren validate FILE...`: every file is checked and every problem
/// reported (`error: file:line:column: message` on stderr); exit 1 when any
/// file has one.
pub fn validate(global: &GlobalArgs, args: ValidateArgs) -> anyhow::Result<Outcome> {
    let mut reports = Vec::new();
    for file in &args.files {
        reports.push((file.as_path(), load_file(file)));
    }
    let failed = reports.iter().filter(|(_, result)| result.is_err()).count();
    match global.format {
        Format::Human => print_human(&reports, global.quiet),
        Format::Json => print_json(&reports)?,
    }
    if failed > 0 {
        if reports.len() > 1 && global.format == Format::Human {
            eprintln!("{failed} of {} files are invalid", reports.len());
        }
        return Ok(Outcome::Error);
    }
    Ok(Outcome::Success)
}

fn print_human(reports: &[(&Path, Result<Topology, LoadError>)], quiet: bool) {
    for (file, result) in reports {
        match result {
            Ok(topology) if !quiet => println!("{}: ok ({})", file.display(), summary(topology)),
            Ok(_) => {}
            Err(LoadError::Invalid { diagnostics }) => {
                for diagnostic in diagnostics {
                    eprintln!("error: {diagnostic}");
                }
            }
            Err(error) => eprintln!("error: {}", error_ref(error)),
        }
    }
}

/// An error that is not a list of diagnostics (an unreadable file), with its cause.
fn error_ref(error: &LoadError) -> String {
    match error {
        LoadError::Read { path, source } => format!("cannot read topology file {}: {source}", path.display()),
        LoadError::Invalid { .. } => error.to_string(),
    }
}

fn print_json(reports: &[(&Path, Result<Topology, LoadError>)]) -> anyhow::Result<()> {
    let files: Vec<_> = reports
        .iter()
        .map(|(file, result)| {
            let problems: Vec<_> = match result {
                Ok(_) => Vec::new(),
                Err(LoadError::Invalid { diagnostics }) => diagnostics.iter().map(diagnostic_json).collect(),
                Err(error) => vec![json!({ "line": null, "column": null, "message": error_ref(error) })],
            };
            json!({ "file": file.display().to_string(), "valid": result.is_ok(), "problems": problems })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({ "files": files })).context("writing the report as JSON")?;
    println!("{text}");
    Ok(())
}

fn diagnostic_json(diagnostic: &Diagnostic) -> serde_json::Value {
    json!({
        "line": diagnostic.pos.map(|p| p.line),
        "column": diagnostic.pos.map(|p| p.column),
        "message": diagnostic.message,
    })
}

fn summary(topology: &Topology) -> String {
    let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
    let vhosts = topology.vhosts.values();
    let exchanges = vhosts.clone().map(|v| v.exchanges.len()).sum();
    let queues = vhosts.clone().map(|v| v.queues.len()).sum();
    let bindings = vhosts.clone().map(|v| v.bindings.len()).sum();
    let policies = vhosts.map(|v| v.policies.len() + v.operator_policies.len()).sum();
    [
        count(topology.vhosts.len(), "vhost"),
        count(exchanges, "exchange"),
        count(queues, "queue"),
        count(bindings, "binding"),
        count(policies, "policy").replace("policys", "policies"),
        count(topology.users.len(), "user"),
    ]
    .join(", ")
}

/// `warren schema topology|scenario`: the JSON Schema on stdout.
pub fn schema(args: SchemaArgs) -> anyhow::Result<Outcome> {
    let schema = match args.kind {
        SchemaKind::Topology => crate::topology::schema::json_schema(),
        SchemaKind::Scenario => anyhow::bail!("the scenario schema is not available in this build"),
    };
    let text = serde_json::to_string_pretty(&schema).context("writing the schema as JSON")?;
    println!("{text}");
    Ok(Outcome::Success)
}
