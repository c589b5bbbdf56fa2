//! `warren bench`: every shipped scenario runs short and is judged as a user
//! would judge it (nothing lost, counts match, percentiles ordered, the result
//! validates against the committed schema); gates exit 3; bad scenario files
//! name file, line and column.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{RabbitMq, embedded_broker_with, rabbitmq, repo_path, run, unique_name, warren};

/// A short run of `scenario` against RabbitMQ in a vhost of its own; returns the result file.
fn bench_on_rabbitmq(rabbit: &RabbitMq, scenario: &Path, extra: &[&str]) -> (crate::util::Output, Value, String) {
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

fn management_json(rabbit: &RabbitMq, path: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let text = reqwest::Client::new()
            .get(format!("{}{path}", rabbit.management_url))
            .basic_auth(&rabbit.user, Some(&rabbit.password))
            .send()
            .await
            .expect("the management API answers")
            .text()
            .await
            .expect("a body");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    })
}

fn vhost_path(vhost: &str) -> String {
    format!("/api/vhosts/{}", percent_encoding::utf8_percent_encode(vhost, percent_encoding::NON_ALPHANUMERIC))
}

/// The run succeeded, or exited 3 only because a timing gate (latency,
/// throughput) was missed: the shipped scenarios carry such gates, and a
/// loaded test machine must not turn them into a flaky test. Loss and error
/// gates still count.
fn assert_ok_apart_from_timing_gates(output: &crate::util::Output, result: &Value) {
    let failed: Vec<&str> = result["gates"]
        .as_array()
        .map(|gates| gates.iter().filter(|g| g["passed"] == false).filter_map(|g| g["name"].as_str()).collect())
        .unwrap_or_default();
    let timing_only = failed.iter().all(|name| name.starts_with("latency_") || *name == "throughput_min");
    let acceptable = output.code == 0 || (output.code == 3 && !failed.is_empty() && timing_only);
    assert!(
        acceptable,
        "warren bench exited {} (failed gates: {failed:?}):\nstdout:\n{}\nstderr:\n{}",
        output.code, output.stdout, output.stderr
    );
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

#[test]
fn bench_orders_scenario_on_rabbitmq() {
    let Some(rabbit) = rabbitmq() else { return };
    let (output, result, _) = bench_on_rabbitmq(&rabbit, &repo_path("scenarios/orders.yaml"), &["--quiet"]);
    assert_ok_apart_from_timing_gates(&output, &result);
    assert_sound(&result);
    // Topic routing: inventory gets every order event, risk only `order.created` (one key in three).
    let groups = result["consumers"].as_array().expect("consumer groups");
    let expected =
        |name: &str| groups.iter().find(|g| g["name"] == name).and_then(|g| g["expected"].as_u64()).expect("the group");
    let published = count(&result, "/summary/published");
    assert_eq!(expected("inventory"), published);
    assert!(expected("risk") * 3 >= published - 2 && expected("risk") * 3 <= published + 6, "risk gets a third");
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

#[test]
fn bench_missed_gate_exits_3_and_still_writes_the_result() {
    let Some(rabbit) = rabbitmq() else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let text = format!("{INLINE}gates:\n  throughput_min: 1000000000\n  max_lost: 0\n");
    let scenario = write_scenario(dir.path(), "gated.yaml", &text);
    let (output, result, _) = bench_on_rabbitmq(&rabbit, &scenario, &[]);
    assert_eq!(output.code, 3, "a missed gate exits 3:\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    assert_sound(&result);
    let gates = result["gates"].as_array().expect("gates");
    let verdict = |name: &str| gates.iter().find(|g| g["name"] == name).map(|g| g["passed"].clone());
    assert_eq!(verdict("throughput_min"), Some(Value::Bool(false)));
    assert_eq!(verdict("max_lost"), Some(Value::Bool(true)));
    assert!(output.stdout.contains("FAIL  throughput_min"), "{}", output.stdout);
}

#[test]
fn bench_json_format_prints_the_result_on_stdout() {
    let Some(rabbit) = rabbitmq() else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "inline.yaml", INLINE);
    let (output, file_result, _) = bench_on_rabbitmq(&rabbit, &scenario, &["--format", "json"]);
    assert_eq!(output.code, 0, "stderr:\n{}", output.stderr);
    let printed: Value = serde_json::from_str(&output.stdout).expect("stdout is one JSON document");
    assert_eq!(printed["summary"]["published"], file_result["summary"]["published"]);
    assert_eq!(printed["schema_version"], 2);
    assert!(!output.stderr.contains("pub "), "no progress lines with --format json: {}", output.stderr);
}

#[test]
fn bench_lost_connection_fails_with_a_partial_result() {
    let Some(rabbit) = rabbitmq() else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "inline.yaml", INLINE);
    let out = dir.path().join("result.json");
    let vhost = unique_name("warren-bench-cut");
    let child = warren()
        .args(["bench", &scenario.display().to_string(), "--broker", &rabbit.amqp_url, "--vhost", &vhost])
        .args(["--duration", "60s", "--warmup", "0s", "--quiet", "--out", &out.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warren starts");
    // Wait (bounded) for the consumer's connection to show up, then close it as a broker restart would.
    let deadline = Instant::now() + Duration::from_secs(30);
    let name = loop {
        let connections = management_json(&rabbit, "/api/connections?columns=name,vhost");
        let found = connections.as_array().and_then(|all| {
            all.iter().find(|c| c["vhost"] == vhost.as_str()).and_then(|c| c["name"].as_str().map(str::to_owned))
        });
        if let Some(name) = found {
            break name;
        }
        assert!(Instant::now() < deadline, "warren's connections never appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    let path = format!(
        "/api/connections/{}",
        percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
    );
    assert_eq!(management(&rabbit, reqwest::Method::DELETE, &path), 204);
    let output = child.wait_with_output().expect("warren ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "a lost connection is an error: {stderr}");
    assert!(stderr.contains("the run failed"), "{stderr}");
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("a partial result")).expect("JSON");
    assert_eq!(result["status"], "failed");
    assert!(result["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_valid_result(&result);
    assert_eq!(management(&rabbit, reqwest::Method::GET, &vhost_path(&vhost)), 404, "cleaned up after a failure too");
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
fn bench_on_embedded(scenario: &Path, extra: &[&str]) -> (crate::util::Output, Value) {
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
        "--quiet".into(),
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
    let (output, result) = bench_on_embedded(&repo_path(format!("scenarios/{name}.yaml")), extra);
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
    shipped_scenario_on_embedded("orders", &[]);
}

#[test]
fn bench_max_throughput_scenario_on_embedded() {
    let result = shipped_scenario_on_embedded("max-throughput", &[]);
    // The client's own CPU leaves the in-process broker out; the whole process's includes it.
    let client = number(&result, "/generator/window_cpu_seconds");
    let process = number(&result, "/generator/cpu_seconds");
    assert!(client > 0.0 && client < process, "client {client}s, whole process {process}s");
    let messages = count(&result, "/generator/window_messages");
    assert!(messages >= count(&result, "/summary/published"), "the window moved what it published");
    let per_million = number(&result, "/generator/window_cpu_seconds_per_million");
    assert!((per_million - client / messages as f64 * 1e6).abs() < 1e-6, "{per_million} per million");
    // The actors' threads were busy some of the window, and no thread can be busy much longer than it.
    let busiest = number(&result, "/generator/busiest_thread_share");
    assert!(busiest > 0.0 && busiest < 1.1, "busiest client thread: {busiest} of the window");
}

#[test]
fn bench_ctrl_c_stops_producers_drains_and_writes_the_result() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().expect("a temp dir");
    let scenario = write_scenario(dir.path(), "inline.yaml", INLINE);
    let out = dir.path().join("result.json");
    let mut child = warren()
        .args(["bench", &scenario.display().to_string(), "--duration", "60s", "--warmup", "0s"])
        .args(["--out", &out.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warren starts");
    // The plain progress line shows the run is under way (and the Ctrl-C handler installed).
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
        lines
    });
    let started = seen_rx.recv_timeout(Duration::from_secs(30)).is_ok();
    if !started {
        let _ = child.kill();
    }
    assert!(started, "no progress line within 30s");
    let status =
        std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("warren ends");
    let lines = reader.join().expect("the reader ends").join("\n");
    assert_eq!(output.status.code(), Some(1), "an interrupted run is not a success: {lines}");
    assert!(lines.contains("interrupted"), "{lines}");
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("a result")).expect("JSON");
    assert_eq!(result["status"], "interrupted");
    assert_eq!(count(&result, "/summary/lost"), 0, "consumers drained what was published before Ctrl-C");
    assert_eq!(count(&result, "/summary/consumed"), count(&result, "/summary/expected"));
    assert!(number(&result, "/scenario/duration_s") == 60.0 && number(&result, "/drain/seconds") < 60.0);
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
    assert_eq!(result["schema_version"], 2);

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
    assert_eq!(output.stdout.contains("GENERATOR-LIMITED"), !own.is_empty(), "{}", output.stdout);
}
