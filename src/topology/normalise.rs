//! Removes what a broker fills in by itself, so a file and a broker holding
//! it compare equal and a second `apply` plans nothing.
//!
//! Both sides go through [`normalise`]: the file after loading, the broker's
//! state after reading its definitions. Every rule here is idempotent.

use serde_json::Value;
use warren_definitions::Tags;

use super::model::{Arguments, Binding, QueueType, Topology, User, Vhost};

/// Queue arguments RabbitMQ only accepts as numbers; a numeric string in a
/// file means the number.
const NUMERIC_QUEUE_ARGUMENTS: &[&str] = &[
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-delivery-limit",
    "x-quorum-initial-group-size",
    "x-initial-cluster-size",
    "x-stream-max-segment-size-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
];

/// Policy keys RabbitMQ only accepts as numbers.
const NUMERIC_POLICY_KEYS: &[&str] = &[
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "max-priority",
    "delivery-limit",
    "ha-sync-batch-size",
    "stream-max-segment-size-bytes",
    "initial-cluster-size",
    "max-in-memory-length",
    "max-in-memory-bytes",
];

/// True for names the broker owns: the default exchange and `amq.*`.
pub fn is_builtin_exchange(name: &str) -> bool {
    name.is_empty() || name.starts_with("amq.")
}

/// True for queue names the broker generated (`amq.gen-*`, from a declare with an empty name).
pub fn is_server_named_queue(name: &str) -> bool {
    name.starts_with("amq.gen-")
}

/// Where a topology comes from, which decides what a vhost without a
/// default queue type means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A file: a vhost that does not declare its default leaves it to the
    /// broker, so a queue type the file spells out is kept as written.
    File,
    /// A broker: a vhost without a default makes classic queues.
    Broker,
}

/// Brings `topology` to the canonical form both sides of a diff use.
pub fn normalise(topology: &mut Topology, side: Side) {
    for vhost in topology.vhosts.values_mut() {
        normalise_vhost(vhost, side);
    }
    for user in topology.users.values_mut() {
        normalise_user(user);
    }
}

fn normalise_vhost(vhost: &mut Vhost, side: Side) {
    if vhost.description.as_deref() == Some("") {
        vhost.description = None;
    }
    normalise_tags(&mut vhost.tags);
    let default_type = match (vhost.default_queue_type, side) {
        (Some(kind), _) => Some(kind),
        (None, Side::Broker) => Some(QueueType::Classic),
        // Which type "the default" is depends on the broker's vhost: the
        // diff resolves a missing type there, and an explicit one must stay.
        (None, Side::File) => None,
    };

    vhost.exchanges.retain(|name, _| !is_builtin_exchange(name));
    for exchange in vhost.exchanges.values_mut() {
        normalise_arguments(&mut exchange.arguments, &[]);
    }

    vhost.queues.retain(|name, _| !is_server_named_queue(name));
    for queue in vhost.queues.values_mut() {
        normalise_arguments(&mut queue.arguments, NUMERIC_QUEUE_ARGUMENTS);
        // The broker reports the type it chose; only a type other than the
        // vhost's default is something the author declared.
        if default_type.is_some_and(|t| queue.arguments.get("x-queue-type").and_then(Value::as_str) == Some(t.as_str()))
        {
            queue.arguments.remove("x-queue-type");
        }
    }

    vhost.bindings.retain(|b| {
        !(b.destination_type == super::model::DestinationType::Queue && is_server_named_queue(&b.destination))
    });
    for binding in &mut vhost.bindings {
        normalise_arguments(&mut binding.arguments, &[]);
    }
    sort_bindings(&mut vhost.bindings);

    for policy in vhost.policies.values_mut().chain(vhost.operator_policies.values_mut()) {
        normalise_arguments(&mut policy.definition, NUMERIC_POLICY_KEYS);
    }
    normalise_tags(&mut vhost.unmanaged);
}

fn normalise_user(user: &mut User) {
    // `apply` sends a user's tags as one comma-separated string, so they are
    // what RabbitMQ makes of that string (a tag holding a comma is two),
    // sorted and deduplicated.
    if let Some(tags) = &mut user.tags {
        *tags = Tags::Joined(tags.join(",")).to_vec();
        normalise_tags(tags);
    }
    // No topic permissions in a vhost and an empty entry for it are the same.
    user.topic_permissions.retain(|_, by_exchange| !by_exchange.is_empty());
}

fn normalise_tags(tags: &mut Vec<String>) {
    tags.retain(|t| !t.is_empty());
    tags.sort();
    tags.dedup();
}

/// Sorts bindings into their canonical order and removes exact duplicates
/// (the broker holds a binding once however often it was declared).
pub fn sort_bindings(bindings: &mut Vec<Binding>) {
    bindings.sort_by_cached_key(binding_sort_key);
    bindings.dedup_by(|a, b| a.same_identity(b) && a.state == b.state);
}

/// The canonical sort key of a binding.
pub fn binding_sort_key(b: &Binding) -> (String, u8, String, String, String) {
    let args = serde_json::to_string(&b.arguments).unwrap_or_default();
    (b.source.clone(), b.destination_type as u8, b.destination.clone(), b.routing_key.clone(), args)
}

/// Drops null values, turns numeric strings into numbers for `numeric_keys`,
/// and whole floats into integers everywhere.
fn normalise_arguments(arguments: &mut Arguments, numeric_keys: &[&str]) {
    arguments.retain(|_, v| !v.is_null());
    for (key, value) in arguments.iter_mut() {
        if numeric_keys.contains(&key.as_str())
            && let Value::String(s) = value
            && let Some(n) = parse_number(s)
        {
            *value = n;
        }
        if let Value::Number(n) = value
            && !n.is_i64()
            && !n.is_u64()
            && let Some(f) = n.as_f64()
            && f.fract() == 0.0
            && f.abs() < 9.0e15
        {
            *value = Value::from(f as i64);
        }
    }
}

fn parse_number(s: &str) -> Option<Value> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => Some(Value::from(f as i64)),
        Ok(f) if f.is_finite() => serde_json::Number::from_f64(f).map(Value::Number),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::topology::model::{DestinationType, Exchange, Policy, Queue, State};

    fn vhost_with_queue(args: Arguments) -> Topology {
        let mut t = Topology::default();
        let mut v = Vhost::default();
        v.queues.insert("q".into(), Queue { arguments: args, ..Queue::default() });
        t.vhosts.insert("/".into(), v);
        t
    }

    #[test]
    fn server_filled_classic_queue_type_equals_an_undeclared_one() {
        let mut broker = vhost_with_queue(Arguments::from([("x-queue-type".into(), json!("classic"))]));
        let mut file = vhost_with_queue(Arguments::new());
        normalise(&mut broker, Side::Broker);
        normalise(&mut file, Side::File);
        assert_eq!(broker, file);
    }

    #[test]
    fn a_file_keeps_a_spelled_out_type_when_it_does_not_declare_the_vhost_default() {
        // The broker's vhost may default to quorum: `classic` in the file is then a choice.
        let mut file = vhost_with_queue(Arguments::from([("x-queue-type".into(), json!("classic"))]));
        normalise(&mut file, Side::File);
        assert_eq!(file.vhosts["/"].queues["q"].arguments["x-queue-type"], json!("classic"));
        if let Some(v) = file.vhosts.get_mut("/") {
            v.default_queue_type = Some(QueueType::Classic);
        }
        normalise(&mut file, Side::File);
        assert!(file.vhosts["/"].queues["q"].arguments.is_empty(), "the declared default is dropped");
    }

    #[test]
    fn quorum_queue_type_is_kept_in_a_classic_vhost_and_dropped_in_a_quorum_one() {
        let mut t = vhost_with_queue(Arguments::from([("x-queue-type".into(), json!("quorum"))]));
        normalise(&mut t, Side::Broker);
        assert_eq!(t.vhosts["/"].queues["q"].arguments["x-queue-type"], json!("quorum"));

        let mut t = vhost_with_queue(Arguments::from([("x-queue-type".into(), json!("quorum"))]));
        if let Some(v) = t.vhosts.get_mut("/") {
            v.default_queue_type = Some(QueueType::Quorum);
        }
        normalise(&mut t, Side::Broker);
        assert!(t.vhosts["/"].queues["q"].arguments.is_empty());
    }

    #[test]
    fn numeric_strings_of_numeric_arguments_become_numbers_but_names_stay_strings() {
        let mut t = vhost_with_queue(Arguments::from([
            ("x-message-ttl".into(), json!("60000")),
            ("x-dead-letter-exchange".into(), json!("123")),
            ("x-max-length".into(), json!(10.0)),
        ]));
        normalise(&mut t, Side::Broker);
        let args = &t.vhosts["/"].queues["q"].arguments;
        assert_eq!(args["x-message-ttl"], json!(60000));
        assert_eq!(args["x-dead-letter-exchange"], json!("123"));
        assert_eq!(args["x-max-length"], json!(10));
    }

    #[test]
    fn policy_numbers_are_normalised() {
        let mut t = Topology::default();
        let mut v = Vhost::default();
        v.policies.insert(
            "p".into(),
            Policy {
                state: State::Present,
                pattern: ".*".into(),
                apply_to: Default::default(),
                priority: 0,
                definition: Arguments::from([("message-ttl".into(), json!("1000"))]),
            },
        );
        t.vhosts.insert("/".into(), v);
        normalise(&mut t, Side::Broker);
        assert_eq!(t.vhosts["/"].policies["p"].definition["message-ttl"], json!(1000));
    }

    #[test]
    fn builtin_exchanges_and_server_named_queues_are_removed() {
        let mut t = Topology::default();
        let mut v = Vhost::default();
        v.exchanges.insert("amq.topic".into(), Exchange::default());
        v.exchanges.insert("".into(), Exchange::default());
        v.exchanges.insert("mine".into(), Exchange::default());
        v.queues.insert("amq.gen-abc".into(), Queue::default());
        v.bindings.push(Binding {
            state: State::Present,
            source: "amq.topic".into(),
            destination: "amq.gen-abc".into(),
            destination_type: DestinationType::Queue,
            routing_key: "#".into(),
            arguments: Arguments::new(),
        });
        t.vhosts.insert("/".into(), v);
        normalise(&mut t, Side::Broker);
        let v = &t.vhosts["/"];
        assert_eq!(v.exchanges.keys().collect::<Vec<_>>(), ["mine"]);
        assert!(v.queues.is_empty());
        assert!(v.bindings.is_empty());
    }

    #[test]
    fn user_tags_as_comma_string_equal_a_sorted_list() {
        let user = |tags: Vec<&str>| User {
            state: State::Present,
            password: crate::topology::model::Password::None,
            tags: Some(tags.into_iter().map(String::from).collect()),
            permissions: Default::default(),
            topic_permissions: Default::default(),
        };
        let mut a = Topology::default();
        a.users.insert("u".into(), user(vec!["monitoring,administrator"]));
        let mut b = Topology::default();
        b.users.insert("u".into(), user(vec!["administrator", "monitoring", "administrator"]));
        normalise(&mut a, Side::Broker);
        normalise(&mut b, Side::Broker);
        assert_eq!(a, b);
    }

    #[test]
    fn bindings_compare_equal_in_any_order() {
        let binding = |rk: &str| Binding {
            state: State::Present,
            source: "x".into(),
            destination: "q".into(),
            destination_type: DestinationType::Queue,
            routing_key: rk.into(),
            arguments: Arguments::new(),
        };
        let mut a = Topology::default();
        a.vhosts.insert("/".into(), Vhost { bindings: vec![binding("b"), binding("a")], ..Vhost::default() });
        let mut b = Topology::default();
        b.vhosts
            .insert("/".into(), Vhost { bindings: vec![binding("a"), binding("b"), binding("a")], ..Vhost::default() });
        normalise(&mut a, Side::Broker);
        normalise(&mut b, Side::Broker);
        assert_eq!(a, b);
    }
}
