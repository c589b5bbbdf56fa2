//! Policies and operator policies, and their effect on the queues they match.

use rabbitmq_http_client::commons::PolicyTarget;
use rabbitmq_http_client::requests::{PolicyParams, QueueParams};
use serde_json::{Map, Value, json};

use crate::exchanges_queues::publish;
use crate::util::Server;

fn definition(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_policy_takes_effect_on_matching_queues_at_once() {
    let server = Server::start().await;
    let api = server.client();
    api.declare_queue("/", &QueueParams::new_durable_classic_queue("tmp.a", None)).await.expect("queue");
    api.declare_queue("/", &QueueParams::new_durable_classic_queue("keep", None)).await.expect("queue");
    let policy = PolicyParams {
        vhost: "/",
        name: "short",
        pattern: "^tmp\\.",
        apply_to: PolicyTarget::Queues,
        priority: 1,
        definition: definition(
            json!({"max-length": 2, "message-ttl": 60000, "dead-letter-exchange": "dlx", "expires": 3_600_000}),
        ),
    };
    api.declare_policy(&policy).await.expect("declare policy");

    let shown = api.get_policy("/", "short").await.expect("get policy");
    assert_eq!((shown.pattern.as_str(), shown.priority, shown.apply_to), ("^tmp\\.", 1, PolicyTarget::Queues));
    assert_eq!(shown.definition.get("max-length"), Some(&json!(2)));

    let info = api.get_queue_info("/", "tmp.a").await.expect("queue info");
    assert_eq!(info.policy.as_deref(), Some("short"));
    assert_eq!(info.effective_policy_definition.and_then(|d| d.get("message-ttl").cloned()), Some(json!(60000)));
    let settings = server.state.queue("/", "tmp.a").expect("queue").settings();
    assert_eq!((settings.max_length, settings.message_ttl), (Some(2), Some(60000)));
    assert_eq!(settings.dead_letter_exchange.as_deref(), Some("dlx"));
    assert_eq!(settings.expires, Some(3_600_000), "the queue expires when unused, as the policy says");
    assert_eq!(api.get_queue_info("/", "keep").await.expect("queue info").policy, None, "the pattern does not match");

    // max-length 2 drops the oldest: five published, two kept.
    publish(&server.state, "/", "tmp.a", 5);
    assert_eq!(api.get_queue_info("/", "tmp.a").await.expect("queue info").message_count, 2);
    publish(&server.state, "/", "keep", 5);
    assert_eq!(api.get_queue_info("/", "keep").await.expect("queue info").message_count, 5);

    api.delete_policy("/", "short", false).await.expect("delete policy");
    let settings = server.state.queue("/", "tmp.a").expect("queue").settings();
    assert_eq!((settings.max_length, settings.policy), (None, None), "deleting the policy lifts its limits");
    assert!(api.get_policy("/", "short").await.is_err_and(|e| e.is_not_found()));
}

#[tokio::test]
async fn operator_policies_cap_what_queues_and_policies_ask_for() {
    let server = Server::start().await;
    let api = server.client();
    let params = QueueParams::new_durable_classic_queue("big", None).with_max_length(1000);
    api.declare_queue("/", &params).await.expect("queue");
    let cap = PolicyParams {
        vhost: "/",
        name: "cap",
        pattern: ".*",
        apply_to: PolicyTarget::Queues,
        priority: 0,
        definition: definition(json!({"max-length": 10})),
    };
    api.declare_operator_policy(&cap).await.expect("operator policy");
    assert_eq!(api.list_operator_policies_in("/").await.expect("list").len(), 1);
    let info = api.get_queue_info("/", "big").await.expect("queue info");
    assert_eq!(info.operator_policy.as_deref(), Some("cap"));
    assert_eq!(server.state.queue("/", "big").expect("queue").settings().max_length, Some(10));
    api.delete_operator_policy("/", "cap", false).await.expect("delete");
    assert_eq!(server.state.queue("/", "big").expect("queue").settings().max_length, Some(1000));
}

#[tokio::test]
async fn invalid_policies_are_refused_with_rabbitmqs_reasons() {
    let server = Server::start().await;
    let unknown_key =
        server.raw("PUT", "/api/policies/%2F/p", Some(r#"{"pattern":"^q","definition":{"nosuch":1}}"#)).await;
    assert_eq!(unknown_key.status, 400);
    assert_eq!(unknown_key.reason(), "Validation failed\n\n[{<<\"nosuch\">>,1}] are not recognised policy settings\n");
    let bad_regex =
        server.raw("PUT", "/api/policies/%2F/p", Some(r#"{"pattern":"(","definition":{"max-length":1}}"#)).await;
    assert_eq!(bad_regex.status, 400);
    assert!(
        bad_regex.reason().starts_with("Validation failed\n\npattern should be regular expression"),
        "{}",
        bad_regex.body
    );
    let missing = server.raw("PUT", "/api/policies/%2F/p", Some(r#"{"pattern":"^q"}"#)).await;
    assert_eq!((missing.status, missing.reason().as_str()), (400, "[{key_missing,definition}]"));
    let negative =
        server.raw("PUT", "/api/policies/%2F/p", Some(r#"{"pattern":"^q","definition":{"max-length":-1}}"#)).await;
    assert_eq!(negative.status, 400);
    assert!(server.state.policies(None).is_empty(), "nothing was stored");
}
