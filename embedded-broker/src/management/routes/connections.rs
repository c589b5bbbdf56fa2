//! `/api/connections`, `/api/channels` and `/api/consumers`, with their vhost-scoped variants:
//! the open AMQP connections, their channels and the consumers on them, in RabbitMQ's shapes.
//! `DELETE /api/connections/{name}` closes a connection with 320 and the reason from the
//! `X-Reason` header, as RabbitMQ does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use warren_definitions::arguments::table_to_json;

use super::overview::NODE;
use super::{existing_vhost, written};
use crate::management::live::{Scope, Seen, Snapshot};
use crate::management::{Api, ApiError};
use crate::state::ConnectionId;
use crate::state::connections::OpenConnection;
use crate::state::queue::Queue;
use crate::state::stats::ChannelReport;

/// The reason RabbitMQ gives when the request names none.
const DEFAULT_REASON: &str = "Closed via management plugin";

pub(crate) async fn list_all(State(api): State<Api>) -> Json<Value> {
    Json(connections(&api, None).await)
}

pub(crate) async fn list_in(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Value>, ApiError> {
    existing_vhost(&api, &vhost)?;
    Ok(Json(connections(&api, Some(&vhost)).await))
}

async fn connections(api: &Api, vhost: Option<&str>) -> Value {
    per_connection(api, vhost, |seen| vec![connection_view(api, seen)]).await
}

/// What `view` makes of each open connection (in `vhost`, when given), in one list.
async fn per_connection(api: &Api, vhost: Option<&str>, view: impl Fn(&Seen) -> Vec<Value>) -> Value {
    let snapshot = Snapshot::take(&api.state).await;
    let in_vhost = |s: &&Seen| vhost.is_none_or(|v| s.connection.vhost == v);
    Value::Array(snapshot.connections.iter().filter(in_vhost).flat_map(view).collect())
}

pub(crate) async fn show(State(api): State<Api>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let snapshot = Snapshot::take(&api.state).await;
    let seen = snapshot.connections.iter().find(|s| s.connection.name == name).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(connection_view(&api, seen)))
}

/// Closes the connection with `connection.close` 320 and the `X-Reason` header's text.
pub(crate) async fn close(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reason = headers.get("x-reason").and_then(|v| v.to_str().ok()).unwrap_or(DEFAULT_REASON);
    if !api.state.close_connection(&name, reason) {
        return Err(ApiError::ObjectNotFound);
    }
    Ok(written(false))
}

pub(crate) async fn channels_of(State(api): State<Api>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let snapshot = Snapshot::take(&api.state).await;
    let seen = snapshot.connections.iter().find(|s| s.connection.name == name).ok_or(ApiError::ObjectNotFound)?;
    Ok(Json(Value::Array(channel_views(&api, seen))))
}

pub(crate) async fn channels_all(State(api): State<Api>) -> Json<Value> {
    Json(channels(&api, None).await)
}

pub(crate) async fn channels_in(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Value>, ApiError> {
    existing_vhost(&api, &vhost)?;
    Ok(Json(channels(&api, Some(&vhost)).await))
}

async fn channels(api: &Api, vhost: Option<&str>) -> Value {
    per_connection(api, vhost, |seen| channel_views(api, seen)).await
}

/// `GET /api/channels/{name}`: one channel by its name, `CONNECTION (NUMBER)`.
pub(crate) async fn channel(State(api): State<Api>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let snapshot = Snapshot::take(&api.state).await;
    snapshot
        .connections
        .iter()
        .flat_map(|s| channel_views(&api, s))
        .find(|c| c["name"] == name.as_str())
        .map(Json)
        .ok_or(ApiError::ObjectNotFound)
}

pub(crate) async fn consumers_all(State(api): State<Api>) -> Json<Value> {
    Json(Value::Array(consumers(&api, &api.state.queues(None))))
}

pub(crate) async fn consumers_in(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Json<Value>, ApiError> {
    existing_vhost(&api, &vhost)?;
    Ok(Json(Value::Array(consumers(&api, &api.state.queues(Some(&vhost))))))
}

/// The consumers of `queues`, as `/api/consumers` and a queue's `consumer_details` list them.
pub(crate) fn consumers(api: &Api, queues: &[Arc<Queue>]) -> Vec<Value> {
    let open: HashMap<ConnectionId, OpenConnection> = api.state.open_connections().into_iter().collect();
    let mut items = Vec::new();
    for queue in queues {
        for consumer in queue.consumers() {
            let channel_details = match open.get(&consumer.connection) {
                Some(c) => json!({
                    "connection_name": c.name,
                    "name": channel_name(c, consumer.channel),
                    "node": NODE,
                    "number": consumer.channel,
                    "peer_host": c.peer.ip().to_canonical().to_string(),
                    "peer_port": c.peer.port(),
                    "user": c.user,
                }),
                None => json!({}),
            };
            items.push(json!({
                "arguments": {},
                "ack_required": !consumer.no_ack,
                "active": true,
                "activity_status": "up",
                "channel_details": channel_details,
                "consumer_tag": &*consumer.tag,
                "exclusive": consumer.exclusive,
                "prefetch_count": consumer.credit.prefetch,
                "queue": { "name": queue.name, "vhost": queue.vhost },
            }));
        }
    }
    items
}

/// RabbitMQ's name of a channel: its connection's name and its number.
fn channel_name(connection: &OpenConnection, number: u16) -> String {
    format!("{} ({number})", connection.name)
}

/// A connection as RabbitMQ lists it.
fn connection_view(api: &Api, seen: &Seen) -> Value {
    let c = &seen.connection;
    let report = seen.report.as_deref().cloned().unwrap_or_default();
    let prefix = format!("connection/{}", c.name);
    let mut view = json!({
        "auth_mechanism": c.auth_mechanism,
        "channel_max": c.channel_max,
        "channels": report.channels.len(),
        "client_properties": table_to_json(&c.client_properties),
        "connected_at": c.connected_at,
        "frame_max": c.frame_max,
        "host": c.local.ip().to_canonical().to_string(),
        "name": c.name,
        "node": NODE,
        "peer_cert_issuer": null,
        "peer_cert_subject": null,
        "peer_cert_validity": null,
        "peer_host": c.peer.ip().to_canonical().to_string(),
        "peer_port": c.peer.port(),
        "port": c.local.port(),
        "protocol": "AMQP 0-9-1",
        "recv_cnt": report.io.recv_cnt,
        "send_cnt": report.io.send_cnt,
        "send_pend": 0,
        "ssl": false,
        "ssl_cipher": null,
        "ssl_hash": null,
        "ssl_key_exchange": null,
        "ssl_protocol": null,
        "state": if report.blocked { "blocked" } else { "running" },
        "timeout": c.heartbeat,
        "type": "network",
        "user": c.user,
        "user_who_performed_action": c.user,
        "vhost": c.vhost,
    });
    if let Value::Object(map) = &mut view {
        map.extend(api.rates.counters(&prefix, &[("recv_oct", report.io.recv_oct), ("send_oct", report.io.send_oct)]));
    }
    view
}

/// The channels of one connection, as RabbitMQ lists them.
fn channel_views(api: &Api, seen: &Seen) -> Vec<Value> {
    let Some(report) = &seen.report else { return Vec::new() };
    report.channels.iter().map(|ch| channel_view(api, &seen.connection, ch)).collect()
}

fn channel_view(api: &Api, c: &OpenConnection, ch: &ChannelReport) -> Value {
    let name = channel_name(c, ch.number);
    json!({
        "acks_uncommitted": ch.uncommitted_acks,
        "confirm": ch.confirm,
        "connection_details": {
            "name": c.name,
            "peer_host": c.peer.ip().to_canonical().to_string(),
            "peer_port": c.peer.port(),
        },
        "consumer_count": ch.consumers,
        "global_prefetch_count": ch.global_prefetch,
        "message_stats": api.rates.message_stats(&format!("channel/{name}"), &ch.stats, Scope::Channel),
        "messages_unacknowledged": ch.unacked,
        "messages_uncommitted": ch.uncommitted_messages,
        "messages_unconfirmed": ch.unconfirmed,
        "name": name,
        "node": NODE,
        "number": ch.number,
        "pending_raft_commands": 0,
        "prefetch_count": ch.prefetch,
        "state": "running",
        "transactional": ch.transactional,
        "user": c.user,
        "user_who_performed_action": c.user,
        "vhost": c.vhost,
    })
}
