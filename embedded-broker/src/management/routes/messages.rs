//! `POST /api/exchanges/{vhost}/{name}/publish` and `POST /api/queues/{vhost}/{name}/get`:
//! RabbitMQ's debugging aids for publishing and fetching a few messages over
//! HTTP. Messages take the same path as an AMQP publish (routing, queue
//! limits, dead-lettering), without confirms.

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{FieldTable, ShortString};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use warren_definitions::arguments::{table_from_json, table_to_json};

use super::{exchange_name, existing_vhost};
use crate::management::auth::AuthUser;
use crate::management::{Api, ApiError, body};
use crate::state::message::Message;
use crate::state::queue::QueuedMessage;
use crate::state::stats::{MessageStats, queue_tally};
use crate::state::{decode_properties, encode_properties};

/// The most messages one `get` returns, so one request cannot drain a huge queue into memory.
const MAX_GET: u64 = 10_000;

/// Publishes one message; answers whether any queue received it.
pub(crate) async fn publish(
    State(api): State<Api>,
    Extension(user): Extension<AuthUser>,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let map = body::object(&bytes)?;
    let missing: Vec<&'static str> = ["properties", "routing_key", "payload", "payload_encoding"]
        .into_iter()
        .filter(|k| !map.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::KeysMissing { keys: missing });
    }
    existing_vhost(&api, &vhost)?;
    let routing_key = map["routing_key"]
        .as_str()
        .ok_or_else(|| ApiError::BadMessage {
            problem: format!("routing_key must be a string, not {}", map["routing_key"]),
        })?
        .to_owned();
    let payload = payload(&map)?;
    let properties = properties_from_json(&map["properties"], &user.name)?;
    let expiration_ms = match properties.expiration() {
        None => None,
        Some(text) => Some(text.as_str().parse::<u64>().map_err(|_| ApiError::BadMessage {
            problem: format!("PRECONDITION_FAILED - invalid expiration '{}': no_integer", text.as_str()),
        })?),
    };
    let message = Arc::new(Message {
        exchange: Arc::from(exchange_name(&name)),
        routing_key: Arc::from(routing_key),
        properties: encode_properties(&properties),
        body: Bytes::from(payload),
        priority: properties.priority().unwrap_or(0),
        expiration_ms,
        persistent: properties.delivery_mode().is_some_and(|m| m == 2),
    });
    let mut queues = Vec::new();
    api.state
        .route(&vhost, &message.exchange, &message.routing_key, properties.headers().as_ref(), true, &mut queues)
        .map_err(ApiError::Unroutable)?;
    let mut dead = Vec::new();
    for queue in &queues {
        queue.publish(Arc::clone(&message), &mut dead);
    }
    api.state.dead_letter(&vhost, dead);
    api.state.count_api(|counted| {
        counted.totals.publish += 1;
        counted.totals.drop_unroutable += u64::from(queues.is_empty());
        for queue in &queues {
            queue_tally(&mut counted.queues, queue).publish += 1;
        }
        let exchange = counted.exchanges.entry((vhost.clone(), message.exchange.to_string())).or_default();
        exchange.publish_in += 1;
        exchange.publish_out += queues.len() as u64;
    });
    Ok(Json(json!({ "routed": !queues.is_empty() })))
}

/// What to do with the fetched messages afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckMode {
    /// Leave them in the queue (redelivered next time).
    AckRequeue,
    /// Remove them.
    Ack,
    /// Reject and requeue.
    RejectRequeue,
    /// Reject without requeue: dead-lettered when the queue says so.
    Reject,
}

/// Fetches up to `count` messages, then requeues, acknowledges or rejects them per `ackmode`.
pub(crate) async fn get(
    State(api): State<Api>,
    Path((vhost, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Vec<Value>>, ApiError> {
    let map = body::object(&bytes)?;
    let missing: Vec<&'static str> = ["ackmode", "encoding"].into_iter().filter(|k| !map.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(ApiError::KeysMissing { keys: missing });
    }
    let mode = match map["ackmode"].as_str() {
        Some("ack_requeue_true") => AckMode::AckRequeue,
        Some("ack_requeue_false") => AckMode::Ack,
        Some("reject_requeue_true") => AckMode::RejectRequeue,
        Some("reject_requeue_false") => AckMode::Reject,
        _ => {
            return Err(ApiError::BadMessage {
                problem: format!(
                    "ackmode must be ack_requeue_true, ack_requeue_false, reject_requeue_true or \
                     reject_requeue_false, not {}",
                    map["ackmode"]
                ),
            });
        }
    };
    let base64_only = match map["encoding"].as_str() {
        Some("auto") => false,
        Some("base64") => true,
        _ => {
            return Err(ApiError::BadMessage {
                problem: format!("encoding must be auto or base64, not {}", map["encoding"]),
            });
        }
    };
    let count = map.get("count").and_then(Value::as_u64).unwrap_or(1).min(MAX_GET);
    let truncate = map.get("truncate").and_then(Value::as_u64).map(|t| usize::try_from(t).unwrap_or(usize::MAX));
    let queue = api.state.queue(&vhost, &name).map_err(|_| ApiError::ObjectNotFound)?;

    let mut dead = Vec::new();
    let mut fetched: Vec<QueuedMessage> = Vec::new();
    let mut answer = Vec::new();
    let mut counts = MessageStats::default();
    for _ in 0..count {
        let Some((entry, left)) = queue.get(mode == AckMode::Ack, &mut dead) else {
            counts.get_empty += 1;
            break;
        };
        counts.handed_out(true, mode != AckMode::Ack, entry.redelivered);
        answer.push(view(&entry, left, base64_only, truncate));
        fetched.push(entry);
    }
    api.state.count_api(|counted| {
        counted.totals.add(&counts);
        queue_tally(&mut counted.queues, &queue).add(&counts);
    });
    match mode {
        AckMode::Ack => {}
        AckMode::AckRequeue | AckMode::RejectRequeue => queue.requeue(fetched, &mut dead),
        AckMode::Reject => queue.reject(fetched, &mut dead),
    }
    api.state.dead_letter(&vhost, dead);
    Ok(Json(answer))
}

/// The payload as bytes, from `string` or `base64` encoding.
fn payload(map: &Map<String, Value>) -> Result<Vec<u8>, ApiError> {
    let text =
        map["payload"].as_str().ok_or_else(|| ApiError::BadMessage { problem: "payload must be a string".into() })?;
    match map["payload_encoding"].as_str() {
        Some("string") => Ok(text.as_bytes().to_vec()),
        Some("base64") => {
            STANDARD.decode(text).map_err(|e| ApiError::BadMessage { problem: format!("payload is not base64: {e}") })
        }
        _ => Err(ApiError::BadMessage { problem: "payload_encoding must be string or base64".into() }),
    }
}

/// AMQP basic properties from the API's JSON (RabbitMQ's names; `type` for the type property).
fn properties_from_json(value: &Value, login: &str) -> Result<BasicProperties, ApiError> {
    let empty = Map::new();
    let map = match value {
        Value::Object(map) => map,
        // RabbitMQ writes empty properties as [] and accepts them back.
        Value::Array(items) if items.is_empty() => &empty,
        other => return Err(ApiError::BadMessage { problem: format!("properties must be an object, not {other}") }),
    };
    let text = |key: &str| -> Result<Option<ShortString>, ApiError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(ShortString::from(s.as_str()))),
            Some(other) => {
                Err(ApiError::BadMessage { problem: format!("property {key} must be a string, not {other}") })
            }
        }
    };
    let octet = |key: &str| -> Result<Option<u8>, ApiError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().and_then(|n| u8::try_from(n).ok()).map(Some).ok_or_else(|| ApiError::BadMessage {
                problem: format!("property {key} must be an integer from 0 to 255, not {v}"),
            }),
        }
    };
    let mut props = BasicProperties::default();
    if let Some(v) = text("content_type")? {
        props = props.with_content_type(v);
    }
    if let Some(v) = text("content_encoding")? {
        props = props.with_content_encoding(v);
    }
    match map.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => props = props.with_headers(table_from_json(headers)),
        Some(Value::Array(items)) if items.is_empty() => props = props.with_headers(FieldTable::default()),
        Some(other) => {
            return Err(ApiError::BadMessage { problem: format!("property headers must be an object, not {other}") });
        }
    }
    if let Some(v) = octet("delivery_mode")? {
        props = props.with_delivery_mode(v);
    }
    if let Some(v) = octet("priority")? {
        props = props.with_priority(v);
    }
    if let Some(v) = text("correlation_id")? {
        props = props.with_correlation_id(v);
    }
    if let Some(v) = text("reply_to")? {
        props = props.with_reply_to(v);
    }
    if let Some(v) = text("expiration")? {
        props = props.with_expiration(v);
    }
    if let Some(v) = text("message_id")? {
        props = props.with_message_id(v);
    }
    match map.get("timestamp") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let t = v.as_u64().ok_or_else(|| ApiError::BadMessage {
                problem: format!("property timestamp must be a non-negative integer, not {v}"),
            })?;
            props = props.with_timestamp(t);
        }
    }
    if let Some(v) = text("type")? {
        props = props.with_type(v);
    }
    if let Some(v) = text("user_id")? {
        // As on an AMQP channel, a message may only claim the user who publishes it.
        if v.as_str() != login {
            return Err(ApiError::BadMessage {
                problem: format!(
                    "PRECONDITION_FAILED - user_id property set to '{}' but authenticated user was '{login}'",
                    v.as_str()
                ),
            });
        }
        props = props.with_user_id(v);
    }
    if let Some(v) = text("app_id")? {
        props = props.with_app_id(v);
    }
    if let Some(v) = text("cluster_id")? {
        props = props.with_cluster_id(v);
    }
    Ok(props)
}

/// One fetched message as RabbitMQ shows it.
fn view(entry: &QueuedMessage, left: usize, base64_only: bool, truncate: Option<usize>) -> Value {
    let message = &entry.message;
    let body = &message.body[..truncate.unwrap_or(usize::MAX).min(message.body.len())];
    let (payload, encoding) = match std::str::from_utf8(body) {
        Ok(text) if !base64_only => (text.to_owned(), "string"),
        _ => (STANDARD.encode(body), "base64"),
    };
    json!({
        "payload_bytes": message.body.len(),
        "redelivered": entry.redelivered,
        "exchange": &*message.exchange,
        "routing_key": &*message.routing_key,
        "message_count": left,
        "properties": properties_to_json(&message.properties),
        "payload": payload,
        "payload_encoding": encoding,
    })
}

/// The set properties as JSON; none at all is `[]`, as RabbitMQ writes an empty property list.
fn properties_to_json(raw: &[u8]) -> Value {
    let Some(props) = decode_properties(raw) else { return Value::Array(Vec::new()) };
    let mut map = Map::new();
    let mut text = |key: &str, value: &Option<ShortString>| {
        if let Some(v) = value {
            map.insert(key.to_owned(), json!(v.as_str()));
        }
    };
    text("content_type", props.content_type());
    text("content_encoding", props.content_encoding());
    text("correlation_id", props.correlation_id());
    text("reply_to", props.reply_to());
    text("expiration", props.expiration());
    text("message_id", props.message_id());
    text("type", props.kind());
    text("user_id", props.user_id());
    text("app_id", props.app_id());
    text("cluster_id", props.cluster_id());
    if let Some(headers) = props.headers() {
        map.insert("headers".to_owned(), Value::Object(table_to_json(headers)));
    }
    if let Some(mode) = props.delivery_mode() {
        map.insert("delivery_mode".to_owned(), json!(mode));
    }
    if let Some(priority) = props.priority() {
        map.insert("priority".to_owned(), json!(priority));
    }
    if let Some(timestamp) = props.timestamp() {
        map.insert("timestamp".to_owned(), json!(timestamp));
    }
    if map.is_empty() { Value::Array(Vec::new()) } else { Value::Object(map) }
}
