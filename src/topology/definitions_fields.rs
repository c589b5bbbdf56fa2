//! Every field of a RabbitMQ definitions document read from a file, checked
//! against what warren does with it, so nothing in the file is silently
//! ignored: a field warren does not know is an error naming it, and so is a
//! setting warren knows but does not apply (limits, runtime parameters other
//! than operator policies, global parameters).
//!
//! The fields are those of RabbitMQ's own exports (`GET /api/definitions`,
//! `rabbitmqctl export_definitions`, 3.10) plus `password`, which
//! hand-written documents give instead of `password_hash`. What each one
//! does is listed in docs/topology.md; keep the two together.
//!
//! The broker's own responses are not checked here: they carry more than an
//! export (statistics, node names) and warren reads only what it needs.

use serde_json::{Map, Value};

use super::load::diagnostic::did_you_mean;
use super::load::source::NodePath;

/// One problem with a field, at its key (or at its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field.
    pub path: NodePath,
    /// Point at the value rather than the key.
    pub at_value: bool,
    /// What is wrong, naming the entity.
    pub message: String,
}

/// Fields that describe the broker a document came from: read and left alone.
const INFORMATIONAL: &[&str] = &["rabbit_version", "rabbitmq_version", "product_name", "product_version"];

/// The lists a document holds, each with the fields of its entries.
const SECTIONS: &[(&str, &[&str])] = &[
    ("users", &["name", "password", "password_hash", "hashing_algorithm", "tags", "limits"]),
    ("vhosts", &["name", "description", "tags", "default_queue_type", "metadata", "limits"]),
    ("permissions", &["user", "vhost", "configure", "write", "read"]),
    ("topic_permissions", &["user", "vhost", "exchange", "write", "read"]),
    ("parameters", &["vhost", "component", "name", "value"]),
    ("global_parameters", &["name", "value"]),
    ("policies", &["vhost", "name", "pattern", "apply-to", "definition", "priority"]),
    ("queues", &["name", "vhost", "durable", "auto_delete", "arguments", "type"]),
    ("exchanges", &["name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"]),
    ("bindings", &["source", "vhost", "destination", "destination_type", "routing_key", "arguments"]),
];

/// The fields of a vhost's `metadata` (RabbitMQ 3.11+, and `rabbitmqctl export_definitions`).
const VHOST_METADATA: &[&str] = &["description", "tags", "default_queue_type"];

/// The fields of an operator policy's `value`.
const OPERATOR_POLICY: &[&str] = &["pattern", "apply-to", "definition", "priority"];

/// Global parameters every export carries; they name the exporting cluster,
/// so they are read and left alone.
const CLUSTER_IDENTITY: &[&str] = &["cluster_name", "internal_cluster_id"];

/// Every problem with the fields of `document`, in document order. Values of
/// the wrong type are left to the deserializer, which reports them.
pub fn check(document: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Value::Object(top) = document else { return problems };
    let root = NodePath::root();
    let mut top_level: Vec<&str> = INFORMATIONAL.to_vec();
    top_level.extend(SECTIONS.iter().map(|(name, _)| *name));
    unknown_fields(top, &root, &top_level, "at the top level", &mut problems);
    for (section, fields) in SECTIONS {
        let Some(Value::Array(entries)) = top.get(*section) else { continue };
        for (index, entry) in entries.iter().enumerate() {
            let Value::Object(entry) = entry else { continue };
            let path = root.key(section).index(index);
            let what = describe(section, index, entry);
            unknown_fields(entry, &path, fields, &format!("in {what}"), &mut problems);
            match *section {
                "users" => only_empty(entry, &path, &what, "user limits", "set_user_limits", &mut problems),
                "vhosts" => {
                    only_empty(entry, &path, &what, "vhost limits", "set_vhost_limits", &mut problems);
                    if let Some(Value::Object(metadata)) = entry.get("metadata") {
                        let context = format!("in the `metadata` of {what}");
                        unknown_fields(metadata, &path.key("metadata"), VHOST_METADATA, &context, &mut problems);
                    }
                }
                "parameters" => parameter(entry, &path, &what, &mut problems),
                "global_parameters" => global_parameter(entry, &path, &what, &mut problems),
                _ => {}
            }
        }
    }
    problems
}

/// Reports every key of `object` not in `known`.
fn unknown_fields(object: &Map<String, Value>, path: &NodePath, known: &[&str], context: &str, out: &mut Vec<Problem>) {
    for key in object.keys().filter(|key| !known.contains(&key.as_str())) {
        out.push(Problem {
            path: path.key(key),
            at_value: false,
            message: format!(
                "unknown field `{key}` {context}, expected one of `{}`{}",
                known.join("`, `"),
                did_you_mean(key, known.iter().copied())
            ),
        });
    }
}

/// `limits` warren does not apply: accepted when empty, as exports write them.
fn only_empty(
    entry: &Map<String, Value>,
    path: &NodePath,
    what: &str,
    limits: &str,
    command: &str,
    out: &mut Vec<Problem>,
) {
    let empty = match entry.get("limits") {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(Value::Array(list)) => list.is_empty(),
        Some(_) => false,
    };
    if !empty {
        out.push(Problem {
            path: path.key("limits"),
            at_value: false,
            message: format!(
                "{what}: warren does not apply {limits}; remove `limits` from the file and set them with `rabbitmqctl {command}`"
            ),
        });
    }
}

/// Runtime parameters: operator policies are applied, other components refused.
fn parameter(entry: &Map<String, Value>, path: &NodePath, what: &str, out: &mut Vec<Problem>) {
    match entry.get("component").and_then(Value::as_str) {
        Some("operator_policy") => {
            if let Some(Value::Object(value)) = entry.get("value") {
                let context = format!("in the `value` of {what}");
                unknown_fields(value, &path.key("value"), OPERATOR_POLICY, &context, out);
            }
        }
        Some(_) => out.push(Problem {
            path: path.key("component"),
            at_value: true,
            message: format!(
                "{what}: warren applies operator policies (component `operator_policy`) but no other runtime \
                 parameters; remove it from the file and manage it with `rabbitmqctl set_parameter`"
            ),
        }),
        // A missing component is the deserializer's to report.
        None => {}
    }
}

/// Global parameters: the cluster's identity is read and left alone, anything else refused.
fn global_parameter(entry: &Map<String, Value>, path: &NodePath, what: &str, out: &mut Vec<Problem>) {
    let Some(name) = entry.get("name").and_then(Value::as_str) else { return };
    if !CLUSTER_IDENTITY.contains(&name) {
        out.push(Problem {
            path: path.key("name"),
            at_value: true,
            message: format!(
                "{what}: warren does not apply global parameters (it reads `{}` and leaves them alone); \
                 remove it from the file and set it with `rabbitmqctl set_global_parameter`",
                CLUSTER_IDENTITY.join("` and `")
            ),
        });
    }
}

/// Names an entry as messages do: `queue "orders" in vhost "shop"`, or by
/// its position when it lacks the fields that name it.
fn describe(section: &str, index: usize, entry: &Map<String, Value>) -> String {
    let text = |key: &str| entry.get(key).and_then(Value::as_str);
    // A per-vhost export names no vhost.
    let vhost = text("vhost").map(|v| format!(" in vhost {v:?}")).unwrap_or_default();
    let named = match section {
        "users" => text("name").map(|n| format!("user {n:?}")),
        "vhosts" => text("name").map(|n| format!("vhost {n:?}")),
        "permissions" => text("user").map(|u| format!("the permissions of user {u:?}{vhost}")),
        "topic_permissions" => text("user")
            .zip(text("exchange"))
            .map(|(u, x)| format!("the topic permissions of user {u:?} on exchange {x:?}{vhost}")),
        "parameters" => text("name").map(|n| match text("component") {
            Some("operator_policy") => format!("operator policy {n:?}{vhost}"),
            Some(component) => format!("parameter {n:?} (component {component:?}){vhost}"),
            None => format!("parameter {n:?}{vhost}"),
        }),
        "global_parameters" => text("name").map(|n| format!("global parameter {n:?}")),
        "policies" => text("name").map(|n| format!("policy {n:?}{vhost}")),
        "queues" => text("name").map(|n| format!("queue {n:?}{vhost}")),
        "exchanges" => text("name").map(|n| format!("exchange {n:?}{vhost}")),
        "bindings" => text("source").zip(text("destination")).map(|(s, d)| {
            let kind = text("destination_type").unwrap_or("destination");
            format!("the binding from {s:?} to {kind} {d:?}{vhost}")
        }),
        _ => None,
    };
    named.unwrap_or_else(|| format!("`{section}` entry #{}", index + 1))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(document: Value) -> Vec<String> {
        check(&document).into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect()
    }

    #[test]
    fn exports_of_rabbitmq_3_10_have_nothing_to_report() {
        // The shapes of `GET /api/definitions` and of `rabbitmqctl export_definitions -`.
        let http = json!({
            "rabbit_version": "3.10.8", "rabbitmq_version": "3.10.8", "product_name": "RabbitMQ", "product_version": "3.10.8",
            "users": [{"name": "u", "password_hash": "x", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["a"], "limits": {}}],
            "vhosts": [{"name": "/"}],
            "permissions": [{"user": "u", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
            "topic_permissions": [], "parameters": [],
            "global_parameters": [{"name": "internal_cluster_id", "value": "rabbitmq-cluster-id-x"}],
            "policies": [], "queues": [{"name": "q", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}],
            "exchanges": [], "bindings": []
        });
        assert_eq!(messages(http), Vec::<String>::new());
        let ctl = json!({
            "vhosts": [{"limits": [], "metadata": {"description": "Default virtual host", "tags": []}, "name": "/"}],
            "queues": [{"arguments": {}, "auto_delete": false, "durable": true, "name": "q", "type": "classic", "vhost": "/"}],
            "global_parameters": [{"name": "cluster_name", "value": "rabbit@host"}],
            "parameters": [{"vhost": "/", "component": "operator_policy", "name": "cap",
                            "value": {"pattern": ".*", "apply-to": "queues", "definition": {"max-length": 1}, "priority": 0}}]
        });
        assert_eq!(messages(ctl), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_field_is_named_with_its_entity_and_the_closest_known_one() {
        let found = messages(json!({
            "exchange": [],
            "queues": [{"name": "orders", "vhost": "shop", "durabel": true}],
            "users": [{"name": "jill", "passwrd": "x"}, {"tags": "y", "colour": "z"}],
            "vhosts": [{"name": "shop", "metadata": {"descripton": "d"}}]
        }));
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(found[0].starts_with("exchange: unknown field `exchange` at the top level, expected one of"));
        assert!(found[0].ends_with("(did you mean `exchanges`?)"), "{}", found[0]);
        assert!(found.iter().any(|m| m.starts_with(
            "queues[0].durabel: unknown field `durabel` in queue \"orders\" in vhost \"shop\", expected one of `name`"
        ) && m.ends_with("(did you mean `durable`?)")));
        assert!(found.iter().any(
            |m| m.contains("unknown field `passwrd` in user \"jill\"") && m.ends_with("(did you mean `password`?)")
        ));
        assert!(found.iter().any(|m| m.contains("unknown field `colour` in `users` entry #2")));
        assert!(found.iter().any(|m| m.contains("unknown field `descripton` in the `metadata` of vhost \"shop\"")));
    }

    #[test]
    fn docs_topology_md_says_what_becomes_of_every_field() {
        let path = format!("{}/docs/topology.md", env!("CARGO_MANIFEST_DIR"));
        let docs = std::fs::read_to_string(&path).expect("docs/topology.md exists");
        let mut fields: Vec<&str> = INFORMATIONAL.to_vec();
        for (section, entry_fields) in SECTIONS {
            fields.push(section);
            fields.extend(entry_fields.iter());
        }
        fields.extend(VHOST_METADATA.iter().chain(OPERATOR_POLICY).chain(CLUSTER_IDENTITY));
        // As `field`, `section[]`, or the last step of `section[].field`.
        let mentioned = |field: &str| ["`{}`", "`{}[]", ".{}`"].iter().any(|f| docs.contains(&f.replace("{}", field)));
        let missing: Vec<&str> = fields.into_iter().filter(|field| !mentioned(field)).collect();
        assert!(missing.is_empty(), "docs/topology.md does not mention {missing:?}");
    }

    #[test]
    fn settings_warren_does_not_apply_are_refused_unless_empty() {
        let found = messages(json!({
            "users": [{"name": "u", "limits": {"max-connections": 10}}, {"name": "v", "limits": null}],
            "vhosts": [{"name": "v", "limits": {"max-queues": 5}}],
            "parameters": [
                {"vhost": "v", "component": "federation-upstream", "name": "up", "value": {"uri": "amqp://x"}},
                {"vhost": "v", "component": "operator_policy", "name": "op", "value": {"pattern": ".*", "definition": {}, "priorty": 1}}
            ],
            "global_parameters": [{"name": "cluster_name", "value": "x"}, {"name": "tracing", "value": true}]
        }));
        assert_eq!(
            found,
            [
                "users[0].limits: user \"u\": warren does not apply user limits; remove `limits` from the file and set them with `rabbitmqctl set_user_limits`",
                "vhosts[0].limits: vhost \"v\": warren does not apply vhost limits; remove `limits` from the file and set them with `rabbitmqctl set_vhost_limits`",
                "parameters[0].component: parameter \"up\" (component \"federation-upstream\") in vhost \"v\": warren applies operator policies (component `operator_policy`) but no other runtime parameters; remove it from the file and manage it with `rabbitmqctl set_parameter`",
                "parameters[1].value.priorty: unknown field `priorty` in the `value` of operator policy \"op\" in vhost \"v\", expected one of `pattern`, `apply-to`, `definition`, `priority` (did you mean `priority`?)",
                "global_parameters[1].name: global parameter \"tracing\": warren does not apply global parameters (it reads `cluster_name` and `internal_cluster_id` and leaves them alone); remove it from the file and set it with `rabbitmqctl set_global_parameter`",
            ]
        );
    }
}
