//! Consumer options and channel-wide settings: exclusive consumers, no-ack, global prefetch,
//! flow, user_id validation, channel limits, heartbeats.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;

use crate::raw::{Ending, Raw};
use crate::util::*;

#[tokio::test]
async fn an_exclusive_consumer_refuses_others_and_no_ack_consumers_need_no_acks() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("excl-consumer");
        declare(&ch, &q, FieldTable::default()).await;
        let ech = conn.create_channel().await.expect("channel");
        let mut exclusive = ech
            .basic_consume(
                q.as_str().into(),
                "".into(),
                BasicConsumeOptions { exclusive: true, no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("exclusive consume");
        let och = conn.create_channel().await.expect("channel");
        let err = och
            .basic_consume(q.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .expect_err("exclusive");
        assert_eq!(code(&err), Some(403), "[{}] {err}", t.name);
        ch.basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions::default(),
            b"no-ack",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
        let d = next(&mut exclusive).await;
        assert_eq!(d.data, b"no-ack", "[{}]", t.name);
        // Nothing is unacked with no-ack: the queue is empty.
        wait_for_ready(&ch, &q, 0, "queue empty with no-ack").await;
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn global_prefetch_is_shared_by_all_consumers_of_a_channel() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let (q1, q2) = (unique("global-1"), unique("global-2"));
        for q in [&q1, &q2] {
            declare(&ch, q, FieldTable::default()).await;
            for i in 0..3u8 {
                ch.basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    &[i],
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            }
        }
        let cch = conn.create_channel().await.expect("channel");
        cch.basic_qos(2, BasicQosOptions { global: true }).await.expect("qos global");
        let _c1 = consume(&cch, &q1).await;
        let _c2 = consume(&cch, &q2).await;
        // Two unacked in total across both queues: 6 - 2 = 4 stay ready.
        wait_until("4 ready across both queues", || async {
            let mut total = 0;
            for q in [&q1, &q2] {
                total += ready(&ch, q).await.unwrap_or(99);
            }
            total == 4
        })
        .await;
        for q in [&q1, &q2] {
            delete(&ch, q).await;
        }
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn user_id_must_match_the_login() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("user-id");
        declare(&ch, &q, FieldTable::default()).await;
        let ok = ch
            .basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                b"me",
                BasicProperties::default().with_user_id("guest".into()),
            )
            .await
            .expect("publish");
        assert!(timeout(ok, "confirm").await.expect("confirmed").is_ack(), "[{}] own user_id accepted", t.name);
        let forged = ch
            .basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                b"other",
                BasicProperties::default().with_user_id("mallory".into()),
            )
            .await
            .expect("publish");
        // The channel.close that refuses it fails the pending confirm with its code and text.
        let err = timeout(forged, "the refusal").await.expect_err("a forged user_id is refused");
        assert_eq!(
            (code(&err), text(&err).as_str()),
            (Some(406), "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'"),
            "[{}]",
            t.name
        );
        assert!(conn.status().connected(), "[{}] a channel error, not a connection error", t.name);
        let ch = conn.create_channel().await.expect("the connection survives");
        let got =
            ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get").expect("one message");
        assert_eq!(got.delivery.data, b"me", "[{}] the forged message was not enqueued", t.name);
        assert_eq!(got.message_count, 0, "[{}]", t.name);
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn flow_active_is_acknowledged_and_a_channel_above_channel_max_is_refused() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        assert!(
            ch.channel_flow(ChannelFlowOptions { active: true }).await.expect("flow"),
            "[{}] flow-ok active",
            t.name
        );
        let _ = conn.close(200, "bye".into()).await;
        // RabbitMQ 3.10 opens channels above the channel_max it negotiated; the embedded broker
        // enforces the limit it announced (issue 3: per-connection channel limits).
        if t.name == "embedded" {
            let mut raw = Raw::open(&t.addr, 0).await;
            raw.send(AMQPFrame::Method(4000, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})))).await;
            assert_eq!(raw.ending().await, Ending::Close(504), "[{}] channel above channel_max", t.name);
        }
        t.stop().await;
    }
}

#[tokio::test]
async fn the_server_sends_heartbeats_at_the_negotiated_interval() {
    for t in targets().await {
        let mut raw = Raw::open(&t.addr, 1).await;
        let frame = tokio::time::timeout(crate::raw::HEARTBEAT_WAIT, raw.recv())
            .await
            .expect("a frame before the wait ran out");
        assert_eq!(frame, Some(AMQPFrame::Heartbeat), "[{}] heartbeat", t.name);
        t.stop().await;
    }
}

#[tokio::test]
async fn qos_with_a_prefetch_size_is_a_540_connection_error() {
    for t in targets().await {
        let mut raw = Raw::open(&t.addr, 0).await;
        // amq-protocol always writes prefetch-size 0: patch it into the encoded frame (type 1,
        // channel 2, size 4, class 2, method 2, then the 4-byte prefetch-size).
        let mut frame = crate::raw::encode(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 10, global: false })),
        ));
        frame[11..15].copy_from_slice(&4096u32.to_be_bytes());
        raw.send_bytes(&frame).await;
        let close = loop {
            match raw.recv_non_heartbeat().await {
                Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => break c,
                Some(AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::QosOk(_)))) => {
                    panic!("[{}] qos-ok for a prefetch size", t.name)
                }
                Some(_) => {}
                None => panic!("[{}] the socket closed without connection.close", t.name),
            }
        };
        assert_eq!(
            (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
            (540, "NOT_IMPLEMENTED - prefetch_size!=0 (4096)", 60, 10),
            "[{}]",
            t.name
        );
        t.stop().await;
    }
}
