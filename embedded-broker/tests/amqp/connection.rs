//! Handshake, credentials, vhosts, connection- and channel-level errors, transactions, recover,
//! large and empty bodies, many channels, consumer priorities, memory alarm.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::util::*;

#[tokio::test]
async fn bad_credentials_are_access_refused_and_unknown_vhost_is_not_allowed() {
    for t in targets().await {
        let err = timeout(
            Connection::connect(&t.url_with("guest", "wrong", "%2f"), ConnectionProperties::default()),
            "connect",
        )
        .await
        .expect_err("bad password");
        assert_eq!(code(&err), Some(403), "[{}] bad password: {err}", t.name);
        let err =
            timeout(Connection::connect(&t.url_with("nobody", "x", "%2f"), ConnectionProperties::default()), "connect")
                .await
                .expect_err("unknown user");
        assert_eq!(code(&err), Some(403), "[{}] unknown user: {err}", t.name);
        let vhost = unique("no-such-vhost");
        let err = timeout(
            Connection::connect(&t.url_with("guest", "guest", &vhost), ConnectionProperties::default()),
            "connect",
        )
        .await
        .expect_err("unknown vhost");
        assert_eq!(code(&err), Some(530), "[{}] unknown vhost: {err}", t.name);
        t.stop().await;
    }
}

#[tokio::test]
async fn a_channel_error_closes_only_that_channel() {
    for t in targets().await {
        let conn = t.connect().await;
        let good = conn.create_channel().await.expect("channel");
        let bad = conn.create_channel().await.expect("channel");
        let err = bad
            .queue_declare(
                unique("missing").as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect_err("404");
        assert_eq!(code(&err), Some(404), "[{}] {err}", t.name);
        let q = unique("survivor");
        declare(&good, &q, FieldTable::default()).await;
        // An unknown delivery tag is a channel error (406); lapin cannot show the code of an
        // error on a method without a reply, so a raw client checks it.
        let mut raw = crate::raw::Raw::open(&t.addr, 0).await;
        raw.send(amq_protocol::frame::AMQPFrame::Method(
            1,
            amq_protocol::protocol::AMQPClass::Basic(amq_protocol::protocol::basic::AMQPMethod::Ack(
                amq_protocol::protocol::basic::Ack { delivery_tag: 999, multiple: false },
            )),
        ))
        .await;
        let close = raw.recv_non_heartbeat().await.expect("channel.close");
        let amq_protocol::frame::AMQPFrame::Method(
            1,
            amq_protocol::protocol::AMQPClass::Channel(amq_protocol::protocol::channel::AMQPMethod::Close(close)),
        ) = close
        else {
            panic!("[{}] expected channel.close, got {close:?}", t.name)
        };
        assert_eq!(close.reply_code, 406, "[{}] unknown delivery tag: {}", t.name, close.reply_text);
        assert_eq!(close.reply_text.as_str(), "PRECONDITION_FAILED - unknown delivery tag 999", "[{}]", t.name);
        let again = conn.create_channel().await.expect("the connection is still open");
        delete(&again, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn immediate_publish_is_a_540_connection_error() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let _ = ch
            .basic_publish(
                "".into(),
                "x".into(),
                BasicPublishOptions { immediate: true, ..Default::default() },
                b"x",
                BasicProperties::default(),
            )
            .await;
        let err = ch.basic_qos(1, BasicQosOptions::default()).await.expect_err("connection closed");
        assert_eq!(code(&err), Some(540), "[{}] {err}", t.name);
        assert!(text(&err).contains("immediate=true"), "[{}] {}", t.name, text(&err));
        assert!(conn.create_channel().await.is_err(), "[{}] the connection is closed", t.name);
        t.stop().await;
    }
}

#[tokio::test]
async fn transactions_commit_and_rollback_publishes_and_acks() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("tx");
        declare(&ch, &q, FieldTable::default()).await;
        let tx = conn.create_channel().await.expect("channel");
        tx.tx_select().await.expect("tx.select");
        tx.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            b"rolled-back",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
        tx.tx_rollback().await.expect("rollback");
        tx.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            b"committed",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
        let probe = ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("passive");
        assert_eq!(probe.message_count(), 0, "[{}] nothing before commit", t.name);
        tx.tx_commit().await.expect("commit");
        let got = tx.basic_get(q.as_str().into(), BasicGetOptions::default()).await.expect("get").expect("message");
        assert_eq!(got.delivery.data, b"committed", "[{}] only the committed publish", t.name);
        // An ack inside a transaction takes effect on commit.
        tx.basic_ack(got.delivery.delivery_tag, BasicAckOptions::default()).await.expect("ack");
        tx.tx_rollback().await.expect("rollback ack");
        tx.basic_recover(BasicRecoverOptions { requeue: true }).await.expect("recover");
        let again =
            tx.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get").expect("requeued");
        assert!(again.delivery.redelivered, "[{}] recovered message is redelivered", t.name);
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn a_one_mebibyte_body_crosses_many_4k_frames_and_empty_bodies_work() {
    for t in targets().await {
        let url = format!("{}?frame_max=4096", t.url);
        let conn =
            timeout(Connection::connect(&url, ConnectionProperties::default()), "connect").await.expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("big");
        declare(&ch, &q, FieldTable::default()).await;
        let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
        for payload in [&body[..], &[][..]] {
            let c = ch
                .basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    payload,
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            timeout(c, "confirm").await.expect("confirmed");
        }
        let mut consumer = consume(&ch, &q).await;
        let d = next(&mut consumer).await;
        assert_eq!(d.data.len(), body.len(), "[{}] size", t.name);
        assert!(d.data == body, "[{}] 1 MiB body intact", t.name);
        let e = next(&mut consumer).await;
        assert!(e.data.is_empty(), "[{}] 0-byte body", t.name);
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn hundreds_of_channels_on_one_connection_each_publish_and_consume() {
    for t in targets().await {
        let conn = t.connect().await;
        let setup = conn.create_channel().await.expect("channel");
        let q = unique("many");
        declare(&setup, &q, FieldTable::default()).await;
        let mut channels = Vec::new();
        for _ in 0..300 {
            channels.push(conn.create_channel().await.expect("channel"));
        }
        for (i, ch) in channels.iter().enumerate() {
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                &(i as u32).to_be_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        }
        let mut consumer = consume(&setup, &q).await;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let d = next(&mut consumer).await;
            seen.insert(u32::from_be_bytes(d.data[..4].try_into().expect("4 bytes")));
            d.ack(BasicAckOptions::default()).await.expect("ack");
        }
        assert_eq!(seen.len(), 300, "[{}] one message per channel", t.name);
        delete(&setup, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn higher_priority_consumers_get_messages_first() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("consumer-prio");
        declare(&ch, &q, FieldTable::default()).await;
        let low_ch = conn.create_channel().await.expect("channel");
        let high_ch = conn.create_channel().await.expect("channel");
        let mut high_args = FieldTable::default();
        high_args.insert("x-priority".into(), AMQPValue::LongInt(10));
        let mut low = low_ch
            .basic_consume(q.as_str().into(), "low".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .expect("consume");
        high_ch.basic_qos(1, BasicQosOptions::default()).await.expect("qos");
        let mut high = high_ch
            .basic_consume(q.as_str().into(), "high".into(), BasicConsumeOptions::default(), high_args)
            .await
            .expect("consume");
        for i in 0..3u8 {
            let c = ch
                .basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    &[i],
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            timeout(c, "confirm").await.expect("confirmed");
        }
        // The high-priority consumer (prefetch 1) takes the first; the rest overflow to the low one.
        let h = next(&mut high).await;
        assert_eq!(h.data, [0], "[{}] high priority first", t.name);
        let l1 = next(&mut low).await;
        let l2 = next(&mut low).await;
        assert_eq!((l1.data[0], l2.data[0]), (1, 2), "[{}] the rest to the low-priority consumer", t.name);
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn a_consumer_tag_cannot_be_reused_on_a_channel() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("tag");
        declare(&ch, &q, FieldTable::default()).await;
        ch.basic_consume(q.as_str().into(), "same".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .expect("consume");
        let err = ch
            .basic_consume(q.as_str().into(), "same".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .expect_err("reuse");
        assert_eq!(code(&err), Some(530), "[{}] {err}", t.name);
        let cleanup = t.connect().await;
        let c = cleanup.create_channel().await.expect("channel");
        delete(&c, &q).await;
        let _ = cleanup.close(200, "bye".into()).await;
        drop(conn);
        t.stop().await;
    }
}

/// Clients branch on connection.start's `product` and `version`: kombu, and so celery, sets
/// `global` on basic.qos only for RabbitMQ 3.3 to 3.x. Both brokers announce RabbitMQ with a
/// dotted numeric version; the embedded one names the release whose behaviour it follows.
#[tokio::test]
async fn connection_start_announces_rabbitmq_and_a_numeric_version() {
    use amq_protocol::frame::AMQPFrame;
    use amq_protocol::protocol::{AMQPClass, connection};
    for t in targets().await {
        let mut raw = crate::raw::Raw::connect(&t.addr).await;
        raw.send_bytes(b"AMQP\x00\x00\x09\x01").await;
        let Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start)))) = raw.recv().await
        else {
            panic!("[{}] no connection.start", t.name);
        };
        let props = start.server_properties.inner();
        let text = |key: &str| match props.get(key) {
            Some(AMQPValue::LongString(s)) => s.to_string(),
            other => panic!("[{}] server property {key}: {other:?}", t.name),
        };
        assert_eq!(text("product"), "RabbitMQ", "[{}] product", t.name);
        let version = text("version");
        let parts: Vec<&str> = version.split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "[{}] version {version} is major.minor.patch",
            t.name
        );
        if t.name == "embedded" {
            assert_eq!(version, "3.10.8", "the RabbitMQ release the embedded broker follows");
        }
        t.stop().await;
    }
}
