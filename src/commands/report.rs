//! `warren report`: an HTML report, several runs side by side, or a merge of shards.

use std::path::Path;

use anyhow::Context;

use crate::cli::{Format, GlobalArgs, MergeArgs, ReportAction, ReportArgs};
use crate::compare::{self, Comparison};
use crate::outcome::{Outcome, Usage};
use crate::report::{html, merge, runs};
use crate::result::RunResult;
use crate::result::file::load as load_result;

fn load_all(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<(String, RunResult)>> {
    files.iter().map(|path| Ok((path.display().to_string(), load_result(path)?))).collect()
}

/// `warren report …`
pub fn run(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<Outcome> {
    if let Some(ReportAction::Merge(merge_args)) = args.action {
        return merge_command(global, merge_args);
    }
    // Usage first: nothing is read for a command line that cannot run.
    if args.html.is_some() && args.files.len() != 1 {
        return Err(Usage(format!(
            "--html takes one result file (and --baseline for a second one to overlay), not {}",
            args.files.len()
        ))
        .into());
    }
    if args.html.is_none() && args.baseline.is_some() {
        return Err(Usage(
            "--baseline overlays a run in the HTML report: use it with --html (or `warren compare` to judge a run)"
                .to_owned(),
        )
        .into());
    }
    let results = load_all(&args.files)?;
    if let Some(path) = &args.html {
        let (_, result) = &results[0];
        let baseline = args.baseline.as_deref().map(load_result).transpose()?;
        let tolerance = args.tolerance.tolerance();
        let comparison = baseline.as_ref().map(|b| compare::compare(b, result, &tolerance).map_err(|e| e.to_string()));
        let comparison = comparison.as_ref().map(|c| c.as_ref().map_err(Clone::clone));
        write_html(path, result, baseline.as_ref(), comparison)?;
        if !global.quiet {
            eprintln!("wrote {}", path.display());
        }
        return Ok(Outcome::Success);
    }
    let rows = runs::rows(&results);
    match global.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows).context("encoding the table")?),
        Format::Human => print!("{}", runs::render(&rows)),
    }
    Ok(Outcome::Success)
}

fn write_html(
    path: &Path,
    result: &RunResult,
    baseline: Option<&RunResult>,
    comparison: Option<Result<&Comparison, String>>,
) -> anyhow::Result<()> {
    std::fs::write(path, html::render(result, baseline, comparison))
        .with_context(|| format!("writing the HTML report {}", path.display()))
}

/// `warren report merge FILES -o OUT`
fn merge_command(global: &GlobalArgs, args: MergeArgs) -> anyhow::Result<Outcome> {
    let results = load_all(&args.files)?;
    let merged = merge::merge(&results).context("merging the result files")?;
    let json = serde_json::to_string_pretty(&merged).context("encoding the merged result")?;
    std::fs::write(&args.output, json + "\n")
        .with_context(|| format!("writing the merged result {}", args.output.display()))?;
    if !global.quiet {
        eprintln!(
            "merged {} results of `{}` into {}: {} published, {} consumed",
            results.len(),
            merged.scenario.name,
            args.output.display(),
            merged.summary.published,
            merged.summary.consumed
        );
    }
    Ok(Outcome::Success)
}
