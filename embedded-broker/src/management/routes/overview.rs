//! `GET /api/overview` and `GET /api/whoami`.
//!
//! The overview says what answers: `product_name` is `warren-broker` with its
//! own version, while `rabbitmq_version`/`management_version` name the RabbitMQ
//! release whose API this subset follows, for clients that branch on it.

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::management::Api;
use crate::management::auth::AuthUser;
use crate::{COMPATIBLE_RABBITMQ_VERSION, PRODUCT_NAME};

/// The node name reported wherever RabbitMQ reports one.
pub(crate) const NODE: &str = "warren@localhost";

pub(crate) async fn overview(State(api): State<Api>) -> Json<Value> {
    let state = &api.state;
    let queues = state.queues(None);
    let (mut messages, mut ready, mut unacked, mut consumers) = (0usize, 0usize, 0usize, 0usize);
    for queue in &queues {
        let counts = queue.counts();
        messages += counts.messages;
        ready += counts.ready;
        unacked += counts.unacked;
        consumers += counts.consumers;
    }
    let exchange_types: Vec<Value> = ["direct", "fanout", "headers", "topic"]
        .iter()
        .map(|t| json!({ "name": t, "description": format!("AMQP {t} exchange, as per the AMQP specification"), "enabled": true }))
        .collect();
    Json(json!({
        "management_version": COMPATIBLE_RABBITMQ_VERSION,
        "rates_mode": "none",
        "exchange_types": exchange_types,
        "product_version": env!("CARGO_PKG_VERSION"),
        "product_name": PRODUCT_NAME,
        "rabbitmq_version": COMPATIBLE_RABBITMQ_VERSION,
        "cluster_name": NODE,
        "erlang_version": "none",
        "erlang_full_version": "none (warren-broker is written in Rust)",
        "disable_stats": false,
        "message_stats": {},
        "churn_rates": {},
        "queue_totals": {
            "messages": messages,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
        },
        "object_totals": {
            "consumers": consumers,
            "exchanges": state.exchanges(None).len(),
            "queues": queues.len(),
        },
        "statistics_db_event_queue": 0,
        "node": NODE,
        "memory_used": state.memory_used(),
        "memory_limit": state.memory_limit(),
    }))
}

pub(crate) async fn whoami(Extension(user): Extension<AuthUser>) -> Json<Value> {
    Json(json!({ "name": user.name, "tags": user.tags }))
}
