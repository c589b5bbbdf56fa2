//! Loading a definitions document into the state: `POST /api/definitions`,
//! `POST /api/definitions/{vhost}`, and the data directory at start.
//!
//! The whole document is checked before anything changes (users' hashes,
//! policies, exchange types, queue arguments, that every vhost and binding end
//! exists in the broker or in the document), so a bad document changes
//! nothing. Then, as RabbitMQ does, it creates what is missing, overwrites
//! users, permissions and policies, and leaves existing exchanges and queues as
//! they are.

use serde_json::{Map, Value};
use warren_definitions::password::{self, HashError, UnknownAlgorithm};
use warren_definitions::{Definitions, UserDef, arguments};

use super::policy::{PolicyError, PolicyKind, policy_from_body};
use crate::state::auth::{Permission, TopicPermission, User};
use crate::state::exchange::{Binding, DestinationKind, ExchangeKind};
use crate::state::policy::Policy;
use crate::state::{EntityKind, ExchangeDecl, QueueDecl, State, StateError, VhostInfo, args};

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

/// Why a document was not imported; nothing of it was applied.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An entity of a whole-broker document without a `vhost` field.
    #[error("{what} '{name}' names no vhost")]
    NoVhost {
        /// What kind of entry (`queue`, `binding from exchange`, …).
        what: &'static str,
        /// The entry's name.
        name: String,
    },
    /// An entity in a vhost that neither the broker nor the document has.
    #[error("vhost '{vhost}' does not exist")]
    VhostNotFound {
        /// The vhost.
        vhost: String,
    },
    /// A permission for a user or vhost that neither the broker nor the document has.
    #[error("the permissions of user '{user}' in vhost '{vhost}' name a user or vhost that does not exist")]
    VhostOrUserNotFound {
        /// The user.
        user: String,
        /// The vhost.
        vhost: String,
    },
    /// A runtime parameter of a component this broker does not implement.
    #[error(
        "runtime parameter '{name}' of component '{component}' is not supported by warren-broker (only operator_policy)"
    )]
    UnsupportedParameter {
        /// The parameter.
        name: String,
        /// Its component.
        component: String,
    },
    /// An operator policy parameter whose value is not an object.
    #[error("operator policy '{name}' has no policy object as its value")]
    OperatorPolicyValue {
        /// The operator policy.
        name: String,
    },
    /// A policy or operator policy the broker refuses.
    #[error("policy '{name}' in vhost '{vhost}': {error}")]
    Policy {
        /// Its vhost.
        vhost: String,
        /// Its name.
        name: String,
        /// Why.
        error: Box<PolicyError>,
    },
    /// An exchange type the broker does not implement.
    #[error("unknown exchange type '{kind}'")]
    UnknownExchangeType {
        /// The type.
        kind: String,
    },
    /// A binding whose destination type is neither `queue` nor `exchange`.
    #[error("binding destination_type must be queue or exchange, got '{kind}'")]
    DestinationType {
        /// The type found.
        kind: String,
    },
    /// The state refuses an entry: queue arguments, a binding end that does not exist.
    #[error("{0}")]
    State(StateError),
    /// A user whose hashing algorithm the broker does not implement.
    #[error("user '{user}': {error}")]
    UnknownAlgorithm {
        /// The user.
        user: String,
        /// The algorithm.
        error: UnknownAlgorithm,
    },
    /// A user with both `password` and `password_hash`.
    #[error("user '{user}' has both a password and a password hash")]
    PasswordAndHash {
        /// The user.
        user: String,
    },
    /// A user whose hash no password can match.
    #[error("user '{user}': {error}")]
    BadHash {
        /// The user.
        user: String,
        /// What is wrong with the hash.
        error: HashError,
    },
}

/// Imports `document`; `into_vhost` is the path's vhost for `POST /api/definitions/{vhost}`.
pub fn import(state: &State, document: &Definitions, into_vhost: Option<&str>) -> Result<Imported, ImportError> {
    let plan = check(state, document, into_vhost)?;
    Ok(apply(state, plan))
}

/// A checked document, ready to apply without further failure except a race with another writer.
#[derive(Default)]
struct Plan {
    vhosts: Vec<VhostInfo>,
    users: Vec<User>,
    permissions: Vec<Permission>,
    topic_permissions: Vec<TopicPermission>,
    policies: Vec<(PolicyKind, Policy)>,
    exchanges: Vec<(String, ExchangeDecl)>,
    queues: Vec<(String, QueueDecl)>,
    bindings: Vec<(String, Binding)>,
}

/// Checks a whole document before anything is applied, kind by kind in
/// dependency order: each entity must refer to what the broker has or what
/// the document declares before it, as RabbitMQ's import requires.
fn check(state: &State, document: &Definitions, into_vhost: Option<&str>) -> Result<Plan, ImportError> {
    let mut checker = Checker { state, into_vhost, plan: Plan::default() };
    checker.vhosts(document);
    checker.users_and_grants(document)?;
    checker.policies(document)?;
    checker.exchanges(document)?;
    checker.queues(document)?;
    checker.bindings(document)?;
    Ok(checker.plan)
}

/// The broker's state and the plan checked so far, which later kinds refer to.
struct Checker<'a> {
    state: &'a State,
    /// The path's vhost of `POST /api/definitions/{vhost}`.
    into_vhost: Option<&'a str>,
    plan: Plan,
}

impl Checker<'_> {
    /// The entity's vhost, or the path's for a vhost-scoped document.
    fn vhost_of(&self, vhost: &Option<String>, what: &'static str, name: &str) -> Result<String, ImportError> {
        vhost
            .clone()
            .or_else(|| self.into_vhost.map(str::to_owned))
            .ok_or_else(|| ImportError::NoVhost { what, name: name.to_owned() })
    }

    fn vhost_known(&self, name: &str) -> bool {
        self.state.vhost(name).is_some() || self.plan.vhosts.iter().any(|v| v.name == name)
    }

    fn user_known(&self, name: &str) -> bool {
        self.state.user(name).is_some() || self.plan.users.iter().any(|u| u.name == name)
    }

    /// The vhost an entity lives in, which must exist.
    fn existing_vhost(&self, vhost: &Option<String>, what: &'static str, name: &str) -> Result<String, ImportError> {
        let vhost = self.vhost_of(vhost, what, name)?;
        match self.vhost_known(&vhost) {
            true => Ok(vhost),
            false => Err(ImportError::VhostNotFound { vhost }),
        }
    }

    /// The vhost a grant names, when it and the user exist.
    fn grant_target(&self, user: &str, vhost: &Option<String>, what: &'static str) -> Result<String, ImportError> {
        let vhost = vhost.clone().ok_or_else(|| ImportError::NoVhost { what, name: user.to_owned() })?;
        match self.vhost_known(&vhost) && self.user_known(user) {
            true => Ok(vhost),
            false => Err(ImportError::VhostOrUserNotFound { user: user.to_owned(), vhost }),
        }
    }

    /// Vhosts; a field the document leaves out keeps the existing vhost's value.
    fn vhosts(&mut self, document: &Definitions) {
        for v in document.vhosts.iter().flatten() {
            let existing = self.state.vhost(&v.name);
            self.plan.vhosts.push(VhostInfo {
                name: v.name.clone(),
                description: v
                    .description()
                    .map(str::to_owned)
                    .or_else(|| existing.as_ref().map(|e| e.description.clone()))
                    .unwrap_or_default(),
                tags: v
                    .tags()
                    .map(|tags| tags.to_vec())
                    .or_else(|| existing.as_ref().map(|e| e.tags.clone()))
                    .unwrap_or_default(),
                default_queue_type: v
                    .default_queue_type()
                    .map(str::to_owned)
                    .or_else(|| existing.as_ref().and_then(|e| e.default_queue_type.clone())),
            });
        }
    }

    /// Users, then the permissions and topic permissions granted to them.
    fn users_and_grants(&mut self, document: &Definitions) -> Result<(), ImportError> {
        self.plan.users = document.users.iter().flatten().map(user).collect::<Result<_, _>>()?;
        for p in document.permissions.iter().flatten() {
            let vhost = self.grant_target(&p.user, &p.vhost, "permission of user")?;
            self.plan.permissions.push(Permission {
                user: p.user.clone(),
                vhost,
                configure: p.configure.clone(),
                write: p.write.clone(),
                read: p.read.clone(),
            });
        }
        for p in document.topic_permissions.iter().flatten() {
            let vhost = self.grant_target(&p.user, &p.vhost, "topic permission of user")?;
            self.plan.topic_permissions.push(TopicPermission {
                user: p.user.clone(),
                vhost,
                exchange: p.exchange.clone(),
                write: p.write.clone(),
                read: p.read.clone(),
            });
        }
        Ok(())
    }

    /// Policies, and operator policies (the only runtime parameters imported).
    fn policies(&mut self, document: &Definitions) -> Result<(), ImportError> {
        for p in &document.policies {
            let vhost = self.existing_vhost(&p.vhost, "policy", &p.name)?;
            let checked = policy(PolicyKind::Regular, &vhost, &p.name, &p.body().to_map())?;
            self.plan.policies.push((PolicyKind::Regular, checked));
        }
        for parameter in &document.parameters {
            if parameter.component != "operator_policy" {
                return Err(ImportError::UnsupportedParameter {
                    name: parameter.name.clone(),
                    component: parameter.component.clone(),
                });
            }
            let vhost = self.existing_vhost(&parameter.vhost, "operator policy", &parameter.name)?;
            let Value::Object(body) = &parameter.value else {
                return Err(ImportError::OperatorPolicyValue { name: parameter.name.clone() });
            };
            self.plan
                .policies
                .push((PolicyKind::Operator, policy(PolicyKind::Operator, &vhost, &parameter.name, body)?));
        }
        Ok(())
    }

    /// Exchanges; reserved names (`amq.*`, the default exchange) are skipped, as RabbitMQ does.
    fn exchanges(&mut self, document: &Definitions) -> Result<(), ImportError> {
        for x in &document.exchanges {
            let vhost = self.existing_vhost(&x.vhost, "exchange", &x.name)?;
            if x.name.is_empty() || x.name.starts_with("amq.") {
                tracing::warn!(vhost, exchange = x.name, "definitions import skips an exchange with a reserved name");
                continue;
            }
            if ExchangeKind::parse(&x.kind).is_none() {
                return Err(ImportError::UnknownExchangeType { kind: x.kind.clone() });
            }
            let decl = ExchangeDecl {
                name: x.name.clone(),
                kind: x.kind.clone(),
                // RabbitMQ's import has no default; a missing `durable` makes a transient exchange here.
                durable: x.durable.unwrap_or(false),
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: arguments::table_from_json(&x.arguments),
            };
            self.plan.exchanges.push((vhost, decl));
        }
        Ok(())
    }

    /// Queues, their arguments checked as a declaration's are.
    fn queues(&mut self, document: &Definitions) -> Result<(), ImportError> {
        for q in &document.queues {
            let vhost = self.existing_vhost(&q.vhost, "queue", &q.name)?;
            if q.name.starts_with("amq.") {
                tracing::warn!(vhost, queue = q.name, "definitions import skips a queue with a reserved name");
                continue;
            }
            let arguments = arguments::table_from_json(&q.arguments);
            args::validate_queue_arguments(&vhost, &q.name, &arguments).map_err(ImportError::State)?;
            let decl = QueueDecl {
                name: q.name.clone(),
                // As for exchanges: a missing `durable` makes a transient queue.
                durable: q.durable.unwrap_or(false),
                exclusive_owner: None,
                auto_delete: q.auto_delete,
                arguments,
            };
            self.plan.queues.push((vhost, decl));
        }
        Ok(())
    }

    /// Bindings, whose ends must exist on the broker or earlier in the document.
    fn bindings(&mut self, document: &Definitions) -> Result<(), ImportError> {
        for b in &document.bindings {
            let vhost = self.existing_vhost(&b.vhost, "binding from exchange", &b.source)?;
            let destination_kind = match b.destination_type.as_str() {
                "queue" => DestinationKind::Queue,
                "exchange" => DestinationKind::Exchange,
                other => return Err(ImportError::DestinationType { kind: other.to_owned() }),
            };
            let missing = |kind, name: &str| ImportError::State(StateError::not_found(kind, &vhost, name));
            if !self.exchange_known(&vhost, &b.source) {
                return Err(missing(EntityKind::Exchange, &b.source));
            }
            let (destination_known, kind) = match destination_kind {
                DestinationKind::Exchange => (self.exchange_known(&vhost, &b.destination), EntityKind::Exchange),
                DestinationKind::Queue => (self.queue_known(&vhost, &b.destination), EntityKind::Queue),
            };
            if !destination_known {
                return Err(missing(kind, &b.destination));
            }
            let binding = Binding {
                source: b.source.clone(),
                destination: b.destination.clone(),
                destination_kind,
                routing_key: b.routing_key.clone(),
                arguments: arguments::table_from_json(&b.arguments),
            };
            self.plan.bindings.push((vhost, binding));
        }
        Ok(())
    }

    fn exchange_known(&self, vhost: &str, name: &str) -> bool {
        PREDECLARED_EXCHANGES.contains(&name)
            || self.state.exchange(vhost, name).is_ok()
            || self.plan.exchanges.iter().any(|(v, x)| v == vhost && x.name == name)
    }

    fn queue_known(&self, vhost: &str, name: &str) -> bool {
        self.state.queue(vhost, name).is_ok() || self.plan.queues.iter().any(|(v, q)| v == vhost && q.name == name)
    }
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
            PolicyKind::Regular => state.put_policy(policy),
            PolicyKind::Operator => state.put_operator_policy(policy),
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

/// A policy entry, validated as `PUT /api/policies` validates its body.
fn policy(kind: PolicyKind, vhost: &str, name: &str, body: &Map<String, Value>) -> Result<Policy, ImportError> {
    policy_from_body(kind, vhost, name, body).map_err(|error| ImportError::Policy {
        vhost: vhost.to_owned(),
        name: name.to_owned(),
        error: Box::new(error),
    })
}

/// Logs a failed item; true when it succeeded.
fn log_failure<T>(what: &str, name: &str, result: Result<T, StateError>) -> bool {
    match result {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, "definitions import could not apply {what} '{name}'");
            false
        }
    }
}

/// A user from a definitions entry: a clear-text password is hashed, a hash is checked.
fn user(def: &UserDef) -> Result<User, ImportError> {
    let algorithm = password::resolve(def.hashing_algorithm.as_deref(), &def.password_hash)
        .map_err(|error| ImportError::UnknownAlgorithm { user: def.name.clone(), error })?;
    let password_hash = match &def.password {
        Some(clear) if def.password_hash.is_empty() => password::hash(clear, algorithm),
        Some(_) => return Err(ImportError::PasswordAndHash { user: def.name.clone() }),
        // An empty hash is a user without a password.
        None if def.password_hash.is_empty() => String::new(),
        None => {
            password::check(&def.password_hash, algorithm)
                .map_err(|error| ImportError::BadHash { user: def.name.clone(), error })?;
            def.password_hash.clone()
        }
    };
    Ok(User {
        name: def.name.clone(),
        password_hash,
        hashing_algorithm: algorithm,
        tags: def.tags.as_ref().map(|tags| tags.to_vec()).unwrap_or_default(),
    })
}
