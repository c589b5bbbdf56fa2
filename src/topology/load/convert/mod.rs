//! Raw file structs to the validated model: `${VAR}` substitution, names
//! and enumerations parsed, each entity checked on its own. Checks that
//! relate entities to each other (references, regexes) come next, in
//! `validate`, which uses the [`Origins`] recorded here to point at the file.

pub mod arguments;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use warren_definitions::password::{self, HashError, HashingAlgorithm};

use self::arguments::{
    check_binding_arguments, check_exchange_arguments, check_policy_definition, check_queue_arguments,
};
use super::diagnostic::{Diagnostics, did_you_mean};
use super::env::Env;
use super::raw::{
    RawArguments, RawBinding, RawExchange, RawPolicy, RawQueue, RawState, RawTopology, RawUser, RawVhost,
};
use super::source::{Locator, NodePath, describe};
use crate::topology::model::{
    ApplyTo, Binding, DestinationType, Exchange, ExchangeType, Password, Permission, Policy, Queue, QueueType, State,
    TopicPermission, Topology, User, Vhost,
};

/// Where in the file each model entity came from, keyed by model names
/// (after substitution).
#[derive(Debug, Default)]
pub struct Origins {
    /// Vhosts by name.
    pub vhosts: HashMap<String, NodePath>,
    /// Exchanges by (vhost, name).
    pub exchanges: HashMap<(String, String), NodePath>,
    /// Queues by (vhost, name).
    pub queues: HashMap<(String, String), NodePath>,
    /// Bindings by (vhost, index in the model's list).
    pub bindings: HashMap<(String, usize), NodePath>,
    /// Policies by (vhost, name).
    pub policies: HashMap<(String, String), NodePath>,
    /// Operator policies by (vhost, name).
    pub operator_policies: HashMap<(String, String), NodePath>,
    /// `unmanaged` patterns by (vhost, index).
    pub unmanaged: HashMap<(String, usize), NodePath>,
    /// Users by name.
    pub users: HashMap<String, NodePath>,
    /// Permissions by (user, vhost).
    pub permissions: HashMap<(String, String), NodePath>,
    /// Topic permissions by (user, vhost, exchange).
    pub topic_permissions: HashMap<(String, String, String), NodePath>,
}

/// Converts while collecting every problem found.
pub struct Converter<'a> {
    /// Positions.
    pub loc: &'a Locator,
    /// Variables.
    pub env: &'a dyn Env,
    /// Problems found so far.
    pub diags: &'a mut Diagnostics,
    /// Where each entity came from.
    pub origins: Origins,
}

impl Converter<'_> {
    /// Names the entity at `path` as the broker will see it.
    pub fn describe(&self, path: &NodePath) -> String {
        describe(&path.resolved(self.env))
    }

    /// Records a problem at the key of `path` (where the entity is named).
    pub fn at_key(&mut self, path: &NodePath, message: impl Into<String>) {
        let pos = self.loc.key(path);
        self.diags.push(pos, message);
    }

    /// Records a problem at the value of `path`.
    pub fn at_value(&mut self, path: &NodePath, message: impl Into<String>) {
        let pos = self.loc.value(path);
        self.diags.push(pos, message);
    }

    /// `raw` with `${VAR}` substituted; on failure reports it at the value of `path`.
    pub fn text(&mut self, raw: &str, path: &NodePath) -> String {
        match super::env::substitute_located(raw, self.env) {
            Ok(text) => text,
            Err((offset, error)) => {
                let pos = self.loc.value(path).map(|start| self.loc.inside_scalar(start, raw, offset));
                let message = format!("{}: {error}", self.describe(path));
                self.diags.push(pos, message);
                raw.to_owned()
            }
        }
    }

    /// A mapping key with `${VAR}` substituted; on failure reports it at the key.
    fn name(&mut self, raw: &str, path: &NodePath) -> String {
        match super::env::substitute_located(raw, self.env) {
            Ok(text) => text,
            Err((offset, error)) => {
                let pos = self.loc.key(path).map(|start| self.loc.inside_scalar(start, raw, offset));
                let message = format!("{}: {error}", self.describe(path));
                self.diags.push(pos, message);
                raw.to_owned()
            }
        }
    }

    /// JSON values with every string substituted.
    fn arguments(&mut self, raw: &RawArguments, path: &NodePath) -> BTreeMap<String, Value> {
        raw.iter().map(|(key, value)| (key.clone(), self.json(value, &path.key(key)))).collect()
    }

    fn json(&mut self, value: &Value, path: &NodePath) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s, path)),
            Value::Array(items) => {
                Value::Array(items.iter().enumerate().map(|(i, v)| self.json(v, &path.index(i))).collect())
            }
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.json(v, &path.key(k)))).collect())
            }
            other => other.clone(),
        }
    }

    /// Converts a whole topology; the problems are in `self.diags`.
    pub fn topology(&mut self, raw: &RawTopology, base: &NodePath) -> Topology {
        let mut topology = Topology::default();
        let vhosts_path = base.key("vhosts");
        for (raw_name, raw_vhost) in &raw.vhosts {
            let path = vhosts_path.key(raw_name);
            let name = self.name(raw_name, &path);
            if name.is_empty() {
                self.at_key(&path, "a vhost name must not be empty");
            }
            let vhost = self.vhost(&name, raw_vhost, &path);
            self.origins.vhosts.insert(name.clone(), path);
            topology.vhosts.insert(name, vhost);
        }
        let users_path = base.key("users");
        for (raw_name, raw_user) in &raw.users {
            let path = users_path.key(raw_name);
            let name = self.name(raw_name, &path);
            if name.is_empty() {
                self.at_key(&path, "a user name must not be empty");
            }
            let user = self.user(&name, raw_user, &path);
            self.origins.users.insert(name.clone(), path);
            topology.users.insert(name, user);
        }
        topology
    }

    fn vhost(&mut self, vhost_name: &str, raw: &RawVhost, path: &NodePath) -> Vhost {
        let mut vhost = Vhost {
            state: state(raw.state),
            description: raw.description.as_ref().map(|d| self.text(d, &path.key("description"))),
            tags: raw.tags.iter().enumerate().map(|(i, t)| self.text(t, &path.key("tags").index(i))).collect(),
            default_queue_type: None,
            ..Vhost::default()
        };
        if let Some(raw_type) = &raw.default_queue_type {
            let at = path.key("default_queue_type");
            let text = self.text(raw_type, &at);
            match QueueType::parse(&text) {
                Some(kind) => vhost.default_queue_type = Some(kind),
                None => self.at_value(&at, unknown_queue_type(&self.describe(&at), &text)),
            }
        }
        for (raw_name, raw_exchange) in &raw.exchanges {
            let at = path.key("exchanges").key(raw_name);
            let name = self.name(raw_name, &at);
            self.entity_name("exchange", &name, &at);
            let exchange = self.exchange(raw_exchange, &at);
            self.origins.exchanges.insert((vhost_name.to_owned(), name.clone()), at);
            vhost.exchanges.insert(name, exchange);
        }
        for (raw_name, raw_queue) in &raw.queues {
            let at = path.key("queues").key(raw_name);
            let name = self.name(raw_name, &at);
            self.entity_name("queue", &name, &at);
            let queue = self.queue(raw_queue, vhost.default_queue_type, &at);
            self.origins.queues.insert((vhost_name.to_owned(), name.clone()), at);
            vhost.queues.insert(name, queue);
        }
        for (i, raw_binding) in raw.bindings.iter().enumerate() {
            let at = path.key("bindings").index(i);
            if let Some(binding) = self.binding(raw_binding, &at) {
                self.origins.bindings.insert((vhost_name.to_owned(), vhost.bindings.len()), at);
                vhost.bindings.push(binding);
            }
        }
        for (field, raw_policies) in [("policies", &raw.policies), ("operator_policies", &raw.operator_policies)] {
            for (raw_name, raw_policy) in raw_policies {
                let at = path.key(field).key(raw_name);
                let name = self.name(raw_name, &at);
                if name.is_empty() {
                    self.at_key(&at, format!("{}: a policy name must not be empty", self.describe(&at)));
                }
                let policy = self.policy(raw_policy, &at);
                let key = (vhost_name.to_owned(), name.clone());
                if field == "policies" {
                    self.origins.policies.insert(key, at);
                    vhost.policies.insert(name, policy);
                } else {
                    self.origins.operator_policies.insert(key, at);
                    vhost.operator_policies.insert(name, policy);
                }
            }
        }
        for (i, raw_pattern) in raw.unmanaged.iter().enumerate() {
            let at = path.key("unmanaged").index(i);
            let pattern = self.text(raw_pattern, &at);
            self.origins.unmanaged.insert((vhost_name.to_owned(), vhost.unmanaged.len()), at);
            vhost.unmanaged.push(pattern);
        }
        vhost
    }

    /// Names the broker would refuse.
    fn entity_name(&mut self, what: &str, name: &str, at: &NodePath) {
        if name.is_empty() {
            let why = match what {
                "exchange" => {
                    "an exchange name must not be empty: `\"\"` is the default exchange, which the broker owns"
                }
                _ => "a queue name must not be empty: an empty name asks the broker to make one up",
            };
            self.at_key(at, why);
        } else if name.starts_with("amq.") {
            self.at_key(
                at,
                format!(
                    "{}: names starting with `amq.` are reserved by RabbitMQ and cannot be declared",
                    self.describe(at)
                ),
            );
        } else if name.len() > 255 {
            self.at_key(at, format!("{}: a name is at most 255 bytes long (AMQP short string)", self.describe(at)));
        }
    }

    fn exchange(&mut self, raw: &RawExchange, at: &NodePath) -> Exchange {
        let mut exchange = Exchange {
            state: state(raw.state),
            durable: raw.durable,
            auto_delete: raw.auto_delete,
            internal: raw.internal,
            arguments: self.arguments(&raw.arguments, &at.key("arguments")),
            ..Exchange::default()
        };
        match &raw.kind {
            Some(raw_kind) => {
                let type_at = at.key("type");
                let kind = self.text(raw_kind, &type_at);
                match ExchangeType::parse(&kind) {
                    Some(kind) => exchange.kind = kind,
                    None => self.at_value(
                        &type_at,
                        format!(
                            "{}: unknown exchange type `{kind}`, expected `direct`, `fanout`, `topic`, `headers` or a plugin type starting with `x-`{}",
                            self.describe(at),
                            did_you_mean(&kind, ["direct", "fanout", "topic", "headers"])
                        ),
                    ),
                }
            }
            None if raw.state == RawState::Absent => {}
            None => self.at_key(
                at,
                format!(
                    "{} has no `type`: give `direct`, `fanout`, `topic`, `headers` or a plugin type",
                    self.describe(at)
                ),
            ),
        }
        let arguments = exchange.arguments.clone();
        check_exchange_arguments(self, &arguments, &at.key("arguments"));
        exchange
    }

    fn queue(&mut self, raw: &RawQueue, default_type: Option<QueueType>, at: &NodePath) -> Queue {
        let queue = Queue {
            state: state(raw.state),
            durable: raw.durable,
            auto_delete: raw.auto_delete,
            arguments: self.arguments(&raw.arguments, &at.key("arguments")),
        };
        let kind = check_queue_arguments(self, &queue.arguments, &at.key("arguments")).or(default_type);
        if let Some(kind @ (QueueType::Quorum | QueueType::Stream)) = kind
            && raw.state == RawState::Present
        {
            if !queue.durable {
                self.at_key(
                    at,
                    format!("{}: a {kind} queue must be durable (remove `durable: false`)", self.describe(at)),
                );
            }
            if queue.auto_delete {
                self.at_key(at, format!("{}: a {kind} queue cannot be auto-delete", self.describe(at)));
            }
        }
        queue
    }

    fn binding(&mut self, raw: &RawBinding, at: &NodePath) -> Option<Binding> {
        let source = self.text(&raw.exchange, &at.key("exchange"));
        let (destination, destination_type) = match (&raw.queue, &raw.to_exchange) {
            (Some(queue), None) => (self.text(queue, &at.key("queue")), DestinationType::Queue),
            (None, Some(exchange)) => (self.text(exchange, &at.key("to_exchange")), DestinationType::Exchange),
            (Some(_), Some(_)) => {
                self.at_value(
                    at,
                    format!(
                        "{} has both `queue` and `to_exchange`; a binding has one destination, write two bindings for two",
                        self.describe(at)
                    ),
                );
                return None;
            }
            (None, None) => {
                self.at_value(
                    at,
                    format!(
                        "{} has no destination: give `queue` (a queue) or `to_exchange` (an exchange)",
                        self.describe(at)
                    ),
                );
                return None;
            }
        };
        let binding = Binding {
            state: state(raw.state),
            source,
            destination,
            destination_type,
            routing_key: self.text(&raw.routing_key, &at.key("routing_key")),
            arguments: self.arguments(&raw.arguments, &at.key("arguments")),
        };
        check_binding_arguments(self, &binding.arguments, &at.key("arguments"));
        Some(binding)
    }

    fn policy(&mut self, raw: &RawPolicy, at: &NodePath) -> Policy {
        let mut policy = Policy {
            state: state(raw.state),
            pattern: String::new(),
            apply_to: ApplyTo::All,
            priority: raw.priority,
            definition: self.arguments(&raw.definition, &at.key("definition")),
        };
        match &raw.pattern {
            Some(pattern) => policy.pattern = self.text(pattern, &at.key("pattern")),
            None if raw.state == RawState::Absent => {}
            None => self.at_key(
                at,
                format!("{} has no `pattern`: give a regular expression of the names it applies to", self.describe(at)),
            ),
        }
        if let Some(raw_apply_to) = &raw.apply_to {
            let apply_at = at.key("apply_to");
            let text = self.text(raw_apply_to, &apply_at);
            let names = ["all", "exchanges", "queues", "classic_queues", "quorum_queues", "streams"];
            match ApplyTo::parse(&text) {
                Some(apply_to) => policy.apply_to = apply_to,
                None => self.at_value(
                    &apply_at,
                    format!(
                        "{}: unknown `apply_to` value `{text}`, expected one of `{}`{}",
                        self.describe(at),
                        names.join("`, `"),
                        did_you_mean(&text, names)
                    ),
                ),
            }
        }
        if policy.definition.is_empty() && raw.state == RawState::Present {
            self.at_key(at, format!("{} has an empty `definition`: a policy must set something", self.describe(at)));
        }
        let definition = policy.definition.clone();
        check_policy_definition(self, &definition, &at.key("definition"));
        policy
    }

    fn user(&mut self, user_name: &str, raw: &RawUser, at: &NodePath) -> User {
        let password = self.password(raw, at);
        let mut user = User {
            state: state(raw.state),
            password,
            tags: raw
                .tags
                .as_ref()
                .map(|tags| tags.iter().enumerate().map(|(i, t)| self.text(t, &at.key("tags").index(i))).collect()),
            permissions: BTreeMap::new(),
            topic_permissions: BTreeMap::new(),
        };
        for (raw_vhost, raw_permission) in &raw.permissions {
            let perm_at = at.key("permissions").key(raw_vhost);
            let vhost = self.name(raw_vhost, &perm_at);
            let permission = Permission {
                configure: self.text(&raw_permission.configure, &perm_at.key("configure")),
                write: self.text(&raw_permission.write, &perm_at.key("write")),
                read: self.text(&raw_permission.read, &perm_at.key("read")),
            };
            self.origins.permissions.insert((user_name.to_owned(), vhost.clone()), perm_at);
            user.permissions.insert(vhost, permission);
        }
        for (raw_vhost, raw_exchanges) in &raw.topic_permissions {
            let vhost_at = at.key("topic_permissions").key(raw_vhost);
            let vhost = self.name(raw_vhost, &vhost_at);
            let mut exchanges = BTreeMap::new();
            for (raw_exchange, raw_permission) in raw_exchanges {
                let perm_at = vhost_at.key(raw_exchange);
                let exchange = self.name(raw_exchange, &perm_at);
                let permission = TopicPermission {
                    write: self.text(&raw_permission.write, &perm_at.key("write")),
                    read: self.text(&raw_permission.read, &perm_at.key("read")),
                };
                self.origins.topic_permissions.insert((user_name.to_owned(), vhost.clone(), exchange.clone()), perm_at);
                exchanges.insert(exchange, permission);
            }
            user.topic_permissions.insert(vhost, exchanges);
        }
        user
    }

    /// The declared password. Messages here never quote the value: it is a secret.
    fn password(&mut self, raw: &RawUser, at: &NodePath) -> Password {
        let who = self.describe(at);
        if raw.hashing_algorithm.is_some() && raw.password_hash.is_none() {
            self.at_value(
                &at.key("hashing_algorithm"),
                format!("{who}: `hashing_algorithm` only applies to `password_hash`, which is not given"),
            );
        }
        match (&raw.password, &raw.password_hash) {
            (Some(_), Some(_)) => {
                self.at_key(
                    &at.key("password_hash"),
                    format!("{who} has both `password` and `password_hash`; give one of them"),
                );
                Password::None
            }
            (Some(raw_password), None) => {
                let password = self.text(raw_password, &at.key("password"));
                if password.is_empty() {
                    self.at_value(
                        &at.key("password"),
                        format!(
                            "{who}: `password` is empty (to create a user without a password, leave `password` out)"
                        ),
                    );
                }
                Password::Clear(password)
            }
            (None, Some(raw_hash)) => {
                let hash_at = at.key("password_hash");
                let hash = self.text(raw_hash, &hash_at);
                let algorithm = match &raw.hashing_algorithm {
                    None => HashingAlgorithm::Sha256,
                    Some(raw_algorithm) => {
                        let alg_at = at.key("hashing_algorithm");
                        let text = self.text(raw_algorithm, &alg_at);
                        HashingAlgorithm::parse(&text).unwrap_or_else(|| {
                            let names = [HashingAlgorithm::Sha256.as_str(), HashingAlgorithm::Sha512.as_str()];
                            self.at_value(
                                &alg_at,
                                format!(
                                    "{who}: unknown `hashing_algorithm` `{text}`, expected `{}` or `{}`{}",
                                    names[0],
                                    names[1],
                                    did_you_mean(&text, names)
                                ),
                            );
                            HashingAlgorithm::Sha256
                        })
                    }
                };
                match password::check(&hash, algorithm) {
                    Ok(()) => {}
                    Err(HashError::Length { len, .. }) => self.at_value(
                        &hash_at,
                        format!(
                            "{who}: `password_hash` decodes to {len} bytes, but a {} hash is {} (4 bytes of salt and the digest)",
                            algorithm.as_str(),
                            algorithm.hash_len()
                        ),
                    ),
                    Err(HashError::NotBase64) => self.at_value(
                        &hash_at,
                        format!("{who}: `password_hash` is not base64; copy it from a definitions export"),
                    ),
                }
                Password::Hash { hash, algorithm }
            }
            (None, None) => Password::None,
        }
    }
}

fn state(raw: RawState) -> State {
    match raw {
        RawState::Present => State::Present,
        RawState::Absent => State::Absent,
    }
}

/// The message for a queue type name that is not one.
pub fn unknown_queue_type(what: &str, given: &str) -> String {
    format!(
        "{what}: unknown queue type `{given}`, expected `classic`, `quorum` or `stream`{}",
        did_you_mean(given, ["classic", "quorum", "stream"])
    )
}
