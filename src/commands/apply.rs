//! `warren apply TOPOLOGY`: plan, show the plan, guard against data loss, ask
//! (or `--yes`), and converge the broker.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

use super::plan::{Planned, make_plan, print_plan};
use crate::cli::{ApplyArgs, Format, GlobalArgs};
use crate::outcome::Outcome;
use crate::topology::apply::{self, Progress};
use crate::topology::guard::{self, DataLossRefused};

/// `warren apply TOPOLOGY`
pub async fn run(global: &GlobalArgs, args: ApplyArgs) -> anyhow::Result<Outcome> {
    let Planned { target, management, state, plan } = make_plan(global, &args.plan).await?;
    let refusals = guard::check(&management, Some(&target.amqp_url), &plan, &state.topology)
        .await
        .context("reading the message counts of the queues the plan would drop")?;
    let refused = !refusals.is_empty() && !args.allow_data_loss;
    let verdicts = serde_json::json!({ "data_loss": refusals, "refused": refused, "dry_run": args.dry_run });
    print_plan(global, &plan, verdicts)?;

    if plan.is_empty() {
        target.close().await;
        return Ok(Outcome::Success);
    }
    if args.dry_run {
        if global.format == Format::Human {
            if refusals.is_empty() {
                eprintln!("dry run: no change would lose data; nothing was changed");
            } else {
                let verdict = if args.allow_data_loss { "allowed by --allow-data-loss" } else { "would be refused" };
                eprintln!("dry run: nothing was changed; these changes lose data ({verdict}):");
                for line in &refusals {
                    eprintln!("  {line}");
                }
            }
        }
        target.close().await;
        return Ok(if refused { Outcome::Refused } else { Outcome::Success });
    }
    if refused {
        target.close().await;
        return Err(DataLossRefused { reasons: refusals }.into());
    }
    if !args.yes && !confirm(plan.changes.len())? {
        target.close().await;
        eprintln!("nothing was changed");
        return Ok(Outcome::Error);
    }

    let progress = Progress::for_plan(plan.changes.len(), global.quiet);
    let result = apply::execute(&management, &plan, &progress).await;
    target.close().await;
    match result {
        Ok(report) => {
            if global.format == Format::Human && !global.quiet {
                eprintln!("applied {} change(s)", report.applied);
            }
            Ok(Outcome::Success)
        }
        Err(error) => {
            const SHOWN: usize = 20;
            eprintln!("not done:");
            for line in error.not_done.iter().take(SHOWN) {
                eprintln!("  {line}");
            }
            if error.not_done.len() > SHOWN {
                eprintln!("  … and {} more", error.not_done.len() - SHOWN);
            }
            Err(error.into())
        }
    }
}

/// Asks on the terminal; without one, refuses and says why.
fn confirm(changes: usize) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "not applying {changes} change(s) without confirmation: standard input is not a terminal \
             (pass --yes to apply, or --dry-run to only look)"
        );
    }
    eprint!("Apply these {changes} change(s)? Only \"yes\" is accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer).context("reading the answer")?;
    Ok(answer.trim() == "yes")
}
