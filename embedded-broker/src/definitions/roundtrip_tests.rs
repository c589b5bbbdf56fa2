//! Property tests: any valid definitions document imports into a fresh broker
//! and exports back unchanged, and the durable part survives a save/load cycle
//! (what the data directory does across a restart).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use warren_definitions::Definitions;

use super::export::{self, Scope};
use super::import::import;
use crate::state::State;

const MEMORY: usize = 1 << 20;

/// A scalar, list or nested table, as argument tables hold them.
fn argument_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(|i| json!(i)),
        "[a-z.#*]{0,8}".prop_map(|s| json!(s)),
        any::<bool>().prop_map(|b| json!(b)),
        (-1000i32..1000).prop_map(|i| json!(f64::from(i) + 0.5)),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn argument_table() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z-]{1,6}", argument_value(), 0..3).prop_map(|m| m.into_iter().collect())
}

/// A document for one vhost: exchanges, queues, bindings among them (and `amq.*`), a policy.
fn document() -> impl Strategy<Value = Value> {
    let vhost = prop_oneof![Just("/".to_owned()), "[a-z/ %]{1,6}"];
    let exchanges = prop::collection::vec(
        (prop_oneof!["direct", "fanout", "topic", "headers"], any::<bool>(), any::<bool>(), any::<bool>()),
        0..4,
    );
    let queues = prop::collection::vec((any::<bool>(), 0u32..100_000, any::<bool>()), 0..4);
    let bindings =
        prop::collection::vec((0usize..8, 0usize..8, any::<bool>(), "[a-z.#*]{0,6}", argument_table()), 0..6);
    let policy = prop::option::of((1u64..1000, -5i64..5));
    (vhost, exchanges, queues, bindings, policy).prop_map(|(vhost, exchanges, queues, bindings, policy)| {
        let exchange_names: Vec<String> = (0..exchanges.len()).map(|i| format!("x{i}")).collect();
        let queue_names: Vec<String> = (0..queues.len()).map(|i| format!("q{i}")).collect();
        let sources: Vec<String> = exchange_names.iter().cloned().chain(["amq.direct".to_owned()]).collect();
        let exchanges: Vec<Value> = exchanges
            .iter()
            .enumerate()
            .map(|(i, (kind, durable, internal, alternate))| {
                let arguments = if *alternate { json!({"alternate-exchange": "ae"}) } else { json!({}) };
                json!({"name": format!("x{i}"), "vhost": vhost, "type": kind, "durable": durable,
                       "auto_delete": false, "internal": internal, "arguments": arguments})
            })
            .collect();
        let queues: Vec<Value> = queues
            .iter()
            .enumerate()
            .map(|(i, (durable, ttl, dead_letter))| {
                let mut arguments = json!({"x-message-ttl": ttl});
                if *dead_letter {
                    arguments["x-dead-letter-exchange"] = json!("dlx");
                }
                json!({"name": format!("q{i}"), "vhost": vhost, "durable": durable, "auto_delete": false,
                       "arguments": arguments})
            })
            .collect();
        let mut binding_list: Vec<Value> = Vec::new();
        for (source, destination, to_queue, key, arguments) in bindings {
            let source = &sources[source % sources.len()];
            let (kind, names) = if to_queue { ("queue", &queue_names) } else { ("exchange", &exchange_names) };
            if names.is_empty() {
                continue;
            }
            let binding = json!({"source": source, "vhost": vhost, "destination": names[destination % names.len()],
                                 "destination_type": kind, "routing_key": key, "arguments": arguments});
            if !binding_list.contains(&binding) {
                binding_list.push(binding);
            }
        }
        let policies: Vec<Value> = policy
            .into_iter()
            .map(|(max_length, priority)| {
                json!({"vhost": vhost, "name": "limit", "pattern": "^q", "apply-to": "queues",
                       "definition": {"max-length": max_length}, "priority": priority})
            })
            .collect();
        json!({"vhosts": [{"name": vhost}], "exchanges": exchanges, "queues": queues,
               "bindings": binding_list, "policies": policies})
    })
}

/// The entries of one list, each with its keys sorted, in a canonical order.
fn entries(document: &Value, key: &str) -> Vec<String> {
    let mut items: Vec<String> = document[key].as_array().into_iter().flatten().map(canonical).collect();
    items.sort();
    items
}

fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut pairs: Vec<(&String, &Value)> = map.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}:{}", canonical(v))).collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn an_import_exports_back_unchanged(document in document()) {
        let state = State::new(MEMORY);
        let parsed: Definitions = serde_json::from_value(document.clone()).expect("the generated document parses");
        import(&state, &parsed, None).expect("a valid document imports");
        let exported = serde_json::to_value(export::definitions(&state, Scope::All)).expect("serialises");
        for key in ["exchanges", "queues", "bindings", "policies"] {
            prop_assert_eq!(entries(&exported, key), entries(&document, key), "{}", key);
        }
    }

    #[test]
    fn the_durable_part_survives_a_save_and_load(document in document()) {
        let state = State::new(MEMORY);
        let parsed: Definitions = serde_json::from_value(document).expect("the generated document parses");
        import(&state, &parsed, None).expect("a valid document imports");
        let saved = export::definitions(&state, Scope::Durable);
        let text = serde_json::to_string(&saved).expect("serialises");
        let restarted = State::empty(MEMORY);
        import(&restarted, &serde_json::from_str(&text).expect("parses back"), None).expect("the saved file loads");
        let again = serde_json::to_value(export::definitions(&restarted, Scope::Durable)).expect("serialises");
        prop_assert_eq!(again, serde_json::from_str::<Value>(&text).expect("JSON"));
        let transient = serde_json::to_value(&saved).expect("serialises");
        prop_assert!(transient["queues"].as_array().into_iter().flatten().all(|q| q["durable"] == true));
        prop_assert!(transient["exchanges"].as_array().into_iter().flatten().all(|x| x["durable"] == true));
    }
}
