//! `warren bench`: every shipped scenario runs short and is judged as a user
//! would judge it (nothing lost, counts match, percentiles ordered, the result
//! validates against the committed schema); gates exit 3; bad scenario files
//! name file, line and column. Behaviours a user sees run against the embedded
//! broker and against RabbitMQ ([`brokers`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    Output, Proxy, RabbitMq, assert_ok_apart_from_timing_gates, embedded_broker, embedded_broker_with, failed_gates,
    is_timing, rabbitmq, repo_path, run, run_with_env, unique_name, warren,
};

/// A short run of `scenario` against RabbitMQ in a vhost of its own; returns the result file.
fn bench_on_rabbitmq(rabbit: &RabbitMq, scenario: &Path, extra: &[&str]) -> (Output, Value, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("result.json");
    let vhost = unique_name("warren-bench");
    let mut args: Vec<String> = vec![
        "bench".into(),
        scenario.display().to_string(),
        "--broker".into(),
        rabbit.amqp_url.clone(),
        "--vhost".into(),
        vhost.clone(),
        "--duration".into(),
        "2s".into(),
        "--warmup".into(),
        "0s".into(),
        // Ends as soon as everything arrived; generous so a loaded CI machine does not count a slow drain as loss.
        "--drain".into(),
        "60s".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let output = run(&args);
    let text = std::fs::read_to_string(&out).unwrap_or_else(|error| {
        panic!("no result file ({error}):\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr)
    });
    let result: Value = serde_json::from_str(&text).expect("the result file is JSON");
    (output, result, vhost)
}

fn number(value: &Value, pointer: &str) -> f64 {
    value.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("{pointer} is a number in {value:#}"))
}

fn count(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("{pointer} is a count in {value:#}"))
}

/// What a user checks first: nothing lost, every expected delivery consumed,
/// no duplicates, percentiles in order, the document matches the schema.
fn assert_sound(result: &Value) {
    assert_eq!(result["status"], "completed", "{:#}", result["error"]);
    let published = count(result, "/summary/published");
    assert!(published > 0, "something was published");
    assert_eq!(count(result, "/summary/lost"), 0, "nothing lost");
    assert_eq!(count(result, "/summary/duplicated"), 0, "no duplicates");
    assert_eq!(
        count(result, "/summary/consumed"),
        count(result, "/summary/expected"),
        "every expected delivery was consumed"
    );
    assert!(count(result, "/summary/expected") >= published, "every message reaches at least one consumed queue");
    assert!(number(result, "/summary/publish_rate") > 0.0);
    assert!(number(result, "/summary/consume_rate") > 0.0);
    for histogram in ["e2e", "e2e_actual", "confirm"] {
        let at = |p: &str| number(result, &format!("/summary/latency/{histogram}/{p}"));
        assert!(at("count") > 0.0, "{histogram} recorded values");
        assert!(
            at("p50_us") <= at("p90_us")
                && at("p90_us") <= at("p99_us")
                && at("p99_us") <= at("p999_us")
                && at("p999_us") <= at("max_us"),
            "{histogram} percentiles are ordered: {:#}",
            result["summary"]["latency"][histogram]
        );
    }
    assert!(
        number(result, "/summary/latency/e2e/p50_us") >= number(result, "/summary/latency/e2e_actual/p50_us"),
        "latency from the intended send time is never below latency from the actual send time"
    );
    assert!(result["time_series"].as_array().is_some_and(|s| !s.is_empty()), "a time series");
    assert_valid_result(result);
}

fn assert_valid_result(result: &Value) {
    let schema_text = std::fs::read_to_string(repo_path("schemas/result.schema.json")).expect("the committed schema");
    let schema: Value = serde_json::from_str(&schema_text).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let errors: Vec<String> =
        validator.iter_errors(result).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "the result does not match schemas/result.schema.json:\n{}", errors.join("\n"));
}

fn management(rabbit: &RabbitMq, method: reqwest::Method, path: &str) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        reqwest::Client::new()
            .request(method, format!("{}{path}", rabbit.management_url))
            .basic_auth(&rabbit.user, Some(&rabbit.password))
            .send()
            .await
            .expect("the management API answers")
            .status()
            .as_u16()
    })
}

fn vhost_path(vhost: &str) -> String {
    format!("/api/vhosts/{}", percent_encoding::utf8_percent_encode(vhost, percent_encoding::NON_ALPHANUMERIC))
}

fn shipped_scenario_on_rabbitmq(name: &str) {
    let Some(rabbit) = rabbitmq() else { return };
    let (output, result, vhost) =
        bench_on_rabbitmq(&rabbit, &repo_path(format!("scenarios/{name}.yaml")), &["--quiet"]);
    assert_ok_apart_from_timing_gates(&output, &result);
    assert_sound(&result);
    assert_eq!(result["scenario"]["name"], name);
    assert_eq!(result["broker"]["product"], "RabbitMQ");
    assert!(output.stdout.contains("lost 0"), "the summary names the loss: {}", output.stdout);
    assert_eq!(management(&rabbit, reqwest::Method::GET, &vhost_path(&vhost)), 404, "the run's vhost was deleted");
}

#[test]
fn bench_seed_scenario_on_rabbitmq() {
    shipped_scenario_on_rabbitmq("seed");
}

#[test]
fn bench_registration_scenario_on_rabbitmq() {
    shipped_scenario_on_rabbitmq("registration");
}

/// Topic routing in `orders.yaml`: inventory gets every order event, risk
/// only `order.created` (one key in three, used in turn by each of the
/// group's two instances).
fn assert_orders_split(result: &Value) {
    let groups = result["consumers"].as_array().expect("consumer groups");
    let group = |name: &str| groups.iter().find(|g| g["name"] == name).unwrap_or_else(|| panic!("group {name}"));
    let published = count(result, "/summary/published");
    assert_eq!(count(group("inventory"), "/expected"), published, "inventory gets every event");
    let risk = count(group("risk"), "/expected");
    assert!(risk * 3 + 2 >= published && risk * 3 <= published + 6, "risk gets a third: {risk} of {published}");
    for name in ["inventory", "risk"] {
        assert_eq!(count(group(name), "/consumed"), count(group(name), "/expected"), "{name} consumed its share");
    }
}

#[test]
fn bench_orders_scenario_on_rabbitmq() {
    let Some(rabbit) = rabbitmq() else { return };
    let (output, result, _) = bench_on_rabbitmq(&rabbit, &repo_path("scenarios/orders.yaml"), &["--quiet"]);
    assert_ok_apart_from_timing_gates(&output, &result);
    assert_sound(&result);
    assert_orders_split(&result);
}

#[test]
fn bench_max_throughput_scenario_on_rabbitmq() {
    shipped_scenario_on_rabbitmq("max-throughput");
}

fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a scenario");
    path
}

const INLINE: &str = r#"
name: gated
topology:
  vhosts:
    /:
      queues:
        gated: { durable: false }
duration: 2s
producers:
  - name: p
    exchange: ""
    routing_key: gated
    rate: 50
    message: { size: 32 }
consumers:
  - name: c
    queue: gated
"#;

/// The brokers a behaviour is checked against: the embedded broker that
/// `warren bench` starts in-process, and RabbitMQ when it answers.
fn brokers() -> Vec<Option<RabbitMq>> {
    let mut all = vec![None];
    if let Some(rabbit) = rabbitmq() {
        all.push(Some(rabbit));
    }
    all
}

fn broker_name(rabbit: Option<&RabbitMq>) -> &'static str {
    if rabbit.is_some() { "RabbitMQ" } else { "embedded" }
}

/// A short run of `scenario` on the embedded broker or on RabbitMQ.
fn bench_on(rabbit: Option<&RabbitMq>, scenario: &Path, extra: &[&str]) -> (Output, Value) {
    match rabbit {
        Some(rabbit) => {
            let (output, result, _) = bench_on_rabbitmq(rabbit, scenario, extra);
            (output, result)
        }
        None => bench_on_embedded(scenario, extra),
    }
}

#[test]
fn bench_missed_gate_exits_3_and_still_writes_the_result() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Two gates no run can meet, and the rest that every sound run meets.
    let gates = "gates:\n  throughput_min: 1000000000\n  latency_p50_max: 1us\n  latency_p999_max: 1h\n  \
                 max_lost: 0\n  max_duplicated: 0\n  max_errors: 0\n";
    let scenario = write_scenario(dir.path(), "gated.yaml", &format!("{INLINE}{gates}"));
    for rabbit in brokers() {
        let on = broker_name(rabbit.as_ref());
        let (output, result) = bench_on(rabbit.as_ref(), &scenario, &[]);
        assert_eq!(
            output.code, 3,
            "{on}: a missed gate exits 3:\nstdout:\n{}\nstderr:\n{}",
            output.stdout, output.stderr
        );
        assert_sound(&result);
        assert_eq!(failed_gates(&result), ["throughput_min", "latency_p50_max"], "{on}: {:#}", result["gates"]);
        // Each gate judged the figure it names, in the unit the result uses (µs, msgs/s, counts).
        let gate = |name: &str| {
            let gates = result["gates"].as_array().expect("gates");
            let gate = gates.iter().find(|g| g["name"] == name).unwrap_or_else(|| panic!("{on}: gate {name}"));
            (number(gate, "/threshold"), number(gate, "/actual"))
        };
        assert_eq!(gate("throughput_min"), (1e9, number(&result, "/summary/consume_rate")));
        assert_eq!(gate("latency_p50_max"), (1.0, number(&result, "/summary/latency/e2e/p50_us")));
        assert_eq!(gate("latency_p999_max"), (3.6e9, number(&result, "/summary/latency/e2e/p999_us")));
        assert_eq!(gate("max_duplicated"), (0.0, number(&result, "/summary/duplicated")));
        assert_eq!(gate("max_errors"), (0.0, number(&result, "/summary/errors")));
        for line in ["FAIL  throughput_min", "FAIL  latency_p50_max", "pass  latency_p999_max", "pass  max_errors"] {
            assert!(output.stdout.contains(line), "{on}: {line}:\n{}", output.stdout);
        }
    }
}

const NACKED: &str = r#"
name: nacked
topology:
  vhosts:
    /:
      queues:
        tiny: { durable: false, arguments: { x-max-length: 5, x-overflow: reject-publish } }
duration: 2s
producers:
  - name: p
    exchange: ""
    routing_key: tiny
    message: { size: 32 }
    confirms: { max_in_flight: 10 }
gates:
  max_lost: 1000000000
  max_errors: 0
"#;

#[test]
fn bench_errors_fail_the_max_errors_gate() {
    // The queue holds five messages and nobody consumes it: every later publish is nacked.
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "nacked.yaml", NACKED);
    for rabbit in brokers() {
        let on = broker_name(rabbit.as_ref());
        let (output, result) = bench_on(rabbit.as_ref(), &scenario, &["--quiet"]);
        assert_eq!(output.code, 3, "{on}:\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
        assert_valid_result(&result);
        let nacked = count(&result, "/summary/nacked");
        assert!(nacked > 0 && count(&result, "/summary/errors") >= nacked, "{on}: {:#}", result["summary"]);
        assert_eq!(failed_gates(&result), ["max_errors"], "{on}: {:#}", result["gates"]);
    }
}

#[test]
fn bench_json_format_prints_the_result_on_stdout() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "inline.yaml", INLINE);
    for rabbit in brokers() {
        let on = broker_name(rabbit.as_ref());
        let (output, file_result) = bench_on(rabbit.as_ref(), &scenario, &["--format", "json"]);
        assert_eq!(output.code, 0, "{on}: stderr:\n{}", output.stderr);
        let printed: Value = serde_json::from_str(&output.stdout).expect("stdout is one JSON document");
        assert_eq!(printed, file_result, "{on}: stdout holds the result file's document");
        assert_eq!(printed["schema_version"], 3);
        assert_sound(&printed);
        assert!(!output.stderr.contains("pub "), "{on}: no progress lines with --format json: {}", output.stderr);
    }
}

/// Starts `command` (a `warren bench` without `--quiet`) and waits, bounded,
/// for its first progress line: the run is under way and its Ctrl-C handler
/// installed. Returns the child and a thread collecting the rest of stderr.
fn start_bench(mut command: std::process::Command) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader};

    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("warren starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("pub ") {
                let _ = seen_tx.send(());
            }
            lines.push(line);
        }
        lines.join("\n")
    });
    let started = seen_rx.recv_timeout(Duration::from_secs(30)).is_ok();
    if !started {
        let _ = child.kill();
    }
    assert!(started, "no progress line within 30s");
    (child, reader)
}

/// Cuts warren's connections mid-run through a proxy, with reconnection
/// turned off: the run fails at once with a partial result, and still
/// deletes what it created.
fn assert_lost_connection_fails_with_a_partial_result(on: &str, broker: &RabbitMq) {
    let upstream = url::Url::parse(&broker.amqp_url).expect("an AMQP URL");
    let proxy = Proxy::start(&format!("127.0.0.1:{}", upstream.port().unwrap_or(5672)));
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "inline.yaml", &format!("{INLINE}reconnect: false\n"));
    let out = dir.path().join("result.json");
    let vhost = unique_name("warren-bench-cut");
    let mut command = warren();
    command
        .args(["bench", &scenario.display().to_string(), "--broker", &proxy.url(&broker.amqp_url)])
        .args(["--management", &broker.management_url, "--vhost", &vhost])
        .args(["--duration", "60s", "--warmup", "0s", "--out", &out.display().to_string()]);
    let (child, stderr) = start_bench(command);
    assert_eq!(proxy.connections(), 2, "{on}: the producer's and the consumer's connections");
    proxy.cut();
    let output = child.wait_with_output().expect("warren ends");
    let stderr = stderr.join().expect("the reader ends");
    assert_eq!(output.status.code(), Some(1), "{on}: a lost connection is an error: {stderr}");
    assert!(stderr.contains("the run failed"), "{on}: {stderr}");
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("a partial result")).expect("JSON");
    assert_eq!(result["status"], "failed", "{on}");
    assert!(result["error"].as_str().is_some_and(|e| !e.is_empty()), "{on}: {:#}", result["error"]);
    // The producers' and consumers' figures so far: every actor saw the error, stopped and reported.
    assert!(count(&result, "/summary/published") > 0, "{on}: the figures so far: {:#}", result["summary"]);
    assert!(count(&result, "/summary/consumed") > 0, "{on}: the figures so far: {:#}", result["summary"]);
    let measured = number(&result, "/scenario/measured_s");
    assert!(measured < 60.0, "{on}: the window ended at the failure: {measured}s");
    let printed = format!("{}{stderr}", String::from_utf8_lossy(&output.stdout));
    assert!(printed.contains(&format!("{measured:.1}s measured of 60.0s")), "{on}: {printed}");
    assert_valid_result(&result);
    assert_eq!(
        management(broker, reqwest::Method::GET, &vhost_path(&vhost)),
        404,
        "{on}: cleaned up after a failure too"
    );
}

#[test]
fn bench_lost_connection_fails_with_a_partial_result() {
    // The embedded broker of this test, since warren's own in-process one cannot be put behind a proxy.
    let embedded = embedded_broker();
    assert_lost_connection_fails_with_a_partial_result("embedded", &embedded.target);
    if let Some(rabbit) = rabbitmq() {
        assert_lost_connection_fails_with_a_partial_result("RabbitMQ", &rabbit);
    }
}

/// Cuts warren's connections mid-run through a proxy that accepts new ones:
/// the producer and the consumer connect again, the producer re-sends what
/// was unconfirmed, and the run completes with nothing lost and the outages
/// in the result.
fn assert_cut_connections_come_back(on: &str, broker: &RabbitMq) {
    let upstream = url::Url::parse(&broker.amqp_url).expect("an AMQP URL");
    let proxy = Proxy::start(&format!("127.0.0.1:{}", upstream.port().unwrap_or(5672)));
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "inline.yaml", INLINE);
    let out = dir.path().join("result.json");
    let vhost = unique_name("warren-bench-back");
    let mut command = warren();
    command
        .args(["bench", &scenario.display().to_string(), "--broker", &proxy.url(&broker.amqp_url)])
        .args(["--management", &broker.management_url, "--vhost", &vhost])
        .args(["--duration", "4s", "--warmup", "0s", "--out", &out.display().to_string()]);
    let (child, stderr) = start_bench(command);
    proxy.cut();
    let output = child.wait_with_output().expect("warren ends");
    let stderr = stderr.join().expect("the reader ends");
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("a result")).expect("JSON");
    let code = output.status.code();
    let timing_only = failed_gates(&result).iter().all(|name| is_timing(name));
    assert!(code == Some(0) || code == Some(3) && timing_only, "{on}: the run goes on: {code:?} {stderr}");
    assert_eq!(result["status"], "completed", "{on}: {stderr}");
    assert_valid_result(&result);
    let outages = result["outages"].as_array().expect("outages");
    let actors: std::collections::BTreeSet<&str> = outages.iter().filter_map(|o| o["actor"].as_str()).collect();
    assert_eq!(actors, ["consumer c#0", "producer p#0"].into(), "{on}: both lost their connection: {outages:#?}");
    assert!(outages.iter().all(|o| o["length_s"].is_f64() && o["reconnected_to"].is_string()), "{on}: {outages:#?}");
    assert_eq!(count(&result, "/summary/lost"), 0, "{on}: {:#}", result["summary"]);
    assert_eq!(count(&result, "/summary/confirmed_lost"), 0, "{on}: {:#}", result["summary"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("outages: 2 connections lost"), "{on}: the summary says so:\n{text}");
    assert_eq!(management(broker, reqwest::Method::GET, &vhost_path(&vhost)), 404, "{on}: cleaned up");
}

#[test]
fn bench_reconnects_after_its_connections_are_cut_and_loses_nothing() {
    let embedded = embedded_broker();
    assert_cut_connections_come_back("embedded", &embedded.target);
    if let Some(rabbit) = rabbitmq() {
        assert_cut_connections_come_back("RabbitMQ", &rabbit);
    }
}

/// Runs `warren bench` on a bad file and returns stderr with the temp dir replaced by `[DIR]`.
fn bench_error(file: &str, text: &str) -> String {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = write_scenario(dir.path(), file, text);
    let output = run(["bench", &path.display().to_string(), "--duration", "1s"]);
    assert_eq!(output.code, 1, "a bad scenario is an error:\n{}", output.stderr);
    output.stderr.replace(&dir.path().display().to_string(), "[DIR]")
}

const GOOD_HEAD: &str = "name: bad\ntopology: ../topologies/seed.yaml\nduration: 1s\n";

#[test]
fn bench_rejects_an_offset_on_a_queue_that_is_not_a_stream_and_a_shared_consumer_connection() {
    let head = "name: bad\ntopology: { vhosts: { /: { queues: { queue1: {} } } } }\nduration: 1s\n";
    let text = format!("{head}consumers:\n  - name: c\n    queue: queue1\n    offset: first\n");
    let stderr = bench_error("offset.yaml", &text);
    assert!(stderr.contains("consumers[0].offset: `queue1` is not a stream"), "{stderr}");
    let text = format!("{head}consumers:\n  - name: c\n    queue: queue1\n    connection: shared\n");
    let stderr = bench_error("shared.yaml", &text);
    assert!(stderr.contains("consumers[0].connection: `shared` is for producers"), "{stderr}");
}

#[test]
fn bench_rejects_the_stream_protocol_on_a_queue_that_is_not_a_stream() {
    let head = concat!(
        "name: bad\nduration: 1s\ntopology:\n  vhosts:\n    /:\n      queues:\n        queue1: {}\n",
        "        events: { durable: true, arguments: { x-queue-type: stream } }\n",
    );
    let text = format!("{head}consumers:\n  - name: c\n    queue: queue1\n    protocol: stream\n");
    insta::assert_snapshot!("stream_protocol_on_a_classic_queue_consumer", bench_error("stream-consumer.yaml", &text));
    // `warren validate` checks the same, without a broker.
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = write_scenario(dir.path(), "stream-consumer.yaml", &text);
    let output = run(["validate", &path.display().to_string()]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(
        output.stderr.contains("stream-consumer.yaml:12:15: consumers[0].protocol: `queue1` is not a stream"),
        "{}",
        output.stderr
    );
    let text =
        format!("{head}producers:\n  - name: p\n    exchange: \"\"\n    routing_key: queue1\n    protocol: stream\n");
    insta::assert_snapshot!("stream_protocol_on_a_classic_queue_producer", bench_error("stream-producer.yaml", &text));
    // A stream, but through an exchange: the stream protocol publishes to the stream itself.
    let text = format!(
        "{head}producers:\n  - name: p\n    exchange: amq.direct\n    routing_key: events\n    protocol: stream\n"
    );
    let stderr = bench_error("stream-exchange.yaml", &text);
    assert!(
        stderr.contains(
            "stream-exchange.yaml:13:15: producers[0].protocol: `protocol: stream` publishes to one stream queue"
        ),
        "{stderr}"
    );
}

#[test]
fn validate_names_what_a_stream_protocol_group_cannot_use() {
    let head = concat!(
        "name: bad\nduration: 1s\ntopology:\n  vhosts:\n    /:\n      queues:\n",
        "        events: { durable: true, arguments: { x-queue-type: stream } }\n",
    );
    let producer = "producers:\n  - { name: p, exchange: \"\", routing_key: events, protocol: stream";
    let consumer = "consumers:\n  - { name: c, queue: events, protocol: stream, offset: first";
    let cases = [
        (
            format!("{producer}, confirms: false }}"),
            "producers[0].confirms: the stream protocol confirms every message",
        ),
        (format!("{producer}, mandatory: true }}"), "producers[0].mandatory: the stream protocol returns nothing"),
        (format!("{producer}, connection: shared }}"), "producers[0].connection: `shared` is for AMQP 0-9-1 producers"),
        (
            format!("{producer}, message: {{ headers: {{ tenant: a }} }} }}"),
            "producers[0].message: a stream producer sends the body only",
        ),
        (
            format!("{consumer}, reject: {{ fraction: 0.1 }} }}"),
            "consumers[0].reject: the stream protocol has no acknowledgements",
        ),
    ];
    let dir = tempfile::tempdir().expect("a temp dir");
    for (group, expected) in cases {
        let path = write_scenario(dir.path(), "stream.yaml", &format!("{head}{group}\n"));
        let output = run(["validate", &path.display().to_string()]);
        assert_eq!(output.code, 1, "{group}: {}", output.stderr);
        assert!(output.stderr.contains("stream.yaml:9:"), "{group}: names the line: {}", output.stderr);
        assert!(output.stderr.contains(expected), "{group}: {}", output.stderr);
    }
}

#[test]
fn bench_refuses_a_stream_protocol_group_on_the_embedded_broker_as_it_refuses_streams() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let text = concat!(
        "name: stream-on-embedded\nduration: 1s\ntopology:\n  vhosts:\n    /:\n      queues:\n",
        "        events: { durable: true, arguments: { x-queue-type: stream } }\n",
        "consumers:\n  - { name: c, queue: events, protocol: stream, offset: first }\n",
    );
    let path = write_scenario(dir.path(), "stream.yaml", text);
    let output = run(["bench", &path.display().to_string(), "--broker", "embedded"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(output.stderr.contains("stream queues are not supported by the embedded broker"), "{}", output.stderr);
}

#[test]
fn bench_rejects_messages_smaller_than_the_header() {
    let text = format!("{GOOD_HEAD}producers:\n  - name: p\n    exchange: exchange1\n    message: {{ size: 8 }}\n");
    insta::assert_snapshot!(bench_error("small.yaml", &text));
}

#[test]
fn bench_rejects_unknown_fields_with_their_position() {
    let text = format!("{GOOD_HEAD}producers:\n  - name: p\n    exchange: exchange1\n    rat: 5\n");
    insta::assert_snapshot!(bench_error("typo.yaml", &text));
}

#[test]
fn bench_reports_an_unset_variable_in_its_topology_at_its_place_but_not_one_in_a_user() {
    // Users are left out of a bench: their password variables need not be set.
    let text = concat!(
        "name: unset\nduration: 1s\ntopology:\n",
        "  vhosts:\n    /:\n      queues:\n        \"${WARREN_TEST_NEVER_SET}\": {}\n",
        "  users:\n    u: { password: \"${WARREN_TEST_NEVER_SET_EITHER}\", tags: [] }\n",
        "producers: [ { name: p, exchange: amq.direct } ]\n",
    );
    insta::assert_snapshot!(bench_error("unset.yaml", text));
}

#[test]
fn bench_rejects_bad_durations() {
    let text = "name: bad\ntopology: t.yaml\nduration: soon\nproducers: []\nconsumers: []\n";
    insta::assert_snapshot!(bench_error("duration.yaml", text));
}

#[test]
fn bench_rejects_exchanges_the_topology_lacks() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let topology = repo_path("topologies/seed.yaml");
    let text = format!(
        "name: bad\ntopology: {}\nduration: 1s\nproducers:\n  - name: p\n    exchange: exchange2\n",
        topology.display()
    );
    let path = write_scenario(dir.path(), "reference.yaml", &text);
    let output = run(["bench", &path.display().to_string()]);
    assert_eq!(output.code, 1);
    let stderr = output.stderr.replace(&dir.path().display().to_string(), "[DIR]");
    insta::assert_snapshot!(stderr);
}

#[test]
fn bench_rejects_a_multiple_ack_beyond_the_prefetch() {
    let text = format!(
        "{GOOD_HEAD}consumers:\n  - name: c\n    queue: queue1\n    prefetch: 10\n    ack: {{ multiple_every: 50 }}\n"
    );
    insta::assert_snapshot!(bench_error("ack.yaml", &text));
}

#[test]
fn bench_rejects_malformed_yaml() {
    let text = format!("{GOOD_HEAD}producers:\n  - name: p\n    exchange: a: b\n");
    insta::assert_snapshot!(bench_error("syntax.yaml", &text));
}

/// A short run of `scenario` on the embedded broker (the default when no broker is named).
fn bench_on_embedded(scenario: &Path, extra: &[&str]) -> (Output, Value) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("result.json");
    let mut args: Vec<String> = vec![
        "bench".into(),
        scenario.display().to_string(),
        "--duration".into(),
        "2s".into(),
        "--warmup".into(),
        "0s".into(),
        "--drain".into(),
        "60s".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let output = run(&args);
    let text = std::fs::read_to_string(&out).unwrap_or_else(|error| {
        panic!("no result file ({error}):\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr)
    });
    (output, serde_json::from_str(&text).expect("the result file is JSON"))
}

fn shipped_scenario_on_embedded(name: &str, extra: &[&str]) -> Value {
    let quiet: Vec<&str> = extra.iter().copied().chain(["--quiet"]).collect();
    let (output, result) = bench_on_embedded(&repo_path(format!("scenarios/{name}.yaml")), &quiet);
    assert_ok_apart_from_timing_gates(&output, &result);
    assert_sound(&result);
    assert_eq!(result["broker"]["embedded"], true);
    assert_eq!(result["broker"]["url"], "embedded");
    // Regression: the embedded broker hung up before the client after
    // `close-ok`, and lapin logged every clean close as a broken connection.
    assert!(!output.stderr.contains("ERROR"), "a clean run logs no errors:\n{}", output.stderr);
    result
}

#[test]
fn bench_seed_scenario_on_embedded_with_a_scaled_rate() {
    let result = shipped_scenario_on_embedded("seed", &["--rate-scale", "0.5"]);
    // seed.yaml publishes 500 msgs/s from one instance; --rate-scale halves the schedule.
    assert_eq!(result["producers"][0]["target_rate"], 250.0);
    assert_eq!(result["scenario"]["rate_scale"], 0.5);
    assert_eq!(result["scenario"]["duration_s"], 2.0, "--duration overrides the file's 10s");
    assert_eq!(result["scenario"]["warmup_s"], 0.0, "--warmup overrides the file's 2s");
}

#[test]
fn bench_registration_scenario_on_embedded() {
    let result = shipped_scenario_on_embedded("registration", &[]);
    // Both worker queues get every registration.
    assert_eq!(count(&result, "/summary/expected"), 2 * count(&result, "/summary/published"));
}

#[test]
fn bench_orders_scenario_on_embedded() {
    let result = shipped_scenario_on_embedded("orders", &[]);
    assert_orders_split(&result);
}

#[test]
fn bench_max_throughput_scenario_on_embedded() {
    let result = shipped_scenario_on_embedded("max-throughput", &[]);
    // The client's CPU in the window and the whole process's are both measured (which threads
    // count is `bench::machine`'s unit test); the per-million figure is the one divided by the other.
    let client = number(&result, "/generator/window_cpu_seconds");
    assert!(client > 0.0, "the client's threads did the work of the window: {client}s");
    assert!(result["generator"]["cpu_seconds"].is_f64(), "{:#}", result["generator"]);
    let messages = count(&result, "/generator/window_messages");
    assert!(messages >= count(&result, "/summary/published"), "the window moved what it published");
    let per_million = number(&result, "/generator/window_cpu_seconds_per_million");
    assert!((per_million - client / messages as f64 * 1e6).abs() < 1e-6, "{per_million} per million");
    assert!(
        number(&result, "/generator/busiest_thread_share") > 0.0,
        "the actors' threads were busy some of the window"
    );
    // A producer without a rate waits on the broker's confirms: the broker sets its pace, by design.
    assert!(number(&result, "/producers/0/broker_wait/confirm_window_s") > 0.0, "{:#}", result["producers"][0]);
}

#[test]
fn bench_ctrl_c_stops_producers_drains_and_writes_the_result() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "inline.yaml", INLINE);
    let out = dir.path().join("result.json");
    let mut command = warren();
    command
        .args(["bench", &scenario.display().to_string(), "--duration", "60s", "--warmup", "0s"])
        .args(["--out", &out.display().to_string()]);
    let (child, reader) = start_bench(command);
    let status =
        std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("warren ends");
    let lines = reader.join().expect("the reader ends");
    assert_eq!(output.status.code(), Some(1), "an interrupted run is not a success: {lines}");
    assert!(lines.contains("interrupted"), "{lines}");
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("a result")).expect("JSON");
    assert_eq!(result["status"], "interrupted");
    assert_eq!(count(&result, "/summary/lost"), 0, "consumers drained what was published before Ctrl-C");
    assert_eq!(count(&result, "/summary/consumed"), count(&result, "/summary/expected"));
    assert!(number(&result, "/scenario/duration_s") == 60.0 && number(&result, "/drain/seconds") < 60.0);
    // The summary says how long was measured, not how long was planned.
    let measured = number(&result, "/scenario/measured_s");
    assert!(measured > 0.0 && measured < 60.0, "the window ended at Ctrl-C: {measured}s");
    let printed = format!("{}{lines}", String::from_utf8_lossy(&output.stdout));
    assert!(printed.contains(&format!("{measured:.1}s measured of 60.0s")), "{printed}");
    assert_valid_result(&result);
}

const REJECTS: &str = r#"
name: rejects
topology:
  vhosts:
    /:
      queues:
        rejects: { durable: false }
duration: 2s
producers:
  - name: p
    exchange: ""
    routing_key: rejects
    rate: 200
    message: { size: 32 }
consumers:
  - name: c
    queue: rejects
    prefetch: 10
    reject: { fraction: 0.1, requeue: REQUEUE }
"#;

/// Rejected messages are not lost: requeued ones come back flagged
/// redelivered (not counted as duplicates); dropped ones did arrive once.
fn assert_rejects(result: &Value, requeue: bool) {
    assert_sound(result);
    assert!(count(result, "/summary/rejected") > 0, "the consumer rejected some messages");
    if requeue {
        assert!(count(result, "/summary/redelivered") > 0, "requeued messages come back");
    } else {
        assert_eq!(count(result, "/summary/redelivered"), 0, "dropped messages do not come back");
    }
}

#[test]
fn bench_rejected_messages_are_redelivered_or_dropped_but_never_lost() {
    for requeue in [true, false] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let text = REJECTS.replace("REQUEUE", &requeue.to_string());
        let scenario = write_scenario(dir.path(), "rejects.yaml", &text);
        let (output, result) = bench_on_embedded(&scenario, &[]);
        assert_eq!(output.code, 0, "embedded, requeue {requeue}:\n{}\n{}", output.stdout, output.stderr);
        assert_rejects(&result, requeue);
        if let Some(rabbit) = rabbitmq() {
            let (output, result, _) = bench_on_rabbitmq(&rabbit, &scenario, &["--quiet"]);
            assert_eq!(output.code, 0, "RabbitMQ, requeue {requeue}:\n{}\n{}", output.stdout, output.stderr);
            assert_rejects(&result, requeue);
        }
    }
}

#[test]
fn bench_message_limit_stops_each_producer_and_shared_connections_work() {
    let text = r#"
name: limited
topology:
  vhosts:
    /:
      exchanges:
        fan: { type: fanout, durable: false }
      queues:
        left: { durable: false }
        right: { durable: false }
      bindings:
        - { exchange: fan, queue: left }
        - { exchange: fan, queue: right }
duration: 30s
messages: 100
producers:
  - name: p
    instances: 2
    exchange: fan
    connection: shared
    message: { size: 16 }
consumers:
  - name: l
    queue: left
    ack: { multiple_every: 7 }
    prefetch: 20
  - name: r
    queue: right
    ack: auto
"#;
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "limited.yaml", text);
    let (output, result) = bench_on_embedded(&scenario, &[]);
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    assert_sound(&result);
    // Two producers stop at 100 messages each; the fanout gives both queues all 200.
    assert_eq!(count(&result, "/summary/published"), 200);
    assert_eq!(count(&result, "/summary/expected"), 400);
    assert_eq!(count(&result, "/summary/consumed"), 400);
    let groups = result["consumers"].as_array().expect("consumer groups");
    assert!(groups.iter().all(|g| g["consumed"] == 200), "{groups:#?}");
}

/// A fixed-rate producer with a small confirm window against a broker that
/// stalls: the embedded broker blocks publishers (`connection.blocked`) while
/// its queued messages exceed its memory limit, and the queue's TTL empties
/// it a second later, over and over.
const STALLED: &str = r#"
name: stalled
topology:
  vhosts:
    /:
      queues:
        held: { durable: false, arguments: { x-message-ttl: 1000 } }
duration: 3s
warmup: 0s
producers:
  - name: steady
    exchange: ""
    routing_key: held
    rate: 100
    message: { size: 4096 }
    confirms: { max_in_flight: 4 }
"#;

#[test]
fn bench_blames_the_broker_not_warren_for_time_spent_blocked() {
    // Sixteen 4 KiB messages fill it.
    let broker = embedded_broker_with(warren_broker::BrokerConfig { memory_limit: 64 * 1024, ..Default::default() });
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "stalled.yaml", STALLED);
    let out = dir.path().join("result.json");
    let mut args = vec!["bench".to_owned(), scenario.display().to_string(), "--quiet".into()];
    args.extend(["--drain".into(), "10s".into(), "--out".into(), out.display().to_string()]);
    args.extend(broker.args());
    let output = run(&args);
    assert_eq!(output.code, 0, "stdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("a result")).expect("JSON");
    assert_valid_result(&result);
    assert_eq!(result["schema_version"], 3);

    // The producer fell far behind its schedule, and the result says it waited on the broker.
    let group = &result["producers"][0];
    let scheduled = number(&result, "/producers/0/target_rate") * number(&result, "/scenario/duration_s");
    assert!((count(&result, "/summary/published") as f64) < scheduled / 2.0, "held back: {group:#}");
    assert!(number(group, "/broker_wait/blocked_s") > 0.0, "blocked time is measured: {group:#}");
    assert_eq!(result["broker_pace"]["paced"], true, "{:#}", result["broker_pace"]);
    let reasons: Vec<&str> =
        result["broker_pace"]["reasons"].as_array().expect("reasons").iter().filter_map(Value::as_str).collect();
    assert!(
        reasons.len() == 1
            && reasons[0].starts_with("producer group `steady` published ")
            && reasons[0].contains("because it waited on the broker")
            && reasons[0].contains("connection blocked"),
        "{reasons:?}"
    );
    // The shortfall is not warren's. (A loaded machine may still make warren late by itself
    // after a wait, or keep one of its threads busy: those are its own, and say so.)
    let own: Vec<&str> =
        result["generator"]["reasons"].as_array().expect("reasons").iter().filter_map(Value::as_str).collect();
    assert!(
        own.iter().all(|r| r.contains("sent late by itself") || r.starts_with("a client thread")),
        "the broker's pace is not blamed on warren: {own:?}"
    );
    assert!(output.stdout.contains("BROKER-PACED: producers waited on the broker"), "{}", output.stdout);
    // Regression: with no consumers, an empty sum of rates printed as `-0/s`.
    assert!(output.stdout.contains("consumed 0 of 0 expected (0/s, 0 B/s)"), "{}", output.stdout);
    assert_eq!(output.stdout.contains("GENERATOR-LIMITED"), !own.is_empty(), "{}", output.stdout);
}

#[test]
fn warren_broker_names_the_broker_unless_broker_is_given() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("result.json");
    // The scenario names a broker nothing answers at: whoever wins over it must be used.
    let unreachable = "amqp://guest:guest@127.0.0.1:1/%2f";
    let scenario = write_scenario(dir.path(), "named.yaml", &format!("broker: {unreachable}\n{INLINE}"));
    let bench = |extra: &[&str], env: &[(&str, &str)]| -> Value {
        let mut args = vec!["bench", scenario.to_str().expect("a UTF-8 path"), "--duration", "1s", "--warmup", "0s"];
        args.extend(["--quiet", "--out", out.to_str().expect("a UTF-8 path")]);
        args.extend(extra);
        let output = run_with_env(&args, env);
        assert_eq!(output.code, 0, "{env:?} {extra:?}:\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
        serde_json::from_str(&std::fs::read_to_string(&out).expect("a result")).expect("JSON")
    };

    // A broker of this test's own, at a URL: WARREN_BROKER (and WARREN_MANAGEMENT) pick it.
    let broker = embedded_broker();
    let env =
        [("WARREN_BROKER", broker.target.amqp_url.as_str()), ("WARREN_MANAGEMENT", &broker.target.management_url)];
    let result = bench(&[], &env);
    assert_eq!(result["broker"]["url"], broker.target.amqp_url.replace("guest:guest@", "guest:***@"));
    assert_eq!(result["broker"]["embedded"], false);
    assert_sound(&result);

    // `embedded` in the variable: warren's in-process broker.
    let result = bench(&[], &[("WARREN_BROKER", "embedded")]);
    assert_eq!(result["broker"]["url"], "embedded");

    // --broker wins over the variable.
    let result = bench(&["--broker", "embedded"], &[("WARREN_BROKER", unreachable)]);
    assert_eq!(result["broker"]["url"], "embedded");

    if let Some(rabbit) = rabbitmq() {
        let vhost = unique_name("warren-bench-env");
        let result = bench(&["--vhost", &vhost], &[("WARREN_BROKER", rabbit.amqp_url.as_str())]);
        assert_eq!(result["broker"]["product"], "RabbitMQ");
        assert_eq!(result["scenario"]["vhost"], vhost.as_str());
        assert_sound(&result);
    }
}

/// A producer faster than its consumer: a backlog builds, then drains.
const BACKLOG: &str = r#"
name: backlog
topology:
  vhosts:
    /:
      queues:
        backlog: { durable: false }
        idle: { durable: false }
duration: 2s
producers:
  - name: p
    exchange: ""
    routing_key: backlog
    rate: 800
    message: { size: 32 }
consumers:
  - name: slow
    queue: backlog
    prefetch: 1
    work: 10ms
"#;

#[test]
fn bench_result_holds_the_brokers_view_of_its_queues() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "backlog.yaml", BACKLOG);
    for rabbit in brokers() {
        let on = broker_name(rabbit.as_ref());
        let (output, result) = bench_on(rabbit.as_ref(), &scenario, &[]);
        assert_eq!(output.code, 0, "{on}:\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
        assert_sound(&result);
        let view = &result["broker_view"];
        let samples = view["samples"].as_array().unwrap_or_else(|| panic!("{on}: broker samples: {result:#}"));
        // Once a second over a run of several seconds (2 s, then a drain of about 14 s).
        assert!(samples.len() >= 3, "{on}: {view:#}");
        let names: Vec<&str> = samples[samples.len() - 1]["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .filter_map(|q| q["name"].as_str())
            .collect();
        assert!(
            names.contains(&"backlog") && names.contains(&"idle"),
            "{on}: every queue of the run's vhost: {names:?}"
        );
        // The consumer takes 100 msgs/s of 800: hundreds wait at some moment. RabbitMQ's queue
        // figures come from a statistics tick every 5 s, passed on by the management plugin's
        // own collector: on a busy machine a queue's first figures were seen 9 s after it was
        // declared, so the backlog lasts about 16 s.
        assert!(count(view, "/peak_messages") > 100, "{on}: {view:#}");
        assert_eq!(view["peak_queue"]["name"], "backlog", "{on}");
        assert!(output.stdout.contains("broker: peak "), "{on}: the summary says it:\n{}", output.stdout);
        assert!(count(view, "/peak_memory_bytes") > 0, "{on} reports its memory: {view:#}");
        assert!(samples.iter().any(|s| s["connections"].as_u64() >= Some(2)), "{on}: the run's connections: {view:#}");
        assert!(samples.iter().any(|s| s["channels"].as_u64() >= Some(2)), "{on}: the run's channels: {view:#}");
        if rabbit.is_some() {
            assert!(view["cpu_seconds"].is_null(), "a broker in another process: no CPU figure");
        } else {
            assert!(number(view, "/cpu_seconds") > 0.0, "the in-process broker's CPU: {view:#}");
        }
    }
}
