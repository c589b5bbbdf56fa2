//! `/api/permissions…` and `/api/topic-permissions…`, plus the per-vhost and
//! per-user listings under `/api/vhosts/{v}/…` and `/api/users/{u}/…`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{existing_vhost, written};
use crate::management::{Api, ApiError, body};
use crate::state::auth::{Permission, TopicPermission};

pub(crate) async fn list(State(api): State<Api>) -> Json<Vec<Value>> {
    Json(api.state.permissions().iter().map(view).collect())
}

pub(crate) async fn list_in_vhost(
    State(api): State<Api>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    existing_vhost(&api, &vhost)?;
    Ok(Json(api.state.permissions().iter().filter(|p| p.vhost == vhost).map(view).collect()))
}

pub(crate) async fn list_of_user(
    State(api): State<Api>,
    Path(user): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    api.state.user(&user).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(api.state.permissions().iter().filter(|p| p.user == user).map(view).collect()))
}

pub(crate) async fn show(
    State(api): State<Api>,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let permissions = api.state.permissions();
    let found = permissions.iter().find(|p| p.vhost == vhost && p.user == user).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(view(found)))
}

pub(crate) async fn put(
    State(api): State<Api>,
    Path((vhost, user)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let map = body::object(&bytes)?;
    let [configure, write, read] = body::required_strings(&map, ["configure", "write", "read"])?;
    if api.state.vhost(&vhost).is_none() || api.state.user(&user).is_none() {
        return Err(ApiError::VhostOrUserNotFound);
    }
    let created = !api.state.permissions().iter().any(|p| p.vhost == vhost && p.user == user);
    api.state.put_permission(Permission { user, vhost, configure, write, read })?;
    Ok(written(created))
}

pub(crate) async fn remove(
    State(api): State<Api>,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !api.state.permissions().iter().any(|p| p.vhost == vhost && p.user == user) {
        return Err(ApiError::ObjectNotFound);
    }
    api.state.delete_permission(&user, &vhost)?;
    Ok(written(false))
}

pub(crate) async fn list_topic(State(api): State<Api>) -> Json<Vec<Value>> {
    Json(api.state.topic_permissions().iter().map(topic_view).collect())
}

pub(crate) async fn list_topic_in_vhost(
    State(api): State<Api>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    existing_vhost(&api, &vhost)?;
    Ok(Json(api.state.topic_permissions().iter().filter(|p| p.vhost == vhost).map(topic_view).collect()))
}

pub(crate) async fn list_topic_of_user(
    State(api): State<Api>,
    Path(user): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    api.state.user(&user).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(api.state.topic_permissions().iter().filter(|p| p.user == user).map(topic_view).collect()))
}

/// RabbitMQ answers with the list of the user's topic permissions in the vhost, one per exchange.
pub(crate) async fn show_topic(
    State(api): State<Api>,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let found: Vec<Value> =
        api.state.topic_permissions().iter().filter(|p| p.vhost == vhost && p.user == user).map(topic_view).collect();
    if found.is_empty() {
        return Err(ApiError::ObjectNotFound);
    }
    Ok(Json(found))
}

pub(crate) async fn put_topic(
    State(api): State<Api>,
    Path((vhost, user)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let map = body::object(&bytes)?;
    let [exchange, write, read] = body::required_strings(&map, ["exchange", "write", "read"])?;
    if api.state.vhost(&vhost).is_none() || api.state.user(&user).is_none() {
        return Err(ApiError::VhostOrUserNotFound);
    }
    // As RabbitMQ: "created" when the user had no topic permission in the vhost yet.
    let created = !api.state.topic_permissions().iter().any(|p| p.vhost == vhost && p.user == user);
    api.state.put_topic_permission(TopicPermission { user, vhost, exchange, write, read })?;
    Ok(written(created))
}

/// Removes every topic permission of the user in the vhost (the API has no per-exchange delete).
pub(crate) async fn remove_topic(
    State(api): State<Api>,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !api.state.topic_permissions().iter().any(|p| p.vhost == vhost && p.user == user) {
        return Err(ApiError::ObjectNotFound);
    }
    api.state.delete_topic_permission(&user, &vhost, None)?;
    Ok(written(false))
}

pub(crate) fn view(p: &Permission) -> Value {
    json!({ "user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read })
}

pub(crate) fn topic_view(p: &TopicPermission) -> Value {
    json!({ "user": p.user, "vhost": p.vhost, "exchange": p.exchange, "write": p.write, "read": p.read })
}
