//! What the management API shows of a running broker: connections, channels, consumers, message
//! counters with rates, the node, and the listing parameters, each compared with RabbitMQ's own
//! answer where it answers.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;

use crate::util::{RabbitMq, Response, Server, rabbitmq, raw, raw_with_headers, seg, unique_name};

/// How long a count may take to show (RabbitMQ publishes its statistics every 5 seconds).
const DEADLINE: Duration = Duration::from_secs(30);

/// A client as a service runs one: a named connection, a publishing channel in confirm mode and a
/// consuming channel with a prefetch of 7, which has received and acknowledged what was published.
struct Client {
    connection: Connection,
    _publisher: Channel,
    _consumer: Channel,
    _deliveries: lapin::Consumer,
}

/// Messages each client publishes, receives and acknowledges.
const MESSAGES: usize = 3;

async fn client(amqp_url: &str, connection_name: &str, queue: &str) -> Client {
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    let connection = Connection::connect(amqp_url, properties).await.expect("connect");
    let publisher = connection.create_channel().await.expect("channel");
    publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    publisher
        .queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .expect("queue.declare");
    for i in 0..MESSAGES {
        publisher
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirmed");
    }
    let consumer = connection.create_channel().await.expect("channel");
    consumer.basic_qos(7, BasicQosOptions::default()).await.expect("qos");
    let mut deliveries = consumer
        .basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    for _ in 0..MESSAGES {
        let delivery = tokio::time::timeout(DEADLINE, deliveries.next()).await.expect("a delivery in time");
        delivery.expect("the stream is open").expect("a delivery").ack(BasicAckOptions::default()).await.expect("ack");
    }
    Client { connection, _publisher: publisher, _consumer: consumer, _deliveries: deliveries }
}

/// One side of a comparison: a broker's management API, as guest or the configured user.
#[derive(Clone, Copy)]
enum Side<'a> {
    Embedded(&'a Server),
    RabbitMq(&'a RabbitMq),
}

impl Side<'_> {
    async fn get(&self, path: &str) -> Value {
        let answer = self.request("GET", path, &[]).await;
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        answer.json()
    }

    async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        match self {
            Side::Embedded(server) => {
                raw_with_headers(server.addr, method, path, Some(("guest", "guest")), headers, None).await
            }
            Side::RabbitMq(rabbit) => {
                raw_with_headers(rabbit.addr, method, path, Some((&rabbit.user, &rabbit.password)), headers, None).await
            }
        }
    }

    /// The connection whose client named it `connection_name`, once it shows.
    async fn connection(&self, connection_name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let all = self.get("/api/connections").await;
            let found = all
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["client_properties"]["connection_name"] == connection_name && c["channels"] == 2);
            if let Some(found) = found {
                return found.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "no connection {connection_name} with 2 channels in {all}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `path` once `ready` holds of it (RabbitMQ's statistics arrive every few seconds).
    async fn when(&self, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let value = self.get(path).await;
            if ready(&value) {
                return value;
            }
            assert!(tokio::time::Instant::now() < deadline, "GET {path} never got there: {value}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What a user checks of the client's connection, channels, consumer, queue and exchange.
struct Seen {
    connection: Value,
    channels: Vec<Value>,
    consumer: Value,
    queue: Value,
    exchange: Value,
    overview: Value,
    node: Value,
}

async fn look(side: Side<'_>, connection_name: &str, queue: &str) -> Seen {
    let connection = side.connection(connection_name).await;
    let name = connection["name"].as_str().expect("a connection name").to_owned();
    let channels_path = format!("/api/connections/{}/channels", seg(&name));
    let acked = |c: &Value| c["message_stats"]["ack"] == MESSAGES;
    let published = |c: &Value| c["message_stats"]["confirm"] == MESSAGES;
    let channels = side
        .when(&channels_path, |all| {
            let all = all.as_array().cloned().unwrap_or_default();
            all.len() == 2 && all.iter().any(acked) && all.iter().any(published)
        })
        .await;
    let mut channels = channels.as_array().cloned().unwrap_or_default();
    channels.sort_by_key(|c| c["number"].as_u64());
    let consumers = side.get("/api/consumers/%2F").await;
    let consumer = consumers
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["queue"]["name"] == queue)
        .cloned()
        .unwrap_or_else(|| panic!("no consumer of {queue} in {consumers}"));
    let queue_path = format!("/api/queues/%2F/{}", seg(queue));
    let queue = side.when(&queue_path, |q| q["message_stats"]["ack"] == MESSAGES).await;
    let exchange = side.when("/api/exchanges/%2F/amq.default", |x| x["message_stats"]["publish_in"].is_u64()).await;
    let overview = side.when("/api/overview", |o| o["message_stats"]["ack"].as_u64() >= Some(MESSAGES as u64)).await;
    let nodes = side.get("/api/nodes").await;
    let node = nodes[0].clone();
    Seen { connection, channels, consumer, queue, exchange, overview, node }
}

/// The fields each object must have, by dotted key (RabbitMQ's names, checked on both brokers).
const CONNECTION_FIELDS: &[&str] = &[
    "name",
    "user",
    "vhost",
    "peer_host",
    "peer_port",
    "host",
    "port",
    "client_properties.connection_name",
    "client_properties.product",
    "channels",
    "channel_max",
    "frame_max",
    "timeout",
    "recv_oct",
    "recv_oct_details.rate",
    "send_oct",
    "send_oct_details.rate",
    "recv_cnt",
    "send_cnt",
    "connected_at",
    "state",
    "protocol",
    "auth_mechanism",
    "node",
    "type",
    "ssl",
];
const CHANNEL_FIELDS: &[&str] = &[
    "name",
    "number",
    "user",
    "vhost",
    "node",
    "connection_details.name",
    "connection_details.peer_host",
    "connection_details.peer_port",
    "consumer_count",
    "prefetch_count",
    "global_prefetch_count",
    "messages_unacknowledged",
    "messages_unconfirmed",
    "messages_uncommitted",
    "acks_uncommitted",
    "confirm",
    "transactional",
    "state",
];
const PUBLISHER_STATS: &[&str] = &["publish", "publish_details.rate", "confirm", "confirm_details.rate"];
const CONSUMER_STATS: &[&str] = &[
    "ack",
    "ack_details.rate",
    "deliver",
    "deliver_details.rate",
    "deliver_get",
    "deliver_get_details.rate",
    "deliver_no_ack",
    "get",
    "get_empty",
    "get_no_ack",
    "redeliver",
    "redeliver_details.rate",
];
const CONSUMER_FIELDS: &[&str] = &[
    "consumer_tag",
    "ack_required",
    "exclusive",
    "prefetch_count",
    "active",
    "activity_status",
    "arguments",
    "queue.name",
    "queue.vhost",
    "channel_details.name",
    "channel_details.connection_name",
    "channel_details.number",
    "channel_details.peer_host",
    "channel_details.peer_port",
    "channel_details.user",
];
const OVERVIEW_FIELDS: &[&str] = &[
    "node",
    "object_totals.connections",
    "object_totals.channels",
    "object_totals.consumers",
    "object_totals.queues",
    "object_totals.exchanges",
    "queue_totals.messages",
    "queue_totals.messages_details.rate",
    "queue_totals.messages_ready",
    "queue_totals.messages_unacknowledged",
    "message_stats.publish",
    "message_stats.publish_details.rate",
    "message_stats.confirm",
    "message_stats.confirm_details.rate",
    "message_stats.deliver_get",
    "message_stats.deliver_get_details.rate",
    "message_stats.ack",
    "message_stats.ack_details.rate",
    "message_stats.redeliver",
    "message_stats.redeliver_details.rate",
    "message_stats.return_unroutable",
    "message_stats.return_unroutable_details.rate",
    "churn_rates.connection_created",
    "churn_rates.channel_created",
];
const NODE_FIELDS: &[&str] = &[
    "name",
    "type",
    "running",
    "mem_used",
    "mem_used_details.rate",
    "mem_limit",
    "mem_alarm",
    "disk_free_alarm",
    "disk_free_limit",
    "fd_used",
    "fd_total",
    "sockets_used",
    "sockets_total",
    "proc_used",
    "proc_total",
    "uptime",
    "processors",
    "os_pid",
];

/// The value at a dotted key.
fn at<'a>(value: &'a Value, key: &str) -> &'a Value {
    key.split('.').fold(value, |v, k| &v[k])
}

/// The JSON type's name, numbers as one type (RabbitMQ writes 0.0 and 0 alike for rates).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "missing or null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Each key is present on `ours` with the type it has on `theirs` (or, alone, present at all).
fn assert_fields(what: &str, ours: &Value, theirs: Option<&Value>, keys: &[&str]) {
    for key in keys {
        let mine = kind(at(ours, key));
        assert_ne!(mine, "missing or null", "{what}: no {key} in {ours}");
        if let Some(theirs) = theirs {
            assert_eq!(mine, kind(at(theirs, key)), "{what}: {key} differs from RabbitMQ's ({theirs})");
        }
    }
}

#[tokio::test]
async fn connections_channels_consumers_and_counters_show_as_in_rabbitmq() {
    let server = Server::start().await;
    let embedded = Side::Embedded(&server);
    let _client = client(&server.amqp_url(), "orders-service", "jobs").await;
    let ours = look(embedded, "orders-service", "jobs").await;

    // What a user checks: who is connected, from where, doing what.
    let c = &ours.connection;
    assert_eq!(
        (c["user"].as_str(), c["vhost"].as_str(), c["state"].as_str()),
        (Some("guest"), Some("/"), Some("running"))
    );
    assert_eq!((c["peer_host"].as_str(), c["port"].as_u64()), (Some("127.0.0.1"), Some(u64::from(server.amqp.port()))));
    assert!(c["recv_oct"].as_u64() > Some(0) && c["send_oct"].as_u64() > Some(0), "{c}");
    assert_eq!(c["name"], format!("127.0.0.1:{} -> {}", c["peer_port"], server.amqp));
    let (publisher, consumer) = (&ours.channels[0], &ours.channels[1]);
    assert_eq!((publisher["confirm"].as_bool(), publisher["message_stats"]["publish"].as_u64()), (Some(true), Some(3)));
    assert_eq!(publisher["messages_unconfirmed"], 0);
    assert_eq!((consumer["prefetch_count"].as_u64(), consumer["consumer_count"].as_u64()), (Some(7), Some(1)));
    assert_eq!(consumer["message_stats"]["deliver_get"], 3);
    assert_eq!(consumer["name"], format!("{} (2)", c["name"].as_str().unwrap_or_default()));
    assert_eq!(ours.consumer["channel_details"]["name"], consumer["name"]);
    assert_eq!(ours.queue["consumer_details"][0]["consumer_tag"], ours.consumer["consumer_tag"]);
    assert_eq!((ours.queue["message_stats"]["publish"].as_u64(), ours.queue["messages"].as_u64()), (Some(3), Some(0)));
    assert_eq!(ours.exchange["message_stats"]["publish_out"], 3);
    let totals = &ours.overview["object_totals"];
    assert_eq!((totals["connections"].as_u64(), totals["channels"].as_u64()), (Some(1), Some(2)));
    let amqp = ours.overview["listeners"].as_array().into_iter().flatten().find(|l| l["protocol"] == "amqp");
    assert_eq!(amqp.map(|l| l["port"].clone()), Some(Value::from(server.amqp.port())), "{}", ours.overview);
    assert!(ours.node["fd_used"].as_u64() > Some(0) && ours.node["fd_total"].as_u64() > Some(0), "{}", ours.node);
    assert_eq!(ours.node["name"], ours.overview["node"]);
    let one = embedded.get(&format!("/api/nodes/{}", seg(ours.node["name"].as_str().unwrap_or_default()))).await;
    assert_eq!(one["name"], ours.node["name"]);
    // The vhost-scoped lists hold the same.
    assert_eq!(embedded.get("/api/vhosts/%2F/connections").await.as_array().map(Vec::len), Some(1));
    assert_eq!(embedded.get("/api/vhosts/%2F/channels").await.as_array().map(Vec::len), Some(2));
    assert_eq!(embedded.get("/api/channels").await.as_array().map(Vec::len), Some(2));
    let channel = embedded.get(&format!("/api/channels/{}", seg(consumer["name"].as_str().unwrap_or_default()))).await;
    assert_eq!(channel["prefetch_count"], 7);

    let rabbit = match rabbitmq().await {
        Some(rabbit) => rabbit,
        None => {
            for (what, value, fields) in [
                ("connection", &ours.connection, CONNECTION_FIELDS),
                ("publishing channel", publisher, CHANNEL_FIELDS),
                ("consumer", &ours.consumer, CONSUMER_FIELDS),
                ("overview", &ours.overview, OVERVIEW_FIELDS),
                ("node", &ours.node, NODE_FIELDS),
            ] {
                assert_fields(what, value, None, fields);
            }
            server.stop().await;
            return;
        }
    };
    let connection_name = unique_name("orders-service");
    let queue = unique_name("jobs");
    let rabbit_client = client(&rabbit.amqp_url, &connection_name, &queue).await;
    let theirs = look(Side::RabbitMq(&rabbit), &connection_name, &queue).await;
    let pairs = [
        ("connection", &ours.connection, &theirs.connection, CONNECTION_FIELDS),
        ("publishing channel", &ours.channels[0], &theirs.channels[0], CHANNEL_FIELDS),
        ("consuming channel", &ours.channels[1], &theirs.channels[1], CHANNEL_FIELDS),
        (
            "publishing channel stats",
            &ours.channels[0]["message_stats"],
            &theirs.channels[0]["message_stats"],
            PUBLISHER_STATS,
        ),
        (
            "consuming channel stats",
            &ours.channels[1]["message_stats"],
            &theirs.channels[1]["message_stats"],
            CONSUMER_STATS,
        ),
        ("queue stats", &ours.queue["message_stats"], &theirs.queue["message_stats"], CONSUMER_STATS),
        ("queue consumer", &ours.queue["consumer_details"][0], &theirs.queue["consumer_details"][0], CONSUMER_FIELDS),
        ("consumer", &ours.consumer, &theirs.consumer, CONSUMER_FIELDS),
        (
            "exchange",
            &ours.exchange["message_stats"],
            &theirs.exchange["message_stats"],
            &["publish_in", "publish_in_details.rate", "publish_out"],
        ),
        ("overview", &ours.overview, &theirs.overview, OVERVIEW_FIELDS),
        ("node", &ours.node, &theirs.node, NODE_FIELDS),
    ];
    for (what, mine, rabbit_value, fields) in pairs {
        assert_fields(what, mine, Some(rabbit_value), fields);
    }
    // The same values where they do not depend on the broker.
    for key in ["frame_max", "channel_max", "timeout", "auth_mechanism", "protocol", "client_properties.product"] {
        assert_eq!(at(&ours.connection, key), at(&theirs.connection, key), "connection {key}");
    }
    for key in ["prefetch_count", "consumer_count", "confirm", "messages_unacknowledged"] {
        assert_eq!(at(&ours.channels[1], key), at(&theirs.channels[1], key), "consuming channel {key}");
        assert_eq!(at(&ours.channels[0], key), at(&theirs.channels[0], key), "publishing channel {key}");
    }
    let _ = rabbit_client.connection.close(200, "done".into()).await;
    let _ = raw(
        rabbit.addr,
        "DELETE",
        &format!("/api/queues/%2F/{}", seg(&queue)),
        Some((&rabbit.user, &rabbit.password)),
        None,
    )
    .await;
    server.stop().await;
}

/// `DELETE /api/connections/NAME` closes the connection with 320 and the `X-Reason` text, on both
/// brokers; the connection is gone from the list afterwards, and an unknown name is a 404.
#[tokio::test]
async fn deleting_a_connection_closes_it_with_the_reason_given() {
    let server = Server::start().await;
    let rabbit = rabbitmq().await;
    let mut sides = vec![(Side::Embedded(&server), server.amqp_url())];
    if let Some(rabbit) = &rabbit {
        sides.push((Side::RabbitMq(rabbit), rabbit.amqp_url.clone()));
    }
    for (side, url) in sides {
        let connection_name = unique_name("doomed");
        let properties = ConnectionProperties::default().with_connection_name(connection_name.as_str().into());
        let connection = Connection::connect(&url, properties).await.expect("connect");
        let mut events = connection.events_listener();
        let _channel = connection.create_channel().await.expect("channel");
        let _channel2 = connection.create_channel().await.expect("channel");
        let seen = side.connection(&connection_name).await;
        let name = seen["name"].as_str().expect("a name").to_owned();
        let path = format!("/api/connections/{}", seg(&name));
        let closed = side.request("DELETE", &path, &[("X-Reason", "maintenance window")]).await;
        assert_eq!(closed.status, 204, "DELETE {path}: {}", closed.body);
        let error = tokio::time::timeout(DEADLINE, async {
            loop {
                match events.next().await {
                    Some(lapin::Event::Error(e)) => return Some(e.to_string()),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .expect("the client hears of the close in time");
        let text = error.unwrap_or_default();
        assert!(text.contains("CONNECTION_FORCED - maintenance window"), "the client saw: {text}");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while side.request("GET", &path, &[]).await.status != 404 {
            assert!(tokio::time::Instant::now() < deadline, "{name} is still listed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let unknown = Side::Embedded(&server).request("DELETE", "/api/connections/nobody", &[]).await;
    assert_eq!((unknown.status, unknown.error().as_str()), (404, "Object Not Found"));
    server.stop().await;
}

/// Rates follow the traffic: while a client publishes, the overview's and the queue's publish
/// rates are positive; the totals count every message exactly once, closed connections included.
#[tokio::test]
async fn rates_follow_the_traffic_and_totals_survive_closed_connections() {
    let server = Server::start().await;
    let side = Side::Embedded(&server);
    let first = client(&server.amqp_url(), "first", "work").await;
    // A first read is the sample later rates are measured from.
    let before = side.get("/api/overview").await;
    assert_eq!(before["message_stats"]["publish"], 3);
    assert_eq!(side.get("/api/queues/%2F/work").await["message_stats"]["publish_details"]["rate"], 0.0);
    first.connection.close(200, "done".into()).await.expect("close");
    let second = client(&server.amqp_url(), "second", "work").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = side.get("/api/overview").await;
    let stats = &after["message_stats"];
    assert_eq!((stats["publish"].as_u64(), stats["ack"].as_u64()), (Some(6), Some(6)), "{after}");
    assert!(stats["publish_details"]["rate"].as_f64() > Some(0.0), "{after}");
    assert_eq!(after["churn_rates"]["connection_closed"], 1);
    let queue = side.get("/api/queues/%2F/work").await;
    assert_eq!(queue["message_stats"]["publish"], 6);
    assert!(queue["message_stats"]["publish_details"]["rate"].as_f64() > Some(0.0), "{queue}");
    // Counts go with a deleted queue, as in RabbitMQ.
    second.connection.close(200, "done".into()).await.expect("close");
    assert_eq!(server.raw("DELETE", "/api/queues/%2F/work", None).await.status, 204);
    server.raw("PUT", "/api/queues/%2F/work", Some("{}")).await;
    assert!(side.get("/api/queues/%2F/work").await.get("message_stats").is_none());
    server.stop().await;
}

/// RabbitMQ's listing parameters on the lists that have them, compared with RabbitMQ's answer for
/// the same queues, and on lists RabbitMQ does not page (users), sorting and columns.
#[tokio::test]
async fn lists_take_rabbitmqs_paging_sorting_and_column_parameters() {
    let server = Server::start().await;
    let rabbit = rabbitmq().await;
    let prefix = unique_name("listing");
    let mut sides = vec![Side::Embedded(&server)];
    sides.extend(rabbit.as_ref().map(Side::RabbitMq));
    let mut answers = Vec::new();
    for side in &sides {
        for (name, arguments) in [("b", "{}"), ("A", r#"{"x-max-length":5}"#), ("c", "{}")] {
            let path = format!("/api/queues/%2F/{}", seg(&format!("{prefix}-{name}")));
            let body = format!(r#"{{"durable":false,"arguments":{arguments}}}"#);
            let created = match side {
                Side::Embedded(s) => s.raw("PUT", &path, Some(&body)).await,
                Side::RabbitMq(r) => r.raw("PUT", &path, Some(&body)).await,
            };
            assert!(created.status == 201 || created.status == 204, "PUT {path}: {}", created.body);
        }
        let query = format!(
            "/api/queues/%2F?page=2&page_size=2&name={}&sort=name&sort_reverse=true&columns=name,arguments.x-max-length",
            seg(&prefix)
        );
        let mut page = side.get(&query).await;
        assert!(page["total_count"].as_u64() >= Some(3), "{page}");
        page.as_object_mut().map(|m| m.remove("total_count"));
        answers.push(page);
        // Missing keys sort first, so the one queue with the argument comes last.
        let path = format!("/api/queues/%2F?page=1&name={}&sort=arguments.x-max-length&columns=name", seg(&prefix));
        let sorted = side.get(&path).await;
        let last = sorted["items"].as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
        assert_eq!(last["name"], format!("{prefix}-A"), "{sorted}");
        for name in ["b", "A", "c"] {
            let path = format!("/api/queues/%2F/{}", seg(&format!("{prefix}-{name}")));
            side.request("DELETE", &path, &[]).await;
        }
    }
    let expected = serde_json::json!({
        "filtered_count": 3, "item_count": 1, "page": 2, "page_count": 2, "page_size": 2,
        "items": [{ "name": format!("{prefix}-A"), "arguments": { "x-max-length": 5 } }],
    });
    for answer in &answers {
        assert_eq!(answer, &expected);
    }
    // Every list takes them, including the ones RabbitMQ does not page.
    let embedded = Side::Embedded(&server);
    server.raw("PUT", "/api/users/zed", Some(r#"{"password":"p","tags":""}"#)).await;
    let users = embedded.get("/api/users?sort=name&sort_reverse=true&columns=name").await;
    assert_eq!(users, serde_json::json!([{ "name": "zed" }, { "name": "guest" }]));
    let paged = embedded.get("/api/connections?page=1&page_size=5").await;
    assert_eq!((paged["total_count"].as_u64(), paged["items"].as_array().map(Vec::len)), (Some(0), Some(0)));
    let bad = embedded.request("GET", "/api/channels?page=0", &[]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    server.stop().await;
}

/// `/metrics` answers without a login, under the names of RabbitMQ's Prometheus plugin.
#[tokio::test]
async fn metrics_use_rabbitmq_prometheus_names() {
    let server = Server::start().await;
    let client = client(&server.amqp_url(), "metered", "metered").await;
    let publish = r#"{"properties":{},"routing_key":"metered-idle","payload":"x","payload_encoding":"string"}"#;
    for i in 0..3 {
        // The first finds no queue and is dropped.
        if i == 1 {
            server.raw("PUT", "/api/queues/%2F/metered-idle", Some("{}")).await;
        }
        server.raw("POST", "/api/exchanges/%2F/amq.default/publish", Some(publish)).await;
    }
    let text = raw(server.addr, "GET", "/metrics", None, None).await;
    assert_eq!(text.status, 200, "no login needed: {}", text.body);
    let value = |line_start: &str| -> Option<f64> {
        text.body
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(value("rabbitmq_queue_messages "), Some(2.0), "{}", text.body);
    assert_eq!(value("rabbitmq_queue_messages_ready "), Some(2.0));
    assert_eq!(value("rabbitmq_queue_messages_unacked "), Some(0.0));
    assert_eq!(value("rabbitmq_queue_consumers "), Some(1.0));
    assert_eq!(value("rabbitmq_connections "), Some(1.0));
    assert_eq!(value("rabbitmq_channels "), Some(2.0));
    assert_eq!(value("rabbitmq_global_messages_received_total{protocol=\"amqp091\"} "), Some(6.0));
    assert_eq!(value("rabbitmq_global_messages_delivered_total{protocol=\"amqp091\"} "), Some(3.0));
    assert_eq!(value("rabbitmq_global_messages_acknowledged_total{protocol=\"amqp091\"} "), Some(3.0));
    assert_eq!(value("rabbitmq_global_messages_confirmed_total{protocol=\"amqp091\"} "), Some(3.0));
    assert_eq!(value("rabbitmq_global_messages_unroutable_dropped_total{protocol=\"amqp091\"} "), Some(1.0));
    assert!(text.body.contains("# TYPE rabbitmq_queue_messages gauge"));
    let per_object = raw(server.addr, "GET", "/metrics/per-object", None, None).await;
    assert!(
        per_object.body.contains("rabbitmq_queue_messages{vhost=\"/\",queue=\"metered-idle\"} 2"),
        "{}",
        per_object.body
    );
    drop(client);
    server.stop().await;
}
