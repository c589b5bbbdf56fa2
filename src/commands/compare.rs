//! `warren compare BASELINE RESULT`: the CI gate on two result files.

use anyhow::Context;

use super::bench::compare_with;
use crate::cli::{CompareArgs, Format, GlobalArgs};
use crate::compare::{self, junit};
use crate::outcome::Outcome;
use crate::result::file;

/// Compares the result with its baseline: a table (or JSON), `--junit`, and
/// exit 3 on a regression.
pub fn run(global: &GlobalArgs, args: CompareArgs) -> anyhow::Result<Outcome> {
    let current = file::load(&args.result)?;
    let comparison = compare_with(&args.baseline, &current, &args.tolerance.tolerance())?;
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
