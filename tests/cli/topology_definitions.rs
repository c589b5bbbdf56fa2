//! RabbitMQ definitions documents as topology files, on both brokers: a
//! user's plain `password` is set and compared like a YAML one; permissions
//! may name a user the document does not define, when the broker has it;
//! the broker's own export (`GET /api/definitions`) loads and plans nothing
//! against it. (A `rabbitmqctl export_definitions` file is checked in
//! `topology_file`.)

use reqwest::Method;
use serde_json::{Value, json};

use crate::sandbox::{Sandbox, path_str, sandboxes};
use crate::topology_apply::EVERYTHING;
use crate::util::{management_request, run};

/// Writes `document` into the sandbox as `name`.
fn write_json(sandbox: &Sandbox, name: &str, document: &Value) -> String {
    let path = sandbox.write(name, &serde_json::to_string_pretty(document).expect("JSON"));
    path_str(&path).to_owned()
}

fn with_password(sandbox: &Sandbox, user: &str, password: &str) -> Value {
    json!({
        "rabbit_version": "3.10.8",
        "users": [{ "name": user, "password": password, "tags": "monitoring" }],
        "vhosts": [{ "name": sandbox.vhost }],
        "permissions": [{ "user": user, "vhost": sandbox.vhost, "configure": ".*", "write": ".*", "read": ".*" }],
    })
}

#[test]
fn a_plain_password_in_definitions_is_set_and_then_compared_through_the_hash() {
    for mut sandbox in sandboxes("warren-defs-password") {
        let user = sandbox.user("plain");
        let file = write_json(&sandbox, "first.json", &with_password(&sandbox, &user, "first-secret"));
        sandbox.assert_code(&sandbox.warren(&["apply", "-y", &file], &[]), 0, "apply");
        assert!(sandbox.connect(&user, "first-secret").is_ok(), "{}: the user logs in with its password", sandbox.name);

        let again = sandbox.warren(&["plan", &file], &[]);
        sandbox.assert_code(&again, 0, "a second plan");
        assert!(again.stdout.contains("No changes"), "{}", again.stdout);

        let file = write_json(&sandbox, "second.json", &with_password(&sandbox, &user, "second-secret"));
        let planned = sandbox.warren(&["plan", &file], &[]);
        sandbox.assert_code(&planned, 2, "a plan with a new password");
        assert!(planned.stdout.contains("password changed"), "{}", planned.stdout);
        assert!(!planned.stdout.contains("second-secret"), "the password is never shown");
        sandbox.assert_code(&sandbox.warren(&["apply", "-y", &file], &[]), 0, "apply of the new password");
        assert!(sandbox.connect(&user, "second-secret").is_ok(), "{}: the new password works", sandbox.name);
        assert!(sandbox.connect(&user, "first-secret").is_err(), "{}: the old one does not", sandbox.name);
    }
}

/// Permissions and topic permissions for `user` in the sandbox's vhost, without a `users` entry.
fn grants_only(sandbox: &Sandbox, user: &str) -> Value {
    json!({
        "rabbit_version": "3.10.8",
        "vhosts": [{ "name": sandbox.vhost }],
        "permissions": [{ "user": user, "vhost": sandbox.vhost, "configure": "^$", "write": ".*", "read": ".*" }],
        "topic_permissions": [{ "user": user, "vhost": sandbox.vhost, "exchange": "amq.topic", "write": "^a", "read": ".*" }],
    })
}

#[test]
fn definitions_grant_permissions_to_a_user_the_broker_has_and_leave_the_user_as_it_is() {
    for mut sandbox in sandboxes("warren-defs-grant") {
        let user = sandbox.user("existing");
        sandbox.create_user(&user, "kept-secret", "monitoring");
        let file = write_json(&sandbox, "grants.json", &grants_only(&sandbox, &user));
        let validated = run(["validate", file.as_str()]);
        assert_eq!(validated.code, 0, "{}", validated.stderr);

        sandbox.assert_code(&sandbox.warren(&["apply", "-y", &file], &[]), 0, "apply");
        let state = sandbox.state();
        let held = &state.users[&user];
        assert_eq!(held.permissions[&sandbox.vhost].configure, "^$", "{}", sandbox.name);
        assert_eq!(held.topic_permissions[&sandbox.vhost]["amq.topic"].write, "^a", "{}", sandbox.name);
        assert_eq!(held.tags.as_deref(), Some(&["monitoring".to_owned()][..]), "{}: tags kept", sandbox.name);
        assert!(sandbox.connect(&user, "kept-secret").is_ok(), "{}: the password is kept", sandbox.name);
        let again = sandbox.warren(&["plan", "--prune", &file], &[]);
        sandbox.assert_code(&again, 0, "a second plan");
    }
}

#[test]
fn a_yaml_user_entry_with_only_permissions_leaves_password_and_tags_as_they_are() {
    for mut sandbox in sandboxes("warren-yaml-grant") {
        let user = sandbox.user("existing");
        sandbox.create_user(&user, "kept-secret", "monitoring");
        let text = format!(
            "vhosts:\n  {vhost:?}: {{}}\nusers:\n  {user}:\n    permissions:\n      {vhost:?}: {{ configure: \"\", write: \".*\", read: \".*\" }}\n",
            vhost = sandbox.vhost
        );
        let file = sandbox.write("grants.yaml", &text);
        sandbox.assert_code(&sandbox.warren(&["apply", "-y", path_str(&file)], &[]), 0, "apply");
        let state = sandbox.state();
        let held = &state.users[&user];
        assert_eq!(held.permissions[&sandbox.vhost].write, ".*", "{}", sandbox.name);
        assert_eq!(held.tags.as_deref(), Some(&["monitoring".to_owned()][..]), "{}: tags kept", sandbox.name);
        assert!(sandbox.connect(&user, "kept-secret").is_ok(), "{}: the password is kept", sandbox.name);
        sandbox.assert_code(&sandbox.warren(&["plan", path_str(&file)], &[]), 0, "a second plan");
    }
}

#[test]
fn permissions_for_a_user_neither_defined_nor_on_the_broker_fail_the_plan_naming_it() {
    for mut sandbox in sandboxes("warren-defs-nobody") {
        let nobody = sandbox.user("nobody");
        let json_file = write_json(&sandbox, "grants.json", &grants_only(&sandbox, &nobody));
        let yaml = format!(
            "vhosts:\n  {vhost:?}: {{}}\nusers:\n  {nobody}:\n    permissions:\n      {vhost:?}: {{ configure: \"\", write: \".*\", read: \".*\" }}\n",
            vhost = sandbox.vhost
        );
        let yaml_file = sandbox.write("grants.yaml", &yaml);
        for file in [json_file.as_str(), path_str(&yaml_file)] {
            for command in ["plan", "apply"] {
                let output = sandbox.warren(
                    &[command, "-y", file].into_iter().filter(|a| command == "apply" || *a != "-y").collect::<Vec<_>>(),
                    &[],
                );
                sandbox.assert_code(&output, 1, &format!("{command} {file}"));
                assert!(
                    output.stderr.contains(&format!("user {nobody:?}")) && output.stderr.contains("does not exist"),
                    "{}: {}",
                    sandbox.name,
                    output.stderr
                );
            }
        }
        let state = sandbox.state();
        assert!(!state.vhosts.contains_key(&sandbox.vhost), "{}: nothing was created", sandbox.name);
        assert!(!state.users.contains_key(&nobody), "{}: nor the user", sandbox.name);
    }
}

/// `document` with only the entities of `vhost` and the users named in `users`, every field kept.
fn only(document: &Value, vhost: &str, users: &[&str]) -> Value {
    let mut out = document.clone();
    let Some(object) = out.as_object_mut() else { panic!("a definitions object: {document}") };
    for (key, value) in object.iter_mut() {
        let Some(items) = value.as_array_mut() else { continue };
        items.retain(|item| match key.as_str() {
            "users" => users.iter().any(|u| item["name"] == *u),
            "vhosts" => item["name"] == vhost,
            "permissions" | "topic_permissions" => users.iter().any(|u| item["user"] == *u) && item["vhost"] == vhost,
            "global_parameters" => true,
            _ => item["vhost"] == vhost,
        });
    }
    out
}

#[test]
fn the_brokers_own_definitions_export_loads_and_plans_nothing() {
    for mut sandbox in sandboxes("warren-defs-export") {
        let user = sandbox.user("ops");
        let text = EVERYTHING.replace("VHOST", &format!("{:?}", sandbox.vhost)).replace("USER", &user);
        let file = sandbox.write("everything.yaml", &text);
        sandbox.assert_code(&sandbox.warren(&["apply", "-y", path_str(&file)], &[]), 0, "apply");

        let (status, body) = management_request(&sandbox.rabbit, Method::GET, "/api/definitions", None);
        assert_eq!(status, 200, "{body}");
        let whole = sandbox.write("whole.json", &body);
        let validated = run(["validate", path_str(&whole)]);
        assert_eq!(validated.code, 0, "{}: the whole export of the broker loads:\n{}", sandbox.name, validated.stderr);

        let document: Value = serde_json::from_str(&body).expect("JSON");
        let mine = write_json(&sandbox, "mine.json", &only(&document, &sandbox.vhost, &[&user]));
        let planned = sandbox.warren(&["plan", "--prune", &mine], &[]);
        sandbox.assert_code(&planned, 0, "a plan of the broker's own export of the vhost");
    }
}
