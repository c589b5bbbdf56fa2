//! Before and after a run: load the scenario's topology, apply it to the
//! broker, and afterwards delete what the run created (unless
//! `--keep-topology`).
//!
//! A bench only needs the vhost's entities (exchanges, queues, bindings,
//! policies): users declared in the topology are left out, so a tutorial
//! topology whose user password comes from `${VAR}` runs without it.

use std::collections::BTreeSet;

use anyhow::{Context, bail};

use crate::bench::scenario::{Scenario, ScenarioError, TopologySource};
use crate::management::client::Management;
use crate::target::Target;
use crate::topology::definitions::{self, PermissionDef};
use crate::topology::env::{Env, ProcessEnv};
use crate::topology::model::{State, Topology, Vhost};
use crate::topology::source::{Locator, NodePath};

/// Stands in for variables that are unset: they may only appear in the
/// users a bench leaves out; anywhere else they are reported.
const UNSET: &str = "\u{1}warren-unset-variable\u{1}";

struct BenchEnv;

impl Env for BenchEnv {
    fn var(&self, name: &str) -> Option<String> {
        Some(ProcessEnv.var(name).unwrap_or_else(|| format!("{UNSET}{name}{UNSET}")))
    }
}

/// The scenario's topology, restricted to the one vhost the run uses.
#[derive(Debug, Clone)]
pub struct BenchTopology {
    /// The vhost's name on the broker (after `--vhost`).
    pub vhost_name: String,
    /// Its entities.
    pub vhost: Vhost,
}

/// Loads the scenario's topology; `rename` moves its vhost to another name (`--vhost`).
pub fn load_topology(scenario: &Scenario, rename: Option<&str>) -> anyhow::Result<BenchTopology> {
    let topology = match &scenario.topology {
        TopologySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the scenario's topology file {}", path.display()))?;
            crate::topology::load::load_str_with_env(&path.display().to_string(), &text, &BenchEnv)
                .with_context(|| format!("loading the scenario's topology {}", path.display()))?
        }
        TopologySource::Inline(mapping) => {
            let origin = &scenario.origin;
            let locator =
                Locator::new(origin.path.display().to_string(), &origin.text).within(NodePath::root().key("topology"));
            let raw = crate::topology::yaml::from_value(serde_yaml::Value::Mapping(mapping.clone()), &locator)
                .context("loading the scenario's inline topology")?;
            crate::topology::load::raw_to_model(&raw, &locator, &BenchEnv)
                .context("loading the scenario's inline topology")?
        }
    };
    let Topology { vhosts, .. } = topology;
    if let Some(name) = vhosts.keys().find(|name| name.contains(UNSET)) {
        bail!("the scenario's topology names a vhost with an unset environment variable: {}", unset_names(name));
    }
    let present: Vec<(String, Vhost)> = vhosts.into_iter().filter(|(_, v)| v.state == State::Present).collect();
    let (name, vhost) = match <[(String, Vhost); 1]>::try_from(present) {
        Ok([only]) => only,
        Err(many) if many.is_empty() => bail!("the scenario's topology declares no vhost"),
        Err(many) => bail!(
            "the scenario's topology declares {} vhosts ({}); a bench runs in exactly one",
            many.len(),
            many.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    let text = format!("{vhost:?}");
    if text.contains(UNSET) {
        bail!("the scenario's topology uses unset environment variables: {}", unset_names(&text));
    }
    Ok(BenchTopology { vhost_name: rename.map_or(name, str::to_owned), vhost })
}

fn unset_names(text: &str) -> String {
    let names: BTreeSet<&str> = text.split(UNSET).skip(1).step_by(2).collect();
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// Checks that every producer's exchange and every consumer's queue exists in the topology.
pub fn check_references(scenario: &Scenario, topology: &BenchTopology) -> Result<(), ScenarioError> {
    for (index, group) in scenario.producers.iter().enumerate() {
        let known = group.exchange.is_empty()
            || group.exchange.starts_with("amq.")
            || topology.vhost.exchanges.get(&group.exchange).is_some_and(|e| e.state == State::Present);
        if !known {
            let names = topology.vhost.exchanges.keys().map(String::as_str);
            return Err(ScenarioError::at(
                &scenario.origin,
                &["producers".into(), index.into(), "exchange".into()],
                format!(
                    "producers[{index}].exchange: `{}` is not an exchange of the topology{}",
                    group.exchange,
                    crate::topology::diagnostic::did_you_mean(&group.exchange, names)
                ),
            ));
        }
    }
    for (index, group) in scenario.consumers.iter().enumerate() {
        if !topology.vhost.queues.get(&group.queue).is_some_and(|q| q.state == State::Present) {
            let names = topology.vhost.queues.keys().map(String::as_str);
            return Err(ScenarioError::at(
                &scenario.origin,
                &["consumers".into(), index.into(), "queue".into()],
                format!(
                    "consumers[{index}].queue: `{}` is not a queue of the topology{}",
                    group.queue,
                    crate::topology::diagnostic::did_you_mean(&group.queue, names)
                ),
            ));
        }
    }
    Ok(())
}

/// What a run created on the broker, to delete afterwards.
#[derive(Debug, Default)]
pub struct Created {
    vhost: String,
    new_vhost: bool,
    exchanges: Vec<String>,
    queues: Vec<String>,
    policies: Vec<String>,
}

impl Created {
    /// True when the run created nothing.
    pub fn is_empty(&self) -> bool {
        !self.new_vhost && self.exchanges.is_empty() && self.queues.is_empty() && self.policies.is_empty()
    }
}

/// Brings the broker to the topology and says what was new.
pub async fn apply(target: &Target, topology: &BenchTopology) -> anyhow::Result<Created> {
    let management = Management::new(&target.management)?;
    let current = management.definitions().await.context("reading the broker's state before the run")?;
    let current = definitions::to_topology(&current).context("reading the broker's state before the run")?;
    let name = &topology.vhost_name;
    let existing = current.vhosts.get(name);
    let mut created = Created { vhost: name.clone(), ..Created::default() };
    match existing {
        None => created.new_vhost = true,
        Some(existing) => {
            created.exchanges =
                topology.vhost.exchanges.keys().filter(|n| !existing.exchanges.contains_key(*n)).cloned().collect();
            created.queues =
                topology.vhost.queues.keys().filter(|n| !existing.queues.contains_key(*n)).cloned().collect();
            created.policies =
                topology.vhost.policies.keys().filter(|n| !existing.policies.contains_key(*n)).cloned().collect();
        }
    }
    let mut desired = Topology::default();
    desired.vhosts.insert(name.clone(), topology.vhost.clone());
    let mut document = definitions::from_topology(&desired);
    if existing.is_none() {
        // A new vhost grants nobody anything; the run's own user needs access to it.
        document.permissions.push(PermissionDef {
            user: target.management.username.clone(),
            vhost: name.clone(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        });
    }
    management.import("the scenario's topology", &document).await.context("applying the scenario's topology")?;
    Ok(created)
}

/// Deletes what [`apply`] created: the vhost if it was new, otherwise the new
/// queues, exchanges and policies (bindings go with them).
pub async fn cleanup(target: &Target, created: &Created) -> anyhow::Result<()> {
    if created.is_empty() {
        return Ok(());
    }
    let management = Management::new(&target.management)?;
    let vhost = &created.vhost;
    if created.new_vhost {
        return Ok(management.delete_vhost(vhost).await?);
    }
    for queue in &created.queues {
        management.delete_queue(vhost, queue).await?;
    }
    for exchange in &created.exchanges {
        management.delete_exchange(vhost, exchange).await?;
    }
    for policy in &created.policies {
        management.delete_policy(vhost, policy, false).await?;
    }
    Ok(())
}
