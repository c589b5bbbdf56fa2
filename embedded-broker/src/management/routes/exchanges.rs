//! `/api/exchanges[/{vhost}[/{name}]]`: list, show, declare, delete (with `if-unused`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Map, Value, json};
use warren_definitions::arguments::{table_from_json, table_to_json};

use super::{exchange_name, existing_vhost, query_flag, written};
use crate::management::live::Snapshot;
use crate::management::{Api, ApiError, body};
use crate::state::ExchangeDecl;
use crate::state::exchange::Exchange;

pub(crate) async fn list_all(State(api): State<Api>) -> Json<Value> {
    let snapshot = Snapshot::take(&api.state).await;
    Json(api.state.exchanges(None).iter().map(|(vhost, x)| with_stats(&api, &snapshot, view(vhost, x))).collect())
}

pub(crate) async fn list_in(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Value>, ApiError> {
    existing_vhost(&api, &vhost)?;
    let snapshot = Snapshot::take(&api.state).await;
    let exchanges = api.state.exchanges(Some(&vhost));
    Ok(Json(exchanges.iter().map(|(vhost, x)| with_stats(&api, &snapshot, view(vhost, x))).collect()))
}

pub(crate) async fn show(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let exchange = api.state.exchange(&vhost, exchange_name(&name)).map_err(|_| ApiError::ObjectNotFound)?;
    let snapshot = Snapshot::take(&api.state).await;
    Ok(Json(with_stats(&api, &snapshot, view(&vhost, &exchange))))
}

/// Adds an exchange's `message_stats` (`publish_in`, `publish_out`) to its view.
fn with_stats(api: &Api, snapshot: &Snapshot, mut view: Value) -> Value {
    let vhost = view["vhost"].as_str().unwrap_or_default().to_owned();
    let name = view["name"].as_str().unwrap_or_default().to_owned();
    let stats = snapshot.exchange(&vhost, &name);
    let stats = api.rates.exchange_stats(&format!("exchange/{vhost}/{name}"), &stats);
    // Before its first message RabbitMQ shows no `message_stats` at all.
    if stats.as_object().is_some_and(|m| !m.is_empty()) {
        view["message_stats"] = stats;
    }
    view
}

/// Declares an exchange; an equivalent redeclaration is a no-op (204), an inequivalent one 400.
pub(crate) async fn put(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let map = body::object(&bytes)?;
    let name = exchange_name(&name).to_owned();
    if name.is_empty() || name.starts_with("amq.") {
        return Err(ApiError::AccessRefused);
    }
    existing_vhost(&api, &vhost).map_err(|_| ApiError::VhostNotFound)?;
    let decl = declaration(name.clone(), &map)?;
    let created = api.state.exchange(&vhost, &name).is_err();
    api.state.declare_exchange(&vhost, decl, true)?;
    Ok(written(created))
}

pub(crate) async fn remove(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let name = exchange_name(&name);
    if name.is_empty() || name.starts_with("amq.") {
        return Err(ApiError::AccessRefused);
    }
    api.state.exchange(&vhost, name).map_err(|_| ApiError::ObjectNotFound)?;
    api.state.delete_exchange(&vhost, name, query_flag(query.as_deref(), "if-unused"))?;
    Ok(written(false))
}

/// An exchange declaration from a `PUT` body or a definitions entry; RabbitMQ's HTTP defaults
/// are `direct`, not durable, not auto-delete, not internal.
pub(crate) fn declaration(name: String, map: &Map<String, Value>) -> Result<ExchangeDecl, ApiError> {
    let kind = match map.get("type") {
        None | Some(Value::Null) => "direct".to_owned(),
        Some(Value::String(t)) => t.clone(),
        Some(other) => return Err(ApiError::UnknownExchangeType(other.to_string())),
    };
    if crate::state::exchange::ExchangeKind::parse(&kind).is_none() {
        return Err(ApiError::UnknownExchangeType(kind));
    }
    Ok(ExchangeDecl {
        name,
        kind,
        durable: flag(map, "durable")?,
        auto_delete: flag(map, "auto_delete")?,
        internal: flag(map, "internal")?,
        arguments: table_from_json(&arguments(map)?),
    })
}

/// A boolean body field; RabbitMQ accepts `true`/`false` and their string forms, absent is false.
pub(crate) fn flag(map: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(other) => {
            Err(ApiError::BadBody(serde::de::Error::custom(format!("{key} must be true or false, got {other}"))))
        }
    }
}

/// The `arguments` object of a body (absent or null is empty).
pub(crate) fn arguments(map: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    match map.get("arguments") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(args)) => Ok(args.clone()),
        Some(other) => {
            Err(ApiError::BadBody(serde::de::Error::custom(format!("arguments must be an object, got {other}"))))
        }
    }
}

/// An exchange as RabbitMQ lists it.
pub(crate) fn view(vhost: &str, x: &Exchange) -> Value {
    json!({
        "arguments": table_to_json(&x.arguments),
        "auto_delete": x.auto_delete,
        "durable": x.durable,
        "internal": x.internal,
        "name": x.name,
        "type": x.kind.as_str(),
        "vhost": vhost,
    })
}
