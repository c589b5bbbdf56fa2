//! Behaviour that needs the embedded broker's own configuration or state (a memory limit, users
//! with narrow permissions), so it cannot run against a shared RabbitMQ.

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_broker::state::auth::{Permission, User};
use warren_broker::{Broker, BrokerConfig};
use warren_definitions::password::{self, HashingAlgorithm};

use crate::util::*;

#[tokio::test]
async fn publishers_are_blocked_above_the_memory_limit_and_unblocked_when_it_drains() {
    let broker = Broker::start(BrokerConfig { memory_limit: 256 * 1024, ..Default::default() }).await.expect("broker");
    let url = format!("amqp://guest:guest@{}/%2f", broker.amqp_addr());
    let publisher =
        timeout(Connection::connect(&url, ConnectionProperties::default()), "connect").await.expect("connect");
    let pch = publisher.create_channel().await.expect("channel");
    let q = unique("memory");
    declare(&pch, &q, FieldTable::default()).await;
    // Publish from a task (lapin holds publishes while blocked) until the broker says
    // "blocked"; bounded so a broken limit fails instead of running on.
    let publishing = {
        let pch = pch.clone();
        let q = q.clone();
        tokio::spawn(async move {
            let body = vec![0u8; 16 * 1024];
            for _ in 0..200 {
                if pch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default(),
                    )
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    wait_until("publisher blocked", || async { publisher.status().blocked() }).await;
    assert!(broker.state().memory_alarm(), "the alarm is on while blocked");
    // A separate consumer connection drains the queue; the publisher is then unblocked.
    let consumer =
        timeout(Connection::connect(&url, ConnectionProperties::default()), "connect").await.expect("connect");
    let cch = consumer.create_channel().await.expect("channel");
    publishing.abort();
    // Publishes already in the socket are read once unblocked, so purge until it stays unblocked.
    wait_until("publisher unblocked", || async {
        cch.queue_purge(q.as_str().into(), QueuePurgeOptions::default()).await.expect("purge");
        !publisher.status().blocked() && !broker.state().memory_alarm()
    })
    .await;
    let _ = publisher.close(200, "bye".into()).await;
    let _ = consumer.close(200, "bye".into()).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn permissions_limit_what_a_user_may_configure_write_and_read() {
    let broker = Broker::start(BrokerConfig::default()).await.expect("broker");
    let state = broker.state();
    state.put_user(User {
        name: "narrow".into(),
        password_hash: password::hash("pw", HashingAlgorithm::Sha256),
        hashing_algorithm: HashingAlgorithm::Sha256,
        tags: vec![],
    });
    state
        .put_permission(Permission {
            user: "narrow".into(),
            vhost: "/".into(),
            configure: "^mine\\.".into(),
            write: "^mine\\.".into(),
            read: "^mine\\.".into(),
        })
        .expect("permission");
    let url = format!("amqp://narrow:pw@{}/%2f", broker.amqp_addr());
    let conn = timeout(Connection::connect(&url, ConnectionProperties::default()), "connect").await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    declare(&ch, "mine.q", FieldTable::default()).await;
    let err = ch
        .queue_declare("other.q".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .expect_err("configure refused");
    assert_eq!(code(&err), Some(403), "{err}");
    assert_eq!(text(&err), "ACCESS_REFUSED - access to queue 'other.q' in vhost '/' refused for user 'narrow'");
    let ch = conn.create_channel().await.expect("channel");
    let err = ch
        .basic_consume("amq.gen-none".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect_err("missing queue");
    assert_eq!(code(&err), Some(404), "{err}");
    // A user without any permission on the vhost cannot open it.
    state.put_user(User {
        name: "none".into(),
        password_hash: password::hash("pw", HashingAlgorithm::Sha256),
        hashing_algorithm: HashingAlgorithm::Sha256,
        tags: vec![],
    });
    let url = format!("amqp://none:pw@{}/%2f", broker.amqp_addr());
    let err =
        timeout(Connection::connect(&url, ConnectionProperties::default()), "connect").await.expect_err("refused");
    assert_eq!(code(&err), Some(530), "{err}");
    let _ = conn.close(200, "bye".into()).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn amqplain_login_is_accepted() {
    let broker = Broker::start(BrokerConfig::default()).await.expect("broker");
    let mut raw = crate::raw::Raw::connect(&broker.amqp_addr().to_string()).await;
    raw.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    let start = raw.recv().await.expect("start");
    let amq_protocol::frame::AMQPFrame::Method(
        0,
        amq_protocol::protocol::AMQPClass::Connection(amq_protocol::protocol::connection::AMQPMethod::Start(start)),
    ) = start
    else {
        panic!("expected start")
    };
    assert_eq!(start.mechanisms.to_string(), "PLAIN AMQPLAIN");
    let Some(amq_protocol::types::AMQPValue::FieldTable(caps)) = start.server_properties.inner().get("capabilities")
    else {
        panic!("capabilities announced")
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
    ] {
        assert_eq!(caps.inner().get(cap), Some(&amq_protocol::types::AMQPValue::Boolean(true)), "{cap}");
    }
    let creds = amq_protocol::auth::Credentials::new("guest".into(), "guest".into());
    raw.send(amq_protocol::frame::AMQPFrame::Method(
        0,
        amq_protocol::protocol::AMQPClass::Connection(amq_protocol::protocol::connection::AMQPMethod::StartOk(
            amq_protocol::protocol::connection::StartOk {
                client_properties: Default::default(),
                mechanism: "AMQPLAIN".into(),
                response: creds.sasl_auth_string(amq_protocol::auth::SASLMechanism::AMQPlain),
                locale: "en_US".into(),
            },
        )),
    ))
    .await;
    let tune = raw.recv().await.expect("tune");
    let amq_protocol::frame::AMQPFrame::Method(
        0,
        amq_protocol::protocol::AMQPClass::Connection(amq_protocol::protocol::connection::AMQPMethod::Tune(tune)),
    ) = tune
    else {
        panic!("expected tune after AMQPLAIN login, got {tune:?}")
    };
    assert_eq!((tune.channel_max, tune.frame_max, tune.heartbeat), (2047, 131_072, 60), "RabbitMQ's tune defaults");
    broker.shutdown().await;
}
