//! `warren apply TOPOLOGY`: plan, show the plan, guard against data loss, ask
//! (or `--yes`), and converge the broker.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

use super::plan::{Planned, make_plan, print_plan};
use crate::cli::{ApplyArgs, Format, GlobalArgs};
use crate::outcome::Outcome;
use crate::topology::apply::{self, Progress};
use crate::topology::plan::guard::{self, DataLossRefused};

/// `warren apply TOPOLOGY`
pub async fn run(global: &GlobalArgs, args: ApplyArgs) -> anyhow::Result<Outcome> {
    let Planned { topology, target, management, state, plan } = make_plan(global, &args.plan).await?;
    let refusals = guard::check(&management, &target.amqp_urls, &plan, &state.topology)
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
    let result = execute_across_nodes(&args, &topology, &target, &management, plan, &progress).await;
    target.close().await;
    match result {
        Ok(applied) => {
            if global.format == Format::Human && !global.quiet {
                eprintln!("applied {applied} change(s)");
            }
            Ok(Outcome::Success)
        }
        Err(Stopped::Other(error)) => Err(error),
        Err(Stopped::Apply(error)) => {
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

/// Why applying stopped.
enum Stopped {
    /// A change failed: what was and was not done is in the error.
    Apply(apply::ApplyError),
    /// Going on through another node was not possible.
    Other(anyhow::Error),
}

/// Runs `plan`; when a node stops answering in the middle of a write, the
/// write is not repeated blindly: the broker's state is read again through
/// the next node, planned again, guarded again, and what is left applied,
/// as long as it only touches what the approved plan touched. Returns the
/// number of changes made.
async fn execute_across_nodes(
    args: &ApplyArgs,
    topology: &crate::topology::Topology,
    target: &crate::target::Target,
    management: &crate::management::Management,
    approved: crate::topology::plan::Plan,
    progress: &Progress,
) -> Result<usize, Stopped> {
    use crate::management::ManagementError;
    let agreed: std::collections::BTreeSet<String> = approved.changes.iter().map(|c| c.entity()).collect();
    let mut plan = approved;
    let mut applied = 0;
    for _ in 0..target.management.len() {
        let error = match apply::execute(management, &plan, progress).await {
            Ok(report) => return Ok(applied + report.applied),
            Err(error) if matches!(error.source, ManagementError::Interrupted { .. }) => error,
            Err(error) => return Err(Stopped::Apply(error)),
        };
        applied += error.applied;
        eprintln!("note: {}; reading the broker's state again through {}", error.source, management.url());
        let (state, next) =
            super::plan::plan_against(management, topology, &args.plan).await.map_err(Stopped::Other)?;
        if let Some(change) = next.changes.iter().find(|c| !agreed.contains(&c.entity())) {
            let error = anyhow::anyhow!(
                "the broker changed while applying: {} was not in the plan you approved; run apply again",
                change.describe()
            );
            return Err(Stopped::Other(error));
        }
        let refusals = guard::check(management, &target.amqp_urls, &next, &state.topology)
            .await
            .context("reading the message counts of the queues the plan would drop")
            .map_err(Stopped::Other)?;
        if !refusals.is_empty() && !args.allow_data_loss {
            return Err(Stopped::Other(DataLossRefused { reasons: refusals }.into()));
        }
        plan = next;
    }
    Err(Stopped::Other(anyhow::anyhow!("every node of the management list stopped answering while applying")))
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
