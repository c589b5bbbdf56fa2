//! Loading a topology file: the one entry point from a path or a text to a
//! validated, normalised [`Topology`].
//!
//! ```text
//! text ──serde_yaml──▶ RawTopology ──convert (${VAR}, names, per-entity checks)──▶ Topology
//!      ──yaml-rust2──▶ SourceMap (positions, duplicate keys) ─┘        │
//!                                          validate (references, regexes) ──▶ normalise
//! ```
//!
//! A RabbitMQ definitions export (JSON) is recognised by its content and
//! read by [`super::definitions`] instead.

pub mod convert;
pub mod diagnostic;
pub mod env;
pub mod raw;
pub mod source;
pub mod validate;
pub mod yaml;

use std::path::Path;

use self::convert::Converter;
use self::diagnostic::{Diagnostics, LoadError, Pos};
use self::env::{Env, ProcessEnv};
use self::raw::RawTopology;
use self::source::{Locator, NodePath};
use super::{Topology, normalise};

/// Loads and validates the topology file at `path`, with `${VAR}` taken
/// from the process environment. Diagnostics name the path as given.
pub fn load_file(path: &Path) -> Result<Topology, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    load_str(&path.display().to_string(), &text)
}

/// Loads and validates a topology from `text`; `source_name` is what
/// diagnostics call the file. `${VAR}` comes from the process environment.
pub fn load_str(source_name: &str, text: &str) -> Result<Topology, LoadError> {
    load_str_with_env(source_name, text, &ProcessEnv)
}

/// [`load_str`] with variables from `env`.
pub fn load_str_with_env(source_name: &str, text: &str, env: &dyn Env) -> Result<Topology, LoadError> {
    if is_definitions(text) {
        return load_definitions(source_name, text);
    }
    let locator = self::yaml::locator(source_name, text);
    let raw: RawTopology = yaml::from_str(text, &locator)?;
    raw_to_model(&raw, &locator, env)
}

/// [`load_str_with_env`] for a topology whose users are of no interest (a
/// bench runs in one vhost and creates no users): the users are left out
/// before anything is converted, so the `${VAR}` of their passwords need
/// not be set, while every other unset variable is an error at its place.
pub fn load_str_without_users(source_name: &str, text: &str, env: &dyn Env) -> Result<Topology, LoadError> {
    if is_definitions(text) {
        let mut topology = load_definitions(source_name, text)?;
        topology.users.clear();
        return Ok(topology);
    }
    let locator = self::yaml::locator(source_name, text);
    let mut raw: RawTopology = yaml::from_str(text, &locator)?;
    raw.users.clear();
    raw_to_model(&raw, &locator, env)
}

/// Converts deserialized raw structs into a validated, normalised
/// [`Topology`], reporting every problem at once.
///
/// Usable for a topology nested in another file (a scenario's inline
/// `topology:` mapping): deserialize the outer file into structs holding a
/// [`RawTopology`], then call this with
/// `self::yaml::locator(file, text).within(NodePath::root().key("topology"))` so the
/// diagnostics point into the right lines. With
/// [`Locator::without_positions`] the diagnostics name the file only.
pub fn raw_to_model(raw: &RawTopology, locator: &Locator, env: &dyn Env) -> Result<Topology, LoadError> {
    let mut diags = Diagnostics::new(locator.file());
    let mut converter = Converter { loc: locator, env, diags: &mut diags, origins: Default::default() };
    let mut topology = converter.topology(raw, &NodePath::root());
    let origins = std::mem::take(&mut converter.origins);
    validate::validate(&topology, &origins, locator, env, &mut diags);
    if !diags.is_empty() {
        return Err(diags.into_error());
    }
    normalise::normalise(&mut topology, normalise::Side::File);
    Ok(topology)
}

/// True when `text` is a RabbitMQ definitions export rather than a warren
/// topology: a JSON object with a version field, or with the export's
/// top-level arrays (a warren topology has mappings there).
pub fn is_definitions(text: &str) -> bool {
    if !text.trim_start().starts_with('{') {
        return false;
    }
    // An export with a JSON syntax error should still be read as one, so
    // that the error is reported as JSON; YAML's flow syntax parses it.
    let document = serde_json::from_str::<serde_json::Value>(text).ok().or_else(|| yaml::to_json_value(text));
    let Some(serde_json::Value::Object(object)) = document else {
        return false;
    };
    ["rabbit_version", "rabbitmq_version", "product_version"].iter().any(|key| object.contains_key(*key))
        || ["vhosts", "users", "queues", "exchanges", "bindings", "permissions", "policies"]
            .iter()
            .any(|key| object.get(*key).is_some_and(serde_json::Value::is_array))
}

/// Loads a definitions document: its syntax, every field against what
/// warren does with it, then its entities. Every problem is reported at once.
fn load_definitions(source_name: &str, text: &str) -> Result<Topology, LoadError> {
    use super::definitions::{DefinitionsError, parse_definitions};
    let mut diags = Diagnostics::new(source_name);
    let json_error = |diags: &mut Diagnostics, line: usize, column: usize, message: &str| {
        // serde_json appends the position, which the diagnostic already leads with.
        let message = message.split(" at line ").next().unwrap_or(message);
        diags.push(Some(Pos { line, column }), format!("RabbitMQ definitions: {message}"));
    };
    let document: serde_json::Value = match serde_json::from_str(text) {
        Ok(document) => document,
        Err(error) => {
            json_error(&mut diags, error.line(), error.column(), &error.to_string());
            return Err(diags.into_error());
        }
    };
    // Positions cost a second parse: only when there is something to point at.
    let mut locator = None;
    for problem in super::definitions_fields::check(&document) {
        let locator = locator.get_or_insert_with(|| self::yaml::locator(source_name, text));
        let pos = if problem.at_value { locator.value(&problem.path) } else { locator.key(&problem.path) };
        diags.push(pos, format!("RabbitMQ definitions: {}", problem.message));
    }
    // References (a binding's exchange, a dead-letter exchange) are not
    // checked here: an export comes from a broker that enforced them, and a
    // hand-written document meets the broker's own import checks on apply.
    match parse_definitions(text) {
        Ok(topology) => diags.finish(topology),
        Err(DefinitionsError::Json { line, column, message }) => {
            json_error(&mut diags, line, column, &message);
            Err(diags.into_error())
        }
        Err(error) => {
            diags.push(definitions_position(source_name, text, &error), format!("RabbitMQ definitions: {error}"));
            Err(diags.into_error())
        }
    }
}

/// Where in the export the entity an error names is: the definitions
/// reader names entities, not positions, so find the entity's list item.
fn definitions_position(source_name: &str, text: &str, error: &super::definitions::DefinitionsError) -> Option<Pos> {
    use super::definitions::DefinitionsError as E;
    let (list, wanted, field): (&str, Vec<(&str, &str)>, Option<&str>) = match error {
        E::ExchangeType { vhost, name, .. } => ("exchanges", vec![("vhost", vhost), ("name", name)], Some("type")),
        E::DestinationType { vhost, source_name, destination, .. } => (
            "bindings",
            vec![("vhost", vhost), ("source", source_name), ("destination", destination)],
            Some("destination_type"),
        ),
        E::Policy { vhost, name, .. } => ("policies", vec![("vhost", vhost), ("name", name)], None),
        E::HashingAlgorithm { name, .. } => ("users", vec![("name", name)], Some("hashing_algorithm")),
        E::PasswordAndHash { name } | E::EmptyPassword { name } => ("users", vec![("name", name)], Some("password")),
        E::Queue { vhost, name, .. } => ("queues", vec![("vhost", vhost), ("name", name)], Some("type")),
        E::QueueType { vhost, .. } => ("vhosts", vec![("name", vhost)], None),
        E::Json { .. } => return None,
    };
    let document: serde_json::Value = serde_json::from_str(text).ok()?;
    // A vhost-scoped export (`GET /api/definitions/{vhost}`) has no `vhost` fields.
    let matches = |item: &serde_json::Value| {
        wanted.iter().all(|(key, value)| item.get(*key).is_none_or(|v| v.as_str() == Some(*value)))
    };
    let index = document.get(list)?.as_array()?.iter().position(matches)?;
    let locator = self::yaml::locator(source_name, text);
    let item = NodePath::root().key(list).index(index);
    field.and_then(|field| locator.value(&item.key(field))).or_else(|| locator.value(&item))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::topology::model::{DestinationType, Password, State};

    fn load(text: &str) -> Result<Topology, LoadError> {
        load_str_with_env("t.yaml", text, &HashMap::<String, String>::new())
    }

    fn messages(text: &str) -> Vec<String> {
        match load(text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(error) => error.diagnostics().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn defaults_follow_the_documented_format() {
        let topology = load(
            "vhosts:\n  /:\n    exchanges:\n      e: { type: topic }\n    queues:\n      q: {}\n    bindings:\n      - { exchange: e, queue: q }\n",
        )
        .expect("valid");
        let vhost = &topology.vhosts["/"];
        let exchange = &vhost.exchanges["e"];
        assert!(exchange.durable && !exchange.auto_delete && !exchange.internal);
        assert!(vhost.queues["q"].durable);
        let binding = &vhost.bindings[0];
        assert_eq!((binding.routing_key.as_str(), binding.destination_type), ("", DestinationType::Queue));
        assert_eq!(binding.state, State::Present);
    }

    #[test]
    fn an_empty_file_is_an_empty_topology() {
        assert_eq!(load("{}").expect("valid"), Topology::default());
    }

    #[test]
    fn the_loaded_topology_is_normalised() {
        // A quoted number and the vhost's default queue type are what a
        // broker reports differently; the loader hands over the canonical form.
        let topology = load(
            "vhosts:\n  /:\n    default_queue_type: classic\n    queues:\n      q:\n        arguments: { x-message-ttl: \"60000\", x-queue-type: classic }\n",
        )
        .expect("valid");
        let arguments = &topology.vhosts["/"].queues["q"].arguments;
        assert_eq!(arguments.get("x-message-ttl"), Some(&serde_json::json!(60000)));
        assert_eq!(arguments.get("x-queue-type"), None);
    }

    #[test]
    fn a_password_hash_defaults_to_sha256_and_is_never_shown() {
        let topology =
            load("users:\n  u:\n    password_hash: 7Mvsw/U+bHR7ukTHgExDDXXqTnENrzHTLR/VyA9dimxoI0sE\n").expect("valid");
        let password = &topology.users["u"].password;
        assert!(matches!(
            password,
            Password::Hash { algorithm: warren_definitions::password::HashingAlgorithm::Sha256, .. }
        ));
        assert!(!format!("{password:?}").contains("7Mvsw"));
        // A SHA-512 hash is longer: the length gives a mismatch away without printing the hash.
        let errors = messages(
            "users:\n  u:\n    password_hash: 7Mvsw/U+bHR7ukTHgExDDXXqTnENrzHTLR/VyA9dimxoI0sE\n    hashing_algorithm: rabbit_password_hashing_sha512\n",
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("decodes to 36 bytes, but a rabbit_password_hashing_sha512 hash is 68"));
        assert!(!errors[0].contains("7Mvsw"));
    }

    #[test]
    fn a_clear_password_is_not_quoted_in_errors() {
        let env = HashMap::from([("PW".to_owned(), "s3cret-value".to_owned())]);
        let text = "users:\n  u:\n    password: ${PW}\n    password_hash: abc\n";
        let error = load_str_with_env("t.yaml", text, &env).expect_err("both given");
        assert!(!error.to_string().contains("s3cret-value"));
    }

    #[test]
    fn references_to_absent_entities_are_errors() {
        let errors = messages(
            "vhosts:\n  /:\n    exchanges:\n      e: { type: direct }\n    queues:\n      q: { state: absent }\n    bindings:\n      - { exchange: e, queue: q }\n",
        );
        assert_eq!(
            errors,
            ["t.yaml:8:31: binding #1 of vhost `/` names queue `q`, which this file declares `state: absent`"]
        );
    }

    #[test]
    fn an_absent_policy_needs_no_pattern_but_a_present_one_does() {
        let topology = load("vhosts:\n  /:\n    policies:\n      old: { state: absent }\n").expect("valid");
        assert_eq!(topology.vhosts["/"].policies["old"].state, State::Absent);
        assert_eq!(
            messages("vhosts:\n  /:\n    policies:\n      p: { definition: { max-length: 1 } }\n"),
            ["t.yaml:4:7: policy `p` has no `pattern`: give a regular expression of the names it applies to"]
        );
    }

    #[test]
    fn an_absent_exchange_needs_no_type() {
        let topology = load("vhosts:\n  /:\n    exchanges:\n      old: { state: absent }\n").expect("valid");
        assert_eq!(topology.vhosts["/"].exchanges["old"].state, State::Absent);
    }

    #[test]
    fn look_around_in_a_pattern_is_accepted_as_rabbitmq_does() {
        load(
            "vhosts:\n  /:\n    policies:\n      p: { pattern: \"^(?!amq\\\\.).*\", definition: { max-length: 10 } }\n",
        )
        .expect("PCRE look-ahead is valid for RabbitMQ");
    }

    #[test]
    fn quorum_by_vhost_default_must_be_durable() {
        let errors =
            messages("vhosts:\n  v:\n    default_queue_type: quorum\n    queues:\n      q: { durable: false }\n");
        assert_eq!(
            errors,
            ["t.yaml:5:7: queue `q` in vhost `v`: a quorum queue must be durable (remove `durable: false`)"]
        );
    }

    #[test]
    fn definitions_are_recognised_by_content() {
        assert!(is_definitions(r#"{"rabbit_version": "3.10.8", "queues": []}"#));
        assert!(is_definitions(r#"{"queues": [{"name": "q", "vhost": "/"}]}"#));
        // A topology written as JSON has mappings where an export has lists.
        assert!(!is_definitions(r#"{"vhosts": {"/": {}}}"#));
        assert!(!is_definitions("vhosts: {}"));
    }

    #[test]
    fn a_definitions_export_loads_into_the_model() {
        let text = r#"{"rabbit_version": "3.10.8", "vhosts": [{"name": "v"}],
            "queues": [{"name": "q", "vhost": "v", "durable": true, "auto_delete": false, "arguments": {}}]}"#;
        let topology = load(text).expect("a definitions export");
        assert!(topology.vhosts["v"].queues.contains_key("q"));
    }

    /// A file holding a topology under `topology:`, as a scenario does.
    #[derive(serde::Deserialize)]
    struct Outer {
        #[allow(dead_code)]
        name: String,
        topology: serde_yaml::Value,
    }

    const OUTER: &str = "name: inline\ntopology:\n  vhosts:\n    /:\n      queues:\n        q: {}\n      bindings:\n        - { exchange: amq.direct, queue: qq }\n";

    #[test]
    fn an_inline_topology_reports_positions_in_the_outer_file() {
        let outer: Outer = serde_yaml::from_str(OUTER).expect("outer file");
        let locator = self::yaml::locator("scenario.yaml", OUTER).within(NodePath::root().key("topology"));
        let raw: RawTopology = yaml::from_value(outer.topology, &locator).expect("valid shape");
        let error = raw_to_model(&raw, &locator, &HashMap::<String, String>::new()).expect_err("dangling binding");
        assert_eq!(
            error.to_string(),
            "scenario.yaml:8:42: binding #1 of vhost `/` names queue `qq`, which is not declared in vhost `/` (did you mean `q`?)"
        );
    }

    #[test]
    fn an_inline_topology_with_an_unknown_key_is_located_by_name() {
        let text = OUTER.replace("q: {}", "q: { durabel: true }");
        let outer: Outer = serde_yaml::from_str(&text).expect("outer file");
        let locator = self::yaml::locator("scenario.yaml", &text).within(NodePath::root().key("topology"));
        let error = yaml::from_value::<RawTopology>(outer.topology, &locator).expect_err("unknown key");
        assert!(
            error.to_string().starts_with("scenario.yaml:6:14: unknown field `durabel` in queue `q`, expected one of"),
            "{error}"
        );
    }

    proptest::proptest! {
        /// Whatever a typo does to a file, loading it returns: either a
        /// topology or problems that point inside the file.
        #[test]
        fn any_small_edit_of_an_example_loads_or_points_inside_the_file(
            example in 0usize..3,
            at in 0usize..2000,
            removed in 0usize..4,
            inserted in "[ -~\n\t]{0,3}",
        ) {
            let name = ["seed", "registration", "orders"][example];
            let path = format!("{}/topologies/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
            let original = std::fs::read_to_string(&path).expect("example exists");
            let chars: Vec<char> = original.chars().collect();
            let at = at % (chars.len() + 1);
            let end = (at + removed).min(chars.len());
            let text: String = chars[..at].iter().chain(inserted.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect();
            let env = HashMap::from([("JACK_PASSWORD".to_owned(), "pw".to_owned())]);
            let lines = text.lines().count().max(1);
            if let Err(error) = load_str_with_env("edited.yaml", &text, &env) {
                proptest::prop_assert!(!error.diagnostics().is_empty());
                for diagnostic in error.diagnostics() {
                    if let Some(pos) = diagnostic.pos {
                        proptest::prop_assert!(pos.line >= 1 && pos.line <= lines + 1, "{diagnostic} in:\n{text}");
                        proptest::prop_assert!(pos.column >= 1, "{diagnostic}");
                    }
                }
            }
        }
    }
}
