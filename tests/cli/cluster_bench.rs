//! `warren bench` against the 3-node test cluster while its nodes die
//! (`tools/rabbitmq-cluster`; required in CI with `WARREN_REQUIRE_CLUSTER=1`):
//! the actors reconnect to the next node, the run completes, every message
//! the broker confirmed is consumed, and the result tells the outage.
//!
//! The cluster is shared: each test holds `/tmp/warren-cluster.lock` while it
//! kills nodes, and brings every node back before it lets go.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{RabbitMq, failed_gates, is_timing, management_request, repo_path, unique_name, warren};

/// Holds the cluster for one test; on drop (a failed assertion too) starts
/// every node the test stopped.
pub struct Held {
    _lock: File,
    killed: Vec<u32>,
}

impl Held {
    /// Waits for the cluster's lock (`/tmp/warren-cluster.lock`) and takes it.
    pub fn take() -> Held {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/warren-cluster.lock")
            .expect("opening the cluster's lock file");
        lock.lock().expect("taking the cluster's lock");
        Held { _lock: lock, killed: Vec::new() }
    }

    /// `kill -9` of node `n`'s Erlang VM.
    fn kill(&mut self, n: u32) {
        self.killed.push(n);
        cluster_tool(&["kill", &n.to_string()]);
    }

    /// Starts node `n` again and waits until it answers.
    fn start(&mut self, n: u32) {
        cluster_tool(&["start", &n.to_string()]);
        self.killed.retain(|k| *k != n);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for n in std::mem::take(&mut self.killed) {
            cluster_tool(&["start", &n.to_string()]);
        }
    }
}

fn cluster_tool(args: &[&str]) {
    let status = Command::new(repo_path("tools/rabbitmq-cluster"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("tools/rabbitmq-cluster runs");
    assert!(status.success(), "tools/rabbitmq-cluster {args:?} failed");
}

/// A fixed-rate producer with confirms and a consumer, on a quorum queue
/// replicated to the three nodes.
fn scenario(dir: &Path, duration: &str) -> PathBuf {
    let text = format!(
        r#"name: failover
topology:
  vhosts:
    /:
      queues:
        orders: {{ durable: true, arguments: {{ x-queue-type: quorum, x-quorum-initial-group-size: 3 }} }}
duration: {duration}
warmup: 0s
drain: 30s
producers:
  - name: p
    exchange: ""
    routing_key: orders
    rate: 200
    message: {{ size: 64, persistent: true }}
    confirms: {{ max_in_flight: 64 }}
consumers:
  - name: c
    queue: orders
    prefetch: 50
"#
    );
    let path = dir.join("failover.yaml");
    std::fs::write(&path, text).expect("writing the scenario");
    path
}

/// Starts `warren bench` on the cluster's nodes (the first node first).
fn start_bench(cluster: &warren_testkit::Cluster, scenario: &Path, out: &Path, vhost: &str) -> Child {
    start_bench_with(cluster, scenario, out, vhost, &[])
}

/// [`start_bench`] with more options.
fn start_bench_with(
    cluster: &warren_testkit::Cluster,
    scenario: &Path,
    out: &Path,
    vhost: &str,
    extra: &[&str],
) -> Child {
    let (amqp, management) = (cluster.amqp.join(","), cluster.management.join(","));
    let mut command = warren();
    command
        .args(["bench", &scenario.display().to_string(), "--broker", &amqp, "--management", &management])
        .args(["--vhost", vhost, "--out", &out.display().to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().expect("warren starts")
}

/// Waits until the run's result file would be a few seconds into the run:
/// the management API lists the bench's connections. A run that ended before
/// is a failure, with what it printed.
fn wait_for_connections(cluster: &warren_testkit::Cluster, vhost: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let node = RabbitMq {
        amqp_url: cluster.amqp[0].clone(),
        management_url: cluster.management[0].clone(),
        user: "guest".into(),
        password: "guest".into(),
    };
    let path = format!("/api/vhosts/{}/connections", urlencode(vhost));
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            use std::io::Read as _;
            let mut text = String::new();
            if let Some(mut out) = child.stdout.take() {
                let _ = out.read_to_string(&mut text);
            }
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut text);
            }
            panic!("the bench ended ({status}) before its connections showed up:\n{text}");
        }
        let (_, body) = management_request(&node, reqwest::Method::GET, &path, None);
        let listed = serde_json::from_str::<Value>(&body).ok().and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0);
        if listed >= 2 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the bench's connections never showed up on {}", cluster.management[0]);
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

/// The run's exit and result, once it ended.
fn finish(child: Child, out: &Path) -> (i32, String, Value) {
    let output = child.wait_with_output().expect("warren ends");
    let text = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let result = std::fs::read_to_string(out)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no result file:\n{text}"));
    (output.status.code().unwrap_or(-1), text, result)
}

/// What every run through a node's death must show: it completed (exit 0,
/// or 3 for a missed latency gate), nothing the broker confirmed went
/// missing, and intended-time latency covers the producer's outage.
fn assert_survived(code: i32, text: &str, result: &Value) {
    let failed = failed_gates(result);
    // A message the broker refused (nacked) while its queue changed leader counts as lost:
    // that gate may fail too, not the one on confirmed messages.
    let allowed = |gate: &String| is_timing(gate) || gate == "max_lost";
    assert!(
        code == 0 || code == 3 && failed.iter().all(allowed),
        "the run completes: exit {code}, failed gates {failed:?}\n{text}"
    );
    assert_eq!(result["status"], "completed", "{text}");
    let summary = &result["summary"];
    assert_eq!(summary["confirmed_lost"], 0, "every confirmed message was consumed: {summary:#}");
    // What was unconfirmed was re-sent; only what the broker refused (nacked) may be missing.
    let (lost, nacked) = (summary["lost"].as_u64().unwrap_or(u64::MAX), summary["nacked"].as_u64().unwrap_or(0));
    assert!(lost <= nacked, "every message the broker did not refuse arrived: {summary:#}");
    assert!(summary["confirmed"].as_u64().unwrap_or(0) > 0, "{summary:#}");
    let gate = result["gates"].as_array().and_then(|g| g.iter().find(|g| g["name"] == "max_confirmed_lost").cloned());
    assert_eq!(gate.map(|g| g["passed"].clone()), Some(Value::Bool(true)), "the gate is on by default");
    let longest_producer_outage = outages(result)
        .iter()
        .filter(|o| o["actor"].as_str().is_some_and(|a| a.starts_with("producer")))
        .filter_map(|o| o["length_s"].as_f64())
        .fold(0.0, f64::max);
    let e2e_max_s = summary["latency"]["e2e"]["max_us"].as_f64().unwrap_or(0.0) / 1e6;
    assert!(
        e2e_max_s >= longest_producer_outage,
        "a message due when the connection dropped went out after it came back: e2e max {e2e_max_s}s, outage {longest_producer_outage}s"
    );
}

fn outages(result: &Value) -> Vec<Value> {
    result["outages"].as_array().cloned().unwrap_or_default()
}

/// The outages of connections to the node on `port`.
fn outages_of(result: &Value, port: u16) -> Vec<Value> {
    let node = format!(":{port}");
    outages(result).into_iter().filter(|o| o["node"].as_str().is_some_and(|n| n.contains(&node))).collect()
}

fn port(url: &str) -> u16 {
    url::Url::parse(url).ok().and_then(|u| u.port()).expect("a node URL with a port")
}

#[test]
fn bench_on_a_quorum_queue_survives_the_death_of_the_node_it_connected_to() {
    // The lock first: another test may have a node down until it lets go.
    let mut held = Held::take();
    let Some(cluster) = warren_testkit::cluster(&warren_testkit::current_test()) else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("result.json");
    let vhost = unique_name("failover");
    let mut child = start_bench(&cluster, &scenario(dir.path(), "12s"), &out, &vhost);
    wait_for_connections(&cluster, &vhost, &mut child);
    std::thread::sleep(Duration::from_secs(2));
    held.kill(1);
    let (code, text, result) = finish(child, &out);
    held.start(1);
    assert_survived(code, &text, &result);
    let (first, second) = (port(&cluster.amqp[0]), port(&cluster.amqp[1]));
    let lost = outages_of(&result, first);
    let actors: std::collections::BTreeSet<&str> = lost.iter().filter_map(|o| o["actor"].as_str()).collect();
    assert_eq!(actors, ["consumer c#0", "producer p#0"].into(), "both were on the first node: {lost:#?}");
    for outage in &lost {
        assert!(outage["length_s"].is_f64(), "connected again: {outage:#}");
        let to = outage["reconnected_to"].as_str().unwrap_or_default();
        assert!(to.contains(&format!(":{second}")), "to the next node: {outage:#}");
    }
    assert!(text.contains("outages: 2 connections lost"), "the summary shows them:\n{text}");
}

#[test]
fn bench_connections_come_back_to_a_node_restarted_mid_run() {
    // The lock first: another test may have a node down until it lets go.
    let mut held = Held::take();
    let Some(cluster) = warren_testkit::cluster(&warren_testkit::current_test()) else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("result.json");
    let vhost = unique_name("failback");
    let mut child = start_bench(&cluster, &scenario(dir.path(), "60s"), &out, &vhost);
    wait_for_connections(&cluster, &vhost, &mut child);
    std::thread::sleep(Duration::from_secs(2));
    // The actors move from the first node to the second; the first comes back;
    // when the second dies, they go home to the first.
    held.kill(1);
    held.start(1);
    held.kill(2);
    let (code, text, result) = finish(child, &out);
    held.start(2);
    assert_survived(code, &text, &result);
    let (first, second) = (port(&cluster.amqp[0]), port(&cluster.amqp[1]));
    let back = outages_of(&result, second);
    assert!(!back.is_empty(), "the second node's death cut connections: {:#?}", outages(&result));
    for outage in &back {
        let to = outage["reconnected_to"].as_str().unwrap_or_default();
        assert!(to.contains(&format!(":{first}")), "back to the restarted first node: {outage:#}");
    }
}

#[test]
fn bench_reads_a_stream_back_from_its_first_offset_with_two_consumers() {
    // Kills nothing, but no other test may kill a node under it; the lock first,
    // since another test may have a node down until it lets go.
    let _held = Held::take();
    let Some(cluster) = warren_testkit::cluster(&warren_testkit::current_test()) else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = dir.path().join("stream.yaml");
    let text = r#"name: stream
topology:
  vhosts:
    /:
      queues:
        events: { durable: true, arguments: { x-queue-type: stream, x-initial-cluster-size: 3 } }
duration: 3s
warmup: 0s
producers:
  - name: p
    exchange: ""
    routing_key: events
    rate: 500
    message: { size: 64 }
consumers:
  - { name: a, queue: events, prefetch: 100, offset: first }
  - { name: b, queue: events, prefetch: 100, offset: first }
"#;
    std::fs::write(&scenario, text).expect("writing the scenario");
    let out = dir.path().join("result.json");
    let vhost = unique_name("stream");
    let child = start_bench(&cluster, &scenario, &out, &vhost);
    let (code, text, result) = finish(child, &out);
    let failed = failed_gates(&result);
    assert!(code == 0 || code == 3 && failed.iter().all(|g| is_timing(g)), "exit {code}:\n{text}");
    let published = result["summary"]["published"].as_u64().unwrap_or(0);
    assert!(published > 0, "{text}");
    for group in result["consumers"].as_array().expect("consumer groups") {
        assert_eq!(group["consumed"].as_u64(), Some(published), "each consumer reads every message: {group:#}");
        assert_eq!(group["lost"], 0, "{group:#}");
        assert_eq!(group["duplicated"], 0, "{group:#}");
    }
    assert_eq!(result["summary"]["lost"], 0, "{text}");
}

/// A stream replicated to the three nodes, `messages` 16-byte messages published to it and read
/// back from the first offset by each of `readers` consumers, all over the stream protocol.
fn stream_protocol_scenario(dir: &Path, messages: u64, readers: &[&str]) -> PathBuf {
    let consumers: String = readers
        .iter()
        .map(|name| format!("  - {{ name: {name}, protocol: stream, queue: events, offset: first }}\n"))
        .collect();
    let text = format!(
        r#"name: stream-protocol
topology:
  vhosts:
    /:
      queues:
        events: {{ durable: true, arguments: {{ x-queue-type: stream, x-initial-cluster-size: 3 }} }}
duration: 30s
warmup: 0s
drain: 30s
messages: {messages}
producers:
  - {{ name: p, protocol: stream, exchange: "", routing_key: events, message: {{ size: 16 }} }}
consumers:
{consumers}"#
    );
    let path = dir.join("stream-protocol.yaml");
    std::fs::write(&path, text).expect("writing the scenario");
    path
}

/// Every message published, confirmed, and read once, in order, by each consumer group.
fn assert_every_message_read_by_each(code: i32, text: &str, result: &Value, messages: u64, readers: usize) {
    let failed = failed_gates(result);
    assert!(code == 0 || code == 3 && failed.iter().all(|g| is_timing(g)), "exit {code}:\n{text}");
    assert_eq!(result["status"], "completed", "{text}");
    let summary = &result["summary"];
    assert_eq!(summary["published"].as_u64(), Some(messages), "{summary:#}");
    assert_eq!(summary["confirmed"].as_u64(), Some(messages), "the broker confirmed every message: {summary:#}");
    let groups = result["consumers"].as_array().expect("consumer groups");
    assert_eq!(groups.len(), readers, "{groups:#?}");
    for group in groups {
        assert_eq!(group["consumed"].as_u64(), Some(messages), "each consumer reads every message: {group:#}");
        assert_eq!(group["lost"], 0, "{group:#}");
        assert_eq!(group["duplicated"], 0, "{group:#}");
        // Regression: publishes handed to the client out of turn reached the stream out of order.
        assert_eq!(group["reordered"], 0, "the stream holds them in publish order: {group:#}");
    }
    assert_eq!(summary["lost"], 0, "{summary:#}");
    assert_eq!(summary["confirmed_lost"], 0, "{summary:#}");
}

#[test]
fn bench_over_the_stream_protocol_reads_every_message_back_with_two_consumers_from_the_first_offset() {
    // Kills nothing, but no other test may kill a node under it; the lock first,
    // since another test may have a node down until it lets go.
    let _held = Held::take();
    let Some(cluster) = warren_testkit::cluster(&warren_testkit::current_test()) else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    const MESSAGES: u64 = 20_000;
    let scenario = stream_protocol_scenario(dir.path(), MESSAGES, &["a", "b"]);
    let out = dir.path().join("result.json");
    let vhost = unique_name("stream-protocol");
    // The first node's stream port (tools/rabbitmq-cluster: 5561..5563, advertised as localhost).
    let child = start_bench_with(&cluster, &scenario, &out, &vhost, &["--stream-port", "5561"]);
    let (code, text, result) = finish(child, &out);
    assert_every_message_read_by_each(code, &text, &result, MESSAGES, 2);
}

#[test]
fn bench_over_the_stream_protocol_starts_on_the_next_node_when_the_first_is_down() {
    let mut held = Held::take();
    let Some(cluster) = warren_testkit::cluster(&warren_testkit::current_test()) else { return };
    held.kill(1);
    let dir = tempfile::tempdir().expect("a temp dir");
    const MESSAGES: u64 = 5_000;
    let scenario = stream_protocol_scenario(dir.path(), MESSAGES, &["a"]);
    let out = dir.path().join("result.json");
    let vhost = unique_name("stream-protocol-down");
    // Each node's own stream port, in the order of the broker URLs; the first node's is dead.
    let child = start_bench_with(&cluster, &scenario, &out, &vhost, &["--stream-port", "5561,5562,5563"]);
    let (code, text, result) = finish(child, &out);
    assert_every_message_read_by_each(code, &text, &result, MESSAGES, 1);
    held.start(1);
}

#[test]
fn bench_over_the_stream_protocol_survives_the_death_of_a_node() {
    let mut held = Held::take();
    let Some(cluster) = warren_testkit::cluster(&warren_testkit::current_test()) else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = dir.path().join("stream-failover.yaml");
    let text = r#"name: stream-failover
topology:
  vhosts:
    /:
      queues:
        events: { durable: true, arguments: { x-queue-type: stream, x-initial-cluster-size: 3 } }
duration: 12s
warmup: 0s
drain: 30s
producers:
  - { name: p, protocol: stream, exchange: "", routing_key: events, rate: 200, message: { size: 16 } }
consumers:
  - { name: c, protocol: stream, queue: events, offset: first }
"#;
    std::fs::write(&scenario, text).expect("writing the scenario");
    let out = dir.path().join("result.json");
    let vhost = unique_name("stream-failover");
    let child = start_bench_with(&cluster, &scenario, &out, &vhost, &["--stream-port", "5561,5562,5563"]);
    // The stream protocol's connections are not in the vhost's connection list: the stream's
    // first messages are the sign the run is under way. Its leader's node is killed: the producer
    // is connected there.
    let stream = wait_for_messages(&cluster, &vhost, "events");
    let leader = stream["node"].as_str().and_then(|n| n.strip_prefix("warren-")).and_then(|n| n.split('@').next());
    let leader: u32 = leader.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("the stream's leader: {stream:#}"));
    held.kill(leader);
    let (code, text, result) = finish(child, &out);
    held.start(leader);
    assert_survived(code, &text, &result);
    let lost: Vec<Value> = outages(&result)
        .into_iter()
        .filter(|o| o["actor"].as_str().is_some_and(|a| a.starts_with("producer")))
        .collect();
    assert!(!lost.is_empty(), "the producer lost its connection to the leader: {:#?}", outages(&result));
    for outage in &lost {
        assert!(outage["length_s"].is_f64(), "connected again: {outage:#}");
    }
    let group = &result["consumers"][0];
    let confirmed = result["summary"]["confirmed"].as_u64().unwrap_or(0);
    assert!(group["consumed"].as_u64().unwrap_or(0) >= confirmed, "every confirmed message was read: {group:#}");
}

/// Waits until the queue `queue` of `vhost` reports messages (the run is publishing); returns
/// what the management API says of it.
fn wait_for_messages(cluster: &warren_testkit::Cluster, vhost: &str, queue: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let path = format!("/api/queues/{}/{queue}", urlencode(vhost));
    while Instant::now() < deadline {
        for management in &cluster.management {
            let node = RabbitMq {
                amqp_url: cluster.amqp[0].clone(),
                management_url: management.clone(),
                user: "guest".into(),
                password: "guest".into(),
            };
            let (_, body) = management_request(&node, reqwest::Method::GET, &path, None);
            let queue = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
            if queue["messages"].as_u64().unwrap_or(0) > 0 {
                return queue;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the stream `{queue}` of {vhost} never held a message");
}
