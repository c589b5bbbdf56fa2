//! Before and after a run: load the scenario's topology, apply it to the
//! broker, and afterwards delete what the run created (unless
//! `--keep-topology`).
//!
//! A bench only needs the vhost's entities (exchanges, queues, bindings,
//! policies): users declared in the topology are left out, so a tutorial
//! topology whose user password comes from `${VAR}` runs without it.

use anyhow::{Context, bail};

use crate::bench::scenario::{
    AckMode, ConnectionLayout, ProducerGroup, Protocol, Scenario, ScenarioError, TopologySource,
};
use crate::target::Target;
use crate::topology::apply::{ConvergeError, ConvergeOptions, converge};
use crate::topology::load::env::ProcessEnv;
use crate::topology::load::source::NodePath;
use crate::topology::model::{Exchange, Policy, Queue, State, Topology, Vhost};
use crate::topology::plan::{Action, Subject};

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
            // A bench creates no users: their passwords' variables need not be set.
            crate::topology::load::load_str_without_users(&path.display().to_string(), &text, &ProcessEnv)
                .with_context(|| format!("loading the scenario's topology {}", path.display()))?
        }
        TopologySource::Inline(mapping) => {
            let origin = &scenario.origin;
            let locator = crate::topology::load::yaml::locator(origin.path.display().to_string(), &origin.text)
                .within(NodePath::root().key("topology"));
            let mut raw: crate::topology::load::raw::RawTopology =
                crate::topology::load::yaml::from_value(serde_yaml::Value::Mapping(mapping.clone()), &locator)
                    .context("loading the scenario's inline topology")?;
            raw.users.clear();
            crate::topology::load::raw_to_model(&raw, &locator, &ProcessEnv)
                .context("loading the scenario's inline topology")?
        }
    };
    let Topology { vhosts, .. } = topology;
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
    Ok(BenchTopology { vhost_name: rename.map_or(name, str::to_owned), vhost })
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
                    crate::topology::load::diagnostic::did_you_mean(&group.exchange, names)
                ),
            ));
        }
    }
    for (index, group) in scenario.consumers.iter().enumerate() {
        if topology.vhost.queues.get(&group.queue).is_none_or(|q| q.state != State::Present) {
            let names = topology.vhost.queues.keys().map(String::as_str);
            return Err(ScenarioError::at(
                &scenario.origin,
                &["consumers".into(), index.into(), "queue".into()],
                format!(
                    "consumers[{index}].queue: `{}` is not a queue of the topology{}",
                    group.queue,
                    crate::topology::load::diagnostic::did_you_mean(&group.queue, names)
                ),
            ));
        }
    }
    Ok(())
}

/// True when the topology declares `queue` as a stream.
fn is_stream(topology: &BenchTopology, queue: &str) -> bool {
    topology.vhost.queues.get(queue).is_some_and(|q| {
        q.state == State::Present && q.arguments.get("x-queue-type").and_then(|t| t.as_str()) == Some("stream")
    })
}

/// Marks the consumers that read streams and checks what streams ask of
/// them: over AMQP 0-9-1 RabbitMQ delivers a stream only to consumers with a
/// prefetch and manual acknowledgements, and an `offset` means something on
/// a stream only. Groups with `protocol: stream` must publish to or read a
/// stream queue, and use nothing the stream protocol has no place for.
pub fn check_streams(scenario: &mut Scenario, topology: &BenchTopology) -> Result<(), ScenarioError> {
    let origin = scenario.origin.clone();
    for (index, group) in scenario.producers.iter().enumerate() {
        if let Some((field, why)) = stream_producer_problem(group, topology) {
            let at = ["producers".into(), index.into(), field.into()];
            return Err(ScenarioError::at(&origin, &at, format!("producers[{index}].{field}: {why}")));
        }
    }
    for (index, group) in scenario.consumers.iter_mut().enumerate() {
        let at = |field: &str| ["consumers".into(), index.into(), field.into()];
        group.stream = is_stream(topology, &group.queue);
        let over_stream_protocol = group.protocol == Protocol::Stream;
        let problem = if !group.stream && over_stream_protocol {
            Some((
                "protocol",
                format!("`{}` is not a stream: `protocol: stream` reads stream queues only", group.queue),
            ))
        } else if !group.stream && group.offset.is_some() {
            Some(("offset", format!("`{}` is not a stream: an offset means something on streams only", group.queue)))
        } else if over_stream_protocol && group.reject.is_some() {
            Some(("reject", "the stream protocol has no acknowledgements, so nothing can be rejected".to_owned()))
        } else if over_stream_protocol {
            None
        } else if group.stream && group.prefetch == 0 {
            Some((
                "prefetch",
                "a stream is read over AMQP 0-9-1 with a prefetch: give `prefetch` (e.g. 100)".to_owned(),
            ))
        } else if group.stream && group.ack == AckMode::Auto {
            Some(("ack", "a stream is read over AMQP 0-9-1 with manual acknowledgements, not `ack: auto`".to_owned()))
        } else {
            None
        };
        if let Some((field, why)) = problem {
            return Err(ScenarioError::at(&origin, &at(field), format!("consumers[{index}].{field}: {why}")));
        }
    }
    Ok(())
}

/// What keeps a `protocol: stream` producer group from running: the field and why.
fn stream_producer_problem(group: &ProducerGroup, topology: &BenchTopology) -> Option<(&'static str, String)> {
    if group.protocol != Protocol::Stream {
        return None;
    }
    let stream = match group.routing_keys.as_slice() {
        [key] if group.exchange.is_empty() => key,
        _ => {
            return Some((
                "protocol",
                "`protocol: stream` publishes to one stream queue: give `exchange: \"\"` and its name as \
                 `routing_key`"
                    .to_owned(),
            ));
        }
    };
    if !is_stream(topology, stream) {
        return Some((
            "protocol",
            format!("`{stream}` is not a stream: `protocol: stream` publishes to stream queues only"),
        ));
    }
    if group.confirms.is_none() {
        return Some((
            "confirms",
            "the stream protocol confirms every message: leave confirms on (`max_in_flight` sets the window)"
                .to_owned(),
        ));
    }
    if group.mandatory {
        return Some(("mandatory", "the stream protocol returns nothing: leave `mandatory` out".to_owned()));
    }
    if group.layout == ConnectionLayout::Shared {
        return Some((
            "connection",
            "`shared` is for AMQP 0-9-1 producers; a stream producer has a connection of its own".to_owned(),
        ));
    }
    let p = &group.properties;
    let properties = !p.headers.is_empty()
        || p.content_type.is_some()
        || p.priority.is_some()
        || p.expiration_ms.is_some()
        || p.kind.is_some()
        || p.app_id.is_some();
    if properties {
        return Some((
            "message",
            "a stream producer sends the body only: leave headers and other properties out (streams keep \
             every message, so `persistent` is implied)"
                .to_owned(),
        ));
    }
    None
}

/// What a run created on the broker, to delete afterwards.
#[derive(Debug, Default)]
pub struct Created {
    vhost: String,
    new_vhost: bool,
    exchanges: Vec<(String, Exchange)>,
    queues: Vec<(String, Queue)>,
    policies: Vec<(String, Policy)>,
}

impl Created {
    /// True when the run created nothing.
    pub fn is_empty(&self) -> bool {
        !self.new_vhost && self.exchanges.is_empty() && self.queues.is_empty() && self.policies.is_empty()
    }
}

/// Brings the broker to the topology with the same code as `warren apply`
/// (plan, data-loss guards, staged apply) and says what was new.
pub async fn apply(target: &Target, topology: &BenchTopology) -> anyhow::Result<Created> {
    let mut desired = Topology::default();
    desired.vhosts.insert(topology.vhost_name.clone(), topology.vhost.clone());
    let options = ConvergeOptions { prune: false, allow_data_loss: false, amqp_urls: target.amqp_urls.clone() };
    let (plan, _) = match converge(&target.management, &desired, options).await {
        Ok(done) => done,
        // A refusal keeps its type so the command exits 4, as `warren apply` would.
        Err(ConvergeError::Refused(refused)) => return Err(refused.into()),
        Err(error) => return Err(anyhow::Error::new(error).context("applying the scenario's topology")),
    };
    let mut created = Created { vhost: topology.vhost_name.clone(), ..Created::default() };
    for change in plan.changes.iter().filter(|c| c.action == Action::Create) {
        match &change.subject {
            Subject::Vhost { .. } => created.new_vhost = true,
            Subject::Exchange { name, desired: Some(exchange), .. } => {
                created.exchanges.push((name.clone(), exchange.clone()));
            }
            Subject::Queue { name, desired: Some(queue), .. } => created.queues.push((name.clone(), queue.clone())),
            Subject::Policy { name, operator: false, desired: Some(policy), .. } => {
                created.policies.push((name.clone(), policy.clone()));
            }
            _ => {}
        }
    }
    Ok(created)
}

/// Deletes what [`apply`] created: the vhost if it was new, otherwise the new
/// queues, exchanges and policies (bindings go with them), again through the
/// same plan-and-apply code.
pub async fn cleanup(target: &Target, created: &Created) -> anyhow::Result<()> {
    if created.is_empty() {
        return Ok(());
    }
    let mut vhost = Vhost::default();
    if created.new_vhost {
        vhost.state = State::Absent;
    } else {
        for (name, exchange) in &created.exchanges {
            vhost.exchanges.insert(name.clone(), Exchange { state: State::Absent, ..exchange.clone() });
        }
        for (name, queue) in &created.queues {
            vhost.queues.insert(name.clone(), Queue { state: State::Absent, ..queue.clone() });
        }
        for (name, policy) in &created.policies {
            vhost.policies.insert(name.clone(), Policy { state: State::Absent, ..policy.clone() });
        }
    }
    let mut absent = Topology::default();
    absent.vhosts.insert(created.vhost.clone(), vhost);
    let options = ConvergeOptions { prune: false, allow_data_loss: true, amqp_urls: Vec::new() };
    if let Err(error) = converge(&target.management, &absent, options).await {
        let (base, user) = target.management.first().map_or(("http://127.0.0.1:15672", "guest"), |endpoint| {
            (endpoint.base_url.as_str(), endpoint.username.as_str())
        });
        let commands = leftovers(created, base, user).join("\n  ");
        return Err(anyhow::Error::new(error).context(format!(
            "deleting what the run created; no node could delete it, so it is still there (delete it later, \
             through this node or any other, with):\n  {commands}\n"
        )));
    }
    Ok(())
}

/// One command per entity a run created, that deletes it through the
/// management API at `base` (curl asks for `user`'s password).
fn leftovers(created: &Created, base: &str, user: &str) -> Vec<String> {
    let encode =
        |name: &str| percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string();
    let vhost = encode(&created.vhost);
    let delete = |path: String| format!("curl -u {user} -X DELETE '{base}/api/{path}'");
    if created.new_vhost {
        return vec![delete(format!("vhosts/{vhost}"))];
    }
    let queues = created.queues.iter().map(|(name, _)| delete(format!("queues/{vhost}/{}", encode(name))));
    let exchanges = created.exchanges.iter().map(|(name, _)| delete(format!("exchanges/{vhost}/{}", encode(name))));
    let policies = created.policies.iter().map(|(name, _)| delete(format!("policies/{vhost}/{}", encode(name))));
    queues.chain(exchanges).chain(policies).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_cleanup_could_not_delete_is_named_with_a_command_that_deletes_it() {
        let mut created = Created { vhost: "bench/1".into(), ..Created::default() };
        created.queues.push(("orders q".into(), Queue::default()));
        created.exchanges.push(("events".into(), Exchange::default()));
        let commands = leftovers(&created, "http://127.0.0.1:15682", "guest");
        assert_eq!(
            commands,
            vec![
                "curl -u guest -X DELETE 'http://127.0.0.1:15682/api/queues/bench%2F1/orders%20q'",
                "curl -u guest -X DELETE 'http://127.0.0.1:15682/api/exchanges/bench%2F1/events'",
            ]
        );
        created.new_vhost = true;
        assert_eq!(
            leftovers(&created, "http://h:1", "u"),
            vec!["curl -u u -X DELETE 'http://h:1/api/vhosts/bench%2F1'"]
        );
    }
}
