//! Publishing and fetching messages over HTTP, compared with RabbitMQ where it answers.

use rabbitmq_http_client::requests::{QueueParams, VirtualHostParams};
use serde_json::{Value, json};

use crate::util::{Api, Response, Server, rabbitmq, seg, unique_name};

/// Publishes, fetches with each ack mode, and returns what a client sees, step by step.
async fn exercise(api: &Api, raw: impl AsyncFn(&str, &str, &str) -> Response, vhost: &str) -> Vec<Value> {
    let dlx = json!({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}).as_object().cloned();
    api.declare_queue(vhost, &QueueParams::new_durable_classic_queue("work", dlx)).await.expect("queue");
    api.declare_queue(vhost, &QueueParams::new_durable_classic_queue("dead", None)).await.expect("queue");
    let mut seen = Vec::new();
    let properties = json!({
        "delivery_mode": 2,
        "headers": {"attempt": 1, "origin": "api"},
        "content_type": "text/plain",
        "priority": 3,
        "timestamp": 1_700_000_000,
        "type": "order.created",
        "expiration": "60000",
    });
    let routed = api
        .publish_message(vhost, "amq.default", "work", "hello", properties.as_object().cloned().unwrap_or_default())
        .await
        .expect("publish");
    seen.push(json!({ "routed": routed.routed }));
    let binary = r#"{"properties":{},"routing_key":"work","payload":"AAEC/w==","payload_encoding":"base64"}"#;
    let path = format!("/api/exchanges/{}/amq.default/publish", seg(vhost));
    seen.push(raw("POST", &path, binary).await.json());
    let unrouted =
        api.publish_message(vhost, "amq.default", "nowhere", "x", Default::default()).await.expect("publish");
    seen.push(json!({ "routed": unrouted.routed }));

    for mode in ["ack_requeue_true", "reject_requeue_false", "ack_requeue_false"] {
        let path = format!("/api/queues/{}/work/get", seg(vhost));
        let body = json!({"count": 5, "ackmode": mode, "encoding": "auto"}).to_string();
        let got = raw("POST", &path, &body).await;
        assert_eq!(got.status, 200, "{mode}: {}", got.body);
        seen.push(got.json());
        if mode == "ack_requeue_true" {
            // The client's own type reads the same answer.
            let typed = api.get_messages(vhost, "work", 1, "ack_requeue_true").await.expect("get_messages");
            seen.push(json!({ "redelivered": typed[0].redelivered, "payload": typed[0].payload }));
        }
    }
    let path = format!("/api/queues/{}/dead/get", seg(vhost));
    let dead = raw("POST", &path, r#"{"count":5,"ackmode":"ack_requeue_false","encoding":"auto"}"#).await.json();
    // Dead-lettering adds x-death headers whose timestamps differ run to run: keep the payloads.
    seen.push(json!(dead.as_array().map(|d| d.iter().map(|m| m["payload"].clone()).collect::<Vec<_>>())));

    let missing =
        raw("POST", &format!("/api/exchanges/{}/amq.default/publish", seg(vhost)), r#"{"routing_key":"q"}"#).await;
    seen.push(json!([missing.status, missing.error()]));
    let no_exchange = raw(
        "POST",
        &format!("/api/exchanges/{}/nosuch/publish", seg(vhost)),
        r#"{"properties":{},"routing_key":"q","payload":"x","payload_encoding":"string"}"#,
    )
    .await;
    seen.push(json!([no_exchange.status, no_exchange.error(), no_exchange.reason().replace(vhost, "{vhost}")]));
    seen
}

#[tokio::test]
async fn messages_published_and_fetched_over_http_match_rabbitmq() {
    let server = Server::start().await;
    let vhost = unique_name("warren-mgmt-messages");
    let api = server.client();
    api.create_vhost(&VirtualHostParams::named(&vhost)).await.expect("vhost");
    let ours = exercise(&api, async |m, p, b| server.raw(m, p, Some(b)).await, &vhost).await;

    let expected_first_get = json!([
        {"payload_bytes": 5, "redelivered": false, "exchange": "", "routing_key": "work", "message_count": 1,
         "properties": {"content_type": "text/plain", "expiration": "60000", "type": "order.created",
                        "headers": {"attempt": 1, "origin": "api"}, "delivery_mode": 2, "priority": 3,
                        "timestamp": 1_700_000_000},
         "payload": "hello", "payload_encoding": "string"},
        {"payload_bytes": 4, "redelivered": false, "exchange": "", "routing_key": "work", "message_count": 0,
         "properties": [], "payload": "AAEC/w==", "payload_encoding": "base64"},
    ]);
    assert_eq!(ours[0], json!({"routed": true}));
    assert_eq!(ours[1], json!({"routed": true}));
    assert_eq!(ours[2], json!({"routed": false}));
    assert_eq!(ours[3], expected_first_get);
    assert_eq!(ours[4], json!({"redelivered": true, "payload": "hello"}), "requeued messages come back redelivered");
    assert_eq!(ours[5].as_array().map(Vec::len), Some(2), "reject_requeue_false fetched both");
    assert_eq!(ours[6], json!([]), "and they left the queue");
    assert_eq!(ours[7], json!(["hello", "AAEC/w=="]), "rejected messages were dead-lettered");
    assert_eq!(ours[8], json!([400, "bad_request"]));
    assert_eq!(ours[9], json!([400, "bad_request", "404 NOT_FOUND - no exchange 'nosuch' in vhost '{vhost}'"]));

    let Some(rabbit) = rabbitmq().await else { return };
    let rapi = rabbit.client();
    rapi.create_vhost(&VirtualHostParams::named(&vhost)).await.expect("vhost on RabbitMQ");
    let theirs = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        exercise(&rapi, async |m, p, b| rabbit.raw(m, p, Some(b)).await, &vhost),
    )
    .await;
    rapi.delete_vhost(&vhost, true).await.expect("clean up the RabbitMQ vhost");
    let theirs = theirs.expect("RabbitMQ answers in time");
    // RabbitMQ lists properties in its own order; JSON objects compare regardless of order.
    assert_eq!(ours, theirs, "embedded (left) and RabbitMQ (right)");
}
