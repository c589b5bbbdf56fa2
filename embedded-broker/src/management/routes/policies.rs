//! `/api/policies…` and `/api/operator-policies…`: list, show, set, delete.
//! Setting or deleting one re-applies policies to the vhost's queues at once
//! (the state model recomputes each queue's effective settings).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{existing_vhost, written};
use crate::management::{Api, ApiError, body};
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

/// Regular or operator policies: the same routes serve both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/api/policies`.
    Regular,
    /// `/api/operator-policies`.
    Operator,
}

fn policies(api: &Api, kind: Kind, vhost: Option<&str>) -> Vec<Policy> {
    match kind {
        Kind::Regular => api.state.policies(vhost),
        Kind::Operator => api.state.operator_policies(vhost),
    }
}

pub(crate) async fn list_all(State(api): State<Api>) -> Json<Vec<Value>> {
    Json(policies(&api, Kind::Regular, None).iter().map(view).collect())
}

pub(crate) async fn list_all_operator(State(api): State<Api>) -> Json<Vec<Value>> {
    Json(policies(&api, Kind::Operator, None).iter().map(view).collect())
}

pub(crate) async fn list_in(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Vec<Value>>, ApiError> {
    list_in_of(&api, Kind::Regular, &vhost)
}

pub(crate) async fn list_in_operator(
    State(api): State<Api>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    list_in_of(&api, Kind::Operator, &vhost)
}

fn list_in_of(api: &Api, kind: Kind, vhost: &str) -> Result<Json<Vec<Value>>, ApiError> {
    existing_vhost(api, vhost)?;
    Ok(Json(policies(api, kind, Some(vhost)).iter().map(view).collect()))
}

pub(crate) async fn show(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    show_of(&api, Kind::Regular, &vhost, &name)
}

pub(crate) async fn show_operator(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    show_of(&api, Kind::Operator, &vhost, &name)
}

fn show_of(api: &Api, kind: Kind, vhost: &str, name: &str) -> Result<Json<Value>, ApiError> {
    let found =
        policies(api, kind, Some(vhost)).into_iter().find(|p| p.name == name).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(view(&found)))
}

pub(crate) async fn put(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    put_of(&api, Kind::Regular, &vhost, &name, &bytes)
}

pub(crate) async fn put_operator(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    put_of(&api, Kind::Operator, &vhost, &name, &bytes)
}

fn put_of(api: &Api, kind: Kind, vhost: &str, name: &str, bytes: &Bytes) -> Result<Response, ApiError> {
    let map = body::object(bytes)?;
    existing_vhost(api, vhost).map_err(|_| ApiError::VhostNotFound)?;
    let policy = policy_from_body(kind, vhost, name, &map)?;
    let created = !policies(api, kind, Some(vhost)).iter().any(|p| p.name == name);
    set(api, kind, policy)?;
    Ok(written(created))
}

/// Stores a validated policy of either kind.
pub(crate) fn set(api: &Api, kind: Kind, policy: Policy) -> Result<(), ApiError> {
    match kind {
        Kind::Regular => api.state.put_policy(policy)?,
        Kind::Operator => api.state.put_operator_policy(policy)?,
    }
    Ok(())
}

pub(crate) async fn remove(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    remove_of(&api, Kind::Regular, &vhost, &name)
}

pub(crate) async fn remove_operator(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    remove_of(&api, Kind::Operator, &vhost, &name)
}

fn remove_of(api: &Api, kind: Kind, vhost: &str, name: &str) -> Result<Response, ApiError> {
    if !policies(api, kind, Some(vhost)).iter().any(|p| p.name == name) {
        return Err(ApiError::ObjectNotFound);
    }
    match kind {
        Kind::Regular => api.state.delete_policy(vhost, name)?,
        Kind::Operator => api.state.delete_operator_policy(vhost, name)?,
    }
    Ok(written(false))
}

/// Validates a policy body (`pattern`, `definition`, optional `priority` and `apply-to`) the way
/// RabbitMQ does, with its "Validation failed" texts.
pub(crate) fn policy_from_body(
    kind: Kind,
    vhost: &str,
    name: &str,
    map: &Map<String, Value>,
) -> Result<Policy, ApiError> {
    let missing: Vec<&'static str> = ["pattern", "definition"].into_iter().filter(|k| !map.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(ApiError::KeysMissing { keys: missing });
    }
    let invalid = |problem: String| ApiError::PolicyInvalid { problem };
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
    let priority = match map.get("priority") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| invalid(format!("priority must be an integer, got {n}")))?,
        Some(Value::String(s)) => {
            s.trim().parse().map_err(|_| invalid(format!("priority must be an integer, got \"{s}\"")))?
        }
        Some(other) => return Err(invalid(format!("priority must be an integer, got {other}"))),
    };
    let definition = match map.get("definition") {
        Some(Value::Object(def)) => def.clone(),
        Some(other) => return Err(invalid(format!("definition must be an object, got {other}"))),
        None => Map::new(),
    };
    validate_definition(kind, &definition).map_err(invalid)?;
    Ok(Policy::new(vhost, name, pattern, apply_to, priority, definition)?)
}

fn validate_definition(kind: Kind, definition: &Map<String, Value>) -> Result<(), String> {
    let unknown: Vec<String> = definition
        .iter()
        .filter(|(k, _)| match kind {
            Kind::Regular => !POLICY_KEYS.iter().any(|(known, _)| known == k),
            Kind::Operator => !OPERATOR_POLICY_KEYS.contains(&k.as_str()),
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

/// A policy as RabbitMQ lists it.
pub(crate) fn view(p: &Policy) -> Value {
    json!({
        "vhost": p.vhost,
        "name": p.name,
        "pattern": p.pattern,
        "apply-to": p.apply_to.as_str(),
        "definition": p.definition,
        "priority": p.priority,
    })
}
