//! With a data directory, durable definitions survive a restart and transient ones do not.

use rabbitmq_http_client::commons::{ExchangeType, PolicyTarget};
use rabbitmq_http_client::requests::{ExchangeParams, PolicyParams, QueueParams, VirtualHostParams};
use serde_json::json;
use warren_broker::persist::{self, Store};

use crate::util::Server;

#[tokio::test]
async fn durable_definitions_survive_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let server = Server::start_in(dir.path()).await;
    let api = server.client();
    api.create_vhost(&VirtualHostParams { description: Some("kept"), ..VirtualHostParams::named("app") })
        .await
        .expect("vhost");
    api.declare_exchange("app", &ExchangeParams::new("events", ExchangeType::Topic, true, false, None))
        .await
        .expect("durable exchange");
    api.declare_exchange("app", &ExchangeParams::new("scratch", ExchangeType::Fanout, false, false, None))
        .await
        .expect("transient exchange");
    let args = json!({"x-message-ttl": 5000}).as_object().cloned();
    api.declare_queue("app", &QueueParams::new_durable_classic_queue("jobs", args)).await.expect("durable queue");
    api.declare_queue("app", &QueueParams::new_transient_autodelete("temp", None)).await.expect("transient queue");
    api.bind_queue("app", "jobs", "events", Some("job.#"), None).await.expect("durable binding");
    api.bind_queue("app", "temp", "events", Some("#"), None).await.expect("binding to a transient queue");
    api.bind_queue("app", "jobs", "scratch", None, None).await.expect("binding from a transient exchange");
    api.declare_policy(&PolicyParams {
        vhost: "app",
        name: "limit",
        pattern: "^jobs$",
        apply_to: PolicyTarget::Queues,
        priority: 0,
        definition: json!({"max-length": 100}).as_object().cloned().unwrap_or_default(),
    })
    .await
    .expect("policy");
    let response = server.raw("PUT", "/api/users/jack", Some(r#"{"password":"s3cret","tags":"administrator"}"#)).await;
    assert_eq!(response.status, 201);
    api.grant_full_permissions("jack", "app").await.expect("permissions");
    api.delete_user("guest", false).await.expect("guest removed, as a hardened broker would");
    server.stop().await;

    let restarted = Server::start_in(dir.path()).await;
    let api = restarted.client_as("jack", "s3cret");
    api.current_user().await.expect("jack logs in after the restart with the same password");
    assert!(restarted.client().current_user().await.is_err_and(|e| e.is_unauthorized()), "guest stays deleted");
    assert_eq!(api.get_vhost("app").await.expect("vhost").description.as_deref(), Some("kept"));
    assert!(api.get_exchange_info("app", "events").await.is_ok());
    assert!(api.get_exchange_info("app", "scratch").await.is_err_and(|e| e.is_not_found()), "transient exchange gone");
    let jobs = api.get_queue_info("app", "jobs").await.expect("durable queue");
    assert_eq!(jobs.arguments.get("x-message-ttl"), Some(&json!(5000)));
    assert_eq!(jobs.policy.as_deref(), Some("limit"), "the policy applies again after the restart");
    assert!(api.get_queue_info("app", "temp").await.is_err_and(|e| e.is_not_found()), "transient queue gone");
    let bindings = api.list_queue_bindings("app", "jobs").await.expect("bindings");
    let sources: Vec<(&str, &str)> = bindings.iter().map(|b| (b.source.as_str(), b.routing_key.as_str())).collect();
    assert_eq!(sources, vec![("", "jobs"), ("events", "job.#")]);
    assert_eq!(api.get_permissions("app", "jack").await.expect("permissions").configure, ".*");
    restarted.stop().await;
}

#[tokio::test]
async fn a_fresh_data_directory_starts_like_a_new_rabbitmq_node() {
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let server = Server::start_in(&dir.path().join("not-yet-created")).await;
    assert!(server.client().current_user().await.is_ok(), "guest/guest on a fresh broker");
    server.stop().await;
    let saved = Store::open(&dir.path().join("not-yet-created")).expect("open").load().expect("load");
    assert!(saved.is_some_and(|d| d.users.is_some_and(|u| u.iter().any(|u| u.name == "guest"))));
}

#[tokio::test]
async fn a_corrupt_definitions_file_stops_the_start_with_its_location() {
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let store = Store::open(dir.path()).expect("open");
    std::fs::write(store.path(), "{\"queues\": [\n  {\"name\": 1}\n]}").expect("write");
    let err = persist::initial_state(&store, 1 << 20).expect_err("a corrupt file is an error");
    let text = format!("{err:#}");
    assert!(text.contains("definitions.json") && text.contains("line 2"), "{text}");
    std::fs::write(store.path(), r#"{"exchanges": [{"name": "x", "vhost": "nowhere", "type": "direct"}]}"#)
        .expect("write");
    let err = persist::initial_state(&store, 1 << 20).expect_err("a file naming a missing vhost is an error");
    assert!(err.to_string().contains("definitions.json"), "{err}");
}
