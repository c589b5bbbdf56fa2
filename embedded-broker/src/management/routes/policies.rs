//! `/api/policies…` and `/api/operator-policies…`: list, show, set, delete.
//! Setting or deleting one re-applies policies to the vhost's queues at once
//! (the state model recomputes each queue's effective settings). Bodies are
//! validated as definitions entries are ([`crate::definitions::policy`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{existing_vhost, written};
use crate::definitions::policy::{PolicyKind, policy_from_body};
use crate::management::{Api, ApiError, body};
use crate::state::policy::Policy;

fn policies(api: &Api, kind: PolicyKind, vhost: Option<&str>) -> Vec<Policy> {
    match kind {
        PolicyKind::Regular => api.state.policies(vhost),
        PolicyKind::Operator => api.state.operator_policies(vhost),
    }
}

pub(crate) async fn list_all(State(api): State<Api>) -> Json<Vec<Value>> {
    Json(policies(&api, PolicyKind::Regular, None).iter().map(view).collect())
}

pub(crate) async fn list_all_operator(State(api): State<Api>) -> Json<Vec<Value>> {
    Json(policies(&api, PolicyKind::Operator, None).iter().map(view).collect())
}

pub(crate) async fn list_in(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Vec<Value>>, ApiError> {
    list_in_of(&api, PolicyKind::Regular, &vhost)
}

pub(crate) async fn list_in_operator(
    State(api): State<Api>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    list_in_of(&api, PolicyKind::Operator, &vhost)
}

fn list_in_of(api: &Api, kind: PolicyKind, vhost: &str) -> Result<Json<Vec<Value>>, ApiError> {
    existing_vhost(api, vhost)?;
    Ok(Json(policies(api, kind, Some(vhost)).iter().map(view).collect()))
}

pub(crate) async fn show(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    show_of(&api, PolicyKind::Regular, &vhost, &name)
}

pub(crate) async fn show_operator(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    show_of(&api, PolicyKind::Operator, &vhost, &name)
}

fn show_of(api: &Api, kind: PolicyKind, vhost: &str, name: &str) -> Result<Json<Value>, ApiError> {
    let found =
        policies(api, kind, Some(vhost)).into_iter().find(|p| p.name == name).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(view(&found)))
}

pub(crate) async fn put(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    put_of(&api, PolicyKind::Regular, &vhost, &name, &bytes)
}

pub(crate) async fn put_operator(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    put_of(&api, PolicyKind::Operator, &vhost, &name, &bytes)
}

fn put_of(api: &Api, kind: PolicyKind, vhost: &str, name: &str, bytes: &Bytes) -> Result<Response, ApiError> {
    let map = body::object(bytes)?;
    existing_vhost(api, vhost).map_err(|_| ApiError::VhostNotFound)?;
    let policy = policy_from_body(kind, vhost, name, &map)?;
    let created = !policies(api, kind, Some(vhost)).iter().any(|p| p.name == name);
    set(api, kind, policy)?;
    Ok(written(created))
}

/// Stores a validated policy of either kind.
fn set(api: &Api, kind: PolicyKind, policy: Policy) -> Result<(), ApiError> {
    match kind {
        PolicyKind::Regular => api.state.put_policy(policy)?,
        PolicyKind::Operator => api.state.put_operator_policy(policy)?,
    }
    Ok(())
}

pub(crate) async fn remove(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    remove_of(&api, PolicyKind::Regular, &vhost, &name)
}

pub(crate) async fn remove_operator(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    remove_of(&api, PolicyKind::Operator, &vhost, &name)
}

fn remove_of(api: &Api, kind: PolicyKind, vhost: &str, name: &str) -> Result<Response, ApiError> {
    if !policies(api, kind, Some(vhost)).iter().any(|p| p.name == name) {
        return Err(ApiError::ObjectNotFound);
    }
    match kind {
        PolicyKind::Regular => api.state.delete_policy(vhost, name)?,
        PolicyKind::Operator => api.state.delete_operator_policy(vhost, name)?,
    }
    Ok(written(false))
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
