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

use crate::state::State;
use crate::state::exchange::DestinationKind;
use crate::state::policy::Policy;
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
    let vhost_filter = match scope {
        Scope::Vhost(v) => Some(v),
        Scope::All | Scope::Durable => None,
    };
    let durable_only = scope == Scope::Durable;
    let tag = |vhost: &str| if vhost_filter.is_some() { None } else { Some(vhost.to_owned()) };

    let exchanges: Vec<ExchangeDef> = state
        .exchanges(vhost_filter)
        .into_iter()
        .filter(|(_, x)| !x.name.is_empty() && !x.name.starts_with("amq.") && (x.durable || !durable_only))
        .map(|(vhost, x)| ExchangeDef {
            name: x.name.clone(),
            vhost: tag(&vhost),
            kind: x.kind.as_str().to_owned(),
            durable: Some(x.durable),
            auto_delete: x.auto_delete,
            internal: x.internal,
            arguments: table_to_json(&x.arguments),
        })
        .collect();
    let queues: Vec<QueueDef> = state
        .queues(vhost_filter)
        .into_iter()
        .filter(|q| q.exclusive_owner.is_none() && (q.durable || !durable_only))
        .map(|q| QueueDef {
            name: q.name.clone(),
            vhost: tag(&q.vhost),
            durable: Some(q.durable),
            auto_delete: q.auto_delete,
            arguments: table_to_json(&q.arguments),
            kind: None,
        })
        .collect();
    let exported_exchange = |vhost: &Option<String>, name: &str| {
        // Predeclared exchanges are not exported but exist everywhere: bindings from them count.
        name.starts_with("amq.") || exchanges.iter().any(|x| x.vhost == *vhost && x.name == name)
    };
    let exported_queue =
        |vhost: &Option<String>, name: &str| queues.iter().any(|q| q.vhost == *vhost && q.name == name);
    let bindings: Vec<BindingDef> = state
        .bindings(vhost_filter)
        .into_iter()
        .map(|(vhost, b)| BindingDef {
            source: b.source.clone(),
            vhost: tag(&vhost),
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
        .collect();
    let policies: Vec<PolicyDef> = state.policies(vhost_filter).iter().map(|p| policy_def(p, tag(&p.vhost))).collect();
    let parameters: Vec<ParameterDef> = state
        .operator_policies(vhost_filter)
        .iter()
        .map(|p| ParameterDef {
            vhost: tag(&p.vhost),
            component: "operator_policy".to_owned(),
            name: p.name.clone(),
            value: Value::Object(policy_def(p, None).body().to_map()),
        })
        .collect();

    let mut document = Definitions {
        rabbit_version: Some(COMPATIBLE_RABBITMQ_VERSION.to_owned()),
        parameters,
        policies,
        queues,
        exchanges,
        bindings,
        ..Definitions::default()
    };
    if vhost_filter.is_none() {
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
        document.vhosts = Some(
            state
                .vhosts()
                .into_iter()
                .map(|v| VhostDef {
                    name: v.name,
                    description: Some(v.description.clone()),
                    tags: Some(Tags::List(v.tags.clone())),
                    default_queue_type: v.default_queue_type.clone(),
                    metadata: Some(VhostMetadata {
                        description: Some(v.description),
                        tags: Some(Tags::List(v.tags)),
                        default_queue_type: v.default_queue_type,
                    }),
                })
                .collect(),
        );
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
    document
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
