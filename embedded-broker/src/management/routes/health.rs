//! Health checks that deployment probes and CI scripts call: resource alarms,
//! virtual hosts, quorum criticality, and the aliveness test (a message
//! through a queue of the vhost). A failed check answers 503, as RabbitMQ's do.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::existing_vhost;
use super::overview::NODE;
use crate::management::{Api, ApiError};
use crate::state::QueueDecl;
use crate::state::message::Message;

/// The queue RabbitMQ's aliveness test uses, created on first use and kept.
const ALIVENESS_QUEUE: &str = "aliveness-test";

/// Fails while the memory alarm blocks publishers; the broker is one node, so local = cluster.
pub(crate) async fn alarms(State(api): State<Api>) -> Response {
    if api.state.memory_alarm() {
        let body = json!({
            "status": "failed",
            "reason": "resource alarm(s) in effect in the cluster",
            "alarms": [{ "node": NODE, "resource": "memory" }],
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({ "status": "ok" })).into_response()
}

/// Every vhost of this broker is always running.
pub(crate) async fn virtual_hosts() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// A single node is never quorum-critical for another node's shutdown.
pub(crate) async fn quorum_critical() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "reason": "single node cluster" }))
}

/// Declares `aliveness-test` in the vhost, sends a message through it and fetches it back.
pub(crate) async fn aliveness(State(api): State<Api>, Path(vhost): Path<String>) -> Result<Response, ApiError> {
    existing_vhost(&api, &vhost)?;
    let decl = QueueDecl {
        name: ALIVENESS_QUEUE.to_owned(),
        durable: false,
        exclusive_owner: None,
        auto_delete: false,
        arguments: Default::default(),
    };
    let (queue, _) = api.state.declare_queue(&vhost, decl)?;
    let message = Arc::new(Message {
        exchange: Arc::from(""),
        routing_key: Arc::from(ALIVENESS_QUEUE),
        properties: Bytes::from_static(&[0, 0]),
        body: Bytes::from_static(b"test_message"),
        priority: 0,
        expiration_ms: None,
        persistent: false,
    });
    let mut dead = Vec::new();
    queue.publish(Arc::clone(&message), &mut dead);
    // Other messages may sit in the queue (an earlier failed test): drain until ours comes back.
    let mut found = false;
    while let Some((entry, _)) = queue.get(true, &mut dead) {
        if Arc::ptr_eq(&entry.message, &message) {
            found = true;
            break;
        }
    }
    api.state.dead_letter(&vhost, dead);
    if found {
        Ok(Json(json!({ "status": "ok" })).into_response())
    } else {
        let body = json!({ "status": "failed", "reason": "the test message did not come back" });
        Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response())
    }
}
