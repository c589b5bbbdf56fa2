//! `warren plan | apply | export` against the embedded broker and the
//! machine's RabbitMQ (the reference), with the same checks on both.
//!
//! Every test works in its own vhost (and with its own users), named by
//! `unique_name`, and removes them when done, because tests run in parallel
//! on a broker others use too.

use std::path::Path;
use std::time::{Duration, Instant};

use lapin::options::BasicGetOptions;
use warren::target::Endpoint;
use warren::topology::model::{Binding, DestinationType, Password, QueueType, State, Topology};
use warren_definitions::{Definitions, QueueDef};

use crate::sandbox::{Sandbox, path_str, sandboxes};
use crate::util::{Output, unique_name};

#[test]
fn each_example_applies_then_plans_nothing_and_so_does_its_export() {
    for example in ["topologies/seed.yaml", "topologies/registration.yaml", "topologies/orders.yaml"] {
        for mut sandbox in sandboxes("warren-example") {
            check_example(&mut sandbox, example);
        }
    }
}

fn check_example(sandbox: &mut Sandbox, example: &str) {
    {
        let jack = sandbox.user("jack");
        let file = sandbox.example(example, &jack);
        let file = path_str(&file);
        let env = [("JACK_PASSWORD", "jack-secret")];

        let applied = sandbox.warren(&["apply", "--yes", file], &env);
        sandbox.assert_code(&applied, 0, &format!("applying {example}"));
        assert!(applied.stdout.contains("to create"), "the plan was shown:\n{}", applied.stdout);

        let again = sandbox.warren(&["plan", file], &env);
        sandbox.assert_code(&again, 0, &format!("planning {example} a second time"));
        assert!(again.stdout.contains("No changes"), "{}", again.stdout);

        let export = sandbox.dir.path().join("export.yaml");
        let exported = sandbox.warren(&["export", "--vhost", &sandbox.vhost, "-o", path_str(&export)], &[]);
        sandbox.assert_code(&exported, 0, "exporting");
        let replanned = sandbox.warren(&["plan", "--prune", path_str(&export)], &[]);
        sandbox.assert_code(&replanned, 0, &format!("planning the export of {example}"));
        assert_export_holds_the_vhost(sandbox, &export);
    }
}

/// The export at `path` holds what the broker holds in the sandbox's vhost,
/// and its users with their tags and permissions: a plan of an export that
/// lost them would plan nothing too.
fn assert_export_holds_the_vhost(sandbox: &Sandbox, path: &Path) {
    let exported = warren::topology::load::load_file(path).expect("the export loads");
    let state = sandbox.state();
    let held = &state.vhosts[&sandbox.vhost];
    assert!(!held.queues.is_empty(), "{}: the vhost holds queues to export", sandbox.name);
    assert_eq!(exported.vhosts.get(&sandbox.vhost), Some(held), "{}: the exported vhost", sandbox.name);
    for (name, user) in &state.users {
        let Some(got) = exported.users.get(name) else { panic!("{}: user {name} is not exported", sandbox.name) };
        assert_eq!(
            (&got.tags, &got.permissions, &got.topic_permissions),
            (&user.tags, &user.permissions, &user.topic_permissions),
            "{}: user {name}",
            sandbox.name
        );
    }
}

#[test]
fn after_seed_a_message_to_exchange1_info_reaches_queue1_and_jack_logs_in() {
    for mut sandbox in sandboxes("warren-seed") {
        check_after_seed_a_message_to_exchange1_info_reaches_queue1_and_jack_logs_in(&mut sandbox);
    }
}

fn check_after_seed_a_message_to_exchange1_info_reaches_queue1_and_jack_logs_in(sandbox: &mut Sandbox) {
    let jack = sandbox.user("jack");
    let file = sandbox.example("topologies/seed.yaml", &jack);
    sandbox.assert_code(&sandbox.warren(&["apply", "-y", path_str(&file)], &[("JACK_PASSWORD", "s3cret")]), 0, "apply");

    sandbox.publish("exchange1", "info", 1);
    let connection = sandbox.connect(&jack, "s3cret").expect("jack logs in with the password from the environment");
    let body = sandbox.runtime.block_on(async {
        let channel = connection.create_channel().await.expect("a channel");
        // The publish was confirmed, so the message is in the queue; the deadline only bounds a broken broker.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(message) =
                channel.basic_get("queue1".into(), BasicGetOptions { no_ack: true }).await.expect("basic.get")
            {
                break message.delivery.data.clone();
            }
            assert!(Instant::now() < deadline, "no message arrived in queue1");
            tokio::task::yield_now().await;
        }
    });
    assert_eq!(body, b"message 0");
    assert!(sandbox.connect(&jack, "wrong").is_err(), "a wrong password is rejected");
}

const DRIFT: &str = r##"
vhosts:
  VHOST:
    exchanges:
      events: { type: topic, durable: true }
    queues:
      audit: { durable: true }
    bindings:
      - { exchange: events, queue: audit, routing_key: "#" }
"##;

#[test]
fn drift_is_named_by_plan_and_undone_by_apply_prune() {
    for mut sandbox in sandboxes("warren-drift") {
        check_drift_is_named_by_plan_and_undone_by_apply_prune(&mut sandbox);
    }
}

fn check_drift_is_named_by_plan_and_undone_by_apply_prune(sandbox: &mut Sandbox) {
    let file = sandbox.write("drift.yaml", &DRIFT.replace("VHOST", &format!("{:?}", sandbox.vhost)));
    let file = path_str(&file);
    sandbox.assert_code(&sandbox.warren(&["apply", "-y", file], &[]), 0, "apply");
    let declared = sandbox.state();

    // By hand: drop the binding, add a queue.
    let m = sandbox.management();
    let binding = Binding {
        state: State::Present,
        source: "events".into(),
        destination: "audit".into(),
        destination_type: DestinationType::Queue,
        routing_key: "#".into(),
        arguments: Default::default(),
    };
    let binding = warren::topology::definitions::binding_def(&sandbox.vhost, &binding);
    sandbox.runtime.block_on(m.delete_binding(&sandbox.vhost, &binding)).expect("deleting the binding");
    let extra = Definitions {
        queues: vec![QueueDef {
            name: "stray".into(),
            vhost: Some(sandbox.vhost.clone()),
            durable: Some(true),
            auto_delete: false,
            arguments: Default::default(),
            kind: None,
        }],
        ..Definitions::default()
    };
    sandbox.runtime.block_on(m.import("a stray queue", &extra)).expect("declaring a queue by hand");

    let planned = sandbox.warren(&["plan", "--prune", file], &[]);
    sandbox.assert_code(&planned, 2, "plan with drift");
    assert!(planned.stdout.contains("+ binding events -> queue audit [#]"), "{}", planned.stdout);
    assert!(planned.stdout.contains("- queue \"stray\""), "{}", planned.stdout);

    let without_prune = sandbox.warren(&["plan", file], &[]);
    sandbox.assert_code(&without_prune, 2, "plan without --prune");
    assert!(!without_prune.stdout.contains("stray"), "undeclared entities are not shown without --prune");

    sandbox.assert_code(&sandbox.warren(&["apply", "--prune", "--yes", file], &[]), 0, "apply --prune");
    assert_eq!(sandbox.state(), declared, "the broker holds the file's state again");
    sandbox.assert_code(&sandbox.warren(&["plan", "--prune", file], &[]), 0, "plan after apply --prune");
}

const TTL: &str = r#"
vhosts:
  VHOST:
    exchanges:
      work: { type: direct, durable: true }
    queues:
      jobs: { durable: true, arguments: { x-message-ttl: TTL } }
    bindings:
      - { exchange: work, queue: jobs, routing_key: job }
"#;

#[test]
fn replacing_a_queue_with_messages_is_refused_unless_data_loss_is_allowed() {
    for mut sandbox in sandboxes("warren-guard") {
        check_replacing_a_queue_with_messages_is_refused_unless_data_loss_is_allowed(&mut sandbox);
    }
}

fn check_replacing_a_queue_with_messages_is_refused_unless_data_loss_is_allowed(sandbox: &mut Sandbox) {
    let vhost = format!("{:?}", sandbox.vhost);
    let before = sandbox.write("before.yaml", &TTL.replace("VHOST", &vhost).replace("TTL", "600000"));
    let after = sandbox.write("after.yaml", &TTL.replace("VHOST", &vhost).replace("TTL", "900000"));
    sandbox.assert_code(&sandbox.warren(&["apply", "-y", path_str(&before)], &[]), 0, "apply");
    sandbox.publish("work", "job", 3);

    let refused = sandbox.warren(&["apply", "-y", path_str(&after)], &[]);
    sandbox.assert_code(&refused, 4, "apply of a TTL change on a queue with messages");
    assert!(refused.stderr.contains("queue \"jobs\""), "{}", refused.stderr);
    assert!(refused.stderr.contains("3 messages"), "{}", refused.stderr);
    assert!(refused.stderr.contains("policy key message-ttl"), "the refusal suggests a policy:\n{}", refused.stderr);
    assert_eq!(sandbox.message_count("jobs"), 3, "the messages are intact");
    let state = sandbox.state();
    assert_eq!(state.vhosts[&sandbox.vhost].queues["jobs"].arguments["x-message-ttl"], 600000);

    let dry = sandbox.warren(&["apply", "--dry-run", path_str(&after)], &[]);
    sandbox.assert_code(&dry, 4, "a dry run reports the refusal");
    assert!(dry.stdout.contains("-/+ queue \"jobs\""), "{}", dry.stdout);

    sandbox.assert_code(
        &sandbox.warren(&["apply", "-y", "--allow-data-loss", path_str(&after)], &[]),
        0,
        "apply allowing loss",
    );
    let state = sandbox.state();
    let v = &state.vhosts[&sandbox.vhost];
    assert_eq!(v.queues["jobs"].arguments["x-message-ttl"], 900000);
    assert_eq!(v.bindings.len(), 1, "the binding is back: {:?}", v.bindings);
    assert_eq!(v.bindings[0].routing_key, "job");
    assert_eq!(sandbox.message_count("jobs"), 0, "the queue is a new one");
}

fn stored_password(state: &Topology, user: &str) -> (String, Vec<String>) {
    let u = &state.users[user];
    match &u.password {
        Password::Hash { hash, .. } => (hash.clone(), u.tags.clone().unwrap_or_default()),
        other => panic!("user {user} has no stored hash: {other:?}"),
    }
}

#[test]
fn an_unchanged_password_is_not_reset_and_a_changed_one_works_with_tags_kept() {
    for mut sandbox in sandboxes("warren-password") {
        check_an_unchanged_password_is_not_reset_and_a_changed_one_works_with_tags_kept(&mut sandbox);
    }
}

fn check_an_unchanged_password_is_not_reset_and_a_changed_one_works_with_tags_kept(sandbox: &mut Sandbox) {
    let jack = sandbox.user("jack");
    let file = sandbox.example("topologies/seed.yaml", &jack);
    let file = path_str(&file);
    sandbox.assert_code(&sandbox.warren(&["apply", "-y", file], &[("JACK_PASSWORD", "first")]), 0, "first apply");
    let (hash, tags) = stored_password(&sandbox.state(), &jack);

    let again = sandbox.warren(&["apply", "-y", file], &[("JACK_PASSWORD", "first")]);
    sandbox.assert_code(&again, 0, "second apply");
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    assert_eq!(stored_password(&sandbox.state(), &jack).0, hash, "the stored hash is unchanged");

    let planned = sandbox.warren(&["plan", file], &[("JACK_PASSWORD", "second")]);
    sandbox.assert_code(&planned, 2, "plan with a new password");
    assert!(planned.stdout.contains("password changed"), "{}", planned.stdout);
    assert!(!planned.stdout.contains("second") && !planned.stdout.contains(&hash), "no password or hash is shown");

    sandbox.assert_code(
        &sandbox.warren(&["apply", "-y", file], &[("JACK_PASSWORD", "second")]),
        0,
        "apply new password",
    );
    let (new_hash, new_tags) = stored_password(&sandbox.state(), &jack);
    assert_ne!(new_hash, hash);
    assert_eq!(new_tags, tags, "tags are kept");
    assert_eq!(new_tags, ["administrator"]);
    assert!(sandbox.connect(&jack, "second").is_ok(), "the new password works");
    assert!(sandbox.connect(&jack, "first").is_err(), "the old one does not");
}

#[test]
fn apply_without_a_terminal_or_yes_changes_nothing_and_says_why() {
    for mut sandbox in sandboxes("warren-noyes") {
        check_apply_without_a_terminal_or_yes_changes_nothing_and_says_why(&mut sandbox);
    }
}

fn check_apply_without_a_terminal_or_yes_changes_nothing_and_says_why(sandbox: &mut Sandbox) {
    let file = sandbox.write("t.yaml", &DRIFT.replace("VHOST", &format!("{:?}", sandbox.vhost)));
    let output = sandbox.warren(&["apply", path_str(&file)], &[]);
    sandbox.assert_code(&output, 1, "apply without --yes");
    assert!(output.stderr.contains("--yes"), "{}", output.stderr);
    assert!(!sandbox.state().vhosts.contains_key(&sandbox.vhost), "the vhost was not created");
}

#[test]
fn plan_json_lists_changes_for_machines() {
    for mut sandbox in sandboxes("warren-json") {
        check_plan_json_lists_changes_for_machines(&mut sandbox);
    }
}

fn check_plan_json_lists_changes_for_machines(sandbox: &mut Sandbox) {
    let file = sandbox.write("t.yaml", &DRIFT.replace("VHOST", &format!("{:?}", sandbox.vhost)));
    let output = sandbox.warren(&["--format", "json", "plan", path_str(&file)], &[]);
    sandbox.assert_code(&output, 2, "plan --format json");
    let doc: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON on stdout");
    assert_eq!(doc["in_sync"], false);
    assert_eq!(doc["summary"]["create"], 4, "{doc:#}");
    assert_eq!(doc["changes"][0]["kind"], "vhost");
    assert_eq!(doc["changes"][0]["action"], "create");
}

/// Every kind of entity warren manages, in vhost `VHOST`, with user `USER`.
pub const EVERYTHING: &str = r##"
vhosts:
  VHOST:
    description: warren test vhost
    tags: [warren, test]
    default_queue_type: quorum
    exchanges:
      events: { type: topic, durable: true, arguments: { alternate-exchange: unrouted } }
      unrouted: { type: fanout, durable: true }
      internal.hub: { type: headers, durable: true, internal: true }
      scratch: { type: direct, durable: false, auto_delete: true }
    queues:
      orders: { durable: true }
      classic.jobs: { durable: true, arguments: { x-queue-type: classic, x-max-priority: 5, x-message-ttl: "60000" } }
      lost: { durable: true, arguments: { x-queue-type: classic } }
    bindings:
      - { exchange: events, to_exchange: internal.hub, routing_key: "#" }
      - { exchange: internal.hub, queue: orders, arguments: { x-match: all, kind: order } }
      - { exchange: unrouted, queue: lost }
      - { exchange: amq.topic, queue: classic.jobs, routing_key: "jobs.#" }
    policies:
      jobs-cap: { pattern: "^classic\\.", apply_to: queues, priority: 2, definition: { max-length: 1000 } }
    operator_policies:
      size-cap: { pattern: ".*", apply_to: queues, definition: { max-length-bytes: 1048576 } }
users:
  USER:
    password: pw
    tags: [monitoring, management]
    permissions:
      VHOST: { configure: "^$", write: ".*", read: ".*" }
    topic_permissions:
      VHOST:
        amq.topic: { write: "^jobs\\.", read: ".*" }
"##;

#[test]
fn every_kind_of_entity_applies_and_plans_nothing_afterwards() {
    for mut sandbox in sandboxes("warren-everything") {
        check_every_kind_of_entity(&mut sandbox);
    }
}

fn check_every_kind_of_entity(sandbox: &mut Sandbox) {
    let user = sandbox.user("ops");
    let text = EVERYTHING.replace("VHOST", &format!("{:?}", sandbox.vhost)).replace("USER", &user);
    let file = sandbox.write("everything.yaml", &text);
    let file = path_str(&file);
    let applied = sandbox.warren(&["apply", "--yes", file], &[]);
    sandbox.assert_code(&applied, 0, "apply");
    let again = sandbox.warren(&["plan", "--prune", file], &[]);
    sandbox.assert_code(&again, 0, "plan after apply");

    let state = sandbox.state();
    let v = &state.vhosts[&sandbox.vhost];
    assert_eq!(v.description.as_deref(), Some("warren test vhost"), "{}", sandbox.name);
    assert_eq!(v.default_queue_type, Some(QueueType::Quorum), "{}", sandbox.name);
    assert_eq!(v.bindings.len(), 4, "{}: {:?}", sandbox.name, v.bindings);
    assert_eq!(state.users[&user].topic_permissions[&sandbox.vhost]["amq.topic"].write, "^jobs\\.");
    assert_eq!(v.operator_policies["size-cap"].definition["max-length-bytes"], 1048576);

    let export = sandbox.dir.path().join("export.yaml");
    let exported = sandbox.warren(&["export", "--vhost", &sandbox.vhost, "-o", path_str(&export)], &[]);
    sandbox.assert_code(&exported, 0, "export");
    let replanned = sandbox.warren(&["plan", "--prune", path_str(&export)], &[]);
    sandbox.assert_code(&replanned, 0, "plan of the export");
    assert_export_holds_the_vhost(sandbox, &export);
    let exported_text = std::fs::read_to_string(&export).expect("the export was written");
    assert!(!exported_text.contains("password_hash"), "an export leaves hashes out unless asked:\n{exported_text}");

    let with_hashes = sandbox.warren(&["export", "--vhost", &sandbox.vhost, "--include-password-hashes"], &[]);
    sandbox.assert_code(&with_hashes, 0, "export with password hashes");
    assert!(with_hashes.stdout.contains("password_hash"), "{}", with_hashes.stdout);
}

const REJECTED_POLICY: &str = r#"
vhosts:
  VHOST:
    exchanges:
      events: { type: direct }
    queues:
      audit: { durable: true }
    bindings:
      - { exchange: events, queue: audit, routing_key: k }
    policies:
      broken: { pattern: "^audit$", definition: { no-such-policy-key: 1 } }
"#;

#[test]
fn a_change_the_broker_rejects_stops_the_apply_with_what_was_and_was_not_done() {
    for mut sandbox in sandboxes("warren-rejected") {
        check_a_change_the_broker_rejects(&mut sandbox);
    }
}

fn check_a_change_the_broker_rejects(sandbox: &mut Sandbox) {
    let file = sandbox.write("rejected.yaml", &REJECTED_POLICY.replace("VHOST", &format!("{:?}", sandbox.vhost)));
    let output = sandbox.warren(&["apply", "--yes", path_str(&file)], &[]);
    sandbox.assert_code(&output, 1, "apply with a policy the broker rejects");
    assert!(output.stderr.contains("1 of 5 changes were made"), "{}: {}", sandbox.name, output.stderr);
    assert!(output.stderr.contains("policy \"broken\""), "{}: {}", sandbox.name, output.stderr);
    assert!(output.stderr.contains("no-such-policy-key"), "the broker's reason is shown:\n{}", output.stderr);
    let not_done = output.stderr.split("not done:").nth(1).unwrap_or_default();
    assert!(
        not_done.contains("exchange \"events\"") && not_done.contains("binding events -> queue audit"),
        "{not_done}"
    );
    let state = sandbox.state();
    assert!(state.vhosts[&sandbox.vhost].exchanges.is_empty(), "later stages did not run");
}

#[test]
fn remove_deletes_the_declared_exchanges_and_queues_and_nothing_else() {
    for mut sandbox in sandboxes("warren-remove") {
        check_remove(&mut sandbox);
    }
}

fn check_remove(sandbox: &mut Sandbox) {
    let text = DRIFT.replace("VHOST", &format!("{:?}", sandbox.vhost));
    let file = sandbox.write("t.yaml", &text);
    sandbox.assert_code(&sandbox.warren(&["apply", "-y", path_str(&file)], &[]), 0, "apply");
    sandbox.publish("events", "anything", 2);
    let topology = warren::topology::load::load_file(&file).expect("the file loads");
    let endpoint =
        Endpoint::parse(&sandbox.rabbit.management_url, Some((&sandbox.rabbit.user, &sandbox.rabbit.password)))
            .expect("the management URL parses");
    let (plan, report) = sandbox
        .runtime
        .block_on(warren::topology::apply::remove(std::slice::from_ref(&endpoint), &topology))
        .expect("remove succeeds even though the queue holds messages");
    assert_eq!(report.applied, 2, "{}: {}", sandbox.name, plan.render(false));
    let state = sandbox.state();
    let v = &state.vhosts[&sandbox.vhost];
    assert!(v.exchanges.is_empty() && v.queues.is_empty() && v.bindings.is_empty(), "{}: {v:?}", sandbox.name);

    // A vhost that does not exist is not created by a removal.
    let mut elsewhere = topology.clone();
    let other = unique_name("warren-remove-missing");
    if let Some(v) = elsewhere.vhosts.remove(&sandbox.vhost) {
        elsewhere.vhosts.insert(other.clone(), v);
    }
    sandbox
        .runtime
        .block_on(warren::topology::apply::remove(std::slice::from_ref(&endpoint), &elsewhere))
        .expect("nothing to remove");
    let vhosts = sandbox.runtime.block_on(sandbox.management().vhosts()).expect("listing vhosts");
    assert!(!vhosts.iter().any(|v| v.name == other), "{}", sandbox.name);
}

/// Runs `warren ARGS` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn on_terminal(sandbox: &Sandbox, args: &[&str], answer: &str) -> Output {
    use std::io::Write as _;
    let mut line = format!(
        "'{}' --broker '{}' --management '{}'",
        env!("CARGO_BIN_EXE_warren"),
        sandbox.rabbit.amqp_url,
        sandbox.rabbit.management_url
    );
    for arg in args {
        line.push_str(&format!(" '{arg}'"));
    }
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("NO_COLOR", "1")
        .env_remove("WARREN_BROKER")
        .env_remove("WARREN_MANAGEMENT")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs (it gives warren a terminal)");
    child.stdin.take().expect("stdin").write_all(answer.as_bytes()).expect("typing the answer");
    let output = child.wait_with_output().expect("script finishes");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn on_a_terminal_apply_asks_and_only_yes_applies() {
    for mut sandbox in sandboxes("warren-ask") {
        check_on_a_terminal_apply_asks(&mut sandbox);
    }
}

fn check_on_a_terminal_apply_asks(sandbox: &mut Sandbox) {
    let file = sandbox.write("t.yaml", &DRIFT.replace("VHOST", &format!("{:?}", sandbox.vhost)));
    let declined = on_terminal(sandbox, &["apply", path_str(&file)], "no\n");
    assert!(declined.stdout.contains("Apply these 4 change(s)?"), "{}: {}", sandbox.name, declined.stdout);
    assert!(declined.stdout.contains("nothing was changed"), "{}: {}", sandbox.name, declined.stdout);
    assert!(!sandbox.state().vhosts.contains_key(&sandbox.vhost), "{}: declined, yet changed", sandbox.name);

    let accepted = on_terminal(sandbox, &["apply", path_str(&file)], "yes\n");
    assert_eq!(accepted.code, 0, "{}: {}", sandbox.name, accepted.stdout);
    assert!(sandbox.state().vhosts[&sandbox.vhost].queues.contains_key("audit"), "{}", sandbox.name);
}
