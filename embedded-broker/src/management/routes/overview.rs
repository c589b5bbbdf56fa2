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
use crate::management::live::{Scope, Snapshot};
use crate::{COMPATIBLE_RABBITMQ_VERSION, PRODUCT_NAME};

/// The node name reported wherever RabbitMQ reports one.
pub(crate) const NODE: &str = "warren@localhost";

pub(crate) async fn overview(State(api): State<Api>) -> Json<Value> {
    let state = &api.state;
    let snapshot = Snapshot::take(state).await;
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
    let queue_totals = if queues.is_empty() {
        json!({})
    } else {
        let counters = [
            ("messages", messages as u64),
            ("messages_ready", ready as u64),
            ("messages_unacknowledged", unacked as u64),
        ];
        Value::Object(api.rates.counters("overview", &counters))
    };
    let churn = snapshot.churn;
    let churn_rates = api.rates.counters(
        "overview",
        &[
            ("channel_closed", churn.channels_closed),
            ("channel_created", churn.channels_opened),
            ("connection_closed", churn.connections_closed),
            ("connection_created", churn.connections_opened),
        ],
    );
    Json(json!({
        "management_version": COMPATIBLE_RABBITMQ_VERSION,
        "rates_mode": "basic",
        "exchange_types": exchange_types,
        "product_version": env!("CARGO_PKG_VERSION"),
        "product_name": PRODUCT_NAME,
        "rabbitmq_version": COMPATIBLE_RABBITMQ_VERSION,
        "cluster_name": NODE,
        "erlang_version": "none",
        "erlang_full_version": "none (warren-broker is written in Rust)",
        "disable_stats": false,
        "enable_queue_totals": false,
        "message_stats": api.rates.message_stats("overview", &snapshot.totals, Scope::Overview),
        "churn_rates": churn_rates,
        "queue_totals": queue_totals,
        "object_totals": {
            "channels": snapshot.channel_count(),
            "connections": snapshot.connections.len(),
            "consumers": consumers,
            "exchanges": state.exchanges(None).len(),
            "queues": queues.len(),
        },
        "statistics_db_event_queue": 0,
        "node": NODE,
        "listeners": listeners(&api),
        "contexts": api.listeners.http.map_or_else(Vec::new, |http| vec![json!({
            "ssl_opts": [],
            "node": NODE,
            "description": "RabbitMQ Management",
            "path": "/",
            "port": http.port().to_string(),
        })]),
        "memory_used": state.memory_used(),
        "memory_limit": state.memory_limit(),
    }))
}

/// The broker's listeners, as the overview lists them.
fn listeners(api: &Api) -> Vec<Value> {
    let listener = |protocol: &str, addr: std::net::SocketAddr| {
        json!({
            "node": NODE,
            "protocol": protocol,
            "ip_address": addr.ip().to_canonical().to_string(),
            "port": addr.port(),
            "socket_opts": {},
        })
    };
    let mut out = Vec::new();
    out.extend(api.listeners.amqp.map(|a| listener("amqp", a)));
    out.extend(api.listeners.http.map(|a| listener("http", a)));
    out
}

pub(crate) async fn whoami(Extension(user): Extension<AuthUser>) -> Json<Value> {
    Json(json!({ "name": user.name, "tags": user.tags }))
}
