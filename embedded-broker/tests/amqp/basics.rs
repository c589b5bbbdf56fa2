//! Publish, consume, get, ack/nack/reject, FIFO, round-robin, properties.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties as RawProperties, basic, confirm};
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};

use crate::raw::{Raw, encode};
use crate::util::*;

#[tokio::test]
async fn publish_consume_ack_round_trip_keeps_body_and_properties() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("roundtrip");
        declare(&ch, &q, FieldTable::default()).await;
        let mut headers = FieldTable::default();
        headers.insert("str".into(), AMQPValue::LongString("v".into()));
        headers.insert("int".into(), AMQPValue::LongLongInt(-7));
        headers.insert("bool".into(), AMQPValue::Boolean(true));
        let mut nested = FieldTable::default();
        nested.insert("inner".into(), AMQPValue::LongString("x".into()));
        headers.insert("table".into(), AMQPValue::FieldTable(nested));
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_headers(headers.clone())
            .with_delivery_mode(2)
            .with_priority(3)
            .with_correlation_id("corr".into())
            .with_reply_to("reply".into())
            .with_message_id("mid".into())
            .with_timestamp(1_700_000_000)
            .with_type("kind".into())
            .with_app_id("app".into());
        ch.basic_publish("".into(), q.as_str().into(), BasicPublishOptions::default(), b"hello", props.clone())
            .await
            .expect("publish");
        let mut consumer = consume(&ch, &q).await;
        let d = next(&mut consumer).await;
        assert_eq!(d.data, b"hello", "[{}] body", t.name);
        assert_eq!(d.properties, props, "[{}] properties round-trip", t.name);
        assert_eq!(d.routing_key.as_str(), q, "[{}] routing key", t.name);
        assert_eq!(d.exchange.as_str(), "", "[{}] exchange", t.name);
        assert!(!d.redelivered, "[{}] first delivery is not redelivered", t.name);
        d.ack(BasicAckOptions::default()).await.expect("ack");
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn get_reports_remaining_count_and_get_empty() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("get");
        declare(&ch, &q, FieldTable::default()).await;
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
        // Wait until all three are in the queue (publishes are asynchronous).
        wait_for_ready(&ch, &q, 3, "3 messages queued").await;
        let first =
            ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get").expect("a message");
        assert_eq!(first.delivery.data, [0], "[{}] FIFO", t.name);
        assert_eq!(first.message_count, 2, "[{}] remaining count", t.name);
        let second =
            ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: false }).await.expect("get").expect("a message");
        assert_eq!(second.delivery.data, [1], "[{}] FIFO", t.name);
        second.delivery.ack(BasicAckOptions::default()).await.expect("ack");
        let third =
            ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get").expect("a message");
        assert_eq!(third.message_count, 0, "[{}] none left", t.name);
        assert!(
            ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get").is_none(),
            "[{}] get-empty",
            t.name
        );
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn nack_with_requeue_redelivers_first_and_flagged_and_reject_drops() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("nack");
        declare(&ch, &q, FieldTable::default()).await;
        for body in [b"a", b"b", b"c"] {
            ch.basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        }
        let mut consumer = consume(&ch, &q).await;
        let a = next(&mut consumer).await;
        let b = next(&mut consumer).await;
        let c = next(&mut consumer).await;
        assert_eq!(
            (a.data.as_slice(), b.data.as_slice(), c.data.as_slice()),
            (&b"a"[..], &b"b"[..], &b"c"[..]),
            "[{}] FIFO",
            t.name
        );
        // Nack a and b together (multiple) with requeue: both come back, in order, redelivered.
        b.nack(BasicNackOptions { multiple: true, requeue: true }).await.expect("nack");
        let a2 = next(&mut consumer).await;
        let b2 = next(&mut consumer).await;
        assert_eq!(a2.data, b"a", "[{}] requeued in original order", t.name);
        assert_eq!(b2.data, b"b", "[{}] requeued in original order", t.name);
        assert!(a2.redelivered && b2.redelivered, "[{}] redelivered flag", t.name);
        c.reject(BasicRejectOptions { requeue: false }).await.expect("reject");
        a2.ack(BasicAckOptions::default()).await.expect("ack");
        b2.ack(BasicAckOptions::default()).await.expect("ack");
        wait_for_ready(&ch, &q, 0, "queue empty").await;
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn unacked_messages_are_requeued_in_order_when_the_channel_closes() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("requeue-close");
        declare(&ch, &q, FieldTable::default()).await;
        for i in 0..5u8 {
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
        let ch2 = conn.create_channel().await.expect("channel");
        let mut consumer = consume(&ch2, &q).await;
        for _ in 0..5 {
            next(&mut consumer).await;
        }
        ch2.close(200, "bye".into()).await.expect("close channel");
        let mut consumer = consume(&ch, &q).await;
        for i in 0..5u8 {
            let d = next(&mut consumer).await;
            assert_eq!(d.data, [i], "[{}] order after requeue", t.name);
            assert!(d.redelivered, "[{}] redelivered after channel close", t.name);
            d.ack(BasicAckOptions::default()).await.expect("ack");
        }
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn consumers_on_one_queue_get_messages_round_robin() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("rr");
        declare(&ch, &q, FieldTable::default()).await;
        let ch1 = conn.create_channel().await.expect("channel");
        let ch2 = conn.create_channel().await.expect("channel");
        let mut c1 = consume(&ch1, &q).await;
        let mut c2 = consume(&ch2, &q).await;
        for i in 0..4u8 {
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
        let mut got1 = Vec::new();
        let mut got2 = Vec::new();
        for _ in 0..2 {
            got1.push(next(&mut c1).await.data[0]);
            got2.push(next(&mut c2).await.data[0]);
        }
        assert_eq!(got1, [0, 2], "[{}] first consumer gets every other message", t.name);
        assert_eq!(got2, [1, 3], "[{}] second consumer gets the others", t.name);
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries_per_consumer() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("prefetch");
        declare(&ch, &q, FieldTable::default()).await;
        for i in 0..5u8 {
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
        let cch = conn.create_channel().await.expect("channel");
        cch.basic_qos(2, BasicQosOptions::default()).await.expect("qos");
        let mut consumer = consume(&cch, &q).await;
        let d0 = next(&mut consumer).await;
        let _d1 = next(&mut consumer).await;
        // With two unacked, the broker holds the rest: the queue reports 3 ready.
        wait_for_ready(&ch, &q, 3, "3 ready with prefetch 2").await;
        d0.ack(BasicAckOptions::default()).await.expect("ack");
        let d2 = next(&mut consumer).await;
        assert_eq!(d2.data, [2], "[{}] one more after one ack", t.name);
        wait_for_ready(&ch, &q, 2, "2 ready").await;
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn publisher_confirms_ack_and_mandatory_unroutable_is_returned_before_its_ack() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
        let q = unique("confirm");
        declare(&ch, &q, FieldTable::default()).await;
        let mut pending = Vec::new();
        for i in 0..100u8 {
            pending.push(
                ch.basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    &[i],
                    BasicProperties::default(),
                )
                .await
                .expect("publish"),
            );
        }
        for p in pending {
            let c = timeout(p, "confirm").await.expect("confirmation");
            assert!(c.is_ack(), "[{}] routed publish is acked", t.name);
        }
        let unroutable = unique("nowhere");
        let confirm = ch
            .basic_publish(
                "".into(),
                unroutable.as_str().into(),
                BasicPublishOptions { mandatory: true, ..Default::default() },
                b"lost",
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        let c = timeout(confirm, "confirm").await.expect("confirmation");
        assert!(c.is_ack(), "[{}] unroutable mandatory publish is still acked", t.name);
        let returned = c.take_message().expect("the message was returned before its ack");
        assert_eq!(returned.reply_code, 312, "[{}] NO_ROUTE", t.name);
        assert_eq!(returned.reply_text.as_str(), "NO_ROUTE", "[{}] reply text", t.name);
        assert_eq!(returned.delivery.data, b"lost", "[{}] returned body", t.name);
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

/// What a confirm frame says: (ack or nack, delivery tag, multiple).
type ConfirmFrame = (bool, u64, bool);

/// Publishes one message to each of `queues` (through the default exchange) on channel 1 of
/// `raw`, in confirm mode, all in one write, and reads confirms until each publish (tags from
/// `first_tag` on) is confirmed. Returns the frames as they came and, per publish, whether it was
/// acked; a publish confirmed twice fails the test.
async fn confirm_frames(raw: &mut Raw, queues: &[&str], first_tag: u64) -> (Vec<ConfirmFrame>, Vec<bool>) {
    let mut bytes = Vec::new();
    for q in queues {
        let publish =
            basic::Publish { exchange: "".into(), routing_key: (*q).into(), mandatory: false, immediate: false };
        bytes.extend(encode(&AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(publish)))));
        let header = AMQPContentHeader { class_id: 60, body_size: 1, properties: RawProperties::default() };
        bytes.extend(encode(&AMQPFrame::Header(1, header)));
        bytes.extend(encode(&AMQPFrame::Body(1, b"x".to_vec())));
    }
    raw.send_bytes(&bytes).await;
    let tags = first_tag..first_tag + queues.len() as u64;
    let mut outcomes: Vec<Option<bool>> = vec![None; queues.len()];
    let mut frames = Vec::new();
    while outcomes.iter().any(Option::is_none) {
        let frame @ (ack, tag, multiple) = match raw.recv_non_heartbeat().await {
            Some(AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(a)))) => {
                (true, a.delivery_tag, a.multiple)
            }
            Some(AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Nack(n)))) => {
                (false, n.delivery_tag, n.multiple)
            }
            other => panic!("expected basic.ack or basic.nack, got {other:?}"),
        };
        frames.push(frame);
        assert!(tags.contains(&tag), "{frame:?} confirms a tag that was not published in {tags:?}");
        let covered = if multiple { first_tag..=tag } else { tag..=tag };
        for t in covered {
            let outcome = &mut outcomes[(t - first_tag) as usize];
            if outcome.is_none() {
                *outcome = Some(ack);
            } else {
                assert!(multiple, "{frame:?} confirms tag {t} a second time");
            }
        }
    }
    (frames, outcomes.into_iter().flatten().collect())
}

#[tokio::test]
async fn a_nack_amid_coalesced_acks_splits_them_around_it() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let (open, full) = (unique("confirm-open"), unique("confirm-full"));
        declare(&ch, &open, FieldTable::default()).await;
        let mut reject = FieldTable::default();
        reject.insert("x-max-length".into(), AMQPValue::LongInt(0));
        reject.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
        declare(&ch, &full, reject).await;
        let mut raw = Raw::open(&t.addr, 0).await;
        raw.send(AMQPFrame::Method(
            1,
            AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false })),
        ))
        .await;
        let ok = raw.recv_non_heartbeat().await;
        assert!(
            matches!(ok, Some(AMQPFrame::Method(1, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))))),
            "{ok:?}"
        );
        let (o, f) = (open.as_str(), full.as_str());
        // Each batch is one write, read by the embedded broker in one go: its acks are coalesced
        // into one multiple ack per batch, split around each nack, with the tags it covers.
        let batches: [(&[&str], &[ConfirmFrame]); 3] = [
            (&[o, o, f, o, o], &[(true, 2, true), (false, 3, false), (true, 5, true)]),
            (&[f, f, o], &[(false, 6, false), (false, 7, false), (true, 8, true)]),
            (&[o, f], &[(true, 9, true), (false, 10, false)]),
        ];
        let mut first_tag = 1;
        for (queues, coalesced) in batches {
            let (frames, acked) = confirm_frames(&mut raw, queues, first_tag).await;
            let expected: Vec<bool> = queues.iter().map(|q| *q == o).collect();
            assert_eq!(acked, expected, "[{}] acked exactly the publishes to the open queue: {frames:?}", t.name);
            if t.broker.is_some() {
                assert_eq!(frames, coalesced, "[{}] the confirm frames of {queues:?}", t.name);
            }
            first_tag += queues.len() as u64;
        }
        wait_for_ready(&ch, &open, 6, "the acked messages").await;
        assert_eq!(ready(&ch, &full).await, Some(0), "[{}] the nacked messages were not enqueued", t.name);
        for q in [&open, &full] {
            delete(&ch, q).await;
        }
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}
