//! `warren broker` on a disk that fills up (a small tmpfs of the test's own): publishers are
//! blocked (`connection.blocked`, RabbitMQ's disk alarm), never refused; as a consumer drains the
//! queue the space comes back, publishers go on, and every message arrives once, in order.

use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::broker::Server;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_blocks_publishers_and_draining_the_queue_lets_them_go_on() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // 24 MB of disk, publishers blocked under 12 MB free: about 11,000 messages of 1 KB fit
    // before the alarm, so 20,000 need the space the consumer's acknowledgements give back.
    let Some(command) = warren_testkit::on_small_disk(&warren_testkit::current_test(), dir.path(), "24m") else {
        return;
    };
    let server = Server::start_with(command, dir.path(), &["--disk-free-limit", "12MB"]);
    let url = format!("amqp://guest:guest@{}/%2f", server.amqp);
    let total: u64 = 20_000;
    let pconn = Connection::connect(&url, ConnectionProperties::default()).await.expect("connect");
    let publisher = pconn.create_channel().await.expect("channel");
    publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    publisher
        .queue_declare(
            "full".into(),
            lapin::options::QueueDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("queue.declare");
    let publishing = tokio::spawn(async move {
        let mut window = std::collections::VecDeque::new();
        let mut nacked = 0u64;
        for n in 0..total {
            let body = format!("{n:>1024}");
            let confirm = publisher
                .basic_publish(
                    "".into(),
                    "full".into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publish");
            window.push_back(confirm);
            if window.len() > 100
                && let Some(c) = window.pop_front()
            {
                nacked += u64::from(!c.await.expect("confirm").is_ack());
            }
        }
        for c in window {
            nacked += u64::from(!c.await.expect("confirm").is_ack());
        }
        nacked
    });
    let start = std::time::Instant::now();
    while !pconn.status().blocked() {
        assert!(start.elapsed() < DEADLINE, "the publisher was never blocked");
        assert!(!publishing.is_finished(), "all {total} messages were taken: the disk never filled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A consumer drains the queue; acknowledged segments go, the publisher resumes.
    let cconn = Connection::connect(&url, ConnectionProperties::default()).await.expect("connect");
    let consumer = cconn.create_channel().await.expect("channel");
    consumer.basic_qos(200, BasicQosOptions::default()).await.expect("qos");
    let mut deliveries = consumer
        .basic_consume("full".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    for n in 0..total {
        let Ok(delivery) = tokio::time::timeout(DEADLINE, deliveries.next()).await else {
            let (_, said) = server.stop_with("TERM");
            panic!("message {n} of {total} never came; the broker said:\n{said}");
        };
        let delivery = delivery.expect("a delivery").expect("not an error");
        assert_eq!(String::from_utf8_lossy(&delivery.data).trim(), n.to_string(), "in order, none lost");
        if n % 50 == 49 || n + 1 == total {
            delivery.ack(BasicAckOptions { multiple: true }).await.expect("ack");
        }
    }
    let nacked = tokio::time::timeout(DEADLINE, publishing).await.expect("the publisher finished").expect("publisher");
    assert_eq!(nacked, 0, "a full disk blocks publishers, it never refuses their messages");
    let start = std::time::Instant::now();
    while pconn.status().blocked() {
        assert!(start.elapsed() < DEADLINE, "the alarm never cleared after the queue was drained");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (code, _) = server.stop_with("TERM");
    assert_eq!(code, 0);
}
