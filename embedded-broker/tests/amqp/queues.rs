//! Queue declaration rules and arguments: exclusive, auto-delete, purge, delete conditions, TTL,
//! expiry, length limits, dead-lettering, priorities, single active consumer, queue types.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};

use crate::util::*;

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn publish(ch: &Channel, q: &str, body: &[u8], props: BasicProperties) -> lapin::Confirmation {
    let c = ch.basic_publish("".into(), q.into(), BasicPublishOptions::default(), body, props).await.expect("publish");
    timeout(c, "confirm").await.expect("confirmation")
}

#[tokio::test]
async fn server_named_exclusive_queue_is_locked_to_its_connection_and_deleted_with_it() {
    for t in targets().await {
        let owner = t.connect().await;
        let ch = owner.create_channel().await.expect("channel");
        let q = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("declare");
        assert!(q.name().as_str().starts_with("amq.gen-"), "[{}] server-named: {}", t.name, q.name());
        let other = t.connect().await;
        let och = other.create_channel().await.expect("channel");
        let err = och
            .basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .expect_err("locked");
        assert_eq!(code(&err), Some(405), "[{}] RESOURCE_LOCKED: {err}", t.name);
        owner.close(200, "bye".into()).await.expect("close");
        let och = other.create_channel().await.expect("channel");
        let name = q.name().as_str().to_owned();
        wait_until("exclusive queue deleted", || async {
            let c = other.create_channel().await.expect("channel");
            ready(&c, &name).await.is_none()
        })
        .await;
        drop(och);
        let _ = other.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn auto_delete_queue_goes_away_after_its_last_consumer_and_purge_and_delete_conditions() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("autodel");
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions { auto_delete: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("declare");
        let cch = conn.create_channel().await.expect("channel");
        let consumer = consume(&cch, &q).await;
        cch.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await.expect("cancel");
        let probe = conn.create_channel().await.expect("channel");
        assert_eq!(ready(&probe, &q).await, None, "[{}] auto-delete queue removed after last consumer", t.name);

        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("purge");
        declare(&ch, &q, FieldTable::default()).await;
        for i in 0..3u8 {
            publish(&ch, &q, &[i], BasicProperties::default()).await;
        }
        let err = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions { if_empty: true, ..Default::default() })
            .await
            .expect_err("not empty");
        assert_eq!(code(&err), Some(406), "[{}] delete if-empty: {err}", t.name);
        let ch = conn.create_channel().await.expect("channel");
        assert_eq!(
            ch.queue_purge(q.as_str().into(), QueuePurgeOptions::default()).await.expect("purge"),
            3,
            "[{}] purge count",
            t.name
        );
        let cch = conn.create_channel().await.expect("channel");
        let _consumer = consume(&cch, &q).await;
        let err = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions { if_unused: true, ..Default::default() })
            .await
            .expect_err("in use");
        assert_eq!(code(&err), Some(406), "[{}] delete if-unused: {err}", t.name);
        let ch = conn.create_channel().await.expect("channel");
        assert_eq!(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await.expect("delete"), 0);
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn inequivalent_queue_redeclare_is_406_and_passive_missing_is_404() {
    for t in targets().await {
        let conn = t.connect().await;
        let ch = conn.create_channel().await.expect("channel");
        let q = unique("ineq");
        declare(&ch, &q, args(&[("x-max-length", AMQPValue::LongInt(10))])).await;
        declare(&ch, &q, args(&[("x-max-length", AMQPValue::LongLongInt(10))])).await;
        let err = ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions::default(),
                args(&[("x-max-length", AMQPValue::LongInt(11))]),
            )
            .await
            .expect_err("differs");
        assert_eq!(code(&err), Some(406), "[{}] {err}", t.name);
        assert!(text(&err).contains("inequivalent arg 'x-max-length'"), "[{}] {}", t.name, text(&err));
        let ch = conn.create_channel().await.expect("channel");
        let err = ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions { durable: true, ..Default::default() },
                args(&[("x-max-length", AMQPValue::LongInt(10))]),
            )
            .await
            .expect_err("durable differs");
        assert_eq!(code(&err), Some(406), "[{}] {err}", t.name);
        let ch = conn.create_channel().await.expect("channel");
        let err = ch
            .queue_declare(
                unique("nope").as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect_err("missing");
        assert_eq!(code(&err), Some(404), "[{}] {err}", t.name);
        let ch = conn.create_channel().await.expect("channel");
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn expired_and_rejected_messages_are_dead_lettered_with_x_death() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let dlq = unique("dlq");
        declare(&ch, &dlq, FieldTable::default()).await;
        let src = unique("ttl-src");
        declare(
            &ch,
            &src,
            args(&[
                ("x-message-ttl", AMQPValue::LongInt(50)),
                ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
                ("x-dead-letter-routing-key", AMQPValue::LongString(dlq.as_str().into())),
            ]),
        )
        .await;
        publish(&ch, &src, b"expires", BasicProperties::default()).await;
        let mut consumer = consume(&ch, &dlq).await;
        let d = next(&mut consumer).await;
        assert_eq!(d.data, b"expires", "[{}] dead-lettered body", t.name);
        let headers = d.properties.headers().clone().expect("headers");
        let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
            panic!("[{}] x-death missing: {headers:?}", t.name)
        };
        let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
            panic!("[{}] x-death entry", t.name)
        };
        let get = |k: &str| death.inner().get(k).cloned();
        assert_eq!(get("reason"), Some(AMQPValue::LongString("expired".into())), "[{}] reason", t.name);
        assert_eq!(get("queue"), Some(AMQPValue::LongString(src.as_str().into())), "[{}] queue", t.name);
        assert_eq!(get("count"), Some(AMQPValue::LongLongInt(1)), "[{}] count", t.name);
        assert_eq!(
            headers.inner().get("x-first-death-reason"),
            Some(&AMQPValue::LongString("expired".into())),
            "[{}] x-first-death-reason",
            t.name
        );
        d.ack(BasicAckOptions::default()).await.expect("ack");

        // Per-message expiration and rejection without requeue.
        let rej = unique("rej-src");
        declare(
            &ch,
            &rej,
            args(&[
                ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
                ("x-dead-letter-routing-key", AMQPValue::LongString(dlq.as_str().into())),
            ]),
        )
        .await;
        publish(&ch, &rej, b"short-lived", BasicProperties::default().with_expiration("30".into())).await;
        let d = next(&mut consumer).await;
        assert_eq!(d.data, b"short-lived", "[{}] per-message expiration", t.name);
        assert!(d.properties.expiration().is_none(), "[{}] expiration removed when dead-lettered", t.name);
        d.ack(BasicAckOptions::default()).await.expect("ack");
        publish(&ch, &rej, b"rejected", BasicProperties::default()).await;
        let got = ch.basic_get(rej.as_str().into(), BasicGetOptions::default()).await.expect("get").expect("message");
        got.delivery.reject(BasicRejectOptions { requeue: false }).await.expect("reject");
        let d = next(&mut consumer).await;
        assert_eq!(d.data, b"rejected", "[{}] rejected message dead-lettered", t.name);
        let headers = d.properties.headers().clone().expect("headers");
        let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else { panic!("x-death") };
        let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else { panic!("entry") };
        assert_eq!(death.inner().get("reason"), Some(&AMQPValue::LongString("rejected".into())), "[{}]", t.name);
        d.ack(BasicAckOptions::default()).await.expect("ack");
        for q in [&dlq, &src, &rej] {
            delete(&ch, q).await;
        }
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn x_expires_deletes_an_unused_queue() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("expires");
        declare(&ch, &q, args(&[("x-expires", AMQPValue::LongInt(100))])).await;
        // Declaring (even passively) counts as use; a mandatory publish does not, and comes back
        // once the queue is gone.
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        wait_until("queue expired", || async {
            let c = ch
                .basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions { mandatory: true, ..Default::default() },
                    b"probe",
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            timeout(c, "confirm").await.expect("confirmation").take_message().is_some()
        })
        .await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn max_length_drop_head_keeps_newest_and_reject_publish_nacks() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("maxlen");
        declare(&ch, &q, args(&[("x-max-length", AMQPValue::LongInt(2))])).await;
        for b in [b"1", b"2", b"3"] {
            assert!(publish(&ch, &q, b, BasicProperties::default()).await.is_ack());
        }
        let mut got = Vec::new();
        while let Some(m) = ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get") {
            got.push(m.delivery.data);
        }
        assert_eq!(got, [b"2".to_vec(), b"3".to_vec()], "[{}] drop-head keeps the newest", t.name);

        let r = unique("reject-publish");
        declare(
            &ch,
            &r,
            args(&[
                ("x-max-length", AMQPValue::LongInt(1)),
                ("x-overflow", AMQPValue::LongString("reject-publish".into())),
            ]),
        )
        .await;
        assert!(publish(&ch, &r, b"a", BasicProperties::default()).await.is_ack(), "[{}] first fits", t.name);
        assert!(publish(&ch, &r, b"b", BasicProperties::default()).await.is_nack(), "[{}] second is nacked", t.name);
        assert_eq!(ready(&ch, &r).await, Some(1), "[{}] still one", t.name);
        let bytes = unique("maxbytes");
        declare(&ch, &bytes, args(&[("x-max-length-bytes", AMQPValue::LongInt(5))])).await;
        for b in [&b"abc"[..], b"de", b"fgh"] {
            publish(&ch, &bytes, b, BasicProperties::default()).await;
        }
        assert_eq!(ready(&ch, &bytes).await, Some(2), "[{}] max-length-bytes drops the head", t.name);
        for name in [&q, &r, &bytes] {
            delete(&ch, name).await;
        }
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn priority_queue_delivers_highest_priority_first() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("prio");
        declare(&ch, &q, args(&[("x-max-priority", AMQPValue::ShortShortUInt(10))])).await;
        for (body, prio) in [(b"low", 1u8), (b"top", 9), (b"mid", 5), (b"max", 200)] {
            publish(&ch, &q, body, BasicProperties::default().with_priority(prio)).await;
        }
        let mut got = Vec::new();
        while let Some(m) = ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get") {
            got.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
        }
        // Priorities above the maximum count as the maximum; equal priorities stay FIFO.
        assert_eq!(got, ["max", "top", "mid", "low"], "[{}] priority order", t.name);
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn single_active_consumer_gets_everything_until_it_cancels() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("sac");
        declare(&ch, &q, args(&[("x-single-active-consumer", AMQPValue::Boolean(true))])).await;
        let ch1 = conn.create_channel().await.expect("channel");
        let ch2 = conn.create_channel().await.expect("channel");
        let mut c1 = consume(&ch1, &q).await;
        let mut c2 = consume(&ch2, &q).await;
        for i in 0..3u8 {
            publish(&ch, &q, &[i], BasicProperties::default()).await;
        }
        for i in 0..3u8 {
            let d = next(&mut c1).await;
            assert_eq!(d.data, [i], "[{}] the active consumer gets all", t.name);
            d.ack(BasicAckOptions::default()).await.expect("ack");
        }
        ch1.basic_cancel(c1.tag(), BasicCancelOptions::default()).await.expect("cancel");
        publish(&ch, &q, b"next", BasicProperties::default()).await;
        let d = next(&mut c2).await;
        assert_eq!(d.data, b"next", "[{}] the second takes over", t.name);
        d.ack(BasicAckOptions::default()).await.expect("ack");
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn quorum_queue_is_accepted_with_a_delivery_limit_and_must_be_durable() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("quorum");
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions { durable: true, ..Default::default() },
            args(&[
                ("x-queue-type", AMQPValue::LongString("quorum".into())),
                ("x-delivery-limit", AMQPValue::LongInt(3)),
            ]),
        )
        .await
        .expect("quorum declare");
        let err = ch
            .queue_declare(
                unique("quorum-transient").as_str().into(),
                QueueDeclareOptions::default(),
                args(&[("x-queue-type", AMQPValue::LongString("quorum".into()))]),
            )
            .await
            .expect_err("non-durable quorum");
        assert_eq!(code(&err), Some(406), "[{}] {err}", t.name);
        let ch = conn.create_channel().await.expect("channel");
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn stream_queues_are_refused_by_the_embedded_broker_with_a_clear_error() {
    // RabbitMQ 3.9+ has streams; the embedded broker refuses them, so this is embedded-only.
    let t = targets().await.into_iter().next().expect("embedded");
    let (conn, ch) = t.channel().await;
    let err = ch
        .queue_declare(
            unique("stream").as_str().into(),
            QueueDeclareOptions { durable: true, ..Default::default() },
            args(&[("x-queue-type", AMQPValue::LongString("stream".into()))]),
        )
        .await
        .expect_err("stream refused");
    assert_eq!(code(&err), Some(406), "{err}");
    assert!(text(&err).contains("stream queues are not supported"), "{}", text(&err));
    let _ = conn.close(200, "bye".into()).await;
    t.stop().await;
}

#[tokio::test]
async fn consumers_are_told_when_their_queue_is_deleted() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("cancel-notify");
        declare(&ch, &q, FieldTable::default()).await;
        let cch = conn.create_channel().await.expect("channel");
        let mut consumer = consume(&cch, &q).await;
        ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await.expect("delete");
        use futures::StreamExt as _;
        let end = timeout(consumer.next(), "consumer end").await;
        assert!(end.is_none(), "[{}] consumer stream ends on basic.cancel from the broker", t.name);
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn quorum_delivery_limit_drops_a_message_requeued_too_often() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("delivery-limit");
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions { durable: true, ..Default::default() },
            args(&[
                ("x-queue-type", AMQPValue::LongString("quorum".into())),
                ("x-delivery-limit", AMQPValue::LongInt(1)),
            ]),
        )
        .await
        .expect("quorum declare");
        publish(&ch, &q, b"poison", BasicProperties::default()).await;
        for round in 0..2 {
            let got = timeout(
                async {
                    loop {
                        if let Some(m) = ch.basic_get(q.as_str().into(), BasicGetOptions::default()).await.expect("get")
                        {
                            return m;
                        }
                        tokio::task::yield_now().await;
                    }
                },
                "the message back",
            )
            .await;
            assert_eq!(got.delivery.data, b"poison", "[{}] round {round}", t.name);
            got.delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.expect("nack");
        }
        wait_until("message dropped after the delivery limit", || async { ready(&ch, &q).await == Some(0) }).await;
        assert!(
            ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.expect("get").is_none(),
            "[{}] dropped after two deliveries with x-delivery-limit 1",
            t.name
        );
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

/// Declares `q` with `arguments` on a fresh channel of `conn`: refused with 406 and
/// `PRECONDITION_FAILED - {expected}`, closing that channel and not the connection.
async fn declare_refused(target: &str, conn: &Connection, q: &str, arguments: FieldTable, expected: &str) {
    let ch = conn.create_channel().await.expect("channel");
    let err = ch.queue_declare(q.into(), QueueDeclareOptions::default(), arguments).await.expect_err("refused");
    assert_eq!(code(&err), Some(406), "[{target}] {err}");
    assert_eq!(text(&err), format!("PRECONDITION_FAILED - {expected}"), "[{target}]");
    assert!(!ch.status().connected() && conn.status().connected(), "[{target}] a channel error");
}

#[tokio::test]
async fn x_queue_mode_is_default_or_lazy_and_a_different_mode_is_inequivalent() {
    for t in targets().await {
        let conn = t.connect().await;
        let refused = [
            (AMQPValue::LongString("bogus".into()), "\"unsupported queue mode 'bogus'\""),
            (AMQPValue::LongString("LAZY".into()), "\"unsupported queue mode 'LAZY'\""),
            (AMQPValue::LongInt(1), "{unacceptable_type,signedint}"),
        ];
        for (mode, detail) in refused {
            let q = unique("mode-bad");
            let expected = format!("invalid arg 'x-queue-mode' for queue '{q}' in vhost '/': {detail}");
            declare_refused(t.name, &conn, &q, args(&[("x-queue-mode", mode)]), &expected).await;
        }
        let ch = conn.create_channel().await.expect("channel");
        let q = unique("mode");
        let lazy = || args(&[("x-queue-mode", AMQPValue::LongString("lazy".into()))]);
        declare(&ch, &q, lazy()).await;
        declare(&ch, &q, lazy()).await;
        let default = unique("mode-default");
        declare(&ch, &default, args(&[("x-queue-mode", AMQPValue::LongString("default".into()))])).await;
        delete(&ch, &default).await;
        let redeclares = [
            (
                args(&[("x-queue-mode", AMQPValue::LongString("default".into()))]),
                "received 'default' but current is 'lazy'",
            ),
            (FieldTable::default(), "received none but current is the value 'lazy' of type 'longstr'"),
            (
                args(&[("x-queue-mode", AMQPValue::LongString("bogus".into()))]),
                "received 'bogus' but current is 'lazy'",
            ),
        ];
        for (arguments, detail) in redeclares {
            let expected = format!("inequivalent arg 'x-queue-mode' for queue '{q}' in vhost '/': {detail}");
            declare_refused(t.name, &conn, &q, arguments, &expected).await;
        }
        let ch = conn.create_channel().await.expect("channel");
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

/// Queue arguments RabbitMQ 3.10 refuses at declare time, one case per check and refusal, with
/// the reason it gives (`{q}` stands for the queue's name). Integers are 64-bit, as the management
/// API's JSON decoder makes them, so the type names match on both paths.
const REFUSED_ARGUMENTS: &[(&str, &str)] = &[
    (r#"{"x-expires":0}"#, "invalid arg 'x-expires' for queue '{q}' in vhost '/': {value_zero,0}"),
    (r#"{"x-expires":-5}"#, "invalid arg 'x-expires' for queue '{q}' in vhost '/': {value_negative,-5}"),
    (
        r#"{"x-expires":315360000001}"#,
        "invalid arg 'x-expires' for queue '{q}' in vhost '/': {value_too_large,315360000001}",
    ),
    (
        r#"{"x-expires":"soon"}"#,
        "invalid arg 'x-expires' for queue '{q}' in vhost '/': \"expected integer, got longstr\"",
    ),
    (r#"{"x-message-ttl":-1}"#, "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': {value_negative,-1}"),
    (
        r#"{"x-message-ttl":315360000001}"#,
        "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': {value_too_large,315360000001}",
    ),
    (
        r#"{"x-message-ttl":1.5}"#,
        "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': \"expected integer, got double\"",
    ),
    // The channel checks the dead-letter exchange's type before the queue's own checks, in its words.
    (
        r#"{"x-dead-letter-exchange":5}"#,
        "invalid type 'long' for arg 'x-dead-letter-exchange' in queue '{q}' in vhost '/'",
    ),
    (
        r#"{"x-dead-letter-routing-key":"k"}"#,
        "invalid arg 'x-dead-letter-routing-key' for queue '{q}' in vhost '/': routing_key_but_no_dlx_defined",
    ),
    (
        r#"{"x-dead-letter-exchange":"dlx","x-dead-letter-routing-key":5}"#,
        "invalid arg 'x-dead-letter-routing-key' for queue '{q}' in vhost '/': {unacceptable_type,long}",
    ),
    (r#"{"x-max-length":-1}"#, "invalid arg 'x-max-length' for queue '{q}' in vhost '/': {value_negative,-1}"),
    (
        r#"{"x-max-length":true}"#,
        "invalid arg 'x-max-length' for queue '{q}' in vhost '/': \"expected integer, got bool\"",
    ),
    (
        r#"{"x-max-length-bytes":-1}"#,
        "invalid arg 'x-max-length-bytes' for queue '{q}' in vhost '/': {value_negative,-1}",
    ),
    (
        r#"{"x-max-priority":1000}"#,
        "invalid arg 'x-max-priority' for queue '{q}' in vhost '/': {max_value_exceeded,1000}",
    ),
    (r#"{"x-max-priority":-1}"#, "invalid arg 'x-max-priority' for queue '{q}' in vhost '/': {value_negative,-1}"),
    (r#"{"x-overflow":"explode"}"#, "invalid arg 'x-overflow' for queue '{q}' in vhost '/': invalid_overflow"),
    (r#"{"x-overflow":5}"#, "invalid arg 'x-overflow' for queue '{q}' in vhost '/': {unacceptable_type,long}"),
    (
        r#"{"x-queue-mode":"bogus"}"#,
        "invalid arg 'x-queue-mode' for queue '{q}' in vhost '/': \"unsupported queue mode 'bogus'\"",
    ),
    (
        r#"{"x-queue-version":3}"#,
        "invalid arg 'x-queue-version' for queue '{q}' in vhost '/': \"unsupported queue version '3'\"",
    ),
    (
        r#"{"x-single-active-consumer":"yes"}"#,
        "invalid arg 'x-single-active-consumer' for queue '{q}' in vhost '/': {unacceptable_type,longstr}",
    ),
    (
        r#"{"x-queue-type":"foo"}"#,
        "invalid arg 'x-queue-type' for queue '{q}' in vhost '/': \"unsupported queue type 'foo'\"",
    ),
    (r#"{"x-queue-type":7}"#, "invalid arg 'x-queue-type' for queue '{q}' in vhost '/': {unacceptable_type,long}"),
    // Arguments of other queue types.
    (
        r#"{"x-delivery-limit":3}"#,
        "invalid arg 'x-delivery-limit' for queue '{q}' in vhost '/' of queue type rabbit_classic_queue",
    ),
    (
        r#"{"x-max-age":"1D"}"#,
        "invalid arg 'x-max-age' for queue '{q}' in vhost '/' of queue type rabbit_classic_queue",
    ),
    (
        r#"{"x-queue-type":"quorum","x-max-priority":5}"#,
        "invalid arg 'x-max-priority' for queue '{q}' in vhost '/' of queue type rabbit_quorum_queue",
    ),
    // Quorum queues' own arguments.
    (
        r#"{"x-queue-type":"quorum","x-dead-letter-strategy":"bogus"}"#,
        "invalid arg 'x-dead-letter-strategy' for queue '{q}' in vhost '/': invalid_dlx_strategy",
    ),
    (
        r#"{"x-queue-type":"quorum","x-max-in-memory-length":-1}"#,
        "invalid arg 'x-max-in-memory-length' for queue '{q}' in vhost '/': {value_negative,-1}",
    ),
    (
        r#"{"x-queue-type":"quorum","x-quorum-initial-group-size":0}"#,
        "invalid arg 'x-quorum-initial-group-size' for queue '{q}' in vhost '/': {value_zero,0}",
    ),
    (
        r#"{"x-queue-type":"quorum","x-queue-leader-locator":"nowhere"}"#,
        "invalid arg 'x-queue-leader-locator' for queue '{q}' in vhost '/': invalid_queue_locator_arg",
    ),
    // Several refusals: the first in RabbitMQ's order of checks is reported, not the first key.
    (
        r#"{"x-overflow":"explode","x-max-priority":1000,"x-expires":0}"#,
        "invalid arg 'x-expires' for queue '{q}' in vhost '/': {value_zero,0}",
    ),
];

/// Edge values both brokers accept.
const ACCEPTED_ARGUMENTS: &[&str] = &[
    r#"{"x-max-priority":255}"#,
    r#"{"x-message-ttl":0,"x-max-length":0,"x-max-length-bytes":0,"x-expires":315360000000}"#,
    r#"{"x-overflow":"reject-publish-dlx","x-queue-mode":"lazy","x-single-active-consumer":false}"#,
    r#"{"x-dead-letter-exchange":"","x-dead-letter-routing-key":"k"}"#,
    r#"{"x-queue-version":2}"#,
];

fn json_table(arguments: &str) -> FieldTable {
    let json: serde_json::Value = serde_json::from_str(arguments).expect("test arguments are JSON");
    let serde_json::Value::Object(map) = json else { panic!("test arguments are an object") };
    warren_definitions::arguments::table_from_json(&map)
}

#[tokio::test]
async fn queue_arguments_are_refused_with_rabbitmq_reasons_over_amqp_and_the_management_api() {
    for t in targets_with_management().await {
        let conn = t.connect().await;
        let cleanup = conn.create_channel().await.expect("channel");
        for (arguments, reason) in REFUSED_ARGUMENTS {
            let q = unique("bad-args");
            let expected = reason.replace("{q}", &q);
            declare_refused(t.name, &conn, &q, json_table(arguments), &expected).await;
            let path = format!("/api/queues/%2F/{q}");
            let put = management(&t.http, "PUT", &path, Some(&format!(r#"{{"arguments":{arguments}}}"#))).await;
            delete(&cleanup, &q).await;
            let body: serde_json::Value = serde_json::from_str(&put.1).unwrap_or_default();
            assert_eq!(
                (put.0, &body),
                (400, &serde_json::json!({"error": "bad_request", "reason": expected})),
                "[{}] PUT {arguments}",
                t.name
            );
            assert_eq!(
                management(&t.http, "GET", &path, None).await.0,
                404,
                "[{}] {arguments} created nothing",
                t.name
            );
        }
        for arguments in ACCEPTED_ARGUMENTS {
            let q = unique("edge-args");
            declare(&cleanup, &q, json_table(arguments)).await;
            delete(&cleanup, &q).await;
            let path = format!("/api/queues/%2F/{q}");
            let put = management(&t.http, "PUT", &path, Some(&format!(r#"{{"arguments":{arguments}}}"#))).await;
            delete(&cleanup, &q).await;
            assert_eq!(put.0, 201, "[{}] PUT {arguments}: {}", t.name, put.1);
        }
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn a_redeclaration_must_repeat_every_argument_of_its_queue_type() {
    for t in targets().await {
        let conn = t.connect().await;
        let ch = conn.create_channel().await.expect("channel");
        let q = unique("redeclare-version");
        declare(&ch, &q, json_table(r#"{"x-queue-version":2}"#)).await;
        let expected = format!(
            "inequivalent arg 'x-queue-version' for queue '{q}' in vhost '/': received none but current is the value '2' of type 'long'"
        );
        declare_refused(t.name, &conn, &q, FieldTable::default(), &expected).await;
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}
