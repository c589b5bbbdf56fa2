//! The topology commands that talk to a broker: `plan`, `apply`, `export`.

use anyhow::bail;

use crate::cli::{ApplyArgs, ExportArgs, GlobalArgs, PlanArgs};
use crate::outcome::Outcome;

/// `warren plan TOPOLOGY`
pub async fn plan(_global: &GlobalArgs, _args: PlanArgs) -> anyhow::Result<Outcome> {
    bail!("plan: not built yet")
}

/// `warren apply TOPOLOGY`
pub async fn apply(_global: &GlobalArgs, _args: ApplyArgs) -> anyhow::Result<Outcome> {
    bail!("apply: not built yet")
}

/// `warren export`
pub async fn export(_global: &GlobalArgs, _args: ExportArgs) -> anyhow::Result<Outcome> {
    bail!("export: not built yet")
}
