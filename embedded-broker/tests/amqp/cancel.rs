//! Server-initiated `basic.cancel` (the consumer_cancel_notify capability): which consumers get it
//! when their queue is deleted, from where, and in what order with `queue.delete-ok`. Read at the
//! frame level with the raw client, the same assertions against both brokers.
//!
//! RabbitMQ's deleting channel answers `delete-ok` first and only then handles its queue going
//! down, so its own consumers hear `basic.cancel` after `delete-ok` (kombu, waiting for
//! `delete-ok`, raises `ConsumerCancelled` on a cancel that comes before it). Frames of different
//! channels are not ordered with each other, so no check relies on that.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, channel, connection, queue};
use amq_protocol::types::FieldTable;
use lapin::Connection;
use lapin::options::*;

use crate::raw::Raw;
use crate::util::*;

const NOTIFY: &[&str] = &["consumer_cancel_notify"];

/// The next frame, which must be a method.
async fn next_method(raw: &mut Raw, what: &str) -> (u16, AMQPClass) {
    match raw.recv_non_heartbeat().await {
        Some(AMQPFrame::Method(channel, class)) => (channel, class),
        other => panic!("expected {what}, got {other:?}"),
    }
}

fn queue_method(m: queue::AMQPMethod) -> AMQPClass {
    AMQPClass::Queue(m)
}

fn basic_method(m: basic::AMQPMethod) -> AMQPClass {
    AMQPClass::Basic(m)
}

/// Declares `q` and consumes from it as `c1`, both on channel 1.
async fn consume_raw(raw: &mut Raw, q: &str) {
    raw.send(AMQPFrame::Method(
        1,
        queue_method(queue::AMQPMethod::Declare(queue::Declare {
            queue: q.into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: FieldTable::default(),
        })),
    ))
    .await;
    let (_, ok) = next_method(raw, "queue.declare-ok").await;
    assert!(matches!(ok, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))), "{ok:?}");
    raw.send(AMQPFrame::Method(
        1,
        basic_method(basic::AMQPMethod::Consume(basic::Consume {
            queue: q.into(),
            consumer_tag: "c1".into(),
            no_local: false,
            no_ack: false,
            exclusive: false,
            nowait: false,
            arguments: FieldTable::default(),
        })),
    ))
    .await;
    let (_, ok) = next_method(raw, "basic.consume-ok").await;
    assert!(matches!(ok, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))), "{ok:?}");
}

fn delete_frame(channel: u16, q: &str, nowait: bool) -> AMQPFrame {
    AMQPFrame::Method(
        channel,
        queue_method(queue::AMQPMethod::Delete(queue::Delete {
            queue: q.into(),
            if_unused: false,
            if_empty: false,
            nowait,
        })),
    )
}

fn is_delete_ok(class: &AMQPClass) -> bool {
    matches!(class, AMQPClass::Queue(queue::AMQPMethod::DeleteOk(_)))
}

fn is_cancel_of_c1(class: &AMQPClass) -> bool {
    matches!(class, AMQPClass::Basic(basic::AMQPMethod::Cancel(c)) if c.consumer_tag.as_str() == "c1")
}

/// Sends `basic.qos` on channel 1 and expects `qos-ok` as the next frame: nothing else was pending
/// there, and the channel is still open.
async fn assert_nothing_more(raw: &mut Raw, target: &str, what: &str) {
    raw.send(AMQPFrame::Method(
        1,
        basic_method(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 0, global: false })),
    ))
    .await;
    let (ch, class) = next_method(raw, "basic.qos-ok").await;
    assert!(
        ch == 1 && matches!(class, AMQPClass::Basic(basic::AMQPMethod::QosOk(_))),
        "[{target}] {what}: expected only qos-ok, got {class:?} on channel {ch}"
    );
}

async fn bye(conn: Connection) {
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn deleting_a_queue_from_its_consumers_channel_answers_delete_ok_before_basic_cancel() {
    for t in targets().await {
        let mut raw = Raw::open_with(&t.addr, 0, ("guest", "guest"), NOTIFY).await;
        let q = unique("cancel-own");
        consume_raw(&mut raw, &q).await;
        raw.send(delete_frame(1, &q, false)).await;
        let (ch, first) = next_method(&mut raw, "queue.delete-ok").await;
        assert!(ch == 1 && is_delete_ok(&first), "[{}] delete-ok comes first, got {first:?}", t.name);
        let (ch, second) = next_method(&mut raw, "basic.cancel").await;
        assert!(ch == 1 && is_cancel_of_c1(&second), "[{}] then basic.cancel, got {second:?}", t.name);
        assert_nothing_more(&mut raw, t.name, "after the cancel").await;

        // With nowait there is no delete-ok: the cancel alone.
        let q = unique("cancel-own-nowait");
        consume_raw(&mut raw, &q).await;
        raw.send(delete_frame(1, &q, true)).await;
        let (ch, only) = next_method(&mut raw, "basic.cancel").await;
        assert!(ch == 1 && is_cancel_of_c1(&only), "[{}] nowait: basic.cancel, got {only:?}", t.name);
        assert_nothing_more(&mut raw, t.name, "nowait delete").await;
        t.stop().await;
    }
}

/// Messages still unacknowledged when their queue is deleted stay the channel's: `delete-ok`
/// counts only ready messages, and acknowledging them afterwards is no error.
#[tokio::test]
async fn deleting_a_queue_with_unacked_messages_from_its_consumers_channel() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("cancel-unacked");
        declare(&ch, &q, FieldTable::default()).await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
        publish_all(&ch, &q, &[("a", None), ("b", None)]).await;
        let mut raw = Raw::open_with(&t.addr, 0, ("guest", "guest"), NOTIFY).await;
        consume_raw(&mut raw, &q).await;
        for _ in 0..2 {
            let (_, deliver) = next_method(&mut raw, "basic.deliver").await;
            assert!(matches!(deliver, AMQPClass::Basic(basic::AMQPMethod::Deliver(_))), "{deliver:?}");
            assert!(matches!(raw.recv().await, Some(AMQPFrame::Header(..))), "[{}] content header", t.name);
            assert!(matches!(raw.recv().await, Some(AMQPFrame::Body(..))), "[{}] body", t.name);
        }
        raw.send(delete_frame(1, &q, false)).await;
        let (_, first) = next_method(&mut raw, "queue.delete-ok").await;
        let AMQPClass::Queue(queue::AMQPMethod::DeleteOk(ok)) = &first else {
            panic!("[{}] delete-ok comes first, got {first:?}", t.name)
        };
        assert_eq!(ok.message_count, 0, "[{}] unacked messages are not counted", t.name);
        let (_, second) = next_method(&mut raw, "basic.cancel").await;
        assert!(is_cancel_of_c1(&second), "[{}] then basic.cancel, got {second:?}", t.name);
        for tag in [1, 2] {
            raw.send(AMQPFrame::Method(
                1,
                basic_method(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: tag, multiple: false })),
            ))
            .await;
        }
        assert_nothing_more(&mut raw, t.name, "acks after the delete").await;
        bye(conn).await;
        t.stop().await;
    }
}

/// Deleted from another channel of the same connection, from another connection, or through the
/// management API: the consumer gets `basic.cancel`.
#[tokio::test]
async fn consumers_get_basic_cancel_whoever_deletes_their_queue() {
    for t in targets_with_management().await {
        let mut raw = Raw::open_with(&t.addr, 0, ("guest", "guest"), NOTIFY).await;
        raw.send(AMQPFrame::Method(2, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})))).await;
        let (_, ok) = next_method(&mut raw, "channel.open-ok").await;
        assert!(matches!(ok, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))), "{ok:?}");

        let q = unique("cancel-other-channel");
        consume_raw(&mut raw, &q).await;
        raw.send(delete_frame(2, &q, false)).await;
        let a = next_method(&mut raw, "basic.cancel or delete-ok").await;
        let b = next_method(&mut raw, "basic.cancel or delete-ok").await;
        let got = [a, b];
        assert!(
            got.iter().any(|(ch, m)| *ch == 1 && is_cancel_of_c1(m))
                && got.iter().any(|(ch, m)| *ch == 2 && is_delete_ok(m)),
            "[{}] cancel on 1 and delete-ok on 2, got {got:?}",
            t.name
        );

        let q = unique("cancel-other-connection");
        consume_raw(&mut raw, &q).await;
        let (conn, ch) = t.channel().await;
        ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await.expect("queue.delete");
        let (n, cancel) = next_method(&mut raw, "basic.cancel").await;
        assert!(n == 1 && is_cancel_of_c1(&cancel), "[{}] other connection: got {cancel:?}", t.name);
        bye(conn).await;

        let q = unique("cancel-management");
        consume_raw(&mut raw, &q).await;
        let (status, body) = management(&t.http, "DELETE", &format!("/api/queues/%2F/{q}"), None).await;
        assert_eq!(status, 204, "[{}] DELETE /api/queues: {body}", t.name);
        let (n, cancel) = next_method(&mut raw, "basic.cancel").await;
        assert!(n == 1 && is_cancel_of_c1(&cancel), "[{}] management API: got {cancel:?}", t.name);
        assert_nothing_more(&mut raw, t.name, "after the cancels").await;
        t.stop().await;
    }
}

/// A client that did not announce consumer_cancel_notify loses the consumer silently; a
/// `basic.cancel` of its own for it is still answered.
#[tokio::test]
async fn without_consumer_cancel_notify_a_deleted_queues_consumer_goes_silently() {
    for t in targets().await {
        let mut raw = Raw::open(&t.addr, 0).await;
        let q = unique("cancel-silent");
        consume_raw(&mut raw, &q).await;
        raw.send(delete_frame(1, &q, false)).await;
        let (_, first) = next_method(&mut raw, "queue.delete-ok").await;
        assert!(is_delete_ok(&first), "[{}] delete-ok, got {first:?}", t.name);
        raw.send(AMQPFrame::Method(
            1,
            basic_method(basic::AMQPMethod::Cancel(basic::Cancel { consumer_tag: "c1".into(), nowait: false })),
        ))
        .await;
        let (_, next) = next_method(&mut raw, "basic.cancel-ok").await;
        assert!(
            matches!(&next, AMQPClass::Basic(basic::AMQPMethod::CancelOk(ok)) if ok.consumer_tag.as_str() == "c1"),
            "[{}] no basic.cancel from the broker, the client's own answered: {next:?}",
            t.name
        );
        t.stop().await;
    }
}

/// With lapin: deleting the queue from the channel that consumes it succeeds and ends the
/// consumer; the channel stays usable.
#[tokio::test]
async fn lapin_deleting_the_queue_from_the_consuming_channel_ends_the_consumer() {
    use futures::StreamExt as _;
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("cancel-lapin");
        declare(&ch, &q, FieldTable::default()).await;
        let mut consumer = consume(&ch, &q).await;
        let count = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await.expect("queue.delete");
        assert_eq!(count, 0, "[{}] nothing was ready", t.name);
        let end = timeout(consumer.next(), "the consumer to end").await;
        assert!(end.is_none(), "[{}] the consumer stream ends: {end:?}", t.name);
        ch.basic_qos(1, BasicQosOptions::default()).await.expect("the channel is still open");
        bye(conn).await;
        t.stop().await;
    }
}

/// The connection.close RabbitMQ sends when it forces a connection shut: 320 with `text`.
fn is_forced_close(class: &AMQPClass, text: &str) -> bool {
    matches!(class, AMQPClass::Connection(connection::AMQPMethod::Close(c))
        if c.reply_code == 320 && c.reply_text.as_str() == text)
}

/// Deleting a vhost cancels the consumers of its queues and then closes every connection in it;
/// deleting a user closes that user's connections. Both with 320 `CONNECTION_FORCED`.
#[tokio::test]
async fn deleting_a_vhost_or_a_user_closes_their_connections() {
    for t in targets_with_management().await {
        let vhost = unique("doomed-vhost");
        let path = format!("/api/vhosts/{vhost}");
        assert_eq!(management(&t.http, "PUT", &path, Some("{}")).await.0, 201, "[{}] PUT {path}", t.name);
        // Its creator, guest, may use it (RabbitMQ grants the creator full permissions).
        let mut raw = Raw::open_in(&t.addr, &vhost, 0, ("guest", "guest"), NOTIFY).await;
        consume_raw(&mut raw, "in-doomed-vhost").await;
        assert_eq!(management(&t.http, "DELETE", &path, None).await.0, 204, "[{}] DELETE {path}", t.name);
        let (ch, cancel) = next_method(&mut raw, "basic.cancel").await;
        assert!(ch == 1 && is_cancel_of_c1(&cancel), "[{}] the consumer is cancelled first: {cancel:?}", t.name);
        let (ch, close) = next_method(&mut raw, "connection.close").await;
        let text = format!("CONNECTION_FORCED - vhost '{vhost}' is deleted");
        // RabbitMQ's own text races between the vhost's deletion and its supervisor going down
        // ("is down"); the embedded broker always says what happened.
        let raced = format!("CONNECTION_FORCED - vhost '{vhost}' is down");
        let closed = is_forced_close(&close, &text) || (t.broker.is_none() && is_forced_close(&close, &raced));
        assert!(ch == 0 && closed, "[{}] then the connection closes: {close:?}", t.name);

        let user = unique("doomed-user");
        let body = r#"{"password":"pw","tags":""}"#;
        let grant = r#"{"configure":".*","write":".*","read":".*"}"#;
        assert_eq!(management(&t.http, "PUT", &format!("/api/users/{user}"), Some(body)).await.0, 201);
        let status = management(&t.http, "PUT", &format!("/api/permissions/%2F/{user}"), Some(grant)).await.0;
        assert_eq!(status, 201, "[{}] {user}'s permissions", t.name);
        let mut raw = Raw::open_with(&t.addr, 0, (&user, "pw"), NOTIFY).await;
        let mut bystander = Raw::open_with(&t.addr, 0, ("guest", "guest"), NOTIFY).await;
        assert_eq!(management(&t.http, "DELETE", &format!("/api/users/{user}"), None).await.0, 204);
        let (ch, close) = next_method(&mut raw, "connection.close").await;
        let text = format!("CONNECTION_FORCED - user '{user}' is deleted");
        assert!(ch == 0 && is_forced_close(&close, &text), "[{}] the user's connection closes: {close:?}", t.name);
        assert_nothing_more(&mut bystander, t.name, "another user's connection stays open").await;
        t.stop().await;
    }
}
