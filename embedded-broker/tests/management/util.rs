//! Helpers: an embedded broker on 127.0.0.1:0, the management client `warren`
//! uses, raw HTTP for what that client cannot send (bad JSON, wrong
//! credentials), and the machine's RabbitMQ as the reference.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine;
use rabbitmq_http_client::api::Client;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warren_broker::state::State;
use warren_broker::{Broker, BrokerConfig};

/// The management client `warren apply` uses, with owned strings.
pub type Api = Client<String, String, String>;

/// An embedded broker started as `warren` starts it, with its management API.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The management API's address.
    pub addr: SocketAddr,
    /// The AMQP address.
    pub amqp: SocketAddr,
    /// The state behind it, for checks the API cannot make (queue settings in force).
    pub state: State,
    broker: Broker,
}

impl Server {
    /// A fresh broker on 127.0.0.1:0: vhost `/`, user guest/guest.
    pub async fn start() -> Server {
        Server::with_config(BrokerConfig::default()).await
    }

    /// A broker keeping its durable definitions in `dir`, loaded from it when present.
    pub async fn start_in(dir: &Path) -> Server {
        Server::with_config(BrokerConfig { data_dir: Some(dir.to_owned()), ..BrokerConfig::default() }).await
    }

    /// A fresh broker whose memory alarm goes off above `bytes` of queued messages.
    pub async fn with_memory_limit(bytes: usize) -> Server {
        Server::with_config(BrokerConfig { memory_limit: bytes, ..BrokerConfig::default() }).await
    }

    async fn with_config(config: BrokerConfig) -> Server {
        install_crypto_provider();
        let broker = Broker::start(config).await.expect("the embedded broker starts");
        let addr = broker.http_addr();
        Server { base: format!("http://{addr}"), addr, amqp: broker.amqp_addr(), state: broker.state().clone(), broker }
    }

    /// A client logged in as guest.
    pub fn client(&self) -> Api {
        self.client_as("guest", "guest")
    }

    /// A client logged in as `user`.
    pub fn client_as(&self, user: &str, password: &str) -> Api {
        Client::new(format!("{}/api", self.base), user.to_owned(), password.to_owned())
    }

    /// One raw request as guest.
    pub async fn raw(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        raw(self.addr, method, path, Some(("guest", "guest")), body).await
    }

    /// `amqp://guest:guest@…/%2f` for this broker.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.amqp)
    }

    /// Shuts the broker down gracefully (the data directory is written once more).
    pub async fn stop(self) {
        self.broker.shutdown().await;
    }
}

/// reqwest is built with rustls but no default provider in this workspace; install ring's once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body text.
    pub body: String,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The `error` field of a RabbitMQ-shaped error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }

    /// The `reason` field of a RabbitMQ-shaped error body.
    pub fn reason(&self) -> String {
        self.json()["reason"].as_str().unwrap_or_default().to_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection, read to its end.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<&str>,
) -> Response {
    raw_with_headers(addr, method, path, auth, &[], body).await
}

/// [`raw`] with extra request headers.
pub async fn raw_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the management API");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some((user, password)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    let body = body.unwrap_or_default();
    request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read the response");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_owned() };
    Response { status, headers, body }
}

fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The machine's RabbitMQ management API, when it answers (`WARREN_RABBITMQ_URL`'s host, port
/// 15672). With `WARREN_REQUIRE_RABBITMQ=1` an unreachable RabbitMQ fails the test.
pub struct RabbitMq {
    /// Its address.
    pub addr: SocketAddr,
    /// Its AMQP URL, with credentials and vhost.
    pub amqp_url: String,
    /// Management user.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl RabbitMq {
    /// A raw request with the configured credentials.
    pub async fn raw(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        raw(self.addr, method, path, Some((&self.user, &self.password)), body).await
    }

    /// The client `warren` uses.
    pub fn client(&self) -> Api {
        install_crypto_provider();
        Client::new(format!("http://{}/api", self.addr), self.user.clone(), self.password.clone())
    }
}

/// The reference RabbitMQ's management API, or `None` after a loud skip note
/// (a failure with `WARREN_REQUIRE_RABBITMQ=1`) when it does not answer.
pub async fn rabbitmq() -> Option<RabbitMq> {
    let found = warren_testkit::rabbitmq(&warren_testkit::current_test())?;
    Some(RabbitMq { addr: found.management, amqp_url: found.amqp_url, user: found.user, password: found.password })
}

/// A name unique to this test run, for entities on a shared broker.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Percent-encodes a path segment as `rabbitmq_http_client` does (everything but alphanumerics).
pub fn seg(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
