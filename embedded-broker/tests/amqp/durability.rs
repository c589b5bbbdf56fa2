//! With a data directory: persistent messages of durable queues survive a restart, in order, with
//! their properties byte for byte; delivered-but-unacknowledged ones come back redelivered;
//! transient messages and non-durable queues do not; deep queues live on disk.

use std::path::Path;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use warren_broker::{Broker, BrokerConfig};

use crate::util::{timeout, unique};

async fn start(dir: &Path) -> (Broker, String) {
    start_with(BrokerConfig { data_dir: Some(dir.to_owned()), ..BrokerConfig::default() }).await
}

async fn start_with(config: BrokerConfig) -> (Broker, String) {
    let broker = Broker::start(config).await.expect("the broker starts on its data directory");
    let url = format!("amqp://guest:guest@{}/%2f", broker.amqp_addr());
    (broker, url)
}

/// A data directory on the simulated disk `fs`.
fn on_sim(dir: &Path, fs: &std::sync::Arc<warren_broker::store::sim::SimStorage>) -> BrokerConfig {
    BrokerConfig {
        data_dir: Some(dir.to_owned()),
        storage: Some(std::sync::Arc::new(std::sync::Arc::clone(fs))),
        ..BrokerConfig::default()
    }
}

/// Publishes `bodies` as persistent messages to `queue` with up to `window` unconfirmed, in a task
/// that fails unless the broker acknowledges every one.
fn publish_all_acked(
    publisher: Channel,
    queue: &str,
    bodies: Vec<String>,
    window: usize,
) -> tokio::task::JoinHandle<()> {
    let queue = queue.to_owned();
    tokio::spawn(async move {
        let mut waiting = std::collections::VecDeque::new();
        for (n, body) in bodies.iter().enumerate() {
            let publish = publisher.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                props(n, true),
            );
            waiting.push_back(publish.await.expect("publish"));
            if waiting.len() > window
                && let Some(confirm) = waiting.pop_front()
            {
                assert!(confirm.await.expect("confirm").is_ack(), "the disk never makes the broker nack");
            }
        }
        for confirm in waiting {
            assert!(confirm.await.expect("confirm").is_ack(), "the disk never makes the broker nack");
        }
    })
}

async fn channel(url: &str) -> (lapin::Connection, Channel) {
    let conn = timeout(lapin::Connection::connect(url, lapin::ConnectionProperties::default()), "connect")
        .await
        .expect("connect");
    let ch = timeout(conn.create_channel(), "channel").await.expect("channel");
    (conn, ch)
}

async fn declare(ch: &Channel, name: &str, durable: bool) {
    ch.queue_declare(name.into(), QueueDeclareOptions { durable, ..Default::default() }, FieldTable::default())
        .await
        .expect("queue.declare");
}

fn props(n: usize, persistent: bool) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("n".into(), AMQPValue::LongLongInt(n as i64));
    headers.insert("tag".into(), AMQPValue::LongString(format!("message {n}").into()));
    BasicProperties::default()
        .with_delivery_mode(if persistent { 2 } else { 1 })
        .with_content_type("text/plain".into())
        .with_message_id(format!("id-{n}").into())
        .with_headers(headers)
}

async fn publish(ch: &Channel, queue: &str, n: usize, persistent: bool) {
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            format!("body {n}").as_bytes(),
            props(n, persistent),
        )
        .await
        .expect("basic.publish");
    timeout(confirm, "a publisher confirm").await.expect("confirmed");
}

/// Every message left in `queue`: (body, redelivered, properties), acknowledged as read.
async fn drain(ch: &Channel, queue: &str) -> Vec<(String, bool, BasicProperties)> {
    let mut out = Vec::new();
    while let Some(m) = ch.basic_get(queue.into(), BasicGetOptions::default()).await.expect("basic.get") {
        m.delivery.ack(BasicAckOptions::default()).await.expect("ack");
        out.push((
            String::from_utf8_lossy(&m.delivery.data).into_owned(),
            m.delivery.redelivered,
            m.delivery.properties.clone(),
        ));
    }
    out
}

#[tokio::test]
async fn persistent_messages_of_durable_queues_survive_a_restart_and_nothing_else_does() {
    let dir = tempfile::tempdir().expect("a data directory");
    let (durable, transient_queue) = (unique("durable"), unique("transient-queue"));
    let (broker, url) = start(dir.path()).await;
    let (conn, ch) = channel(&url).await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    declare(&ch, &durable, true).await;
    declare(&ch, &transient_queue, false).await;
    for n in 0..10 {
        publish(&ch, &durable, n, n % 3 != 2).await;
        publish(&ch, &transient_queue, n, true).await;
    }
    // 0 and 1 are delivered; 0 is acknowledged, 1 is not (it comes back redelivered).
    let first = ch.basic_get(durable.as_str().into(), BasicGetOptions::default()).await.expect("get").expect("0");
    let second = ch.basic_get(durable.as_str().into(), BasicGetOptions::default()).await.expect("get").expect("1");
    first.delivery.ack(BasicAckOptions::default()).await.expect("ack 0");
    assert_eq!(&second.delivery.data[..], b"body 1");
    // A round trip: the ack was handled before the broker stops.
    declare(&ch, &durable, true).await;
    drop(conn);
    broker.shutdown().await;

    let (broker, url) = start(dir.path()).await;
    let (_conn, ch) = channel(&url).await;
    let back = drain(&ch, &durable).await;
    let expected: Vec<usize> = (1..10).filter(|n| n % 3 != 2).collect();
    let bodies: Vec<String> = back.iter().map(|(b, _, _)| b.clone()).collect();
    assert_eq!(bodies, expected.iter().map(|n| format!("body {n}")).collect::<Vec<_>>(), "persistent ones, in order");
    for ((_, redelivered, properties), n) in back.iter().zip(&expected) {
        assert_eq!(*redelivered, *n == 1, "only the delivered, unacknowledged message is redelivered (message {n})");
        assert_eq!(properties, &props(*n, true), "properties and headers as published (message {n})");
    }
    let gone = ch
        .queue_declare(
            transient_queue.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await;
    assert!(gone.is_err(), "a non-durable queue does not survive a restart");
    broker.shutdown().await;
}

#[tokio::test]
async fn a_deep_queue_lives_on_disk_and_comes_back_in_order() {
    let dir = tempfile::tempdir().expect("a data directory");
    let queue = unique("deep");
    let (broker, url) = start(dir.path()).await;
    let (_conn, ch) = channel(&url).await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    declare(&ch, &queue, true).await;
    let count = 3 * warren_broker::state::queue::HEAD_MESSAGES;
    let mut confirms = Vec::new();
    for n in 0..count {
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                format!("body {n}").as_bytes(),
                props(n, n % 2 == 0),
            )
            .await
            .expect("publish");
        confirms.push(confirm);
        if confirms.len() == 500 {
            for c in confirms.drain(..) {
                timeout(c, "confirm").await.expect("confirmed");
            }
        }
    }
    for c in confirms.drain(..) {
        timeout(c, "confirm").await.expect("confirmed");
    }
    let q = broker.state().queue("/", &queue).expect("queue");
    assert_eq!(q.counts().ready, count);
    assert!(q.disk_bytes() > 0, "messages past the head are on disk");
    let before = broker.state().memory_used();
    assert!(
        before < warren_broker::state::queue::HEAD_MESSAGES * 2 * 400,
        "memory holds the head, not the queue: {before} bytes"
    );
    // Read half, in order, transient and persistent alike.
    for n in 0..count / 2 {
        let m = ch
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
            .expect("a message");
        assert_eq!(String::from_utf8_lossy(&m.delivery.data), format!("body {n}"));
    }
    broker.shutdown().await;
    let (broker, url) = start(dir.path()).await;
    let (_conn, ch) = channel(&url).await;
    let back: Vec<String> = drain(&ch, &queue).await.into_iter().map(|(b, _, _)| b).collect();
    let expected: Vec<String> = (count / 2..count).filter(|n| n % 2 == 0).map(|n| format!("body {n}")).collect();
    assert_eq!(back, expected, "the persistent half of what was left, in order");
    broker.shutdown().await;
}

#[tokio::test]
async fn a_full_disk_blocks_publishers_until_space_returns_and_loses_nothing() {
    use warren_broker::store::sim::SimStorage;
    let dir = tempfile::tempdir().expect("a data directory");
    let fs = SimStorage::new();
    fs.set_capacity(Some(300_000));
    let config = BrokerConfig { disk_free_limit: 100_000, segment_size: 32 * 1024, ..on_sim(dir.path(), &fs) };
    let (broker, url) = start_with(config).await;
    let queue = unique("full-disk");
    let (pconn, publisher) = channel(&url).await;
    publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    declare(&publisher, &queue, true).await;
    let total = 600;
    let publishing = publish_all_acked(publisher, &queue, (0..total).map(|n| format!("{n:>1000}")).collect(), 50);
    crate::util::wait_until("the publisher is blocked", || async { pconn.status().blocked() }).await;
    assert!(broker.state().disk_alarm());
    // A consumer drains the queue: acknowledged segments go, space returns, the publisher resumes.
    let (_cconn, consumer) = channel(&url).await;
    let mut got = 0;
    let start = std::time::Instant::now();
    while got < total {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "drained {got} of {total}");
        match consumer.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get") {
            Some(m) => {
                assert_eq!(String::from_utf8_lossy(&m.delivery.data).trim(), got.to_string(), "in order, none lost");
                got += 1;
            }
            None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    timeout(publishing, "every publish confirmed").await.expect("the publisher finished");
    crate::util::wait_until("the publisher is unblocked", || async { !pconn.status().blocked() }).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_failing_disk_with_space_left_keeps_publishers_blocked_until_writes_succeed() {
    use warren_broker::store::sim::SimStorage;
    let dir = tempfile::tempdir().expect("a data directory");
    let fs = SimStorage::new();
    let (broker, url) = start_with(on_sim(dir.path(), &fs)).await;
    let queue = unique("failing-disk");
    let (pconn, publisher) = channel(&url).await;
    publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    declare(&publisher, &queue, true).await;
    // Every write fails from now on (an I/O error, a quota), while the disk reports plenty free.
    fs.crash_after(Some(0));
    let total = 50;
    let bodies: Vec<String> = (0..total).map(|n| format!("body {n}")).collect();
    let publishing = publish_all_acked(publisher, &queue, bodies.clone(), total);
    crate::util::wait_until("the publisher is blocked", || async { pconn.status().blocked() }).await;
    // The periodic sweep (every 100 ms) checks the free space, which is ample: the alarm must stay
    // on while writes fail, not flap with each check.
    for _ in 0..100 {
        assert!(broker.state().disk_alarm(), "the alarm stays on while writes fail");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(pconn.status().blocked(), "the publisher is still blocked");
    assert!(!publishing.is_finished(), "nothing is confirmed while writes fail");
    fs.crash_after(None);
    timeout(publishing, "every publish confirmed").await.expect("the publisher finished");
    crate::util::wait_until("the publisher is unblocked", || async { !pconn.status().blocked() }).await;
    assert!(!broker.state().disk_alarm(), "the alarm clears once writes succeed");
    let (_cconn, consumer) = channel(&url).await;
    let back: Vec<String> = drain(&consumer, &queue).await.into_iter().map(|(b, _, _)| b).collect();
    assert_eq!(back, bodies, "every message, in order");
    broker.shutdown().await;
}
