//! A policy or operator policy from its JSON shape (`PUT /api/policies/…`
//! bodies, definitions entries), validated the way RabbitMQ validates it, with
//! its "Validation failed" texts.

use serde_json::{Map, Value};
use warren_definitions::parse_priority;

use crate::state::StateError;
use crate::state::policy::{ApplyTo, Policy};

/// Policy keys this broker accepts, with whether the value is a non-negative integer.
const POLICY_KEYS: [(&str, bool); 14] = [
    ("message-ttl", true),
    ("expires", true),
    ("max-length", true),
    ("max-length-bytes", true),
    ("delivery-limit", true),
    ("max-priority", true),
    ("overflow", false),
    ("dead-letter-exchange", false),
    ("dead-letter-routing-key", false),
    ("alternate-exchange", false),
    ("queue-mode", false),
    ("queue-version", true),
    ("ha-mode", false),
    ("ha-params", false),
];

/// Operator policies may only cap limits, as in RabbitMQ.
const OPERATOR_POLICY_KEYS: [&str; 5] = ["message-ttl", "expires", "max-length", "max-length-bytes", "delivery-limit"];

/// Regular or operator policies: the same shape, stored and validated apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// `/api/policies`, definitions' `policies`.
    Regular,
    /// `/api/operator-policies`, definitions' `parameters` of component `operator_policy`.
    Operator,
}

/// A policy body the broker refuses.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// `pattern` or `definition` is missing.
    #[error("[{}]", .keys.iter().map(|k| format!("{{key_missing,{k}}}")).collect::<Vec<_>>().join(","))]
    KeysMissing {
        /// The missing keys, in the order RabbitMQ lists them.
        keys: Vec<&'static str>,
    },
    /// A field or a definition key RabbitMQ's validation refuses.
    #[error("{problem}")]
    Invalid {
        /// What is wrong, in RabbitMQ's words.
        problem: String,
    },
    /// The state refused the policy (a pattern that does not compile, an empty definition).
    #[error(transparent)]
    State(#[from] StateError),
}

/// Validates a policy body (`pattern`, `definition`, optional `priority` and `apply-to`) the way
/// RabbitMQ does, with its texts.
pub fn policy_from_body(
    kind: PolicyKind,
    vhost: &str,
    name: &str,
    map: &Map<String, Value>,
) -> Result<Policy, PolicyError> {
    let missing: Vec<&'static str> = ["pattern", "definition"].into_iter().filter(|k| !map.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(PolicyError::KeysMissing { keys: missing });
    }
    let invalid = |problem: String| PolicyError::Invalid { problem };
    let pattern =
        map.get("pattern").and_then(Value::as_str).ok_or_else(|| invalid("pattern must be a string".into()))?;
    if let Err(e) = regex::Regex::new(pattern) {
        return Err(invalid(format!("pattern should be regular expression but is invalid: {e}")));
    }
    let apply_to_text = match map.get("apply-to") {
        None | Some(Value::Null) => "all",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(invalid(format!("apply-to must be a string, got {other}"))),
    };
    let apply_to = ApplyTo::parse(apply_to_text).ok_or_else(|| {
        invalid(format!(
            "\"{apply_to_text}\" is not a valid apply-to value (all, exchanges, queues, classic_queues, quorum_queues)"
        ))
    })?;
    let priority_value = map.get("priority").unwrap_or(&Value::Null);
    let priority = parse_priority(priority_value).ok_or_else(|| {
        let shown = match priority_value {
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        invalid(format!("priority must be an integer, got {shown}"))
    })?;
    let definition = match map.get("definition") {
        Some(Value::Object(def)) => def.clone(),
        Some(other) => return Err(invalid(format!("definition must be an object, got {other}"))),
        None => Map::new(),
    };
    validate_definition(kind, &definition).map_err(invalid)?;
    Ok(Policy::new(vhost, name, pattern, apply_to, priority, definition)?)
}

fn validate_definition(kind: PolicyKind, definition: &Map<String, Value>) -> Result<(), String> {
    let unknown: Vec<String> = definition
        .iter()
        .filter(|(k, _)| match kind {
            PolicyKind::Regular => !POLICY_KEYS.iter().any(|(known, _)| known == k),
            PolicyKind::Operator => !OPERATOR_POLICY_KEYS.contains(&k.as_str()),
        })
        .map(|(k, v)| format!("{{<<\"{k}\">>,{v}}}"))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("[{}] are not recognised policy settings", unknown.join(",")));
    }
    for (key, value) in definition {
        let numeric = POLICY_KEYS.iter().any(|(known, numeric)| known == key && *numeric);
        if numeric && value.as_u64().is_none() {
            return Err(format!("{key} must be a non-negative integer, got {value}"));
        }
        if key == "overflow" && !matches!(value.as_str(), Some("drop-head" | "reject-publish" | "reject-publish-dlx")) {
            return Err(format!("overflow must be drop-head, reject-publish or reject-publish-dlx, got {value}"));
        }
    }
    Ok(())
}
