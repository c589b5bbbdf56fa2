//! Malformed topology files (`tests/topology-errors/*.yaml`): each one gets
//! a precise message naming file, line and column (snapshot-tested) and exit
//! code 1, and `apply` of it changes nothing on the broker.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::json;

use crate::util::{
    Output, RabbitMq, embedded_broker, management_request, rabbitmq, repo_path, repo_root, unique_name, warren,
};

/// The vhost every bad file declares (and the prefix of the user they
/// declare, `warren-errors-user`). The broker tests give each run its own
/// copy of the files with this name made unique, because RabbitMQ is shared
/// with other test runs: they compare only that vhost and user.
const VHOST: &str = "warren-errors";

fn bad_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path("tests/topology-errors"))
        .expect("tests/topology-errors exists")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "json"))
        .collect();
    files.sort();
    files
}

/// The path as a user in the repository root would type it.
fn relative(path: &Path) -> &Path {
    path.strip_prefix(repo_root()).unwrap_or(path)
}

/// Runs warren with none of the variables the bad files mention set.
fn run_clean(args: &[&std::ffi::OsStr]) -> Output {
    let output = warren()
        .args(args)
        .env_remove("WARREN_ERRORS_UNSET_PASSWORD")
        .env_remove("WARREN_ERRORS_PASSWORD")
        .env_remove("TEAM")
        .output()
        .expect("the warren binary runs");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn topology_errors_there_are_enough_bad_files() {
    assert!(bad_files().len() >= 25, "only {} bad files", bad_files().len());
}

#[test]
fn topology_errors_each_bad_file_gets_a_precise_message() {
    let root = repo_root().display().to_string();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&root), "[REPO]");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::glob!(repo_path("tests/topology-errors"), "*.{yaml,json}", |path| {
            let output = run_clean(&["validate".as_ref(), relative(path).as_os_str()]);
            assert_eq!(output.code, 1, "validate {} should fail:\n{}", path.display(), output.stderr);
            assert_eq!(output.stdout, "", "nothing on stdout for a bad file");
            insta::assert_snapshot!(output.stderr);
        });
    });
}

fn regex_escape(text: &str) -> String {
    regex::escape(text)
}

#[test]
fn topology_errors_all_problems_of_a_file_are_reported_in_one_run() {
    let output = run_clean(&["validate".as_ref(), "tests/topology-errors/35-several-problems.yaml".as_ref()]);
    assert_eq!(output.code, 1);
    let lines: Vec<&str> = output.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", output.stderr);
    assert!(lines.iter().all(|line| line.starts_with("error: tests/topology-errors/35-several-problems.yaml:")));
}

#[test]
fn topology_errors_validate_checks_every_file_given() {
    let output = run_clean(&[
        "validate".as_ref(),
        "topologies/registration.yaml".as_ref(),
        "tests/topology-errors/03-unknown-queue-field.yaml".as_ref(),
        "tests/topology-errors/20-unknown-exchange-type.yaml".as_ref(),
    ]);
    assert_eq!(output.code, 1);
    assert!(output.stdout.contains("topologies/registration.yaml: ok"), "{}", output.stdout);
    assert!(output.stderr.contains("durabel") && output.stderr.contains("topc"), "{}", output.stderr);
    assert!(output.stderr.contains("2 of 3 files are invalid"), "{}", output.stderr);
}

#[test]
fn topology_errors_json_format_lists_each_problem_with_its_position() {
    let output = run_clean(&[
        "--format".as_ref(),
        "json".as_ref(),
        "validate".as_ref(),
        "tests/topology-errors/07-binding-to-undeclared-queue.yaml".as_ref(),
    ]);
    assert_eq!(output.code, 1);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).expect("stdout is JSON");
    let file = &report["files"][0];
    assert_eq!(file["valid"], false);
    assert_eq!(file["problems"][0]["line"], 10);
    assert_eq!(file["problems"][0]["column"], 41);
    assert!(file["problems"][0]["message"].as_str().is_some_and(|m| m.contains("did you mean `email`?")));
}

#[test]
fn topology_errors_an_unreadable_file_is_named() {
    let output = run_clean(&["validate".as_ref(), "tests/topology-errors/does-not-exist.yaml".as_ref()]);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.starts_with("error: cannot read tests/topology-errors/does-not-exist.yaml: "),
        "{}",
        output.stderr
    );
}

/// Removes the test's vhost however the test ends.
struct VhostGuard<'a>(&'a RabbitMq, String);

impl Drop for VhostGuard<'_> {
    fn drop(&mut self) {
        management_request(self.0, Method::DELETE, &format!("/api/vhosts/{}", self.1), None);
    }
}

fn put(rabbit: &RabbitMq, path: &str, body: serde_json::Value) {
    let (status, text) = management_request(rabbit, Method::PUT, path, Some(body));
    assert!((200..300).contains(&status), "PUT {path}: {status} {text}");
}

#[test]
fn topology_errors_apply_of_a_bad_file_leaves_rabbitmq_unchanged() {
    let Some(rabbit) = rabbitmq() else { return };
    let vhost = unique_name(VHOST);
    // Other runs use RabbitMQ at the same time: compare only this run's vhost and user.
    let watched = [format!("/api/definitions/{vhost}"), format!("/api/users/{vhost}-user")];
    apply_bad_files_and_compare(&rabbit, &vhost, &[], &watched);
}

#[test]
fn topology_errors_apply_of_a_bad_file_leaves_the_embedded_broker_unchanged() {
    let embedded = embedded_broker();
    let target = &embedded.target;
    // Nothing else uses this broker, so the whole definitions document must stay byte-identical.
    let watched = ["/api/definitions".to_owned()];
    apply_bad_files_and_compare(target, VHOST, &["--management", &target.management_url], &watched);
}

/// Prepares `vhost`, applies a copy of each bad file naming `vhost` instead
/// of `warren-errors`, and checks that apply fails with validate's message
/// and that every `watched` management resource reads back byte for byte.
fn apply_bad_files_and_compare(target: &RabbitMq, vhost: &str, extra_args: &[&str], watched: &[String]) {
    // Something for a wrongly-applied file to damage: the vhost with an
    // exchange, a queue and a binding, as a previous good apply would leave it.
    put(target, &format!("/api/vhosts/{vhost}"), json!({ "description": "warren topology_errors test" }));
    let _guard = VhostGuard(target, vhost.to_owned());
    put(target, &format!("/api/exchanges/{vhost}/events"), json!({ "type": "topic", "durable": true }));
    put(target, &format!("/api/queues/{vhost}/orders"), json!({ "durable": true }));
    let (status, text) = management_request(
        target,
        Method::POST,
        &format!("/api/bindings/{vhost}/e/events/q/orders"),
        Some(json!({ "routing_key": "order.*" })),
    );
    assert!((200..300).contains(&status), "binding: {status} {text}");

    let read = || -> Vec<(u16, String)> {
        watched.iter().map(|path| management_request(target, Method::GET, path, None)).collect()
    };
    let before = read();
    assert_eq!(before[0].0, 200, "{}", before[0].1);
    assert!(before[0].1.contains("\"orders\""), "the prepared queue is there: {}", before[0].1);

    let copies = tempfile::tempdir().expect("a temporary directory");
    for path in bad_files() {
        let text = std::fs::read_to_string(&path).expect("a readable bad file");
        let copy = copies.path().join(path.file_name().expect("a file name"));
        std::fs::write(&copy, text.replace(VHOST, vhost)).expect("the copy is written");
        let file = copy.as_os_str();
        let validate = run_clean(&["validate".as_ref(), file]);
        assert_eq!(validate.code, 1, "validate {} should fail:\n{}", copy.display(), validate.stderr);
        let mut args: Vec<&std::ffi::OsStr> =
            vec!["apply".as_ref(), "--yes".as_ref(), "--broker".as_ref(), target.amqp_url.as_ref()];
        args.extend(extra_args.iter().map(|a| std::ffi::OsStr::new(*a)));
        args.push(file);
        let apply = run_clean(&args);
        assert_eq!(apply.code, 1, "apply {} should fail:\n{}", path.display(), apply.stderr);
        // apply loads the file before it touches the broker, so it reports
        // exactly what validate reports.
        for line in validate.stderr.lines() {
            let problem = line.trim_start_matches("error: ");
            assert!(
                apply.stderr.contains(problem),
                "apply {} does not report `{problem}`:\n{}",
                path.display(),
                apply.stderr
            );
        }
        assert_eq!(read(), before, "apply {} changed the broker", path.display());
    }
}
