//! A [`Topology`] as topology-file YAML (`warren export`).
//!
//! The output loads back to an equal `Topology`: defaults are left out, and
//! every string is escaped so that a literal `${` in a name is not taken for
//! a variable. Passwords are written as `password_hash` with
//! `hashing_algorithm`, never in clear text; a clear-text password (only
//! possible for a topology loaded from a file) is hashed with a fresh salt.

use std::collections::BTreeMap;

use serde_json::Value;

use super::load::env::escape;
use super::load::raw::{
    RawArguments, RawBinding, RawExchange, RawPermission, RawPolicy, RawQueue, RawState, RawTopicPermission,
    RawTopology, RawUser, RawVhost,
};
use super::model::{
    ApplyTo, Arguments, Binding, DestinationType, Exchange, Policy, Queue, State, Topology, User, Vhost,
};

/// The topology as YAML text, starting with a comment that says what it is.
pub fn to_yaml(topology: &Topology) -> String {
    let mut out = String::from("# warren topology (warren schema topology describes every key)\n");
    out.push_str(&super::load::yaml::to_string(&to_raw(topology)));
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
        pattern: Some(text(&policy.pattern)),
        apply_to: (policy.apply_to != ApplyTo::All).then(|| policy.apply_to.as_str().to_owned()),
        priority: policy.priority,
        definition: arguments(&policy.definition),
    }
}

fn user_raw(user: &User) -> RawUser {
    let (password_hash, hashing_algorithm) = match user.password.to_stored() {
        Some((hash, algorithm)) => (Some(text(&hash)), Some(algorithm.as_str().to_owned())),
        None => (None, None),
    };
    RawUser {
        state: state(user.state),
        password: None,
        password_hash,
        hashing_algorithm,
        tags: user.tags.as_ref().map(|tags| tags.iter().map(|t| text(t)).collect()),
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

    use warren_definitions::password::{self, HashingAlgorithm};

    use super::*;
    use crate::topology::load::load_str_with_env;
    use crate::topology::model::{ExchangeType, Password, Permission, QueueType};

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
                        hash: password::hash(clear, HashingAlgorithm::Sha256),
                        algorithm: HashingAlgorithm::Sha256,
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
        assert!(password::verify("hunter2-secret", hash, *algorithm));
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
                tags: Some(vec!["monitoring".to_owned()]),
                permissions: BTreeMap::from([(vhost, permission)]),
                topic_permissions: BTreeMap::new(),
            });
            crate::topology::normalise::normalise(&mut topology, crate::topology::normalise::Side::Broker);
            prop_assert_eq!(reload(&topology), topology);
        }
    }

    /// The random choices one vhost is built from.
    #[derive(Debug, Clone)]
    struct VhostSpec {
        exchanges: Vec<(u8, bool, bool, bool)>,
        queues: Vec<(u8, bool, Option<u32>, bool)>,
        bindings: Vec<(u8, u8, bool, String, bool)>,
        policies: Vec<(u8, i64, u32)>,
        default_queue_type: Option<u8>,
        description: Option<String>,
        tags: Vec<String>,
    }

    prop_compose! {
        fn vhost_spec()(
            exchanges in prop::collection::vec((0u8..6, any::<bool>(), any::<bool>(), any::<bool>()), 0..5),
            queues in prop::collection::vec((0u8..4, any::<bool>(), prop::option::of(0u32..1_000_000), any::<bool>()), 0..5),
            bindings in prop::collection::vec((any::<u8>(), any::<u8>(), any::<bool>(), "[a-z.#*]{0,8}", any::<bool>()), 0..6),
            policies in prop::collection::vec((0u8..6, -5i64..5, 1u32..100_000), 0..3),
            default_queue_type in prop::option::of(0u8..3),
            description in prop::option::of("[ -~]{0,20}"),
            tags in prop::collection::vec("[a-z]{1,6}", 0..3),
        ) -> VhostSpec {
            VhostSpec { exchanges, queues, bindings, policies, default_queue_type, description, tags }
        }
    }

    fn build_vhost(spec: &VhostSpec) -> Vhost {
        const TYPES: [&str; 6] = ["direct", "fanout", "topic", "headers", "x-delayed-message", "x-consistent-hash"];
        const QUEUE_TYPES: [Option<QueueTypeName>; 4] = [None, Some("classic"), Some("quorum"), Some("stream")];
        const APPLY_TO: [ApplyTo; 6] = [
            ApplyTo::All,
            ApplyTo::Exchanges,
            ApplyTo::Queues,
            ApplyTo::ClassicQueues,
            ApplyTo::QuorumQueues,
            ApplyTo::Streams,
        ];
        type QueueTypeName = &'static str;
        let mut vhost = Vhost {
            description: spec.description.clone(),
            tags: spec.tags.clone(),
            default_queue_type: spec.default_queue_type.map(|t| match t {
                0 => QueueType::Classic,
                1 => QueueType::Quorum,
                _ => QueueType::Stream,
            }),
            ..Vhost::default()
        };
        for (i, (kind, durable, auto_delete, internal)) in spec.exchanges.iter().enumerate() {
            let mut arguments = Arguments::new();
            if i > 0 && *internal {
                arguments.insert("alternate-exchange".to_owned(), Value::String("ex0".to_owned()));
            }
            let exchange = Exchange {
                kind: ExchangeType::parse(TYPES[*kind as usize]).expect("a known type"),
                durable: *durable,
                auto_delete: *auto_delete,
                internal: *internal,
                arguments,
                ..Exchange::default()
            };
            vhost.exchanges.insert(format!("ex{i}"), exchange);
        }
        for (i, (kind, flag, ttl, dead_letter)) in spec.queues.iter().enumerate() {
            let mut arguments = Arguments::new();
            let declared = QUEUE_TYPES[*kind as usize];
            if let Some(name) = declared {
                arguments.insert("x-queue-type".to_owned(), Value::String(name.to_owned()));
            }
            if let Some(ttl) = ttl {
                arguments.insert("x-message-ttl".to_owned(), Value::from(*ttl));
            }
            if *dead_letter && !vhost.exchanges.is_empty() {
                arguments.insert("x-dead-letter-exchange".to_owned(), Value::String("ex0".to_owned()));
            }
            // Replicated queues must be durable and not auto-delete.
            let effective = declared.and_then(QueueType::parse).or(vhost.default_queue_type);
            let replicated = matches!(effective, Some(QueueType::Quorum | QueueType::Stream));
            let queue = Queue {
                durable: replicated || *flag,
                auto_delete: !replicated && !*flag,
                arguments,
                ..Queue::default()
            };
            vhost.queues.insert(format!("q{i}"), queue);
        }
        if !vhost.exchanges.is_empty() {
            for (source, destination, to_exchange, key, with_args) in &spec.bindings {
                let source = format!("ex{}", *source as usize % vhost.exchanges.len());
                let (destination, destination_type) = if *to_exchange || vhost.queues.is_empty() {
                    (format!("ex{}", *destination as usize % vhost.exchanges.len()), DestinationType::Exchange)
                } else {
                    (format!("q{}", *destination as usize % vhost.queues.len()), DestinationType::Queue)
                };
                let mut arguments = Arguments::new();
                if *with_args {
                    arguments.insert("x-match".to_owned(), Value::String("any".to_owned()));
                    arguments.insert("format".to_owned(), Value::String(key.clone()));
                }
                let binding = Binding {
                    state: State::Present,
                    source,
                    destination,
                    destination_type,
                    routing_key: key.clone(),
                    arguments,
                };
                if !vhost.bindings.iter().any(|b| b.same_identity(&binding)) {
                    vhost.bindings.push(binding);
                }
            }
        }
        for (i, (apply_to, priority, ttl)) in spec.policies.iter().enumerate() {
            let definition = Arguments::from([("message-ttl".to_owned(), Value::from(*ttl))]);
            let policy = Policy {
                state: State::Present,
                pattern: format!("^q{i}$"),
                apply_to: APPLY_TO[*apply_to as usize],
                priority: *priority,
                definition,
            };
            vhost.policies.insert(format!("p{i}"), policy);
        }
        vhost
    }

    prop_compose! {
        fn topology()(
            vhosts in prop::collection::btree_map("[a-z/][a-z0-9-]{0,6}", vhost_spec(), 0..3),
            users in prop::collection::btree_map(
                "[a-z][a-z0-9_]{0,6}",
                (any::<bool>(), prop::option::of(prop::collection::vec("[a-z]{1,8}", 0..3)), any::<bool>()),
                0..3,
            ),
        ) -> Topology {
            let mut topology = Topology::default();
            for (name, spec) in &vhosts {
                topology.vhosts.insert(name.clone(), build_vhost(spec));
            }
            for (name, (sha512, tags, grant)) in users {
                let algorithm = if sha512 { HashingAlgorithm::Sha512 } else { HashingAlgorithm::Sha256 };
                let password = Password::Hash { hash: password::hash(&name, algorithm), algorithm };
                let permissions = if grant {
                    topology
                        .vhosts
                        .keys()
                        .map(|v| (v.clone(), Permission { configure: String::new(), write: ".*".to_owned(), read: "^q".to_owned() }))
                        .collect()
                } else {
                    BTreeMap::new()
                };
                let user = User { state: State::Present, password, tags, permissions, topic_permissions: BTreeMap::new() };
                topology.users.insert(name, user);
            }
            crate::topology::normalise::normalise(&mut topology, crate::topology::normalise::Side::Broker);
            topology
        }
    }

    proptest! {
        #[test]
        fn any_valid_topology_round_trips(topology in topology()) {
            prop_assert_eq!(reload(&topology), topology);
        }
    }
}
