//! A minimal raw AMQP client for sending what a well-behaved client never would.

use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, channel, connection};
use amq_protocol::types::{AMQPValue, FieldTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::DEADLINE;

/// A socket speaking frames.
pub struct Raw {
    /// The socket.
    pub socket: TcpStream,
    buf: Vec<u8>,
}

/// What the server did in the end.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// `connection.close` with this code.
    Close(u16),
    /// The socket was closed without a close method.
    Eof,
}

pub fn encode(frame: &AMQPFrame) -> Vec<u8> {
    gen_frame(frame)(WriteContext::from(Vec::new())).expect("encodes").write
}

impl Raw {
    /// Sends the protocol header, takes `connection.start` and answers with `mechanism` and
    /// `response`, announcing `authentication_failure_close`.
    pub async fn start_ok(&mut self, mechanism: &str, response: &str) {
        self.start_ok_with(mechanism, response, &["authentication_failure_close"]).await;
    }

    /// [`Raw::start_ok`] announcing the client `capabilities` named.
    pub async fn start_ok_with(&mut self, mechanism: &str, response: &str, capabilities: &[&str]) {
        self.send_bytes(b"AMQP\x00\x00\x09\x01").await;
        let start = self.recv().await.expect("connection.start");
        assert!(matches!(start, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_)))));
        let mut caps = FieldTable::default();
        for capability in capabilities {
            caps.insert((*capability).into(), AMQPValue::Boolean(true));
        }
        let mut props = FieldTable::default();
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        self.send(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: props,
                mechanism: mechanism.into(),
                response: response.into(),
                locale: "en_US".into(),
            })),
        ))
        .await;
    }

    /// Connects without a handshake.
    pub async fn connect(addr: &str) -> Raw {
        let socket = TcpStream::connect(addr).await.expect("tcp connect");
        Raw { socket, buf: Vec::new() }
    }

    /// Connects, completes the handshake as guest on `/` with `heartbeat`, and opens channel 1.
    pub async fn open(addr: &str, heartbeat: u16) -> Raw {
        Raw::open_as(addr, heartbeat, "guest", "guest").await
    }

    /// [`Raw::open`] as another user.
    pub async fn open_as(addr: &str, heartbeat: u16, user: &str, password: &str) -> Raw {
        Raw::open_with(addr, heartbeat, (user, password), &["authentication_failure_close"]).await
    }

    /// [`Raw::open`] as `user`, announcing the client `capabilities` named.
    pub async fn open_with(addr: &str, heartbeat: u16, credentials: (&str, &str), capabilities: &[&str]) -> Raw {
        Raw::open_in(addr, "/", heartbeat, credentials, capabilities).await
    }

    /// [`Raw::open_with`] in `vhost`.
    pub async fn open_in(
        addr: &str,
        vhost: &str,
        heartbeat: u16,
        (user, password): (&str, &str),
        capabilities: &[&str],
    ) -> Raw {
        let mut raw = Raw::connect(addr).await;
        raw.start_ok_with("PLAIN", &format!("\0{user}\0{password}"), capabilities).await;
        let tune = raw.recv().await.expect("connection.tune");
        let AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))) = tune else {
            panic!("expected tune, got {tune:?}")
        };
        raw.send(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat,
            })),
        ))
        .await;
        raw.send(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open { virtual_host: vhost.into() })),
        ))
        .await;
        let ok = raw.recv().await.expect("connection.open-ok");
        assert!(matches!(ok, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))), "{ok:?}");
        raw.send(AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})))).await;
        let ok = raw.recv_non_heartbeat().await.expect("channel.open-ok");
        assert!(matches!(ok, AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))), "{ok:?}");
        raw
    }

    /// Sends bytes as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        // The server may already have closed; what it answered is checked by the caller.
        let _ = self.socket.write_all(bytes).await;
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: AMQPFrame) {
        let bytes = encode(&frame);
        self.send_bytes(&bytes).await;
    }

    /// Reads raw bytes until EOF or the deadline.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        let _ = tokio::time::timeout(DEADLINE, self.socket.read_to_end(&mut out)).await;
        out
    }

    /// The next frame, or `None` at EOF.
    pub async fn recv(&mut self) -> Option<AMQPFrame> {
        loop {
            if let Ok((rest, frame)) = parse_frame(&self.buf[..]) {
                let used = self.buf.len() - rest.len();
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(DEADLINE, self.socket.read(&mut chunk))
                .await
                .expect("server answered before the deadline")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next frame that is not a heartbeat.
    pub async fn recv_non_heartbeat(&mut self) -> Option<AMQPFrame> {
        loop {
            match self.recv().await? {
                AMQPFrame::Heartbeat => continue,
                other => return Some(other),
            }
        }
    }

    /// Reads until the server closes the connection: its close code, or EOF.
    pub async fn ending(&mut self) -> Ending {
        loop {
            match self.recv().await {
                None => return Ending::Eof,
                Some(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
                    self.send(AMQPFrame::Method(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                    ))
                    .await;
                    return Ending::Close(c.reply_code);
                }
                Some(_) => {}
            }
        }
    }
}

/// How long a server may take to notice a silent client with heartbeat 1 (two missed beats plus
/// scheduling slack); only an upper bound for a wait, never an assertion on timing.
pub const HEARTBEAT_WAIT: Duration = Duration::from_secs(8);

/// Publishes `body` with `properties` on channel 1 of a fresh raw connection and returns the
/// code and text of the `channel.close` the server answers with (lapin cannot show the code of an
/// error on a method that has no reply).
pub async fn publish_error(
    addr: &str,
    exchange: &str,
    routing_key: &str,
    properties: amq_protocol::protocol::BasicProperties,
) -> (u16, String) {
    publish_error_as(addr, ("guest", "guest"), exchange, routing_key, properties).await
}

/// [`publish_error`] as another user.
pub async fn publish_error_as(
    addr: &str,
    (user, password): (&str, &str),
    exchange: &str,
    routing_key: &str,
    properties: amq_protocol::protocol::BasicProperties,
) -> (u16, String) {
    use amq_protocol::protocol::basic;
    let mut raw = Raw::open_as(addr, 0, user, password).await;
    raw.send(AMQPFrame::Method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            mandatory: false,
            immediate: false,
        })),
    ))
    .await;
    raw.send(AMQPFrame::Header(1, amq_protocol::frame::AMQPContentHeader { class_id: 60, body_size: 1, properties }))
        .await;
    raw.send(AMQPFrame::Body(1, b"x".to_vec())).await;
    match raw.recv_non_heartbeat().await {
        Some(AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) => {
            (c.reply_code, c.reply_text.as_str().to_owned())
        }
        other => panic!("expected channel.close on {addr}, got {other:?}"),
    }
}
