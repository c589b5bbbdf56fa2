//! The broker state as a definitions document, for `GET /api/definitions`,
//! `GET /api/definitions/{vhost}` and the data directory.
//!
//! Like RabbitMQ, exports leave out the default exchange, the `amq.*`
//! exchanges, exclusive queues and the default exchange's implicit bindings.
//! The durable scope (what survives a restart) further leaves out transient
//! exchanges and queues and the bindings that touch them.

use serde_json::{Map, Value};
use warren_definitions::arguments::table_to_json;
use warren_definitions::{
    BindingDef, Definitions, ExchangeDef, ParameterDef, PermissionDef, PolicyDef, QueueDef, Tags, TopicPermissionDef,
    UserDef, VhostDef, VhostMetadata,
};

use crate::state::exchange::DestinationKind;
use crate::state::policy::Policy;
use crate::state::{State, VhostInfo};
use crate::{COMPATIBLE_RABBITMQ_VERSION, PRODUCT_NAME};

/// Which part of the state to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Everything, as `GET /api/definitions`.
    All,
    /// What survives a restart: durable exchanges, queues and the bindings between them.
    Durable,
    /// One vhost's exchanges, queues, bindings and policies, without `vhost` fields.
    Vhost(&'a str),
}

/// The definitions document for `scope`.
pub fn definitions(state: &State, scope: Scope<'_>) -> Definitions {
    let selection = Selection::of(scope);
    let exchanges = selection.exchanges(state);
    let queues = selection.queues(state);
    let bindings = selection.bindings(state, &exchanges, &queues);
    let mut document = Definitions {
        rabbit_version: Some(COMPATIBLE_RABBITMQ_VERSION.to_owned()),
        parameters: selection.operator_policies(state),
        policies: selection.policies(state),
        queues,
        exchanges,
        bindings,
        ..Definitions::default()
    };
    if selection.vhost.is_none() {
        add_broker_wide(state, &mut document);
    }
    document
}

/// What a scope takes from the state.
struct Selection<'a> {
    /// The one vhost exported, whose entities then carry no `vhost` field.
    vhost: Option<&'a str>,
    /// Only what survives a restart.
    durable_only: bool,
}

impl<'a> Selection<'a> {
    fn of(scope: Scope<'a>) -> Self {
        match scope {
            Scope::All => Selection { vhost: None, durable_only: false },
            Scope::Durable => Selection { vhost: None, durable_only: true },
            Scope::Vhost(vhost) => Selection { vhost: Some(vhost), durable_only: false },
        }
    }

    /// The `vhost` field of an entity in `vhost`.
    fn tag(&self, vhost: &str) -> Option<String> {
        if self.vhost.is_some() { None } else { Some(vhost.to_owned()) }
    }

    fn exchanges(&self, state: &State) -> Vec<ExchangeDef> {
        state
            .exchanges(self.vhost)
            .into_iter()
            .filter(|(_, x)| !x.name.is_empty() && !x.name.starts_with("amq.") && (x.durable || !self.durable_only))
            .map(|(vhost, x)| ExchangeDef {
                name: x.name.clone(),
                vhost: self.tag(&vhost),
                kind: x.kind.as_str().to_owned(),
                durable: Some(x.durable),
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: table_to_json(&x.arguments),
            })
            .collect()
    }

    fn queues(&self, state: &State) -> Vec<QueueDef> {
        state
            .queues(self.vhost)
            .into_iter()
            .filter(|q| q.exclusive_owner.is_none() && (q.durable || !self.durable_only))
            .map(|q| QueueDef {
                name: q.name.clone(),
                vhost: self.tag(&q.vhost),
                durable: Some(q.durable),
                auto_delete: q.auto_delete,
                arguments: table_to_json(&q.arguments),
                kind: None,
            })
            .collect()
    }

    /// The bindings whose source and destination are both exported.
    fn bindings(&self, state: &State, exchanges: &[ExchangeDef], queues: &[QueueDef]) -> Vec<BindingDef> {
        let exported_exchange = |vhost: &Option<String>, name: &str| {
            // Predeclared exchanges are not exported but exist everywhere: bindings from them count.
            name.starts_with("amq.") || exchanges.iter().any(|x| x.vhost == *vhost && x.name == name)
        };
        let exported_queue =
            |vhost: &Option<String>, name: &str| queues.iter().any(|q| q.vhost == *vhost && q.name == name);
        state
            .bindings(self.vhost)
            .into_iter()
            .map(|(vhost, b)| BindingDef {
                source: b.source.clone(),
                vhost: self.tag(&vhost),
                destination: b.destination.clone(),
                destination_type: b.destination_kind.as_str().to_owned(),
                routing_key: b.routing_key.clone(),
                arguments: table_to_json(&b.arguments),
            })
            .filter(|b| {
                let destination_kept = if b.destination_type == DestinationKind::Queue.as_str() {
                    exported_queue(&b.vhost, &b.destination)
                } else {
                    exported_exchange(&b.vhost, &b.destination)
                };
                exported_exchange(&b.vhost, &b.source) && destination_kept
            })
            .collect()
    }

    fn policies(&self, state: &State) -> Vec<PolicyDef> {
        state.policies(self.vhost).iter().map(|p| policy_def(p, self.tag(&p.vhost))).collect()
    }

    /// Operator policies, which definitions carry as parameters of component `operator_policy`.
    fn operator_policies(&self, state: &State) -> Vec<ParameterDef> {
        state
            .operator_policies(self.vhost)
            .iter()
            .map(|p| ParameterDef {
                vhost: self.tag(&p.vhost),
                component: "operator_policy".to_owned(),
                name: p.name.clone(),
                value: Value::Object(policy_def(p, None).body().to_map()),
            })
            .collect()
    }
}

/// What only a whole-broker export carries: versions, users, vhosts and permissions.
fn add_broker_wide(state: &State, document: &mut Definitions) {
    document.rabbitmq_version = Some(COMPATIBLE_RABBITMQ_VERSION.to_owned());
    document.product_name = Some(PRODUCT_NAME.to_owned());
    document.product_version = Some(env!("CARGO_PKG_VERSION").to_owned());
    document.users = Some(
        state
            .users()
            .into_iter()
            .map(|u| UserDef {
                name: u.name,
                password_hash: u.password_hash,
                password: None,
                hashing_algorithm: Some(u.hashing_algorithm.as_str().to_owned()),
                tags: Some(Tags::List(u.tags)),
                limits: Some(Value::Object(Map::new())),
            })
            .collect(),
    );
    document.vhosts = Some(state.vhosts().into_iter().map(vhost_def).collect());
    document.permissions = Some(
        state
            .permissions()
            .into_iter()
            .map(|p| PermissionDef {
                user: p.user,
                vhost: Some(p.vhost),
                configure: p.configure,
                write: p.write,
                read: p.read,
            })
            .collect(),
    );
    document.topic_permissions = Some(
        state
            .topic_permissions()
            .into_iter()
            .map(|p| TopicPermissionDef {
                user: p.user,
                vhost: Some(p.vhost),
                exchange: p.exchange,
                write: p.write,
                read: p.read,
            })
            .collect(),
    );
    document.global_parameters = Some(Vec::new());
}

fn policy_def(p: &Policy, vhost: Option<String>) -> PolicyDef {
    PolicyDef {
        vhost,
        name: p.name.clone(),
        pattern: p.pattern.clone(),
        apply_to: p.apply_to.as_str().to_owned(),
        definition: p.definition.clone(),
        priority: Value::from(p.priority),
    }
}

/// A vhost as definitions carry it: description, tags and default queue type both at the top
/// level (RabbitMQ 3.10) and under `metadata` (3.11 and later).
fn vhost_def(v: VhostInfo) -> VhostDef {
    VhostDef {
        name: v.name,
        description: Some(v.description.clone()),
        tags: Some(Tags::List(v.tags.clone())),
        default_queue_type: v.default_queue_type.clone(),
        metadata: Some(VhostMetadata {
            description: Some(v.description),
            tags: Some(Tags::List(v.tags)),
            default_queue_type: v.default_queue_type,
        }),
    }
}
