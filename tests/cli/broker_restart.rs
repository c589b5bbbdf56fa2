//! The same restart, with the same assertions, on RabbitMQ and on `warren broker`: RabbitMQ is a
//! standalone node restarted with `rabbitmqctl stop_app` / `start_app` (`tools/rabbitmq-cluster
//! solo`; the machine's own node is never restarted), `warren broker` is stopped cleanly
//! (SIGTERM) or killed (`kill -9`) and started again on the same data directory.
//!
//! Before the restart: persistent and transient messages published with confirms to a durable
//! queue, persistent ones to a non-durable queue; some fetched with `basic.get` and acknowledged
//! (out of order), some fetched and left unacknowledged on a channel that stays open, one rejected
//! with requeue, two held by a consumer that never acknowledges. After it, the durable queue
//! holds exactly the persistent messages not acknowledged, in publish order, with their
//! properties and headers as published, and the redelivered flag on exactly those that had been
//! delivered; the non-durable queue is gone.

use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::broker::Server;
use crate::util::unique_name;

const DEADLINE: Duration = Duration::from_secs(30);
/// Messages published to the durable queue; every fourth is transient.
const PUBLISHED: u64 = 12;

fn persistent(n: u64) -> bool {
    n % 4 != 3
}

/// Properties of every kind a client sets, headers of several field types among them.
fn props(n: u64) -> BasicProperties {
    let mut nested = FieldTable::default();
    nested.insert("depth".into(), AMQPValue::ShortShortUInt(2));
    let mut headers = FieldTable::default();
    headers.insert("n".into(), AMQPValue::LongLongInt(n as i64));
    headers.insert("text".into(), AMQPValue::LongString(format!("message {n} ✓").into()));
    headers.insert("flag".into(), AMQPValue::Boolean(n.is_multiple_of(2)));
    headers.insert("nested".into(), AMQPValue::FieldTable(nested));
    headers.insert(
        "list".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongInt(1), AMQPValue::LongString("two".into())])),
    );
    BasicProperties::default()
        .with_delivery_mode(if persistent(n) { 2 } else { 1 })
        .with_content_type("application/json".into())
        .with_content_encoding("identity".into())
        .with_headers(headers)
        .with_priority(3)
        .with_correlation_id(format!("corr-{n}").into())
        .with_reply_to("replies".into())
        .with_message_id(format!("id-{n}").into())
        .with_timestamp(1_700_000_000 + n)
        .with_type("order.created".into())
        .with_user_id("guest".into())
        .with_app_id("warren-tests".into())
}

fn body(n: u64) -> Vec<u8> {
    format!("{{\"n\":{n}}}").into_bytes()
}

/// What a client sees of one message after the restart.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    body: Vec<u8>,
    redelivered: bool,
    properties: BasicProperties,
}

/// How a broker goes down before it comes back.
#[derive(Debug, Clone, Copy)]
enum Restart {
    /// RabbitMQ's `stop_app` / `start_app`; `warren broker`'s SIGTERM.
    Clean,
    /// `kill -9` of `warren broker`.
    Kill9,
}

/// A broker that can be restarted.
enum Node {
    Rabbit(warren_testkit::RestartableRabbitMq),
    Embedded { dir: tempfile::TempDir, server: Option<Server> },
}

impl Node {
    fn url(&self) -> String {
        match self {
            Node::Rabbit(r) => r.amqp_url.clone(),
            Node::Embedded { server, .. } => {
                format!("amqp://guest:guest@{}/%2f", server.as_ref().expect("a running broker").amqp)
            }
        }
    }

    fn restart(&mut self, how: Restart) {
        match (self, how) {
            (Node::Rabbit(r), Restart::Clean) => r.restart(),
            (Node::Rabbit(r), Restart::Kill9) => r.kill9_and_start(),
            (Node::Embedded { dir, server }, how) => {
                let running = server.take().expect("a running broker");
                match how {
                    Restart::Clean => {
                        let (code, said) = running.stop_with("TERM");
                        assert_eq!(code, 0, "SIGTERM stops warren broker cleanly: {said}");
                    }
                    Restart::Kill9 => running.kill9(),
                }
                *server = Some(Server::start(dir.path()));
            }
        }
    }
}

async fn connect(url: &str) -> (Connection, Channel) {
    let conn = tokio::time::timeout(DEADLINE, Connection::connect(url, ConnectionProperties::default()))
        .await
        .expect("connect in time")
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

async fn get(ch: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    ch.basic_get(queue.into(), BasicGetOptions::default()).await.expect("basic.get").expect("a message")
}

fn number(data: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(data);
    text.trim_start_matches("{\"n\":").trim_end_matches('}').parse().expect("a numbered body")
}

/// Runs the scenario on `node` and returns what the durable queue holds after the restart, and
/// whether the non-durable queue survived.
async fn restart_scenario(node: &mut Node, how: Restart) -> (Vec<Seen>, bool) {
    let (durable, transient) = (unique_name("restart-durable"), unique_name("restart-transient"));
    let url = node.url();
    let (publisher_conn, publisher) = connect(&url).await;
    publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    let durable_opts = QueueDeclareOptions { durable: true, ..Default::default() };
    publisher.queue_declare(durable.as_str().into(), durable_opts, FieldTable::default()).await.expect("declare");
    publisher
        .queue_declare(transient.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .expect("declare the non-durable queue");
    for n in 0..PUBLISHED {
        for queue in [&durable, &transient] {
            let props = if *queue == transient { props(n).with_delivery_mode(2) } else { props(n) };
            let confirm = publisher
                .basic_publish("".into(), queue.as_str().into(), BasicPublishOptions::default(), &body(n), props)
                .await
                .expect("basic.publish");
            assert!(confirm.await.expect("a confirm").is_ack(), "message {n} confirmed");
        }
    }

    // 0..=5 fetched on a channel that stays open: 2 then 0 acknowledged, 4 rejected with requeue
    // (it goes back to the head), 1, 3 (transient) and 5 left unacknowledged.
    let (_getter_conn, getter) = connect(&url).await;
    let fetched: Vec<_> = {
        let mut v = Vec::new();
        for n in 0..6 {
            let m = get(&getter, &durable).await;
            assert_eq!(number(&m.delivery.data), n, "fetched in publish order");
            v.push(m);
        }
        v
    };
    fetched[2].delivery.ack(BasicAckOptions::default()).await.expect("ack 2");
    fetched[0].delivery.ack(BasicAckOptions::default()).await.expect("ack 0");
    fetched[4].delivery.reject(BasicRejectOptions { requeue: true }).await.expect("reject 4");
    // A round trip on the channel: the broker handled the acks and the reject before answering.
    getter.basic_qos(0, BasicQosOptions::default()).await.expect("basic.qos");

    // A consumer with a prefetch of 2 gets the requeued 4, then 6, and never acknowledges them.
    let (_consumer_conn, consumer) = connect(&url).await;
    consumer.basic_qos(2, BasicQosOptions::default()).await.expect("basic.qos");
    let mut deliveries = consumer
        .basic_consume(durable.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("basic.consume");
    for (n, redelivered) in [(4, true), (6, false)] {
        let d = tokio::time::timeout(DEADLINE, deliveries.next())
            .await
            .expect("a delivery in time")
            .expect("a delivery")
            .expect("a good delivery");
        assert_eq!((number(&d.data), d.redelivered), (n, redelivered), "the consumer's deliveries");
    }
    consumer.basic_qos(2, BasicQosOptions::default()).await.expect("basic.qos");
    drop(publisher_conn);

    node.restart(how);

    let url = node.url();
    let (_conn, ch) = connect(&url).await;
    let mut back = Vec::new();
    while let Some(m) = ch.basic_get(durable.as_str().into(), BasicGetOptions::default()).await.expect("basic.get") {
        m.delivery.ack(BasicAckOptions::default()).await.expect("ack");
        back.push(Seen {
            body: m.delivery.data.clone(),
            redelivered: m.delivery.redelivered,
            properties: m.delivery.properties.clone(),
        });
        assert!(back.len() <= PUBLISHED as usize, "more messages than were published: {back:?}");
    }
    ch.queue_delete(durable.as_str().into(), Default::default()).await.expect("queue.delete");
    let (_probe_conn, probe) = connect(&url).await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let transient_survived =
        probe.queue_declare(transient.as_str().into(), passive, FieldTable::default()).await.is_ok();
    (back, transient_survived)
}

/// What every broker must return after the restart.
fn expected() -> Vec<Seen> {
    let delivered = [1, 4, 5, 6];
    (0..PUBLISHED)
        .filter(|n| persistent(*n) && ![0, 2].contains(n))
        .map(|n| Seen { body: body(n), redelivered: delivered.contains(&n), properties: props(n) })
        .collect()
}

fn check(name: &str, (back, transient_survived): (Vec<Seen>, bool)) {
    let numbers: Vec<(u64, bool)> = back.iter().map(|s| (number(&s.body), s.redelivered)).collect();
    let want: Vec<(u64, bool)> = expected().iter().map(|s| (number(&s.body), s.redelivered)).collect();
    assert_eq!(
        numbers, want,
        "[{name}] (message, redelivered): the persistent messages not acknowledged, in publish order, \
         redelivered exactly when delivered before"
    );
    for (seen, want) in back.iter().zip(expected()) {
        assert_eq!(
            seen.properties,
            want.properties,
            "[{name}] properties and headers of message {}",
            number(&seen.body)
        );
    }
    assert!(!transient_survived, "[{name}] a non-durable queue does not survive a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_returns_what_rabbitmq_returns() {
    if let Some(rabbit) = warren_testkit::restartable_rabbitmq(&warren_testkit::current_test()) {
        let mut node = Node::Rabbit(rabbit);
        check("rabbitmq, stop_app/start_app", restart_scenario(&mut node, Restart::Clean).await);
    }
    for how in [Restart::Clean, Restart::Kill9] {
        let dir = tempfile::tempdir().expect("a data directory");
        let server = Server::start(dir.path());
        let mut node = Node::Embedded { dir, server: Some(server) };
        check(&format!("warren broker, {how:?}"), restart_scenario(&mut node, how).await);
    }
}
