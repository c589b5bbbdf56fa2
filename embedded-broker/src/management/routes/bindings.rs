//! `/api/bindings…` and the binding listings under exchanges and queues.
//!
//! As in RabbitMQ, listings include the implicit binding of every queue to the
//! default exchange (source `""`, routing key = queue name); definitions
//! exports leave them out. One binding among several between the same ends is
//! named by its properties key.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use warren_definitions::arguments::{table_from_json, table_to_json};
use warren_definitions::properties_key::properties_key;

use super::exchanges::arguments;
use super::{exchange_name, existing_vhost, written};
use crate::management::{Api, ApiError, body};
use crate::state::exchange::{Binding, DestinationKind};

/// Path segments of `…/e/{source}/{kind}/{destination}`.
type Ends = (String, String, String, String);
/// The same plus the properties key.
type EndsAndKey = (String, String, String, String, String);

pub(crate) async fn list_all(State(api): State<Api>) -> Json<Vec<Value>> {
    Json(with_implicit(&api, None).iter().map(|(vhost, b)| view(vhost, b)).collect())
}

pub(crate) async fn list_in(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Vec<Value>>, ApiError> {
    existing_vhost(&api, &vhost)?;
    Ok(Json(with_implicit(&api, Some(&vhost)).iter().map(|(vhost, b)| view(vhost, b)).collect()))
}

pub(crate) async fn with_source(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let name = exchange_name(&name);
    api.state.exchange(&vhost, name).map_err(|_| ApiError::ObjectNotFound)?;
    Ok(listing(&api, &vhost, |b| b.source == name))
}

pub(crate) async fn with_exchange_destination(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    api.state.exchange(&vhost, &name).map_err(|_| ApiError::ObjectNotFound)?;
    Ok(listing(&api, &vhost, |b| b.destination_kind == DestinationKind::Exchange && b.destination == name))
}

pub(crate) async fn with_queue_destination(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    api.state.queue(&vhost, &name).map_err(|_| ApiError::ObjectNotFound)?;
    Ok(listing(&api, &vhost, |b| b.destination_kind == DestinationKind::Queue && b.destination == name))
}

/// Bindings between two named ends; 404 when either end is missing.
pub(crate) async fn between(
    State(api): State<Api>,
    Path((vhost, source, kind, destination)): Path<Ends>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (source, kind) = ends(&api, &vhost, &source, &kind, &destination)?;
    Ok(listing(&api, &vhost, |b| b.source == source && b.destination_kind == kind && b.destination == destination))
}

/// Adds a binding (idempotent) and answers 201 with its location, as RabbitMQ does.
pub(crate) async fn create(
    State(api): State<Api>,
    Path((vhost, source, kind, destination)): Path<Ends>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let map = body::object(&bytes)?;
    let destination_kind = destination_kind(&kind)?;
    let source = exchange_name(&source).to_owned();
    if source.is_empty() {
        return Err(ApiError::AccessRefused);
    }
    existing_vhost(&api, &vhost).map_err(|_| ApiError::VhostNotFound)?;
    let routing_key = match map.get("routing_key") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let arguments = table_from_json(&arguments(&map)?);
    let key = properties_key(&routing_key, &arguments);
    let binding = Binding { source, destination: destination.clone(), destination_kind, routing_key, arguments };
    api.state.bind(&vhost, binding)?;
    let mut response = StatusCode::CREATED.into_response();
    let location = format!("{}/{}", encode_segment(&destination), encode_segment(&key));
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

pub(crate) async fn show(
    State(api): State<Api>,
    Path((vhost, source, kind, destination, props)): Path<EndsAndKey>,
) -> Result<Json<Value>, ApiError> {
    let binding = find(&api, &vhost, &source, &kind, &destination, &props)?;
    Ok(Json(view(&vhost, &binding)))
}

pub(crate) async fn remove(
    State(api): State<Api>,
    Path((vhost, source, kind, destination, props)): Path<EndsAndKey>,
) -> Result<Response, ApiError> {
    let binding = find(&api, &vhost, &source, &kind, &destination, &props)?;
    if binding.source.is_empty() {
        return Err(ApiError::AccessRefused);
    }
    api.state.unbind(&vhost, &binding)?;
    Ok(written(false))
}

/// The binding between the ends with this properties key, or 404.
fn find(api: &Api, vhost: &str, source: &str, kind: &str, destination: &str, props: &str) -> Result<Binding, ApiError> {
    let (source, kind) = ends(api, vhost, source, kind, destination)?;
    with_implicit(api, Some(vhost))
        .into_iter()
        .map(|(_, b)| b)
        .find(|b| {
            b.source == source && b.destination_kind == kind && b.destination == destination && key_of(b) == props
        })
        .ok_or(ApiError::ObjectNotFound)
}

/// Checks both ends exist (404 otherwise) and decodes the source name and destination kind.
fn ends(
    api: &Api,
    vhost: &str,
    source: &str,
    kind: &str,
    destination: &str,
) -> Result<(String, DestinationKind), ApiError> {
    let kind = destination_kind(kind)?;
    let source = exchange_name(source);
    api.state.exchange(vhost, source).map_err(|_| ApiError::ObjectNotFound)?;
    let exists = match kind {
        DestinationKind::Queue => api.state.queue(vhost, destination).is_ok(),
        DestinationKind::Exchange => api.state.exchange(vhost, destination).is_ok(),
    };
    if !exists {
        return Err(ApiError::ObjectNotFound);
    }
    Ok((source.to_owned(), kind))
}

fn destination_kind(segment: &str) -> Result<DestinationKind, ApiError> {
    match segment {
        "q" => Ok(DestinationKind::Queue),
        "e" => Ok(DestinationKind::Exchange),
        _ => Err(ApiError::ObjectNotFound),
    }
}

fn listing(api: &Api, vhost: &str, keep: impl Fn(&Binding) -> bool) -> Json<Vec<Value>> {
    Json(with_implicit(api, Some(vhost)).iter().filter(|(_, b)| keep(b)).map(|(vhost, b)| view(vhost, b)).collect())
}

/// The stored bindings preceded by the default exchange's implicit ones, per vhost.
fn with_implicit(api: &Api, vhost: Option<&str>) -> Vec<(String, Binding)> {
    let mut all: Vec<(String, Binding)> = api
        .state
        .queues(vhost)
        .iter()
        .map(|q| {
            let implicit = Binding {
                source: String::new(),
                destination: q.name.clone(),
                destination_kind: DestinationKind::Queue,
                routing_key: q.name.clone(),
                arguments: Default::default(),
            };
            (q.vhost.clone(), implicit)
        })
        .collect();
    all.extend(api.state.bindings(vhost));
    all.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.source.is_empty().cmp(&b.1.source.is_empty()).reverse()));
    all
}

fn key_of(binding: &Binding) -> String {
    properties_key(&binding.routing_key, &binding.arguments)
}

/// A binding as RabbitMQ lists it.
pub(crate) fn view(vhost: &str, b: &Binding) -> Value {
    let arguments: Map<String, Value> = table_to_json(&b.arguments);
    json!({
        "source": b.source,
        "vhost": vhost,
        "destination": b.destination,
        "destination_type": b.destination_kind.as_str(),
        "routing_key": b.routing_key,
        "arguments": arguments,
        "properties_key": properties_key(&b.routing_key, &b.arguments),
    })
}

/// Percent-encodes a path segment (RabbitMQ's `Location` quotes the properties key once more).
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
