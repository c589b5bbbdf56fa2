//! The topology commands that talk to a broker: `plan`, `apply`, `export`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

use super::apply::{self, Progress};
use super::current::{self, CurrentState};
use super::diff::{DiffOptions, diff};
use super::guard;
use super::load::load_file;
use super::model::Password;
use super::plan::{Plan, use_color};
use crate::cli::{ApplyArgs, ExportArgs, Format, GlobalArgs, PlanArgs};
use crate::management::Management;
use crate::outcome::{Outcome, Refused};
use crate::target::{DEFAULT_BROKER, Target};

/// What `plan` and `apply` share: the loaded file, the broker, its state and the plan.
struct Planned {
    target: Target,
    management: Management,
    state: CurrentState,
    plan: Plan,
}

async fn make_plan(global: &GlobalArgs, args: &PlanArgs) -> anyhow::Result<Planned> {
    // The file is checked completely before the broker is contacted.
    let topology = load_file(&args.topology).map_err(anyhow::Error::new)?;
    let target = Target::resolve(global.broker.as_deref(), global.management.as_deref(), DEFAULT_BROKER).await?;
    let management = Management::new(&target.management)?;
    let vhosts = topology.vhosts.keys().cloned().collect();
    let state = current::read_vhosts(&management, &vhosts)
        .await
        .with_context(|| format!("reading the state of the broker at {}", management.url()))?;
    let options = DiffOptions { prune: args.prune, connecting_user: Some(state.connecting_user.clone()) };
    let plan =
        diff(&topology, &state.topology, &options).with_context(|| format!("planning {}", args.topology.display()))?;
    Ok(Planned { target, management, state, plan })
}

fn print_plan(global: &GlobalArgs, plan: &Plan, extra: serde_json::Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match global.format {
        Format::Human => {
            write!(stdout, "{}", plan.render(use_color(std::io::stdout().is_terminal())))?;
        }
        Format::Json => {
            let mut doc = serde_json::json!({
                "in_sync": plan.is_empty(),
                "summary": plan.summary(),
                "changes": plan.to_json(),
            });
            if let (Some(doc), serde_json::Value::Object(extra)) = (doc.as_object_mut(), extra) {
                doc.extend(extra);
            }
            writeln!(stdout, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// `warren plan TOPOLOGY`: exit 0 in sync, 2 with changes pending.
pub async fn plan(global: &GlobalArgs, args: PlanArgs) -> anyhow::Result<Outcome> {
    let planned = make_plan(global, &args).await?;
    print_plan(global, &planned.plan, serde_json::Value::Null)?;
    planned.target.close().await;
    Ok(if planned.plan.is_empty() { Outcome::Success } else { Outcome::ChangesPending })
}

/// `warren apply TOPOLOGY`
pub async fn apply(global: &GlobalArgs, args: ApplyArgs) -> anyhow::Result<Outcome> {
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
        return Err(Refused { reasons: refusals }.into());
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

/// `warren export [--vhost V] [-o FILE]`
pub async fn export(global: &GlobalArgs, args: ExportArgs) -> anyhow::Result<Outcome> {
    let target = Target::resolve(global.broker.as_deref(), global.management.as_deref(), DEFAULT_BROKER).await?;
    let management = Management::new(&target.management)?;
    let state = current::read(&management)
        .await
        .with_context(|| format!("reading the state of the broker at {}", management.url()))?;
    target.close().await;
    let mut topology = state.topology;
    if !args.vhost.is_empty() {
        for wanted in &args.vhost {
            if !topology.vhosts.contains_key(wanted) {
                bail!("the broker has no vhost {wanted:?}");
            }
        }
        topology.vhosts.retain(|name, _| args.vhost.contains(name));
        // Users come along with their permissions in the exported vhosts only.
        topology.users.retain(|_, user| args.vhost.iter().any(|v| user.permissions.contains_key(v)));
        for user in topology.users.values_mut() {
            user.permissions.retain(|v, _| args.vhost.contains(v));
            user.topic_permissions.retain(|v, _| args.vhost.contains(v));
        }
    }
    if !args.include_password_hashes {
        for user in topology.users.values_mut() {
            user.password = Password::None;
        }
    }
    let yaml = super::write::to_yaml(&topology);
    match &args.output {
        Some(path) => {
            std::fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(yaml.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(Outcome::Success)
}
