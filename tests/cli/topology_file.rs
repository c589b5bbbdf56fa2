//! Good topology files: the examples validate, variables and references
//! resolve as documented, a RabbitMQ definitions export is accepted, and
//! `warren schema topology` describes them all.

use crate::util::{Output, repo_path, run, run_with_env};

const EXAMPLES: [&str; 3] = ["topologies/seed.yaml", "topologies/registration.yaml", "topologies/orders.yaml"];

fn validate_with(files: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["validate"];
    args.extend_from_slice(files);
    run_with_env(args, env)
}

#[test]
fn topology_file_examples_validate() {
    let output = validate_with(&EXAMPLES, &[("JACK_PASSWORD", "from-the-environment")]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(output.stderr, "");
    assert!(
        output
            .stdout
            .contains("topologies/orders.yaml: ok (1 vhost, 2 exchanges, 3 queues, 3 bindings, 1 policy, 0 users)")
    );
    assert!(
        output
            .stdout
            .contains("topologies/seed.yaml: ok (1 vhost, 1 exchange, 1 queue, 1 binding, 0 policies, 1 user)")
    );
}

#[test]
fn topology_file_seed_needs_jacks_password_from_the_environment() {
    let output = crate::util::warren()
        .args(["validate", "topologies/seed.yaml"])
        .env_remove("JACK_PASSWORD")
        .output()
        .expect("warren runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: topologies/seed.yaml:15:15: `password` of user `jack`: environment variable `JACK_PASSWORD` is not set"),
        "{stderr}"
    );

    // CI can lint the file without its secrets; everything else is still checked.
    let lenient = crate::util::warren()
        .args([
            "validate",
            "--allow-unset",
            "topologies/seed.yaml",
            "tests/topology-errors/07-binding-to-undeclared-queue.yaml",
        ])
        .env_remove("JACK_PASSWORD")
        .output()
        .expect("warren runs");
    let stdout = String::from_utf8_lossy(&lenient.stdout);
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert_eq!(lenient.status.code(), Some(1), "the bad file still fails: {stderr}");
    assert!(stdout.contains("topologies/seed.yaml: ok"), "{stdout}");
    assert!(!stderr.contains("JACK_PASSWORD"), "{stderr}");
    assert!(stderr.contains("07-binding-to-undeclared-queue.yaml"), "{stderr}");
}

#[test]
fn topology_file_variables_are_substituted_in_names_and_values() {
    let file = "tests/topology-files/variables.yaml";
    let set = validate_with(&[file], &[("WARREN_TEST_EXCHANGE", "audit.events"), ("WARREN_TEST_TTL", "30000")]);
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(set.stdout.contains("ok (1 vhost, 1 exchange, 1 queue, 1 binding"), "{}", set.stdout);
    let unset = run(["validate", file]);
    assert_eq!(unset.code, 1);
    // Both uses of the variable are reported, each where it is, naming the
    // entities as the broker will see them where the variables are set.
    assert!(
        unset.stderr.contains(&format!(
            "{file}:6:7: exchange `${{WARREN_TEST_EXCHANGE}}` in vhost `warren-variables`: environment variable `WARREN_TEST_EXCHANGE` is not set"
        )),
        "{}",
        unset.stderr
    );
    assert!(unset.stderr.contains(&format!("{file}:11:22: `exchange` of binding #1")), "{}", unset.stderr);
    let bad_ttl = validate_with(&[file], &[("WARREN_TEST_EXCHANGE", "x"), ("WARREN_TEST_TTL", "soon")]);
    assert_eq!(bad_ttl.code, 1);
    assert!(bad_ttl.stderr.contains("argument `x-message-ttl` of queue `audit` in vhost `warren-variables`: must be a whole number of milliseconds, got \"soon\""), "{}", bad_ttl.stderr);
}

#[test]
fn topology_file_amq_exchanges_and_unmanaged_names_need_no_declaration() {
    let output = run(["validate", "tests/topology-files/references.yaml"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
}

/// `warren validate FILE` succeeds and sums the file up as `summary`.
fn assert_valid(file: &str, summary: &str) {
    let output = run(["validate", file]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stdout.contains(&format!("{file}: ok ({summary})")), "{}", output.stdout);
}

#[test]
fn topology_file_a_rabbitmq_definitions_export_is_accepted() {
    assert_valid(
        "tests/topology-files/definitions-export.json",
        "1 vhost, 1 exchange, 1 queue, 1 binding, 0 policies, 0 users",
    );
}

/// `rabbitmqctl export_definitions -` of RabbitMQ 3.10.8 after applying
/// `topology_apply::EVERYTHING` (its vhost and user only). It writes vhost
/// `limits` and `metadata` and queue `type`s, which `GET /api/definitions`
/// does not, and leaves internal exchanges out.
#[test]
fn topology_file_a_rabbitmqctl_export_is_accepted() {
    assert_valid(
        "tests/topology-files/rabbitmqctl-export.json",
        "1 vhost, 3 exchanges, 3 queues, 4 bindings, 2 policies, 1 user",
    );
}

#[test]
fn topology_file_the_schema_accepts_the_examples() {
    let output = run(["schema", "topology"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let schema: serde_json::Value = serde_json::from_str(&output.stdout).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for example in
        EXAMPLES.iter().chain(&["tests/topology-files/variables.yaml", "tests/topology-files/references.yaml"])
    {
        let text = std::fs::read_to_string(repo_path(example)).expect("example exists");
        let document: serde_json::Value = serde_yaml::from_str(&text).expect("YAML");
        let errors: Vec<String> = validator.iter_errors(&document).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{example}: {errors:?}");
    }
    // It describes keys for editors, not just their types.
    let queue = &schema["$defs"]["RawQueue"]["properties"]["durable"]["description"];
    assert!(queue.as_str().is_some_and(|d| d.contains("Survives a broker restart")), "{queue}");
}

#[test]
fn topology_file_scenarios_validate_with_their_topologies() {
    let scenarios: Vec<String> = std::fs::read_dir(repo_path("scenarios"))
        .expect("scenarios/ exists")
        .map(|entry| format!("scenarios/{}", entry.expect("an entry").file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    assert!(!scenarios.is_empty());
    let files: Vec<&str> = scenarios.iter().map(String::as_str).collect();
    let output = validate_with(&files, &[]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(output.stdout.contains("scenarios/seed.yaml: ok (scenario `seed`"), "{}", output.stdout);
}

#[test]
fn topology_file_an_inline_topology_error_points_into_the_scenario() {
    let output = run(["validate", "tests/topology-files/scenario-inline-error.yaml"]);
    assert_eq!(output.code, 1);
    assert_eq!(
        output.stderr,
        "error: tests/topology-files/scenario-inline-error.yaml:9:42: binding #1 of vhost `/` names queue `qq`, which is not declared in vhost `/` (did you mean `q`?)\n"
    );
}

#[test]
fn topology_file_schema_starts_with_its_dialect_and_survives_a_closed_pipe() {
    let output = run(["schema", "topology"]);
    assert!(output.stdout.starts_with(
        "{\n  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n  \"title\": \"warren topology\","
    ));
    // As in `warren schema topology | head -1`: the reader goes away first.
    let mut child = crate::util::warren()
        .args(["schema", "topology"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("warren starts");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("warren ends");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}
