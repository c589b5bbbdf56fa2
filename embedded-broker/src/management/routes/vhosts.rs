//! `/api/vhosts[/{vhost}]`: list, show, create or update metadata, delete.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::overview::NODE;
use super::{existing_vhost, written};
use crate::management::auth::AuthUser;
use crate::management::{Api, ApiError, body};
use crate::state::VhostInfo;
use crate::state::auth::Permission;

/// Queue types a vhost may default to.
const QUEUE_TYPES: [&str; 3] = ["classic", "quorum", "stream"];

pub(crate) async fn list(State(api): State<Api>) -> Json<Value> {
    Json(api.state.vhosts().iter().map(|v| view(&api, v)).collect())
}

pub(crate) async fn show(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Value>, ApiError> {
    let info = api.state.vhost(&vhost).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(view(&api, &info)))
}

/// Creates the vhost, granting the acting user full permissions on it as RabbitMQ does, or
/// replaces its metadata (fields left out are reset, as in RabbitMQ).
pub(crate) async fn put(
    State(api): State<Api>,
    Extension(user): Extension<AuthUser>,
    Path(vhost): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let map = body::object(&bytes)?;
    let description = match map.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let tags = match map.get("tags") {
        None => Vec::new(),
        Some(value) => body::tags(value)?,
    };
    let default_queue_type = match map.get("default_queue_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t == "undefined" => None,
        Some(Value::String(t)) if QUEUE_TYPES.contains(&t.as_str()) => Some(t.clone()),
        Some(other) => {
            return Err(ApiError::BadBody(serde::de::Error::custom(format!(
                "default_queue_type must be one of classic, quorum, stream; got {other}"
            ))));
        }
    };
    let created = api.state.vhost(&vhost).is_none();
    api.state.put_vhost(VhostInfo { name: vhost.clone(), description, tags, default_queue_type });
    if created {
        api.state.put_permission(Permission {
            user: user.name,
            vhost,
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        })?;
    }
    Ok(written(created))
}

pub(crate) async fn remove(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Response, ApiError> {
    existing_vhost(&api, &vhost)?;
    api.state.delete_vhost(&vhost)?;
    Ok(written(false))
}

/// A vhost as RabbitMQ 3.10 lists it (metadata both flat and nested, message totals).
fn view(api: &Api, info: &VhostInfo) -> Value {
    let (mut messages, mut ready, mut unacked) = (0usize, 0usize, 0usize);
    for queue in api.state.queues(Some(&info.name)) {
        let counts = queue.counts();
        messages += counts.messages;
        ready += counts.ready;
        unacked += counts.unacked;
    }
    let mut metadata = json!({ "description": info.description, "tags": info.tags });
    if let Some(t) = &info.default_queue_type {
        metadata["default_queue_type"] = json!(t);
    }
    json!({
        "name": info.name,
        "description": info.description,
        "tags": info.tags,
        "default_queue_type": info.default_queue_type.as_deref().unwrap_or("undefined"),
        "metadata": metadata,
        "tracing": false,
        "cluster_state": { NODE: "running" },
        "messages": messages,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
    })
}
