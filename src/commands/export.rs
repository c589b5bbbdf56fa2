//! `warren export`: the broker's current state as a topology file.

use std::io::Write;

use anyhow::{Context, bail};

use crate::cli::{ExportArgs, GlobalArgs};
use crate::management::Management;
use crate::outcome::Outcome;
use crate::target::{DEFAULT_BROKER, Target};
use crate::topology::current;
use crate::topology::model::Password;

/// `warren export [--vhost V] [-o FILE]`
pub async fn run(global: &GlobalArgs, args: ExportArgs) -> anyhow::Result<Outcome> {
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
    let yaml = crate::topology::write::to_yaml(&topology);
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
