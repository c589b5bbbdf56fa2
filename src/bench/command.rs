//! The bench commands: `bench` and `compare`.

use anyhow::bail;

use crate::cli::{BenchArgs, CompareArgs, GlobalArgs};
use crate::outcome::Outcome;

/// `warren bench SCENARIO`
pub async fn bench(_global: &GlobalArgs, _args: BenchArgs) -> anyhow::Result<Outcome> {
    bail!("bench: not built yet")
}

/// `warren compare BASELINE RESULT`
pub fn compare(_global: &GlobalArgs, _args: CompareArgs) -> anyhow::Result<Outcome> {
    bail!("compare: not built yet")
}
