//! The topology commands: `validate`, `schema`, `plan`, `apply`, `export`.

use anyhow::bail;

use crate::cli::{ApplyArgs, ExportArgs, GlobalArgs, PlanArgs, SchemaArgs, ValidateArgs};
use crate::outcome::Outcome;

/// `warren validate FILE...`
pub fn validate(_global: &GlobalArgs, _args: ValidateArgs) -> anyhow::Result<Outcome> {
    bail!("validate: not built yet")
}

/// `warren schema topology|scenario`
pub fn schema(_args: SchemaArgs) -> anyhow::Result<Outcome> {
    bail!("schema: not built yet")
}

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
