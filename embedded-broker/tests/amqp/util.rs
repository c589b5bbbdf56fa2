//! Shared helpers: the brokers each behaviour runs against, connections, waits with deadlines.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use warren_broker::{Broker, BrokerConfig};

/// How long any single wait may take before the test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A broker a behaviour is checked against.
pub struct Target {
    /// "embedded" or "rabbitmq", prefixed to assertion messages.
    pub name: &'static str,
    /// AMQP URL with guest credentials.
    pub url: String,
    /// Host and port, for raw-socket tests.
    pub addr: String,
    /// Host and port of the management API.
    pub http: String,
    /// Keeps the embedded broker alive for the test.
    pub broker: Option<Broker>,
}

impl Target {
    /// Opens a connection.
    pub async fn connect(&self) -> Connection {
        timeout(Connection::connect(&self.url, ConnectionProperties::default()), "connect")
            .await
            .unwrap_or_else(|e| panic!("[{}] connect to {}: {e}", self.name, self.url))
    }

    /// Opens a connection and a channel.
    pub async fn channel(&self) -> (Connection, Channel) {
        let conn = self.connect().await;
        let ch = timeout(conn.create_channel(), "create channel")
            .await
            .unwrap_or_else(|e| panic!("[{}] create channel: {e}", self.name));
        (conn, ch)
    }

    /// URL with other credentials or vhost (`vhost` already percent-encoded).
    pub fn url_with(&self, user: &str, password: &str, vhost: &str) -> String {
        format!("amqp://{user}:{password}@{}/{vhost}", self.addr)
    }

    /// Stops the embedded broker, if this is it.
    pub async fn stop(self) {
        if let Some(b) = self.broker {
            b.shutdown().await;
        }
    }
}

/// The embedded broker, plus RabbitMQ when it answers at `WARREN_RABBITMQ_URL` (a loud skip note
/// when it does not; a failure instead with `WARREN_REQUIRE_RABBITMQ=1`). For tests that speak
/// AMQP only: RabbitMQ's management API is not probed.
pub async fn targets() -> Vec<Target> {
    with_embedded(rabbitmq().await).await
}

/// As [`targets`], for tests that also use the management API (`Target::http`): RabbitMQ is
/// included only when its management API answers too.
pub async fn targets_with_management() -> Vec<Target> {
    let what = warren_testkit::current_test();
    let rabbit = match warren_testkit::rabbitmq(&what) {
        Some(_) => rabbitmq().await,
        None => None,
    };
    with_embedded(rabbit).await
}

async fn with_embedded(rabbit: Option<Target>) -> Vec<Target> {
    let broker = Broker::start(BrokerConfig::default()).await.expect("embedded broker starts");
    let addr = broker.amqp_addr().to_string();
    let http = broker.http_addr().to_string();
    let mut out = vec![Target {
        name: "embedded",
        url: format!("amqp://guest:guest@{addr}/%2f"),
        addr,
        http,
        broker: Some(broker),
    }];
    out.extend(rabbit);
    out
}

/// RabbitMQ, when it answers and lets the URL's user log in (a loud skip note otherwise; a failure
/// with `WARREN_REQUIRE_RABBITMQ=1`).
pub async fn rabbitmq() -> Option<Target> {
    let what = warren_testkit::current_test();
    let found = warren_testkit::rabbitmq_amqp(&what)?;
    let url = found.amqp_url.clone();
    match tokio::time::timeout(Duration::from_secs(3), Connection::connect(&url, ConnectionProperties::default())).await
    {
        Ok(Ok(conn)) => {
            let _ = conn.close(200, "probe".into()).await;
            let http = found.management.to_string();
            Some(Target { name: "rabbitmq", url, addr: found.amqp_addr(), http, broker: None })
        }
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            let why = format!(
                "RabbitMQ at {} refused the connection ({why}); checked against the embedded broker only",
                found.amqp_addr()
            );
            warren_testkit::missing(warren_testkit::Need::RabbitMq, &what, &why);
            None
        }
    }
}

/// A name no other test (or concurrent run) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!(
        "warren-test.{prefix}.{}.{}.{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Awaits with the test deadline.
pub async fn timeout<T>(f: impl Future<Output = T>, what: &str) -> T {
    tokio::time::timeout(DEADLINE, f).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next delivery of a consumer.
pub async fn next(consumer: &mut Consumer) -> Delivery {
    timeout(consumer.next(), "a delivery").await.expect("consumer stream ended").expect("delivery without error")
}

/// The reply code of a broker error, if it is one.
pub fn code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}

/// The reply text of a broker error.
pub fn text(e: &lapin::Error) -> String {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => amqp.get_message().to_string(),
        other => format!("{other:?}"),
    }
}

/// Declares a plain queue (non-durable, auto-delete false) and returns its name.
pub async fn declare(ch: &Channel, name: &str, args: FieldTable) {
    ch.queue_declare(name.into(), QueueDeclareOptions::default(), args).await.expect("queue.declare");
}

/// Publishes each `(body, priority)` to `q` on a channel in confirm mode and waits for each
/// confirm, so all are queued when it returns.
pub async fn publish_all(ch: &Channel, q: &str, messages: &[(&str, Option<u8>)]) {
    for (body, priority) in messages {
        let props = priority.map_or_else(BasicProperties::default, |p| BasicProperties::default().with_priority(p));
        let confirm = ch
            .basic_publish("".into(), q.into(), BasicPublishOptions::default(), body.as_bytes(), props)
            .await
            .expect("basic.publish");
        timeout(confirm, "publisher confirm").await.expect("confirmed");
    }
}

/// Deletes a queue, ignoring errors (cleanup).
pub async fn delete(ch: &Channel, name: &str) {
    let _ = ch.queue_delete(name.into(), QueueDeleteOptions::default()).await;
}

/// Starts a consumer with manual acks.
pub async fn consume(ch: &Channel, queue: &str) -> Consumer {
    ch.basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("basic.consume")
}

/// Messages ready in queue `q` (a passive declare), or `None` when it does not exist.
pub async fn ready(ch: &Channel, q: &str) -> Option<u32> {
    ch.queue_declare(q.into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
        .await
        .ok()
        .map(|q| q.message_count())
}

/// Waits (with the deadline) until queue `q` reports `count` ready messages.
pub async fn wait_for_ready(ch: &Channel, q: &str, count: u32, what: &str) {
    wait_until(what, || async { ready(ch, q).await == Some(count) }).await;
}

/// Polls `check` until it holds or the deadline passes.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP/1.1 request as guest to the management API at `http` (host:port), read to its end:
/// the status and the body (RabbitMQ and the embedded broker answer these small requests in one
/// piece, without chunking).
pub async fn management(http: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let request = async {
        let mut stream = tokio::net::TcpStream::connect(http).await.expect("connect to the management API");
        let token = base64::engine::general_purpose::STANDARD.encode("guest:guest");
        let body = body.unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\nAuthorization: Basic {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send the request");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.expect("read the response");
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let text = timeout(request, "a management API answer").await;
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
