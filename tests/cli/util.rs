//! Helpers shared by every integration test: running the CLI, and finding
//! the brokers to run it against.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a finished `warren` process left behind.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// The repository root, for paths such as `topologies/seed.yaml`.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path relative to the repository root.
pub fn repo_path(relative: impl AsRef<Path>) -> PathBuf {
    repo_root().join(relative)
}

/// A `warren` command with a clean environment for the variables warren reads.
pub fn warren() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
    command
        .env_remove("WARREN_BROKER")
        .env_remove("WARREN_MANAGEMENT")
        .env("NO_COLOR", "1")
        .current_dir(repo_root())
        .stdin(Stdio::null());
    command
}

/// Runs `warren ARGS` with extra environment variables and waits for it.
pub fn run_with_env<I, S>(args: I, env: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = warren();
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the warren binary runs");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `warren ARGS`.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_env(args, &[])
}

/// Runs `warren ARGS` and asserts it exited 0.
pub fn run_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = run(args);
    assert_eq!(output.code, 0, "warren failed:\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    output
}

/// A RabbitMQ server the tests may use.
#[derive(Debug, Clone)]
pub struct RabbitMq {
    /// AMQP URL with credentials, for `--broker`.
    pub amqp_url: String,
    /// Management API base URL, `http://host:15672`.
    pub management_url: String,
    /// Management user.
    pub user: String,
    /// Management password.
    pub password: String,
}

/// The RabbitMQ to test against (its AMQP port and management API), or
/// `None` after a loud skip note naming the test when either does not answer.
/// With `WARREN_REQUIRE_RABBITMQ=1` a missing RabbitMQ fails the calling test
/// instead.
pub fn rabbitmq() -> Option<RabbitMq> {
    let found = warren_testkit::rabbitmq(&warren_testkit::current_test())?;
    Some(RabbitMq {
        management_url: found.management_url(),
        amqp_url: found.amqp_url,
        user: found.user,
        password: found.password,
    })
}

/// A name unique to this test run, for vhosts, users and queues a test creates
/// on a shared broker, so tests running in parallel never collide.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// One request to a RabbitMQ management API (`path` starts with `/api/`);
/// returns the status code and the body exactly as received, so callers can
/// compare bodies byte for byte.
pub fn management_request(
    rabbit: &RabbitMq,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    // reqwest is built without a default TLS provider; install ring's once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client
            .request(method, format!("{}{path}", rabbit.management_url))
            .basic_auth(&rabbit.user, Some(&rabbit.password));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.expect("the management API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("the management API sends a body");
        (status, text)
    })
}

/// An embedded broker on free loopback ports, served by its own runtime for
/// as long as this value lives.
pub struct EmbeddedBroker {
    /// How to reach it, in the same shape as a RabbitMQ target.
    pub target: RabbitMq,
    broker: Option<warren_broker::Broker>,
    runtime: tokio::runtime::Runtime,
}

/// Starts an embedded broker (user `guest`, password `guest`).
pub fn embedded_broker() -> EmbeddedBroker {
    embedded_broker_with(warren_broker::BrokerConfig::default())
}

/// Starts an embedded broker configured as given (e.g. with a small memory limit).
pub fn embedded_broker_with(config: warren_broker::BrokerConfig) -> EmbeddedBroker {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    let broker =
        runtime.block_on(warren_broker::Broker::start(config)).expect("the embedded broker starts on loopback");
    let target = RabbitMq {
        amqp_url: format!("amqp://guest:guest@{}/%2f", broker.amqp_addr()),
        management_url: format!("http://{}", broker.http_addr()),
        user: "guest".to_owned(),
        password: "guest".to_owned(),
    };
    EmbeddedBroker { target, broker: Some(broker), runtime }
}

impl EmbeddedBroker {
    /// `--broker URL --management URL` for a `warren` command to use this broker.
    pub fn args(&self) -> [String; 4] {
        ["--broker".into(), self.target.amqp_url.clone(), "--management".into(), self.target.management_url.clone()]
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.take() {
            self.runtime.block_on(broker.shutdown());
        }
    }
}

/// Publishes `count` persistent messages through `amqp_url` with publisher
/// confirms, each acknowledged before this returns.
pub fn publish_confirmed(amqp_url: &str, exchange: &str, routing_key: &str, count: usize) {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await.expect("connecting");
        let channel = connection.create_channel().await.expect("a channel");
        channel.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        for i in 0..count {
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions::default(),
                    format!("message {i}").as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publishing");
            assert!(confirm.await.expect("a confirm").is_ack(), "the broker acks the message");
        }
        let _ = connection.close(200, "OK".into()).await;
    });
}

/// True for a gate or compared figure that measures speed (throughput,
/// latency): a loaded test machine may miss those; nothing else may fail.
pub fn is_timing(name: &str) -> bool {
    name.starts_with("latency_") || name == "throughput_min" || name.ends_with(" msgs/s") || name.contains(" latency ")
}

/// The names of the gates a result file records as failed.
pub fn failed_gates(result: &serde_json::Value) -> Vec<String> {
    let gates = result["gates"].as_array().unwrap_or_else(|| panic!("a result has gates: {result:#}"));
    gates.iter().filter(|g| g["passed"] == false).filter_map(|g| g["name"].as_str().map(str::to_owned)).collect()
}

/// The run succeeded, or exited 3 only because a timing gate (latency,
/// throughput) was missed: the shipped scenarios carry such gates, and a
/// loaded test machine must not turn them into a flaky test. Loss, duplicate,
/// return and error gates still count.
pub fn assert_ok_apart_from_timing_gates(output: &Output, result: &serde_json::Value) {
    let failed = failed_gates(result);
    let timing_only = !failed.is_empty() && failed.iter().all(|name| is_timing(name));
    assert!(
        output.code == 0 && failed.is_empty() || output.code == 3 && timing_only,
        "warren bench exited {} (failed gates: {failed:?}):\nstdout:\n{}\nstderr:\n{}",
        output.code,
        output.stdout,
        output.stderr
    );
}

/// A TCP proxy on a free loopback port in front of a broker, whose
/// connections a test cuts as a network failure or a crashed broker would.
pub struct Proxy {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    streams: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    /// Forwards every connection to `upstream` (`host:port`) until dropped.
    pub fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let upstream = upstream.to_owned();
        let proxy = Proxy { addr, streams: Default::default(), stop: Default::default() };
        let (streams, stop) = (proxy.streams.clone(), proxy.stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(&upstream)) else { continue };
                let pipe = |from: &TcpStream, to: &TcpStream| {
                    let (mut from, mut to) = (from.try_clone().expect("a socket"), to.try_clone().expect("a socket"));
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                pipe(&client, &server);
                pipe(&server, &client);
                if let Ok(mut streams) = streams.lock() {
                    streams.extend([client, server]);
                }
            }
        });
        proxy
    }

    /// `url` (an `amqp://` URL) with its host and port replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("an AMQP URL");
        url.set_ip_host(self.addr.ip()).expect("an IP host");
        url.set_port(Some(self.addr.port())).expect("a port");
        url.to_string()
    }

    /// Connections forwarded so far.
    pub fn connections(&self) -> usize {
        self.streams.lock().map_or(0, |s| s.len() / 2)
    }

    /// Cuts every forwarded connection, both ways.
    pub fn cut(&self) {
        if let Ok(streams) = self.streams.lock() {
            for stream in streams.iter() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.cut();
        // Wakes the accepting thread so it sees the stop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// An HTTP proxy on a free loopback port in front of a management API that
/// passes reads (`GET`) and drops every write after reading it, without an
/// answer: a node that dies while a write is in flight.
pub struct ReadsOnlyProxy {
    /// Where clients connect.
    pub addr: std::net::SocketAddr,
    dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ReadsOnlyProxy {
    /// In front of `upstream`, an `http://host:port` base URL.
    pub fn start(upstream: &str) -> ReadsOnlyProxy {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = dropped.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                std::thread::spawn(move || {
                    let Ok(reader) = client.try_clone() else { return };
                    let mut reader = BufReader::new(reader);
                    let mut head = Vec::new();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        if lower.starts_with("connection:") {
                            continue;
                        }
                        if line == "\r\n" {
                            head.push("Connection: close\r\n".to_owned());
                            head.push(line);
                            break;
                        }
                        head.push(line);
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if !head.first().is_some_and(|l| l.starts_with("GET ")) {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(&upstream) else { return };
                    let _ = server.write_all(head.concat().as_bytes());
                    let _ = server.write_all(&body);
                    let mut client = client;
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        ReadsOnlyProxy { addr, dropped }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many writes it dropped.
    pub fn dropped(&self) -> usize {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}
