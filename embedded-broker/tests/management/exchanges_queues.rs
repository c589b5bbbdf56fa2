//! Exchanges and queues: declare, show, list, redeclare, delete with conditions, purge.

use std::sync::Arc;

use bytes::Bytes;
use rabbitmq_http_client::commons::{ExchangeType, QueueType};
use rabbitmq_http_client::requests::{ExchangeParams, QueueParams};
use serde_json::{Map, json};
use warren_broker::state::State;
use warren_broker::state::message::Message;

use crate::util::Server;

/// Puts `count` messages into a queue the way a publisher's messages arrive (routing through the
/// default exchange), so the API's counts have something to count.
pub fn publish(state: &State, vhost: &str, queue: &str, count: usize) {
    for i in 0..count {
        let mut queues = Vec::new();
        state.route(vhost, "", queue, None, true, &mut queues).expect("the default exchange routes");
        assert_eq!(queues.len(), 1, "queue {queue} exists");
        let message = Arc::new(Message {
            exchange: Arc::from(""),
            routing_key: Arc::from(queue),
            properties: Bytes::from_static(&[0, 0]),
            body: Bytes::from(format!("message {i}")),
            priority: 0,
            expiration_ms: None,
            persistent: false,
        });
        let mut dead = Vec::new();
        for q in queues {
            q.publish(Arc::clone(&message), &mut dead);
        }
        state.dead_letter(vhost, dead);
    }
}

fn args(value: serde_json::Value) -> Option<Map<String, serde_json::Value>> {
    value.as_object().cloned()
}

#[tokio::test]
async fn exchanges_are_declared_listed_and_deleted() {
    let server = Server::start().await;
    let api = server.client();
    let params = ExchangeParams::new(
        "events",
        ExchangeType::Topic,
        true,
        false,
        args(json!({"alternate-exchange": "unrouted"})),
    );
    api.declare_exchange("/", &params).await.expect("declare");
    api.declare_exchange("/", &params).await.expect("an equivalent redeclaration is fine");
    let info = api.get_exchange_info("/", "events").await.expect("get");
    assert_eq!((info.exchange_type.as_str(), info.durable, info.auto_delete), ("topic", true, false));
    assert_eq!(info.arguments.get("alternate-exchange"), Some(&json!("unrouted")));

    let names: Vec<String> = api.list_exchanges_in("/").await.expect("list").into_iter().map(|x| x.name).collect();
    for expected in ["", "amq.direct", "amq.fanout", "amq.headers", "amq.match", "amq.topic", "events"] {
        assert!(names.contains(&expected.to_owned()), "{expected:?} listed in {names:?}");
    }
    let default = api.get_exchange_info("/", "amq.default").await.expect("the default exchange by its path name");
    assert_eq!(default.name, "");

    let changed = ExchangeParams::new("events", ExchangeType::Direct, true, false, None);
    let err = api.declare_exchange("/", &changed).await.expect_err("a type change is refused");
    assert!(format!("{err:?}").contains("inequivalent arg 'type'"), "{err:?}");

    api.delete_exchange("/", "events", false).await.expect("delete");
    assert!(api.get_exchange_info("/", "events").await.is_err_and(|e| e.is_not_found()));
    assert!(api.delete_exchange("/", "amq.direct", false).await.is_err_and(|e| e.is_unauthorized()));
}

#[tokio::test]
async fn exchange_delete_if_unused_refuses_while_bound() {
    let server = Server::start().await;
    let api = server.client();
    api.declare_exchange("/", &ExchangeParams::new("src", ExchangeType::Fanout, true, false, None)).await.expect("x");
    api.declare_queue("/", &QueueParams::new_durable_classic_queue("dst", None)).await.expect("q");
    api.bind_queue("/", "dst", "src", None, None).await.expect("bind");
    let refused = server.raw("DELETE", "/api/exchanges/%2F/src?if-unused=true", None).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.reason(), "exchange 'src' in vhost '/' in use");
    assert!(api.get_exchange_info("/", "src").await.is_ok(), "still there");
    assert_eq!(server.raw("DELETE", "/api/exchanges/%2F/src", None).await.status, 204);
    assert!(api.list_queue_bindings("/", "dst").await.expect("bindings").iter().all(|b| b.source.is_empty()));
}

#[tokio::test]
async fn queues_show_message_ready_unacked_and_consumer_counts() {
    let server = Server::start().await;
    let api = server.client();
    let params = QueueParams::new(
        "work",
        QueueType::Classic,
        true,
        false,
        args(json!({"x-message-ttl": 60000, "x-dead-letter-exchange": "dlx"})),
    );
    api.declare_queue("/", &params).await.expect("declare");
    api.declare_queue("/", &params).await.expect("an equivalent redeclaration is fine");
    publish(&server.state, "/", "work", 3);

    let info = api.get_queue_info("/", "work").await.expect("get");
    assert_eq!(info.message_count, 3);
    assert_eq!(info.unacknowledged_message_count, 0);
    assert_eq!(info.consumer_count, 0);
    assert_eq!(info.queue_type, "classic");
    assert!(info.durable && !info.exclusive && !info.auto_delete);
    assert_eq!(info.arguments.get("x-message-ttl"), Some(&json!(60000)));
    let listed = api.list_queues_in("/").await.expect("list");
    assert_eq!(listed.iter().map(|q| (q.name.as_str(), q.message_count)).collect::<Vec<_>>(), vec![("work", 3)]);
    let raw = server.raw("GET", "/api/queues/%2F/work", None).await.json();
    assert_eq!((raw["messages_ready"].as_u64(), raw["messages_unacknowledged"].as_u64()), (Some(3), Some(0)));

    let changed = QueueParams::new("work", QueueType::Classic, true, false, args(json!({"x-message-ttl": 1000})));
    let err = api.declare_queue("/", &changed).await.expect_err("a TTL change is refused");
    assert!(format!("{err:?}").contains("inequivalent arg 'x-message-ttl'"), "{err:?}");

    let refused = server.raw("DELETE", "/api/queues/%2F/work?if-empty=true", None).await;
    assert_eq!((refused.status, refused.reason().as_str()), (400, "queue 'work' in vhost '/' not empty"));
    api.purge_queue("/", "work").await.expect("purge");
    assert_eq!(api.get_queue_info("/", "work").await.expect("get").message_count, 0);
    assert_eq!(server.raw("DELETE", "/api/queues/%2F/work?if-empty=true", None).await.status, 204);
    assert!(api.get_queue_info("/", "work").await.is_err_and(|e| e.is_not_found()));
}

#[tokio::test]
async fn quorum_queues_report_their_type_and_names_need_not_be_plain() {
    let server = Server::start().await;
    let api = server.client();
    api.create_vhost(&rabbitmq_http_client::requests::VirtualHostParams::named("a/b c")).await.expect("vhost");
    let name = "orders.v1/eu #1";
    api.declare_queue("a/b c", &QueueParams::new_quorum_queue(name, None)).await.expect("declare quorum queue");
    let info = api.get_queue_info("a/b c", name).await.expect("get by an encoded name");
    assert_eq!((info.name.as_str(), info.vhost.as_str(), info.queue_type.as_str()), (name, "a/b c", "quorum"));
    assert!(info.leader.is_some(), "quorum queues name a leader");
    let stream = api.declare_queue("/", &QueueParams::new_stream("s", None)).await;
    assert!(stream.is_err(), "streams are refused with a reason");
    let refused = server.raw("PUT", "/api/queues/%2F/amq.mine", Some("{}")).await;
    assert_eq!((refused.status, refused.reason().as_str()), (401, "Access refused."));
}

#[tokio::test]
async fn listings_page_through_many_queues_like_rabbitmq() {
    use rabbitmq_http_client::commons::PaginationParams;

    let server = Server::start().await;
    let api = server.client();
    for i in 0..12 {
        api.declare_queue("/", &QueueParams::new_durable_classic_queue(&format!("q{i:02}"), None)).await.expect("q");
    }
    let page = api.list_queues_in_paged("/", &PaginationParams::new(2, 5)).await.expect("page 2 of 5");
    let names: Vec<String> = page.into_iter().map(|q| q.name).collect();
    assert_eq!(names, ["q05", "q06", "q07", "q08", "q09"]);
    let last = api.list_queues_paged(&PaginationParams::new(3, 5)).await.expect("the last page");
    assert_eq!(last.len(), 2);
    let exchanges = api.list_exchanges_paged(&PaginationParams::new(1, 3)).await.expect("exchanges");
    assert_eq!(exchanges.len(), 3);
    let vhosts = api.list_vhosts_paged(&PaginationParams::new(1, 10)).await.expect("vhosts");
    assert_eq!(vhosts.len(), 1);
    let beyond = server.raw("GET", "/api/queues/%2F?page=4&page_size=5", None).await;
    assert_eq!((beyond.status, beyond.error().as_str()), (400, "page_out_of_range"));
    let filtered = server.raw("GET", "/api/queues?page=1&name=Q1", None).await.json();
    assert_eq!(filtered["filtered_count"], 2, "q10 and q11, matched without case");
}
