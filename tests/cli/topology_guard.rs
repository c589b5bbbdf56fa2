//! The data-loss guards on deletion: `--prune`, `state: absent` and a vhost
//! declared absent each drop queues, and each is refused (exit 4, nothing
//! changed) while a queue it would drop holds messages or has consumers.
//! Replacement is covered in `topology_apply`.

use crate::sandbox::{Sandbox, path_str, sandboxes};

/// Two queues: `full` gets messages, `busy` a consumer.
const QUEUES: &str = r#"
vhosts:
  VHOST:
    exchanges:
      work: { type: direct }
    queues:
      full: { durable: true }
      busy: { durable: true }
    bindings:
      - { exchange: work, queue: full, routing_key: job }
"#;

/// Applies [`QUEUES`], then puts 2 messages in `full` and a consumer on
/// `busy`, which lasts as long as the returned value.
fn prepare(sandbox: &Sandbox) -> (lapin::Connection, lapin::Consumer) {
    let file = sandbox.write("queues.yaml", &QUEUES.replace("VHOST", &format!("{:?}", sandbox.vhost)));
    sandbox.assert_code(&sandbox.warren(&["apply", "-y", path_str(&file)], &[]), 0, "apply");
    sandbox.publish("work", "job", 2);
    sandbox.consume("busy")
}

/// Runs `warren apply -y ARGS FILE` with `text` (VHOST replaced) and checks
/// that it is refused with both queues named and that both are intact.
fn assert_refused(sandbox: &Sandbox, text: &str, args: &[&str], expected: &[String]) {
    let file = sandbox.write("drop.yaml", &text.replace("VHOST", &format!("{:?}", sandbox.vhost)));
    let mut all = vec!["apply", "-y"];
    all.extend_from_slice(args);
    all.push(path_str(&file));
    let refused = sandbox.warren(&all, &[]);
    sandbox.assert_code(&refused, 4, &format!("apply {args:?} dropping queues with messages or consumers"));
    for line in expected {
        assert!(refused.stderr.contains(line), "{}: `{line}` not in:\n{}", sandbox.name, refused.stderr);
    }
    assert_eq!(sandbox.message_count("full"), 2, "{}: the messages are intact", sandbox.name);
    let state = sandbox.state();
    let queues = &state.vhosts[&sandbox.vhost].queues;
    assert!(queues.contains_key("full") && queues.contains_key("busy"), "{}: {queues:?}", sandbox.name);

    let dry = sandbox.warren(&[&["apply", "--dry-run"], args, &[path_str(&file)]].concat(), &[]);
    sandbox.assert_code(&dry, 4, "a dry run reports the refusal");
}

/// The refusal's line for each queue [`prepare`] filled.
fn queue_refusals(sandbox: &Sandbox) -> [String; 2] {
    let vhost = &sandbox.vhost;
    [
        format!("queue \"full\" in vhost {vhost:?} holds 2 messages: deleting it would lose them"),
        format!("queue \"busy\" in vhost {vhost:?} holds 0 messages and has 1 consumer: deleting it would lose them"),
    ]
}

#[test]
fn deleting_queues_with_messages_or_consumers_by_prune_is_refused() {
    for sandbox in sandboxes("warren-guard-prune") {
        let _consumer = prepare(&sandbox);
        let without_queues = "vhosts:\n  VHOST:\n    exchanges:\n      work: { type: direct }\n";
        assert_refused(&sandbox, without_queues, &["--prune"], &queue_refusals(&sandbox));
    }
}

#[test]
fn deleting_queues_with_messages_or_consumers_by_state_absent_is_refused() {
    for sandbox in sandboxes("warren-guard-absent") {
        let _consumer = prepare(&sandbox);
        let absent = "vhosts:\n  VHOST:\n    queues:\n      full: { state: absent }\n      busy: { state: absent }\n";
        assert_refused(&sandbox, absent, &[], &queue_refusals(&sandbox));
    }
}

#[test]
fn deleting_a_vhost_with_messages_or_consumers_is_refused() {
    for sandbox in sandboxes("warren-guard-vhost") {
        let _consumer = prepare(&sandbox);
        let line = format!(
            "vhost {:?} holds 2 message(s) in queue(s) \"busy\", \"full\": deleting it would lose them",
            sandbox.vhost
        );
        assert_refused(&sandbox, "vhosts:\n  VHOST: { state: absent }\n", &[], &[line]);
    }
}

#[test]
fn deleting_an_idle_empty_queue_is_not_refused() {
    for sandbox in sandboxes("warren-guard-idle") {
        let file = sandbox.write("queues.yaml", &QUEUES.replace("VHOST", &format!("{:?}", sandbox.vhost)));
        sandbox.assert_code(&sandbox.warren(&["apply", "-y", path_str(&file)], &[]), 0, "apply");
        let absent = format!("vhosts:\n  {:?}:\n    queues:\n      busy: {{ state: absent }}\n", sandbox.vhost);
        let file = sandbox.write("absent.yaml", &absent);
        sandbox.assert_code(&sandbox.warren(&["apply", "-y", path_str(&file)], &[]), 0, "deleting an idle queue");
        assert!(!sandbox.state().vhosts[&sandbox.vhost].queues.contains_key("busy"), "{}", sandbox.name);
    }
}
