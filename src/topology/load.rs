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

use std::path::Path;

use super::convert::Converter;
use super::diagnostic::{Diagnostics, LoadError, Pos};
use super::env::{Env, ProcessEnv};
use super::raw::RawTopology;
use super::source::{Locator, NodePath};
use super::{Topology, normalise, validate, yaml};

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
    let locator = Locator::new(source_name, text);
    let raw: RawTopology = yaml::from_str(text, &locator)?;
    raw_to_model(&raw, &locator, env)
}

/// Converts deserialized raw structs into a validated, normalised
/// [`Topology`], reporting every problem at once.
///
/// Usable for a topology nested in another file (a scenario's inline
/// `topology:` mapping): deserialize the outer file into structs holding a
/// [`RawTopology`], then call this with
/// `Locator::new(file, text).within(NodePath::root().key("topology"))` so the
/// diagnostics point into the right lines. With
/// [`Locator::without_positions`] the diagnostics name the file only.
pub fn raw_to_model(raw: &RawTopology, locator: &Locator, env: &dyn Env) -> Result<Topology, LoadError> {
    let mut diags = Diagnostics::new(locator.file());
    let mut converter = Converter { loc: locator, env, diags: &mut diags, origins: Default::default() };
    let mut topology = converter.topology(raw, &NodePath::root());
    let origins = std::mem::take(&mut converter.origins);
    validate::validate(&topology, &origins, locator, &mut diags);
    if !diags.is_empty() {
        return Err(diags.into_error());
    }
    normalise::normalise(&mut topology);
    Ok(topology)
}

/// True when `text` is a RabbitMQ definitions export rather than a warren
/// topology: a JSON object with a version field, or with the export's
/// top-level arrays (a warren topology has mappings there).
pub fn is_definitions(text: &str) -> bool {
    if !text.trim_start().starts_with('{') {
        return false;
    }
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    ["rabbit_version", "rabbitmq_version", "product_version"].iter().any(|key| object.contains_key(*key))
        || ["vhosts", "users", "queues", "exchanges", "bindings", "permissions", "policies"]
            .iter()
            .any(|key| object.get(*key).is_some_and(serde_json::Value::is_array))
}

fn load_definitions(source_name: &str, text: &str) -> Result<Topology, LoadError> {
    use super::definitions::{DefinitionsError, parse_definitions};
    // An export comes from a broker, which has already enforced what
    // `validate` checks; only its shape can be wrong.
    parse_definitions(text).map_err(|error| {
        let mut diags = Diagnostics::new(source_name);
        match &error {
            DefinitionsError::Json { line, column, message } => {
                // serde_json appends the position, which the diagnostic already leads with.
                let message = message.split(" at line ").next().unwrap_or(message);
                diags.push(Some(Pos { line: *line, column: *column }), format!("RabbitMQ definitions: {message}"));
            }
            _ => diags.push(None, format!("RabbitMQ definitions: {error}")),
        }
        diags.into_error()
    })
}
