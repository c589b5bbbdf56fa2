//! `/api/queues[/{vhost}[/{name}]]`: list with message and consumer counts,
//! show, declare, delete (`if-empty`, `if-unused`) and purge (`…/contents`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Map, Value, json};
use warren_definitions::arguments::{table_from_json, table_to_json};

use super::exchanges::{arguments, flag};
use super::overview::NODE;
use super::{connections, existing_vhost, query_flag, written};
use crate::management::live::{Scope, Snapshot};
use crate::management::{Api, ApiError, body};
use crate::state::QueueDecl;
use crate::state::queue::{Queue, QueueType};

pub(crate) async fn list_all(State(api): State<Api>) -> Json<Value> {
    let snapshot = Snapshot::take(&api.state).await;
    Json(api.state.queues(None).iter().map(|q| view(&api, q, &snapshot)).collect())
}

pub(crate) async fn list_in(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Value>, ApiError> {
    existing_vhost(&api, &vhost)?;
    let snapshot = Snapshot::take(&api.state).await;
    Ok(Json(api.state.queues(Some(&vhost)).iter().map(|q| view(&api, q, &snapshot)).collect()))
}

/// One queue, with its consumers (`consumer_details`), as RabbitMQ shows a single queue.
pub(crate) async fn show(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let queue = api.state.queue(&vhost, &name).map_err(|_| ApiError::ObjectNotFound)?;
    let snapshot = Snapshot::take(&api.state).await;
    let mut value = view(&api, &queue, &snapshot);
    value["consumer_details"] = Value::Array(connections::consumers(&api, std::slice::from_ref(&queue)));
    Ok(Json(value))
}

/// Declares a queue; an equivalent redeclaration is a no-op (204), an inequivalent one 400.
pub(crate) async fn put(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let map = body::object(&bytes)?;
    if name.starts_with("amq.") {
        return Err(ApiError::AccessRefused);
    }
    existing_vhost(&api, &vhost).map_err(|_| ApiError::VhostNotFound)?;
    let (_, created) = api.state.declare_queue(&vhost, declaration(name, &map)?)?;
    Ok(written(created))
}

pub(crate) async fn remove(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    api.state.queue(&vhost, &name).map_err(|_| ApiError::ObjectNotFound)?;
    let query = query.as_deref();
    api.state.delete_queue(&vhost, &name, query_flag(query, "if-unused"), query_flag(query, "if-empty"))?;
    Ok(written(false))
}

/// Removes the ready messages; unacknowledged ones stay, as in RabbitMQ.
pub(crate) async fn purge(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    api.state.queue(&vhost, &name).map_err(|_| ApiError::ObjectNotFound)?;
    api.state.purge_queue(&vhost, &name)?;
    Ok(written(false))
}

/// A queue declaration from a `PUT` body or a definitions entry (never exclusive: an exclusive
/// queue belongs to an AMQP connection, and the API has none).
pub(crate) fn declaration(name: String, map: &Map<String, Value>) -> Result<QueueDecl, ApiError> {
    Ok(QueueDecl {
        name,
        durable: flag(map, "durable")?,
        exclusive_owner: None,
        auto_delete: flag(map, "auto_delete")?,
        arguments: table_from_json(&arguments(map)?),
    })
}

/// A queue as RabbitMQ lists it, with the counts `warren`'s data-loss guard reads, their rates
/// and the queue's `message_stats`.
pub(crate) fn view(api: &Api, queue: &Arc<Queue>, snapshot: &Snapshot) -> Value {
    let counts = queue.counts();
    let settings = queue.settings();
    let prefix = format!("queue/{}/{}", queue.vhost, queue.name);
    let mut value = json!({
        "arguments": table_to_json(&queue.arguments),
        "auto_delete": queue.auto_delete,
        "consumers": counts.consumers,
        "durable": queue.durable,
        "exclusive": queue.exclusive_owner.is_some(),
        "messages": counts.messages,
        "messages_ready": counts.ready,
        "messages_unacknowledged": counts.unacked,
        "message_bytes_ready": counts.ready_bytes,
        "name": queue.name,
        "node": NODE,
        "policy": settings.policy,
        "operator_policy": settings.operator_policy,
        "effective_policy_definition": effective_policy_definition(api, queue, &settings),
        "state": "running",
        "type": settings.kind.as_str(),
        "vhost": queue.vhost,
    });
    if let Value::Object(map) = &mut value {
        let depth = [
            ("messages", counts.messages as u64),
            ("messages_ready", counts.ready as u64),
            ("messages_unacknowledged", counts.unacked as u64),
        ];
        map.extend(api.rates.counters(&prefix, &depth));
        let stats = api.rates.message_stats(&prefix, &snapshot.queue(queue), Scope::Queue);
        // Before its first message RabbitMQ shows no `message_stats` at all.
        if stats.as_object().is_some_and(|m| !m.is_empty()) {
            map.insert("message_stats".into(), stats);
        }
    }
    if settings.kind == QueueType::Quorum {
        value["leader"] = json!(NODE);
        value["members"] = json!([NODE]);
        value["online"] = json!([NODE]);
    }
    value
}

/// The policy's definition with the operator policy's keys merged in, as RabbitMQ shows it.
fn effective_policy_definition(api: &Api, queue: &Queue, settings: &crate::state::queue::QueueSettings) -> Value {
    let mut merged = Map::new();
    if let Some(name) = &settings.policy
        && let Some(policy) = api.state.policies(Some(&queue.vhost)).into_iter().find(|p| &p.name == name)
    {
        merged.extend(policy.definition);
    }
    if let Some(name) = &settings.operator_policy
        && let Some(policy) = api.state.operator_policies(Some(&queue.vhost)).into_iter().find(|p| &p.name == name)
    {
        merged.extend(policy.definition);
    }
    Value::Object(merged)
}
