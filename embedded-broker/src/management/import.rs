//! Loading a definitions document into the state: `POST /api/definitions`,
//! `POST /api/definitions/{vhost}`, and the data directory at start.
//!
//! The whole document is checked before anything changes (users' hashes,
//! policies, exchange types, queue arguments, that every vhost and binding end
//! exists in the broker or in the document), so a bad document changes
//! nothing. Then, as RabbitMQ does, it creates what is missing, overwrites
//! users, permissions and policies, and leaves existing exchanges and queues as
//! they are.

use serde_json::{Map, Value, json};

use super::ApiError;
use super::definitions::{Definitions, PolicyDef, UserDef};
use super::password;
use super::routes::policies::{self as policy_routes, Kind};
use crate::state::auth::{Permission, TopicPermission, User};
use crate::state::exchange::{Binding, DestinationKind, ExchangeKind};
use crate::state::policy::Policy;
use crate::state::{ExchangeDecl, QueueDecl, State, VhostInfo, args};

/// The exchanges every vhost has from its creation, so bindings from them are valid even in a
/// vhost the same document creates.
const PREDECLARED_EXCHANGES: [&str; 6] =
    ["amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace"];

/// What an import changed, for logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Exchanges created.
    pub exchanges: usize,
    /// Queues created.
    pub queues: usize,
    /// Bindings in the document (existing ones are kept as they are).
    pub bindings: usize,
}

/// Imports `document`; `into_vhost` is the path's vhost for `POST /api/definitions/{vhost}`.
pub fn import(state: &State, document: &Definitions, into_vhost: Option<&str>) -> Result<Imported, ApiError> {
    let plan = check(state, document, into_vhost)?;
    Ok(apply(state, plan))
}

/// A checked document, ready to apply without further failure except a race with another writer.
struct Plan {
    vhosts: Vec<VhostInfo>,
    users: Vec<User>,
    permissions: Vec<Permission>,
    topic_permissions: Vec<TopicPermission>,
    policies: Vec<(Kind, Policy)>,
    exchanges: Vec<(String, ExchangeDecl)>,
    queues: Vec<(String, QueueDecl)>,
    bindings: Vec<(String, Binding)>,
}

fn check(state: &State, document: &Definitions, into_vhost: Option<&str>) -> Result<Plan, ApiError> {
    let vhost_of = |vhost: &Option<String>, what: &str, name: &str| -> Result<String, ApiError> {
        vhost
            .clone()
            .or_else(|| into_vhost.map(str::to_owned))
            .ok_or_else(|| ApiError::BadBody(serde::de::Error::custom(format!("{what} '{name}' names no vhost"))))
    };
    let vhosts: Vec<VhostInfo> = document
        .vhosts
        .iter()
        .flatten()
        .map(|v| {
            let metadata = v.metadata.clone().unwrap_or_default();
            let existing = state.vhost(&v.name);
            VhostInfo {
                name: v.name.clone(),
                description: v
                    .description
                    .clone()
                    .or(metadata.description)
                    .or_else(|| existing.as_ref().map(|e| e.description.clone()))
                    .unwrap_or_default(),
                tags: v
                    .tags
                    .clone()
                    .or(metadata.tags)
                    .or_else(|| existing.as_ref().map(|e| e.tags.clone()))
                    .unwrap_or_default(),
                default_queue_type: v
                    .default_queue_type
                    .clone()
                    .or(metadata.default_queue_type)
                    .filter(|t| t != "undefined")
                    .or_else(|| existing.as_ref().and_then(|e| e.default_queue_type.clone())),
            }
        })
        .collect();
    let vhost_known = |name: &str| state.vhost(name).is_some() || vhosts.iter().any(|v| v.name == name);
    let require_vhost = |name: &str| if vhost_known(name) { Ok(()) } else { Err(ApiError::VhostNotFound) };

    let users: Vec<User> = document.users.iter().flatten().map(user).collect::<Result<_, _>>()?;
    let user_known = |name: &str| state.user(name).is_some() || users.iter().any(|u| u.name == name);

    let mut permissions = Vec::new();
    for p in document.permissions.iter().flatten() {
        if !vhost_known(&p.vhost) || !user_known(&p.user) {
            return Err(ApiError::VhostOrUserNotFound);
        }
        permissions.push(Permission {
            user: p.user.clone(),
            vhost: p.vhost.clone(),
            configure: p.configure.clone(),
            write: p.write.clone(),
            read: p.read.clone(),
        });
    }
    let mut topic_permissions = Vec::new();
    for p in document.topic_permissions.iter().flatten() {
        if !vhost_known(&p.vhost) || !user_known(&p.user) {
            return Err(ApiError::VhostOrUserNotFound);
        }
        topic_permissions.push(TopicPermission {
            user: p.user.clone(),
            vhost: p.vhost.clone(),
            exchange: p.exchange.clone(),
            write: p.write.clone(),
            read: p.read.clone(),
        });
    }

    let mut policies = Vec::new();
    for p in &document.policies {
        let vhost = vhost_of(&p.vhost, "policy", &p.name)?;
        require_vhost(&vhost)?;
        policies
            .push((Kind::Regular, policy_routes::policy_from_body(Kind::Regular, &vhost, &p.name, &policy_body(p))?));
    }
    for parameter in &document.parameters {
        if parameter.component != "operator_policy" {
            return Err(ApiError::BadBody(serde::de::Error::custom(format!(
                "runtime parameter '{}' of component '{}' is not supported by warren-broker (only operator_policy)",
                parameter.name, parameter.component
            ))));
        }
        let vhost = vhost_of(&parameter.vhost, "operator policy", &parameter.name)?;
        require_vhost(&vhost)?;
        let Value::Object(body) = &parameter.value else {
            return Err(ApiError::BadBody(serde::de::Error::custom(format!(
                "operator policy '{}' has no policy object as its value",
                parameter.name
            ))));
        };
        policies
            .push((Kind::Operator, policy_routes::policy_from_body(Kind::Operator, &vhost, &parameter.name, body)?));
    }

    let mut exchanges = Vec::new();
    for x in &document.exchanges {
        let vhost = vhost_of(&x.vhost, "exchange", &x.name)?;
        require_vhost(&vhost)?;
        if x.name.is_empty() || x.name.starts_with("amq.") {
            tracing::warn!(vhost, exchange = x.name, "definitions import skips an exchange with a reserved name");
            continue;
        }
        if ExchangeKind::parse(&x.kind).is_none() {
            return Err(ApiError::UnknownExchangeType(x.kind.clone()));
        }
        let decl = ExchangeDecl {
            name: x.name.clone(),
            kind: x.kind.clone(),
            durable: x.durable,
            auto_delete: x.auto_delete,
            internal: x.internal,
            arguments: args::table_from_json(&x.arguments),
        };
        exchanges.push((vhost, decl));
    }
    let mut queues = Vec::new();
    for q in &document.queues {
        let vhost = vhost_of(&q.vhost, "queue", &q.name)?;
        require_vhost(&vhost)?;
        if q.name.starts_with("amq.") {
            tracing::warn!(vhost, queue = q.name, "definitions import skips a queue with a reserved name");
            continue;
        }
        let arguments = args::table_from_json(&q.arguments);
        args::validate_queue_arguments(&vhost, &q.name, &arguments)?;
        let decl = QueueDecl {
            name: q.name.clone(),
            durable: q.durable,
            exclusive_owner: None,
            auto_delete: q.auto_delete,
            arguments,
        };
        queues.push((vhost, decl));
    }

    let mut bindings = Vec::new();
    for b in &document.bindings {
        let vhost = vhost_of(&b.vhost, "binding from exchange", &b.source)?;
        require_vhost(&vhost)?;
        let destination_kind = match b.destination_type.as_str() {
            "queue" => DestinationKind::Queue,
            "exchange" => DestinationKind::Exchange,
            other => {
                return Err(ApiError::BadBody(serde::de::Error::custom(format!(
                    "binding destination_type must be queue or exchange, got '{other}'"
                ))));
            }
        };
        let exchange_known = |name: &str| {
            PREDECLARED_EXCHANGES.contains(&name)
                || state.exchange(&vhost, name).is_ok()
                || exchanges.iter().any(|(v, x)| *v == vhost && x.name == name)
        };
        if !exchange_known(&b.source) {
            return Err(missing("exchange", &b.source, &vhost));
        }
        let destination_known = match destination_kind {
            DestinationKind::Exchange => exchange_known(&b.destination),
            DestinationKind::Queue => {
                state.queue(&vhost, &b.destination).is_ok()
                    || queues.iter().any(|(v, q)| *v == vhost && q.name == b.destination)
            }
        };
        if !destination_known {
            return Err(missing(destination_kind.as_str(), &b.destination, &vhost));
        }
        let binding = Binding {
            source: b.source.clone(),
            destination: b.destination.clone(),
            destination_kind,
            routing_key: b.routing_key.clone(),
            arguments: args::table_from_json(&b.arguments),
        };
        bindings.push((vhost, binding));
    }
    Ok(Plan { vhosts, users, permissions, topic_permissions, policies, exchanges, queues, bindings })
}

fn apply(state: &State, plan: Plan) -> Imported {
    let mut imported = Imported::default();
    for vhost in plan.vhosts {
        state.put_vhost(vhost);
    }
    for user in plan.users {
        state.put_user(user);
    }
    // Every entry below was checked against the state or the document; a failure now means a
    // concurrent request removed something in between, and RabbitMQ would fail that item too.
    for p in plan.permissions {
        log_failure("permission", &p.user, state.put_permission(p.clone()));
    }
    for p in plan.topic_permissions {
        log_failure("topic permission", &p.user, state.put_topic_permission(p.clone()));
    }
    for (kind, policy) in plan.policies {
        let name = policy.name.clone();
        let result = match kind {
            Kind::Regular => state.put_policy(policy),
            Kind::Operator => state.put_operator_policy(policy),
        };
        log_failure("policy", &name, result);
    }
    for (vhost, decl) in plan.exchanges {
        if state.exchange(&vhost, &decl.name).is_ok() {
            continue;
        }
        let name = decl.name.clone();
        if log_failure("exchange", &name, state.declare_exchange(&vhost, decl, false)) {
            imported.exchanges += 1;
        }
    }
    for (vhost, decl) in plan.queues {
        if state.queue(&vhost, &decl.name).is_ok() {
            continue;
        }
        let name = decl.name.clone();
        if log_failure("queue", &name, state.declare_queue(&vhost, decl)) {
            imported.queues += 1;
        }
    }
    for (vhost, binding) in plan.bindings {
        let source = binding.source.clone();
        if log_failure("binding from exchange", &source, state.bind(&vhost, binding)) {
            imported.bindings += 1;
        }
    }
    imported
}

/// Logs a failed item; true when it succeeded.
fn log_failure<T>(what: &str, name: &str, result: Result<T, crate::state::StateError>) -> bool {
    match result {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, "definitions import could not apply {what} '{name}'");
            false
        }
    }
}

fn missing(kind: &'static str, name: &str, vhost: &str) -> ApiError {
    ApiError::State(crate::state::StateError::not_found(
        match kind {
            "queue" => crate::state::EntityKind::Queue,
            _ => crate::state::EntityKind::Exchange,
        },
        vhost,
        name,
    ))
}

/// The policy as a `PUT /api/policies/…` body, so both paths validate alike.
fn policy_body(p: &PolicyDef) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("pattern".to_owned(), json!(p.pattern));
    map.insert("apply-to".to_owned(), json!(p.apply_to));
    map.insert("definition".to_owned(), Value::Object(p.definition.clone()));
    map.insert("priority".to_owned(), json!(p.priority));
    map
}

/// A user from a definitions entry: a clear-text password is hashed, a hash is checked.
fn user(def: &UserDef) -> Result<User, ApiError> {
    let algorithm = password::resolve(def.hashing_algorithm.as_deref(), &def.password_hash)
        .map_err(|e| ApiError::PasswordHash { problem: format!("user '{}': {e}", def.name) })?;
    let password_hash = match &def.password {
        Some(clear) if def.password_hash.is_empty() => password::hash_password(clear, algorithm),
        // RabbitMQ's own words for it, as its import answers.
        Some(_) => {
            return Err(ApiError::PasswordHash { problem: "both_password_and_password_hash_are_provided".into() });
        }
        None => {
            password::check_hash(&def.password_hash, algorithm)
                .map_err(|problem| ApiError::PasswordHash { problem: format!("user '{}': {problem}", def.name) })?;
            def.password_hash.clone()
        }
    };
    Ok(User {
        name: def.name.clone(),
        password_hash,
        hashing_algorithm: algorithm.name().to_owned(),
        tags: def.tags.clone(),
    })
}
