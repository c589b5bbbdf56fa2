//! `warren plan TOPOLOGY`: the changes `apply` would make; exit 2 when there are any.
//!
//! The loaded file, the broker, its state and the plan are shared with `apply`.

use std::io::{IsTerminal, Write};

use anyhow::Context;

use crate::cli::{Format, GlobalArgs, PlanArgs};
use crate::management::Management;
use crate::outcome::Outcome;
use crate::target::{DEFAULT_BROKER, Target};
use crate::topology::Topology;
use crate::topology::current::{self, CurrentState};
use crate::topology::load::load_file;
use crate::topology::plan::diff::{DiffOptions, diff};
use crate::topology::plan::{Plan, use_color};

/// What `plan` and `apply` share: the loaded file, the broker, its state and the plan.
pub(super) struct Planned {
    pub(super) topology: Topology,
    pub(super) target: Target,
    pub(super) management: Management,
    pub(super) state: CurrentState,
    pub(super) plan: Plan,
}

pub(super) async fn make_plan(global: &GlobalArgs, args: &PlanArgs) -> anyhow::Result<Planned> {
    // The file is checked completely before the broker is contacted.
    let topology = load_file(&args.topology).map_err(anyhow::Error::new)?;
    let target = Target::resolve(global.broker.as_deref(), global.management.as_deref(), DEFAULT_BROKER).await?;
    let management = Management::new(&target.management)?;
    let (state, plan) = plan_against(&management, &topology, args).await?;
    Ok(Planned { topology, target, management, state, plan })
}

/// The broker's state, read through one node, and the plan from it to `topology`.
pub(super) async fn plan_against(
    management: &Management,
    topology: &Topology,
    args: &PlanArgs,
) -> anyhow::Result<(CurrentState, Plan)> {
    let vhosts = topology.vhosts.keys().cloned().collect();
    let state = current::read_vhosts(management, &vhosts)
        .await
        .with_context(|| format!("reading the state of the broker at {}", management.url()))?;
    let options = DiffOptions { prune: args.prune, connecting_user: Some(state.connecting_user.clone()) };
    let plan =
        diff(topology, &state.topology, &options).with_context(|| format!("planning {}", args.topology.display()))?;
    Ok((state, plan))
}

pub(super) fn print_plan(global: &GlobalArgs, plan: &Plan, extra: serde_json::Value) -> anyhow::Result<()> {
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
pub async fn run(global: &GlobalArgs, args: PlanArgs) -> anyhow::Result<Outcome> {
    let planned = make_plan(global, &args).await?;
    print_plan(global, &planned.plan, serde_json::Value::Null)?;
    planned.target.close().await;
    Ok(if planned.plan.is_empty() { Outcome::Success } else { Outcome::ChangesPending })
}
