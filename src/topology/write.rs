//! A [`Topology`] as topology-file YAML (`warren export`).
//!
//! The output loads back to an equal `Topology`: defaults are left out, and
//! every string is escaped so that a literal `${` in a name is not taken for
//! a variable. Passwords are written as `password_hash` with
//! `hashing_algorithm`, never in clear text; a clear-text password (only
//! possible for a topology loaded from a file) is hashed with a fresh salt.

use std::collections::BTreeMap;

use serde_json::Value;

use super::env::escape;
use super::model::{
    ApplyTo, Arguments, Binding, DestinationType, Exchange, Password, Policy, Queue, State, Topology, User, Vhost,
};
use super::raw::{
    RawArguments, RawBinding, RawExchange, RawPermission, RawPolicy, RawQueue, RawState, RawTopicPermission,
    RawTopology, RawUser, RawVhost,
};

/// The topology as YAML text, starting with a comment that says what it is.
pub fn to_yaml(topology: &Topology) -> String {
    let mut out = String::from("# warren topology (warren schema topology describes every key)\n");
    out.push_str(&super::yaml::to_string(&to_raw(topology)));
    out
}

/// The topology as the raw structs a file deserializes into.
pub fn to_raw(topology: &Topology) -> RawTopology {
    RawTopology {
        vhosts: topology.vhosts.iter().map(|(name, vhost)| (escape(name), vhost_raw(vhost))).collect(),
        users: topology.users.iter().map(|(name, user)| (escape(name), user_raw(user))).collect(),
    }
}

fn state(state: State) -> RawState {
    match state {
        State::Present => RawState::Present,
        State::Absent => RawState::Absent,
    }
}

fn text(value: &str) -> String {
    escape(value)
}

fn arguments(arguments: &Arguments) -> RawArguments {
    arguments.iter().map(|(key, value)| (key.clone(), json(value))).collect()
}

fn json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(escape(s)),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
        other => other.clone(),
    }
}

fn vhost_raw(vhost: &Vhost) -> RawVhost {
    RawVhost {
        state: state(vhost.state),
        description: vhost.description.as_deref().map(text),
        tags: vhost.tags.iter().map(|t| text(t)).collect(),
        default_queue_type: vhost.default_queue_type.map(|t| t.as_str().to_owned()),
        exchanges: vhost.exchanges.iter().map(|(name, exchange)| (escape(name), exchange_raw(exchange))).collect(),
        queues: vhost.queues.iter().map(|(name, queue)| (escape(name), queue_raw(queue))).collect(),
        bindings: vhost.bindings.iter().map(binding_raw).collect(),
        policies: vhost.policies.iter().map(|(name, policy)| (escape(name), policy_raw(policy))).collect(),
        operator_policies: vhost
            .operator_policies
            .iter()
            .map(|(name, policy)| (escape(name), policy_raw(policy)))
            .collect(),
        unmanaged: vhost.unmanaged.iter().map(|p| text(p)).collect(),
    }
}

fn exchange_raw(exchange: &Exchange) -> RawExchange {
    RawExchange {
        state: state(exchange.state),
        kind: Some(text(exchange.kind.as_str())),
        durable: exchange.durable,
        auto_delete: exchange.auto_delete,
        internal: exchange.internal,
        arguments: arguments(&exchange.arguments),
    }
}

fn queue_raw(queue: &Queue) -> RawQueue {
    RawQueue {
        state: state(queue.state),
        durable: queue.durable,
        auto_delete: queue.auto_delete,
        arguments: arguments(&queue.arguments),
    }
}

fn binding_raw(binding: &Binding) -> RawBinding {
    let destination = Some(text(&binding.destination));
    let (queue, to_exchange) = match binding.destination_type {
        DestinationType::Queue => (destination, None),
        DestinationType::Exchange => (None, destination),
    };
    RawBinding {
        state: state(binding.state),
        exchange: text(&binding.source),
        queue,
        to_exchange,
        routing_key: text(&binding.routing_key),
        arguments: arguments(&binding.arguments),
    }
}

fn policy_raw(policy: &Policy) -> RawPolicy {
    RawPolicy {
        state: state(policy.state),
        pattern: text(&policy.pattern),
        apply_to: (policy.apply_to != ApplyTo::All).then(|| policy.apply_to.as_str().to_owned()),
        priority: policy.priority,
        definition: arguments(&policy.definition),
    }
}

fn user_raw(user: &User) -> RawUser {
    let (password_hash, hashing_algorithm) = match &user.password {
        Password::Hash { hash, algorithm } => (Some(text(hash)), Some(algorithm.as_str().to_owned())),
        Password::Clear(password) => {
            let algorithm = super::model::HashAlgorithm::Sha256;
            (Some(super::password::hash(password, algorithm)), Some(algorithm.as_str().to_owned()))
        }
        Password::None => (None, None),
    };
    RawUser {
        state: state(user.state),
        password: None,
        password_hash,
        hashing_algorithm,
        tags: user.tags.iter().map(|t| text(t)).collect(),
        permissions: user
            .permissions
            .iter()
            .map(|(vhost, p)| {
                (
                    escape(vhost),
                    RawPermission { configure: text(&p.configure), write: text(&p.write), read: text(&p.read) },
                )
            })
            .collect(),
        topic_permissions: user
            .topic_permissions
            .iter()
            .map(|(vhost, exchanges)| {
                let exchanges: BTreeMap<String, RawTopicPermission> = exchanges
                    .iter()
                    .map(|(exchange, p)| {
                        (escape(exchange), RawTopicPermission { write: text(&p.write), read: text(&p.read) })
                    })
                    .collect();
                (escape(vhost), exchanges)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::topology::load::load_str_with_env;
    use crate::topology::model::{ExchangeType, HashAlgorithm, Permission};

    fn reload(topology: &Topology) -> Topology {
        let text = to_yaml(topology);
        match load_str_with_env("export.yaml", &text, &HashMap::new()) {
            Ok(loaded) => loaded,
            Err(error) => panic!("the export does not load back:\n{error}\n---\n{text}"),
        }
    }

    #[test]
    fn examples_round_trip() {
        let env = HashMap::from([("JACK_PASSWORD".to_owned(), "not-the-real-one".to_owned())]);
        for name in ["seed", "registration", "orders"] {
            let path = format!("{}/topologies/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).expect("example exists");
            let mut loaded = load_str_with_env(&path, &text, &env).expect("example loads");
            // A clear-text password is exported as a fresh salted hash, so
            // compare the hashed form: that is what the export promises.
            for user in loaded.users.values_mut() {
                if let Password::Clear(clear) = &user.password {
                    user.password = Password::Hash {
                        hash: crate::topology::password::hash(clear, HashAlgorithm::Sha256),
                        algorithm: HashAlgorithm::Sha256,
                    };
                }
            }
            assert_eq!(reload(&loaded), loaded, "{name}");
        }
    }

    #[test]
    fn passwords_are_exported_as_hashes_only() {
        let env = HashMap::from([("PW".to_owned(), "hunter2-secret".to_owned())]);
        let topology = load_str_with_env("t.yaml", "users:\n  app:\n    password: ${PW}\n", &env).expect("loads");
        let text = to_yaml(&topology);
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(text.contains("password_hash:") && text.contains("rabbit_password_hashing_sha256"), "{text}");
        let Password::Hash { hash, algorithm } = &reload(&topology).users["app"].password else {
            panic!("the export holds a hash")
        };
        assert!(crate::topology::password::matches("hunter2-secret", hash, *algorithm));
    }

    fn name() -> impl Strategy<Value = String> {
        // Names with the characters most likely to break quoting or substitution.
        "[a-z][a-z0-9 .:#*${}'\"-]{0,12}".prop_filter("not reserved", |n| !n.starts_with("amq."))
    }

    proptest! {
        #[test]
        fn any_names_round_trip(vhost in name(), exchange in name(), queue in name(), key in name(), user in name()) {
            let mut v = Vhost::default();
            v.exchanges.insert(exchange.clone(), Exchange { kind: ExchangeType::Topic, ..Exchange::default() });
            let mut arguments = Arguments::new();
            arguments.insert("x-dead-letter-routing-key".to_owned(), Value::String(key.clone()));
            v.queues.insert(queue.clone(), Queue { arguments, ..Queue::default() });
            v.bindings.push(Binding {
                state: State::Present,
                source: exchange,
                destination: queue,
                destination_type: DestinationType::Queue,
                routing_key: key.clone(),
                arguments: Arguments::new(),
            });
            let mut topology = Topology::default();
            topology.vhosts.insert(vhost.clone(), v);
            let permission = Permission { configure: ".*".to_owned(), write: format!("^{}$", regex::escape(&key)), read: String::new() };
            topology.users.insert(user, User {
                state: State::Present,
                password: Password::None,
                tags: vec!["monitoring".to_owned()],
                permissions: BTreeMap::from([(vhost, permission)]),
                topic_permissions: BTreeMap::new(),
            });
            crate::topology::normalise::normalise(&mut topology);
            prop_assert_eq!(reload(&topology), topology);
        }
    }
}
