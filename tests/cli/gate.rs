//! The CI gate and reports: `compare`, `bench --baseline/--save-baseline/--repeat/--junit/--shard/--start-at`,
//! `report --html` (checked in headless Chromium), `report A B`, and `report merge`.
//!
//! Runs are short and on the embedded broker (each `warren` process has its
//! own), so they need nothing installed but Chromium for the HTML check.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde_json::Value;

use crate::util::{
    Output, assert_ok_apart_from_timing_gates, is_timing, rabbitmq, repo_path, run, unique_name, warren,
};

/// A scenario with two instances per group, so two shards each get one.
const SHARDED: &str = r#"
name: sharded
topology:
  vhosts:
    /:
      queues:
        work: { durable: false }
duration: 2s
warmup: 0s
drain: 5s
producers:
  - name: web
    instances: 2
    exchange: ""
    routing_key: work
    rate: 200
    message: { size: 64 }
    confirms: { max_in_flight: 64 }
consumers:
  - name: worker
    instances: 2
    queue: work
    prefetch: 10
    ack: manual
gates:
  throughput_min: 100
"#;

fn bench(dir: &Path, name: &str, scenario: &Path, extra: &[&str]) -> (Output, Value, PathBuf) {
    let out = dir.join(format!("{name}.json"));
    let mut args: Vec<String> = vec!["bench".into(), scenario.display().to_string()];
    if !extra.contains(&"--duration") {
        args.extend(["--duration".into(), "2s".into()]);
    }
    args.extend(["--warmup".into(), "0s".into(), "--quiet".into(), "--out".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let output = run(&args);
    let text = std::fs::read_to_string(&out).unwrap_or_else(|error| {
        panic!("no result file ({error}):\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr)
    });
    (output, serde_json::from_str(&text).expect("the result is JSON"), out)
}

fn seed() -> PathBuf {
    repo_path("scenarios/seed.yaml")
}

/// The seed scenario without its latency gate: tests run in parallel on a
/// busy machine, and the verdicts they check must not hang on its latency.
fn seed_without_latency_gate(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(seed()).expect("the seed scenario");
    let topology = repo_path("topologies/seed.yaml");
    let text = text
        .replace("topology: ../topologies/seed.yaml", &format!("topology: {}", topology.display()))
        .replace("  latency_p99_max: 250ms\n", "");
    assert!(!text.contains("latency_p99_max") && text.contains("max_lost: 0"), "{text}");
    let path = dir.join("seed.yaml");
    std::fs::write(&path, text).expect("writes the scenario");
    path
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).expect("encodes")).expect("writes");
}

fn decode(text: &str) -> Histogram<u64> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).expect("base64");
    Deserializer::new().deserialize(&mut bytes.as_slice()).expect("an HdrHistogram")
}

/// Parses JUnit XML with a real XML parser; returns (test case name, failed) in order.
fn junit_cases(path: &Path) -> Vec<(String, bool)> {
    use quick_xml::events::Event;
    let text = std::fs::read_to_string(path).expect("the JUnit file exists");
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut cases: Vec<(String, bool)> = Vec::new();
    let mut roots = 0;
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("{} is not well-formed XML: {e}\n{text}", path.display())) {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testsuites" => roots += 1,
                b"testcase" => {
                    let name = e
                        .try_get_attribute("name")
                        .expect("attributes parse")
                        .expect("a test case has a name")
                        .unescape_value()
                        .expect("the name unescapes")
                        .into_owned();
                    cases.push((name, false));
                }
                b"failure" => cases.last_mut().expect("a failure inside a test case").1 = true,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(roots, 1, "one <testsuites> root");
    cases
}

#[test]
fn compare_passes_the_same_run_and_exits_3_on_a_throughput_drop_naming_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (output, result, base) = bench(dir.path(), "base", &seed_without_latency_gate(dir.path()), &[]);
    assert_eq!(output.code, 0, "{}", output.stderr);

    let same = run(["compare", &base.display().to_string(), &base.display().to_string()]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    assert!(same.stdout.contains("consumed msgs/s"), "{}", same.stdout);
    assert!(same.stdout.contains("PASSED"), "{}", same.stdout);

    let mut slower = result.clone();
    let rate = slower["summary"]["consume_rate"].as_f64().expect("a rate");
    slower["summary"]["consume_rate"] = Value::from(rate * 0.7);
    let slower_path = dir.path().join("slower.json");
    write_json(&slower_path, &slower);
    let junit = dir.path().join("compare.xml");
    let out = run([
        "compare",
        &base.display().to_string(),
        &slower_path.display().to_string(),
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("regression against the baseline: consumed msgs/s -30.0%"), "{}", out.stdout);
    let cases = junit_cases(&junit);
    let failed: Vec<&str> = cases.iter().filter(|(_, f)| *f).map(|(n, _)| n.as_str()).collect();
    assert_eq!(failed, vec!["consumed msgs/s"], "{cases:?}");
    let gates = result["gates"].as_array().expect("gates").len();
    assert!(cases.len() >= 3 + gates, "each figure and each gate is a test case: {cases:?}");
    assert!(cases.iter().any(|(n, _)| n == "max_lost"));

    // A 30% drop passes when the tolerance allows it; JSON output says why for scripts.
    let lenient = run([
        "compare",
        &base.display().to_string(),
        &slower_path.display().to_string(),
        "--max-throughput-drop",
        "40%",
        "--format",
        "json",
    ]);
    assert_eq!(lenient.code, 0, "{}{}", lenient.stdout, lenient.stderr);
    let json: Value = serde_json::from_str(&lenient.stdout).expect("JSON on stdout");
    assert_eq!(json["failed"], false);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("schemas/compare.schema.json")).expect("the committed schema"),
    )
    .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "compare --format json does not match its schema:\n{}", errors.join("\n"));
    assert_eq!(json["figures"][0]["name"], "consumed msgs/s");
    assert_eq!(json["figures"][0]["verdict"], "ok");
}

#[test]
fn compare_refuses_different_scenarios_and_unreadable_files_with_exit_1() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (output, result, base) = bench(dir.path(), "base", &seed(), &[]);
    assert_ok_apart_from_timing_gates(&output, &result);
    let mut other = result.clone();
    other["scenario"]["name"] = Value::from("orders");
    let other_path = dir.path().join("other.json");
    write_json(&other_path, &other);
    let out = run(["compare", &base.display().to_string(), &other_path.display().to_string()]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("the baseline ran scenario `seed` but the result ran `orders`"), "{}", out.stderr);

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\n  \"schema_version\": 1,\n  oops\n}").expect("writes");
    let out = run(["compare", &base.display().to_string(), &broken.display().to_string()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(&format!("{}:3:", broken.display())), "file and line named: {}", out.stderr);
}

#[test]
fn bench_saves_a_baseline_then_compares_against_it_and_writes_junit() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let baseline = dir.path().join("baseline.json");
    let gentle = seed_without_latency_gate(dir.path());
    let (first, _, _) = bench(dir.path(), "first", &gentle, &["--save-baseline", &baseline.display().to_string()]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(baseline.exists(), "--save-baseline wrote the baseline");

    let junit = dir.path().join("bench.xml");
    // Latency on a shared two-core machine is noisy; this checks the wiring, not the machine.
    let (second, _, _) = bench(
        dir.path(),
        "second",
        &gentle,
        &[
            "--baseline",
            &baseline.display().to_string(),
            "--max-latency-rise",
            "100000%",
            "--max-throughput-drop",
            "50%",
            "--junit",
            &junit.display().to_string(),
        ],
    );
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert!(second.stdout.contains("against baseline"), "the comparison is printed: {}", second.stdout);
    let cases = junit_cases(&junit);
    let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"consumed msgs/s") && names.contains(&"max_lost"), "{names:?}");
    assert!(cases.iter().all(|(_, failed)| !failed), "{cases:?}");

    // Without --baseline the JUnit report holds the scenario's gates; a missed gate is a failed case and exit 3.
    let junit = dir.path().join("gates.xml");
    let (third, result, _) =
        bench(dir.path(), "third", &seed(), &["--rate-scale", "0.5", "--junit", &junit.display().to_string()]);
    let cases = junit_cases(&junit);
    let gates: Vec<(String, bool)> = result["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .map(|g| (g["name"].as_str().unwrap_or_default().to_owned(), g["passed"] == false))
        .collect();
    assert_eq!(cases, gates);
    // The seed's latency gate may be missed on a loaded machine; nothing else may fail.
    assert_ok_apart_from_timing_gates(&third, &result);
}

#[test]
fn repeat_reports_the_median_run_and_every_run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (output, result, _) =
        bench(dir.path(), "repeat", &seed_without_latency_gate(dir.path()), &["--repeat", "3", "--duration", "1s"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let runs = result["repeat"]["runs"].as_array().expect("repeat.runs");
    assert_eq!(runs.len(), 3);
    let median = result["repeat"]["median_run"].as_u64().expect("median_run") as usize;
    let mut rates: Vec<f64> = runs.iter().map(|r| r["consume_rate"].as_f64().expect("rate")).collect();
    assert_eq!(
        rates[median - 1],
        result["summary"]["consume_rate"].as_f64().expect("rate"),
        "the result is the median run"
    );
    rates.sort_by(f64::total_cmp);
    assert_eq!(rates[1], result["summary"]["consume_rate"].as_f64().expect("rate"));
}

/// Runs both halves of [`SHARDED`] at once, starting together; `extra(k)` adds arguments to shard k.
fn run_two_shards(dir: &Path, extra: &dyn Fn(u32) -> Vec<String>) -> Vec<(PathBuf, Value)> {
    let scenario = dir.join("sharded.yaml");
    std::fs::write(&scenario, SHARDED).expect("writes the scenario");
    let start_at = std::time::SystemTime::now() + std::time::Duration::from_secs(3);
    let start_at = humantime::format_rfc3339_millis(start_at).to_string();
    let children: Vec<(PathBuf, std::process::Child)> = (1..=2)
        .map(|k| {
            let out = dir.join(format!("shard-{k}.json"));
            let child = warren()
                .args(["bench", &scenario.display().to_string(), "--quiet", "--shard", &format!("{k}/2")])
                .args(["--start-at", &start_at, "--out", &out.display().to_string()])
                .args(extra(k))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("warren starts");
            (out, child)
        })
        .collect();
    let mut shards = Vec::new();
    for (index, (out, child)) in children.into_iter().enumerate() {
        let output = child.wait_with_output().expect("the shard finishes");
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("a result")).expect("JSON");
        assert_eq!(result["shard"], serde_json::json!({ "index": index + 1, "count": 2 }));
        assert_eq!(result["producers"][0]["instances"], 1, "each shard runs half of every group");
        assert_eq!(result["consumers"][0]["instances"], 1);
        assert_eq!(result["summary"]["lost"], 0);
        shards.push((out, result));
    }
    shards
}

/// Merges the shards and checks the merge is exact: counts add up, and the
/// percentiles are those of one histogram fed every sample of every shard.
fn assert_exact_merge(dir: &Path, shards: &[(PathBuf, Value)]) {
    let merged_path = dir.join("merged.json");
    let mut args = vec!["report".to_owned(), "merge".to_owned()];
    args.extend(shards.iter().map(|(p, _)| p.display().to_string()));
    args.extend(["-o".to_owned(), merged_path.display().to_string()]);
    let out = run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&merged_path).expect("merged")).expect("JSON");

    for field in ["published", "consumed", "expected", "confirmed"] {
        let sum: u64 = shards.iter().map(|(_, r)| r["summary"][field].as_u64().expect("a count")).sum();
        assert_eq!(merged["summary"][field].as_u64(), Some(sum), "merged {field} is the shards' sum");
    }
    assert_eq!(merged["producers"][0]["instances"], 2);
    let delivered = |r: &Value| -> u64 {
        r["time_series"].as_array().expect("series").iter().map(|s| s["delivered"].as_u64().unwrap_or(0)).sum()
    };
    assert_eq!(delivered(&merged), shards.iter().map(|(_, r)| delivered(r)).sum::<u64>());

    // One histogram fed every sample the shards recorded, value by value.
    let mut all: Histogram<u64> = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("bounds");
    for (_, shard) in shards {
        let h = decode(shard["histograms"]["e2e"].as_str().expect("histogram"));
        for v in h.iter_recorded() {
            all.record_n(v.value_iterated_to(), v.count_at_value()).expect("records");
        }
    }
    let e2e = &merged["summary"]["latency"]["e2e"];
    assert_eq!(e2e["count"].as_u64(), Some(all.len()));
    for (field, q) in [("p50_us", 0.5), ("p99_us", 0.99), ("p999_us", 0.999)] {
        assert_eq!(e2e[field].as_f64(), Some(all.value_at_quantile(q) as f64 / 1000.0), "merged {field}");
    }
    assert_eq!(e2e["max_us"].as_f64(), Some(all.max() as f64 / 1000.0));
    let gate = merged["gates"].as_array().expect("gates").iter().find(|g| g["name"] == "throughput_min").cloned();
    assert_eq!(gate.expect("the throughput gate")["threshold"], 100.0, "the shards' shares add back up");
}

#[test]
fn shards_run_together_and_merge_exactly() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Each shard has its own embedded broker.
    let shards = run_two_shards(dir.path(), &|_| Vec::new());
    assert_exact_merge(dir.path(), &shards);
}

#[test]
fn shards_against_rabbitmq_each_in_a_vhost_merge_exactly() {
    let Some(rabbit) = rabbitmq() else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let vhosts = [unique_name("warren-shard"), unique_name("warren-shard")];
    let shards = run_two_shards(dir.path(), &|k| {
        let vhost = vhosts[k as usize - 1].clone();
        vec!["--broker".into(), rabbit.amqp_url.clone(), "--vhost".into(), vhost]
    });
    for ((_, shard), vhost) in shards.iter().zip(&vhosts) {
        assert_eq!(shard["scenario"]["vhost"], vhost.as_str());
    }
    assert_exact_merge(dir.path(), &shards);
}

fn headless(chromium: &Path, html: &Path, profile: &Path, extra: &[String]) -> std::process::Output {
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs")
}

#[test]
fn html_report_renders_every_chart_in_chromium_and_needs_no_network() {
    let Some(chromium) = warren_testkit::chromium(&warren_testkit::current_test()) else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let (output, run_result, baseline) = bench(dir.path(), "baseline", &seed(), &[]);
    assert_ok_apart_from_timing_gates(&output, &run_result);
    let (output, run_result, result) = bench(dir.path(), "result", &seed(), &[]);
    assert_ok_apart_from_timing_gates(&output, &run_result);
    let html = dir.path().join("report.html");
    let out = run([
        "report",
        &result.display().to_string(),
        "--html",
        &html.display().to_string(),
        "--baseline",
        &baseline.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&html).expect("the report exists");
    for external in ["http://", "https://", "src=", "<link"] {
        let outside: Vec<&str> =
            text.lines().filter(|l| l.contains(external) && !l.contains("http://www.w3.org/2000/svg")).collect();
        assert!(outside.is_empty(), "the report loads nothing from outside ({external}): {outside:?}");
    }

    let profile = tempfile::tempdir().expect("a profile dir");
    let dom = headless(&chromium, &html, profile.path(), &["--dump-dom".to_owned()]);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    for id in ["chart-throughput", "chart-latency", "chart-hdr-e2e", "chart-hdr-e2e-actual", "chart-hdr-confirm"] {
        let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("chart {id} in the DOM:\n{dom}"));
        let tag = &dom[dom[..at].rfind('<').unwrap_or(0)..at + dom[at..].find('>').unwrap_or(0)];
        // The page's script counts the lines the browser laid out: this run's and the baseline's.
        let drawn: usize = tag
            .split("data-drawn-series=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("chart {id} was not laid out: {tag}"));
        assert!(drawn >= 2, "chart {id} drew its lines and the baseline's: {tag}");
    }
    // The broker's view: the queue chart, drawn (the baseline has no line there).
    let at = dom.find("id=\"chart-broker-queued\"").unwrap_or_else(|| panic!("the broker's queue chart:\n{dom}"));
    let tag = &dom[dom[..at].rfind('<').unwrap_or(0)..at + dom[at..].find('>').unwrap_or(0)];
    assert!(!tag.contains("data-drawn-series=\"0\"") && tag.contains("data-drawn-series"), "laid out: {tag}");
    assert!(dom.contains("id=\"consumers\"") && dom.contains("worker"), "the per-group table");
    assert!(dom.contains("id=\"comparison\""), "the verdicts against the baseline");
    assert!(dom.contains("id=\"verdict\""), "the overall verdict");
    assert!(dom.contains("RabbitMQ") || dom.contains("embedded"), "the broker details");

    let shot = dir.path().join("report.png");
    let out = headless(
        &chromium,
        &html,
        profile.path(),
        &[format!("--screenshot={}", shot.display()), "--window-size=1000,1400".to_owned()],
    );
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot");
    if let Ok(keep) = std::env::var("WARREN_KEEP_REPORT") {
        let _ = std::fs::copy(&html, format!("{keep}.html"));
        let _ = std::fs::copy(&shot, format!("{keep}.png"));
    }
}

#[test]
fn report_of_several_runs_prints_one_row_each() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (output, result, a) = bench(dir.path(), "a", &seed(), &[]);
    assert_ok_apart_from_timing_gates(&output, &result);
    let mut faster = result.clone();
    let rate = faster["summary"]["consume_rate"].as_f64().expect("a rate");
    faster["summary"]["consume_rate"] = Value::from(rate * 2.0);
    let b = dir.path().join("b.json");
    write_json(&b, &faster);
    let out = run(["report", &a.display().to_string(), &b.display().to_string()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: Vec<&str> = out.stdout.lines().filter(|l| l.contains(".json")).collect();
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    assert!(rows[1].contains("+100.0%"), "the second run's change against the first: {}", out.stdout);
    let json = run(["report", &a.display().to_string(), &b.display().to_string(), "--format", "json"]);
    let json: Value = serde_json::from_str(&json.stdout).expect("JSON rows");
    assert_eq!(json.as_array().map(Vec::len), Some(2));
}

#[test]
fn the_example_ci_gate_runs_against_its_committed_baseline() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("bench-out");
    let output = Command::new("bash")
        .arg(repo_path("examples/ci/bench-gate.sh"))
        .current_dir(crate::util::repo_root())
        .env("WARREN", env!("CARGO_BIN_EXE_warren"))
        .env("DURATION", "1s")
        .env("REPEAT", "2")
        .env("OUT", &out)
        .env("NO_COLOR", "1")
        .env_remove("WARREN_BROKER")
        .output()
        .expect("bash runs the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A debug build on a busy machine may well be slower than the committed
    // (release) baseline: the gate may pass or fail, but it must not error.
    let code = output.status.code();
    assert!(code == Some(0) || code == Some(3), "exit {code:?}\n{stdout}\n{stderr}");
    let verdict = if code == Some(0) { "PASSED" } else { "FAILED" };
    assert!(stdout.contains(verdict), "{stdout}");
    let cases = junit_cases(&out.join("junit.xml"));
    assert!(cases.iter().any(|(name, _)| name == "consumed msgs/s"), "{cases:?}");
    assert_eq!(cases.iter().any(|(_, failed)| *failed), code == Some(3), "failed cases match the exit code: {cases:?}");
    // Only speed may be worse than the committed baseline's: no loss, no errors, no duplicates.
    let failed: Vec<&str> = cases.iter().filter(|(_, failed)| *failed).map(|(name, _)| name.as_str()).collect();
    assert!(failed.iter().all(|name| is_timing(name)), "only timing figures and gates failed: {failed:?}");
    let html = std::fs::read_to_string(out.join("report.html")).expect("the HTML report");
    assert!(html.contains("id=\"chart-throughput\""));
    let verdict = if code == Some(0) { ">PASSED" } else { ">FAILED" };
    assert!(html.contains(verdict), "the report gives the same verdict as the gate");
}

#[test]
fn bench_checks_its_baseline_and_shard_before_running_and_refuses_start_at_with_repeat() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let missing = dir.path().join("missing.json");
    let out = dir.path().join("never.json");
    let output = run([
        "bench",
        &seed().display().to_string(),
        "--baseline",
        &missing.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(output.stderr.contains(&missing.display().to_string()), "names the file: {}", output.stderr);
    assert!(!out.exists(), "nothing ran");

    // The seed has one producer: a second shard would have none.
    let output = run(["bench", &seed().display().to_string(), "--shard", "2/2", "--out", &out.display().to_string()]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(
        output.stderr.contains("producer group `web` has 1 instance(s), fewer than the 2 shards"),
        "{}",
        output.stderr
    );
    assert!(!out.exists(), "nothing ran");

    let output = run(["bench", &seed().display().to_string(), "--repeat", "2", "--start-at", "1767225600"]);
    assert_eq!(output.code, 64, "a usage error: {}", output.stderr);
    assert!(output.stderr.contains("--start-at") && output.stderr.contains("--repeat"), "{}", output.stderr);
}

#[test]
fn a_bench_that_cannot_reach_its_broker_still_writes_a_failed_junit_case() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let junit = dir.path().join("junit.xml");
    // Port 1 on loopback refuses at once: nothing listens there.
    let output = run([
        "bench",
        &seed().display().to_string(),
        "--broker",
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "--management",
        "http://127.0.0.1:1",
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    // The error gives the transport's own reason, not only the URL it tried.
    assert!(output.stderr.to_lowercase().contains("connection refused"), "{}", output.stderr);
    assert_eq!(junit_cases(&junit), vec![("run completed".to_owned(), true)]);
}

#[test]
fn bench_warns_when_producers_start_after_start_at() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // A --start-at long past: this shard cannot have begun with the others, and says by how much.
    let (output, result, _) = bench(
        dir.path(),
        "late",
        &seed_without_latency_gate(dir.path()),
        &["--start-at", "2020-01-01T00:00:00Z", "--duration", "1s"],
    );
    assert_eq!(output.code, 0, "a late start is a warning, not a failure: {}", output.stderr);
    let warnings: Vec<&str> =
        result["warnings"].as_array().expect("warnings").iter().filter_map(Value::as_str).collect();
    let late: Vec<&str> = warnings.iter().copied().filter(|w| w.contains("--start-at")).collect();
    assert_eq!(late.len(), 1, "{warnings:?}");
    let seconds: f64 = late[0]
        .strip_prefix("producers started ")
        .and_then(|rest| rest.split_once("s after --start-at: shards of this run did not begin together"))
        .and_then(|(seconds, rest)| rest.is_empty().then(|| seconds.parse().ok()).flatten())
        .unwrap_or_else(|| panic!("the warning says how late: {}", late[0]));
    // 2020-01-01 is more than five years before any run of this test.
    assert!(seconds > 5.0 * 365.0 * 86_400.0, "{seconds}s late");
    assert!(output.stdout.contains(&format!("warning: {}", late[0])), "the summary shows it: {}", output.stdout);
}

#[test]
fn bench_started_on_time_at_start_at_has_no_lateness_warning() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // A moment comfortably after the command starts (its setup takes well under that): producers
    // wait for it, then begin on time.
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(12);
    let unix = at.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs().to_string();
    let (output, result, _) = bench(
        dir.path(),
        "on-time",
        &seed_without_latency_gate(dir.path()),
        &["--start-at", &unix, "--duration", "1s"],
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    let warnings: Vec<&str> =
        result["warnings"].as_array().expect("warnings").iter().filter_map(Value::as_str).collect();
    assert!(warnings.iter().all(|w| !w.contains("--start-at")), "started on time: {warnings:?}");
    let started = result["started_at"].as_str().expect("started_at");
    let started = humantime::parse_rfc3339(started).expect("RFC 3339");
    assert!(started + std::time::Duration::from_secs(1) >= at, "the run waited for --start-at: {started:?}");
}
