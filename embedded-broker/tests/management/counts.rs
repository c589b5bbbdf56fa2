//! Queue counts follow what real AMQP clients do: `warren`'s data-loss guard
//! reads messages and consumers from the API, so they must be exact.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rabbitmq_http_client::requests::QueueParams;

use crate::util::{Api, Server};

/// How long a count may take to reach its expected value before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until the queue shows (ready, unacked, consumers), or fails with what it showed.
async fn wait_for_counts(api: &Api, queue: &str, expected: (u64, u64, u16)) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let info = api.get_queue_info("/", queue).await.expect("queue info");
        let ready = info.message_count - info.unacknowledged_message_count;
        let seen = (ready, info.unacknowledged_message_count, info.consumer_count);
        if seen == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "(ready, unacked, consumers) is {seen:?}, not {expected:?}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn counts_follow_publishers_consumers_acks_and_closed_connections() {
    let server = Server::start().await;
    let api = server.client();
    api.declare_queue("/", &QueueParams::new_durable_classic_queue("jobs", None)).await.expect("declare");

    let connection = Connection::connect(&server.amqp_url(), ConnectionProperties::default()).await.expect("connect");
    let publisher = connection.create_channel().await.expect("channel");
    publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    for i in 0..5u8 {
        publisher
            .basic_publish("".into(), "jobs".into(), BasicPublishOptions::default(), &[i], BasicProperties::default())
            .await
            .expect("publish")
            .await
            .expect("confirmed");
    }
    wait_for_counts(&api, "jobs", (5, 0, 0)).await;

    let consumer_channel = connection.create_channel().await.expect("channel");
    consumer_channel.basic_qos(2, BasicQosOptions::default()).await.expect("qos");
    let mut consumer = consumer_channel
        .basic_consume("jobs".into(), "worker".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    let mut deliveries = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(DEADLINE, consumer.next()).await.expect("a delivery in time");
        deliveries.push(next.expect("the stream is open").expect("a delivery"));
    }
    wait_for_counts(&api, "jobs", (3, 2, 1)).await;

    let busy = server.raw("DELETE", "/api/queues/%2F/jobs?if-unused=true", None).await;
    assert_eq!((busy.status, busy.reason().as_str()), (400, "queue 'jobs' in vhost '/' in use"));

    deliveries.remove(0).ack(BasicAckOptions::default()).await.expect("ack");
    // One ack frees one prefetch slot: the broker delivers the next message at once.
    wait_for_counts(&api, "jobs", (2, 2, 1)).await;

    connection.close(200, "done".into()).await.expect("close");
    // The two unacknowledged messages go back to the queue, and the consumer is gone.
    wait_for_counts(&api, "jobs", (4, 0, 0)).await;
    server.stop().await;
}
