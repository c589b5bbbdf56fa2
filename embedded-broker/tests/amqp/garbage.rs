//! Malformed input closes only the offending connection, with the right reply code, while another
//! client's traffic carries on.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, channel};
use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};

use crate::raw::{Ending, HEARTBEAT_WAIT, Raw, encode};
use crate::util::*;

/// A bystander's publish and get still work.
async fn bystander_works(ch: &Channel, queue: &str, name: &str) {
    let c = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"still here",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    timeout(c, "confirm").await.expect("confirmed");
    let got = ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("get").expect("message");
    assert_eq!(got.delivery.data, b"still here", "[{name}] bystander traffic continues");
}

async fn with_bystander<F, Fut>(f: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let q = unique("bystander");
        declare(&ch, &q, FieldTable::default()).await;
        f(t.addr.clone()).await;
        bystander_works(&ch, &q, t.name).await;
        delete(&ch, &q).await;
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn a_wrong_protocol_header_gets_the_supported_header_and_a_close() {
    with_bystander(|addr| async move {
        let mut raw = Raw::connect(&addr).await;
        raw.send_bytes(b"GET / HTTP/1.1\r\n\r\n").await;
        let answer = raw.read_to_end().await;
        assert_eq!(answer, b"AMQP\x00\x00\x09\x01", "header answer for {addr}");
    })
    .await;
}

#[tokio::test]
async fn garbage_after_the_handshake_is_a_frame_error() {
    with_bystander(|addr| async move {
        let mut raw = Raw::open(&addr, 0).await;
        raw.send_bytes(&[0x41; 64]).await;
        assert_eq!(raw.ending().await, Ending::Close(501), "garbage on {addr}");
    })
    .await;
}

#[tokio::test]
async fn a_truncated_frame_is_a_frame_error() {
    with_bystander(|addr| async move {
        let mut raw = Raw::open(&addr, 0).await;
        let mut frame = encode(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 1, global: false })),
        ));
        // Cut the payload short: the size field now overruns into the next frame's bytes, so the
        // frame-end marker is not where the size says.
        frame.truncate(frame.len() - 3);
        raw.send_bytes(&frame).await;
        raw.send_bytes(&encode(&AMQPFrame::Heartbeat)).await;
        assert_eq!(raw.ending().await, Ending::Close(501), "truncated frame on {addr}");
    })
    .await;
}

#[tokio::test]
async fn a_two_gigabyte_frame_size_is_refused_from_its_header() {
    with_bystander(|addr| async move {
        let mut raw = Raw::open(&addr, 0).await;
        raw.send_bytes(&[1, 0, 1, 0x80, 0, 0, 0]).await;
        raw.send_bytes(&[0; 1024]).await;
        assert_eq!(raw.ending().await, Ending::Close(501), "2 GiB frame on {addr}");
    })
    .await;
}

#[tokio::test]
async fn a_method_on_a_closed_channel_is_a_channel_error() {
    with_bystander(|addr| async move {
        let mut raw = Raw::open(&addr, 0).await;
        raw.send(AMQPFrame::Method(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: 200,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            })),
        ))
        .await;
        let ok = raw.recv_non_heartbeat().await.expect("close-ok");
        assert!(matches!(ok, AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)))), "{ok:?}");
        raw.send(AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 1, global: false })),
        ))
        .await;
        assert_eq!(raw.ending().await, Ending::Close(504), "method on closed channel on {addr}");
    })
    .await;
}

#[tokio::test]
async fn a_body_longer_than_its_header_said_closes_the_connection() {
    with_bystander(|addr| async move {
        let mut raw = Raw::open(&addr, 0).await;
        raw.send(AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "".into(),
                routing_key: "nowhere".into(),
                mandatory: false,
                immediate: false,
            })),
        ))
        .await;
        raw.send(AMQPFrame::Header(
            1,
            amq_protocol::frame::AMQPContentHeader { class_id: 60, body_size: 3, properties: Default::default() },
        ))
        .await;
        raw.send(AMQPFrame::Body(1, b"too long".to_vec())).await;
        // RabbitMQ notices at the next frame, the embedded broker at once; both say 505.
        raw.send(AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 1, global: false })),
        ))
        .await;
        assert_eq!(raw.ending().await, Ending::Close(505), "body overrun on {addr}");
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_is_disconnected_after_missed_heartbeats() {
    with_bystander(|addr| async move {
        let mut raw = Raw::open(&addr, 1).await;
        // Say nothing; the server sends heartbeats and gives up on us after two missed ones.
        let ending = tokio::time::timeout(HEARTBEAT_WAIT, raw.ending()).await.expect("closed before the wait ran out");
        assert_eq!(ending, Ending::Eof, "missed heartbeats on {addr}");
    })
    .await;
}

#[tokio::test]
async fn a_bad_login_without_authentication_failure_close_just_drops_the_socket() {
    use amq_protocol::protocol::connection;
    with_bystander(|addr| async move {
        let mut raw = Raw::connect(&addr).await;
        raw.send_bytes(b"AMQP\x00\x00\x09\x01").await;
        let start = raw.recv().await.expect("connection.start");
        assert!(matches!(start, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_)))));
        raw.send(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: Default::default(),
                mechanism: "PLAIN".into(),
                response: "\0guest\0wrong".into(),
                locale: "en_US".into(),
            })),
        ))
        .await;
        assert_eq!(raw.ending().await, Ending::Eof, "no connection.close without the capability on {addr}");
    })
    .await;
}

#[tokio::test]
async fn an_unknown_login_mechanism_just_drops_the_socket_even_with_authentication_failure_close() {
    // RabbitMQ's COMMAND_INVALID "unknown authentication mechanism" is a handshake error: it is
    // logged, and the socket closed (after a pause) without a connection.close; only refused
    // credentials are answered with 403 when the client announces the capability.
    for t in targets().await {
        let mut raw = Raw::connect(&t.addr).await;
        raw.start_ok("NO-SUCH-MECHANISM", "\0guest\0guest").await;
        assert_eq!(raw.ending().await, Ending::Eof, "[{}] no connection.close for an unknown mechanism", t.name);
        t.stop().await;
    }
}
