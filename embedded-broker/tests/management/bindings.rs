//! Bindings: to queues and exchanges, with arguments and awkward routing keys,
//! deleted through their properties keys exactly as `warren` deletes them.

use rabbitmq_http_client::commons::{BindingDestinationType, ExchangeType};
use rabbitmq_http_client::requests::{BindingDeletionParams, ExchangeParams, QueueParams};
use serde_json::{Map, Value, json};

use crate::util::Server;

fn table(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn bindings_are_listed_with_properties_keys_and_deleted_by_them() {
    let server = Server::start().await;
    let api = server.client();
    api.declare_exchange("/", &ExchangeParams::new("ex", ExchangeType::Headers, true, false, None)).await.expect("x");
    api.declare_exchange("/", &ExchangeParams::new("audit", ExchangeType::Fanout, true, false, None)).await.expect("x");
    api.declare_queue("/", &QueueParams::new_durable_classic_queue("q", None)).await.expect("q");

    let headers = table(json!({"x-match": "all", "kind": "order"}));
    api.bind_queue("/", "q", "ex", Some("a.*"), None).await.expect("bind a.*");
    api.bind_queue("/", "q", "ex", Some("a.*"), Some(headers.clone())).await.expect("same key, with arguments");
    api.bind_queue("/", "q", "ex", Some("x~y%z /"), None).await.expect("an awkward key");
    api.bind_queue("/", "q", "ex", Some("a.*"), None).await.expect("binding twice is idempotent");
    api.bind_exchange("/", "audit", "ex", Some("#"), None).await.expect("exchange to exchange");

    let to_q = api.list_queue_bindings("/", "q").await.expect("queue bindings");
    let keys: Vec<(String, Option<String>)> =
        to_q.iter().map(|b| (b.routing_key.clone(), b.properties_key.clone())).collect();
    assert_eq!(to_q.len(), 4, "the default exchange's implicit binding plus three: {keys:?}");
    assert!(keys.contains(&("q".to_owned(), Some("q".to_owned()))), "implicit binding, as RabbitMQ lists it");
    assert!(keys.contains(&("a.*".to_owned(), Some("a.%2A".to_owned()))), "{keys:?}");
    assert!(keys.contains(&("x~y%z /".to_owned(), Some("x%7Ey%25z+%2F".to_owned()))), "{keys:?}");
    let with_args = to_q.iter().find(|b| !b.arguments.is_empty()).expect("the binding with arguments");
    assert!(with_args.properties_key.as_deref().is_some_and(|k| k.starts_with("a.%2A~")));

    let from_ex = api.list_exchange_bindings_with_source("/", "ex").await.expect("source bindings");
    assert_eq!(from_ex.len(), 4);
    let to_audit = api.list_exchange_bindings_with_destination("/", "audit").await.expect("destination bindings");
    assert_eq!(to_audit.len(), 1);
    assert_eq!(to_audit[0].destination_type, BindingDestinationType::Exchange);

    // Delete the one with arguments: the plain binding with the same key must stay.
    let params = BindingDeletionParams {
        virtual_host: "/",
        source: "ex",
        destination: "q",
        destination_type: BindingDestinationType::Queue,
        routing_key: "a.*",
        arguments: Some(headers),
    };
    api.delete_binding(&params, false).await.expect("delete the binding with arguments");
    let left = api.list_queue_bindings("/", "q").await.expect("queue bindings");
    assert_eq!(left.len(), 3);
    assert!(left.iter().any(|b| b.routing_key == "a.*" && b.arguments.is_empty()));

    let awkward = BindingDeletionParams { routing_key: "x~y%z /", arguments: None, ..params };
    api.delete_binding(&awkward, false).await.expect("delete the awkward key through its properties key");
    let e2e = BindingDeletionParams {
        destination: "audit",
        destination_type: BindingDestinationType::Exchange,
        routing_key: "#",
        ..awkward
    };
    api.delete_binding(&e2e, false).await.expect("delete the exchange-to-exchange binding");
    assert!(api.list_exchange_bindings_with_destination("/", "audit").await.expect("list").is_empty());
    assert_eq!(api.list_bindings_in("/").await.expect("all in vhost").len(), 2, "implicit plus a.*");
}

#[tokio::test]
async fn binding_ends_must_exist_and_the_default_exchange_cannot_be_bound() {
    let server = Server::start().await;
    let api = server.client();
    api.declare_queue("/", &QueueParams::new_durable_classic_queue("q", None)).await.expect("q");
    let missing = server.raw("POST", "/api/bindings/%2F/e/amq.direct/q/nosuch", Some("{}")).await;
    assert_eq!((missing.status, missing.error().as_str()), (404, "not_found"));
    assert_eq!(missing.reason(), "no queue 'nosuch' in vhost '/'");
    let default = server.raw("POST", "/api/bindings/%2F/e/amq.default/q/q", Some(r#"{"routing_key":"x"}"#)).await;
    assert_eq!((default.status, default.reason().as_str()), (401, "Access refused."));
    let created = server.raw("POST", "/api/bindings/%2F/e/amq.direct/q/q", Some(r#"{"routing_key":"k*"}"#)).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.header("location"), Some("q/k%252A"), "RabbitMQ's Location: destination/quoted key");
    let shown = server.raw("GET", "/api/bindings/%2F/e/amq.direct/q/q/k%252A", None).await;
    assert_eq!((shown.status, shown.json()["routing_key"].as_str()), (200, Some("k*")));
    let unknown = server.raw("DELETE", "/api/bindings/%2F/e/amq.direct/q/q/zzz", None).await;
    assert_eq!((unknown.status, unknown.error().as_str()), (404, "Object Not Found"));
}

/// Bindings with arguments, made through the API and through AMQP (typed by the client), get the
/// same properties keys from the embedded broker as from RabbitMQ.
#[tokio::test]
async fn properties_keys_equal_rabbitmqs() {
    use lapin::options::QueueBindOptions;
    use lapin::types::{AMQPValue, FieldTable};

    let Some(rabbit) = crate::util::rabbitmq().await else { return };
    let vhost = crate::util::unique_name("warren-mgmt-keys");
    let server = Server::start().await;
    let brokers = [
        (server.client(), format!("amqp://guest:guest@{}/{}", server.amqp, crate::util::seg(&vhost))),
        (
            rabbit.client(),
            format!(
                "amqp://{}:{}@{}:5672/{}",
                rabbit.user,
                rabbit.password,
                rabbit.addr.ip(),
                crate::util::seg(&vhost)
            ),
        ),
    ];
    let mut keys = Vec::new();
    for (api, amqp_url) in &brokers {
        api.create_vhost(&rabbitmq_http_client::requests::VirtualHostParams::named(&vhost)).await.expect("vhost");
        let outcome = async {
            api.declare_exchange(&vhost, &ExchangeParams::new("ex", ExchangeType::Headers, false, false, None)).await?;
            api.declare_queue(&vhost, &QueueParams::new_durable_classic_queue("q", None)).await?;
            for arguments in [
                json!({"x-match": "all", "k": 1}),
                json!({"flag": true, "n": -70000, "big": 1_u64 << 40}),
                json!({"nested": {"a": "b"}, "list": [1, "two"]}),
                json!({"ratio": 0.25}),
            ] {
                api.bind_queue(&vhost, "q", "ex", Some("key"), Some(table(arguments))).await?;
            }
            Ok::<_, rabbitmq_http_client::error::Error<_, _, _, _>>(())
        }
        .await;
        let connection = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await;
        let bound = match connection {
            Ok(connection) => {
                let channel = connection.create_channel().await.expect("channel");
                let mut typed = FieldTable::default();
                typed.insert("x-match".into(), AMQPValue::LongString("any".into()));
                typed.insert("i32".into(), AMQPValue::LongInt(5));
                typed.insert("u8".into(), AMQPValue::ShortShortUInt(7));
                let result = channel
                    .queue_bind("q".into(), "ex".into(), "amqp".into(), QueueBindOptions::default(), typed)
                    .await;
                let _ = connection.close(200, "bye".into()).await;
                result.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let listed = api.list_queue_bindings(&vhost, "q").await;
        api.delete_vhost(&vhost, true).await.expect("clean up the vhost");
        outcome.expect("bindings through the API");
        bound.expect("a binding through AMQP");
        let mut pairs: Vec<(String, Option<String>)> =
            listed.expect("list").into_iter().map(|b| (b.routing_key, b.properties_key)).collect();
        pairs.sort();
        keys.push(pairs);
    }
    assert_eq!(keys[0].len(), 6, "implicit, four through the API, one through AMQP: {:?}", keys[0]);
    assert_eq!(keys[0], keys[1], "embedded (left) and RabbitMQ (right) name bindings alike");
}
