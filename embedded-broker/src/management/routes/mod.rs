//! The route table, one module per resource. Paths are matched percent-encoded
//! and decoded by the `Path` extractor, so `%2F` is the vhost `/` and a name
//! may hold any character, as `rabbitmq_http_client` encodes every one.

mod bindings;
mod connections;
mod definitions;
mod exchanges;
mod health;
mod messages;
mod metrics;
mod nodes;
mod overview;
mod pagination;
mod permissions;
mod policies;
mod queues;
mod users;
mod vhosts;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tokio::sync::Semaphore;

use super::auth::require_login;
use super::{Api, ApiError};

/// The largest request body, as RabbitMQ's `management.http_max_body_size` default (20 MiB): a
/// definitions import of tens of thousands of objects fits.
const MAX_BODY: usize = 20 << 20;

/// Requests handled at once; more wait for a turn, so a flood of clients cannot exhaust memory.
const MAX_CONCURRENT_REQUESTS: usize = 128;

/// Every route, behind basic authentication; unknown paths are RabbitMQ's 404.
pub(crate) fn all(api: Api) -> Router {
    let turns = Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS));
    Router::new()
        .route("/api/overview", get(overview::overview))
        .route("/api/whoami", get(overview::whoami))
        .route("/api/vhosts", get(vhosts::list))
        .route("/api/vhosts/{vhost}", get(vhosts::show).put(vhosts::put).delete(vhosts::remove))
        .route("/api/vhosts/{vhost}/permissions", get(permissions::list_in_vhost))
        .route("/api/vhosts/{vhost}/topic-permissions", get(permissions::list_topic_in_vhost))
        .route("/api/users", get(users::list))
        .route("/api/users/{user}", get(users::show).put(users::put).delete(users::remove))
        .route("/api/users/{user}/permissions", get(permissions::list_of_user))
        .route("/api/users/{user}/topic-permissions", get(permissions::list_topic_of_user))
        .route("/api/permissions", get(permissions::list))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(permissions::show).put(permissions::put).delete(permissions::remove),
        )
        .route("/api/topic-permissions", get(permissions::list_topic))
        .route(
            "/api/topic-permissions/{vhost}/{user}",
            get(permissions::show_topic).put(permissions::put_topic).delete(permissions::remove_topic),
        )
        .route("/api/exchanges", get(exchanges::list_all))
        .route("/api/exchanges/{vhost}", get(exchanges::list_in))
        .route("/api/exchanges/{vhost}/{name}", get(exchanges::show).put(exchanges::put).delete(exchanges::remove))
        .route("/api/exchanges/{vhost}/{name}/publish", post(messages::publish))
        .route("/api/exchanges/{vhost}/{name}/bindings/source", get(bindings::with_source))
        .route("/api/exchanges/{vhost}/{name}/bindings/destination", get(bindings::with_exchange_destination))
        .route("/api/queues", get(queues::list_all))
        .route("/api/queues/{vhost}", get(queues::list_in))
        .route("/api/queues/{vhost}/{name}", get(queues::show).put(queues::put).delete(queues::remove))
        .route("/api/queues/{vhost}/{name}/contents", delete(queues::purge))
        .route("/api/queues/{vhost}/{name}/get", post(messages::get))
        .route("/api/queues/{vhost}/{name}/bindings", get(bindings::with_queue_destination))
        .route("/api/bindings", get(bindings::list_all))
        .route("/api/bindings/{vhost}", get(bindings::list_in))
        .route("/api/bindings/{vhost}/e/{source}/{kind}/{destination}", get(bindings::between).post(bindings::create))
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}",
            get(bindings::show).delete(bindings::remove),
        )
        .route("/api/policies", get(policies::list_all))
        .route("/api/policies/{vhost}", get(policies::list_in))
        .route("/api/policies/{vhost}/{name}", get(policies::show).put(policies::put).delete(policies::remove))
        .route("/api/operator-policies", get(policies::list_all_operator))
        .route("/api/operator-policies/{vhost}", get(policies::list_in_operator))
        .route(
            "/api/operator-policies/{vhost}/{name}",
            get(policies::show_operator).put(policies::put_operator).delete(policies::remove_operator),
        )
        .route("/api/health/checks/alarms", get(health::alarms))
        .route("/api/health/checks/local-alarms", get(health::alarms))
        .route("/api/health/checks/virtual-hosts", get(health::virtual_hosts))
        .route("/api/health/checks/node-is-quorum-critical", get(health::quorum_critical))
        .route("/api/aliveness-test/{vhost}", get(health::aliveness))
        .route("/api/definitions", get(definitions::export_all).post(definitions::import_all))
        .route("/api/definitions/{vhost}", get(definitions::export_vhost).post(definitions::import_vhost))
        .route("/api/nodes", get(nodes::list))
        .route("/api/nodes/{name}", get(nodes::show))
        .route("/api/connections", get(connections::list_all))
        .route("/api/connections/{name}", get(connections::show).delete(connections::close))
        .route("/api/connections/{name}/channels", get(connections::channels_of))
        .route("/api/vhosts/{vhost}/connections", get(connections::list_in))
        .route("/api/channels", get(connections::channels_all))
        .route("/api/channels/{name}", get(connections::channel))
        .route("/api/vhosts/{vhost}/channels", get(connections::channels_in))
        .route("/api/consumers", get(connections::consumers_all))
        .route("/api/consumers/{vhost}", get(connections::consumers_in))
        .fallback(not_found)
        .route_layer(middleware::from_fn(pagination::lists))
        .route_layer(middleware::from_fn_with_state(api.clone(), require_login))
        // As on the Prometheus plugin's own port, scraping needs no login.
        .route("/metrics", get(metrics::aggregated))
        .route("/metrics/per-object", get(metrics::per_object))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::map_response(json_rejections))
        .layer(middleware::from_fn_with_state(turns, one_at_a_turn))
        .with_state(api)
}

/// Turns the framework's plain-text rejections (a path segment that is not UTF-8, a body over the
/// limit, a malformed query) into RabbitMQ's JSON error shape, so every 4xx parses alike.
async fn json_rejections(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE) {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let reason = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::json!({ "error": "bad_request", "reason": reason });
    (status, axum::Json(body)).into_response()
}

/// Waits for a free turn before handling the request.
async fn one_at_a_turn(State(turns): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    // The semaphore is never closed, so acquiring only fails if it were; answer 503 then.
    match turns.acquire().await {
        Ok(_turn) => next.run(request).await,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::ObjectNotFound
}

/// RabbitMQ's answers to writes: 201 when something was created, 204 otherwise.
pub(crate) fn written(created: bool) -> Response {
    if created { StatusCode::CREATED.into_response() } else { StatusCode::NO_CONTENT.into_response() }
}

/// The path's vhost, or 404 when it does not exist.
pub(crate) fn existing_vhost(api: &Api, vhost: &str) -> Result<(), ApiError> {
    api.state.vhost(vhost).map(|_| ()).ok_or(ApiError::ObjectNotFound)
}

/// In paths the default exchange is spelled `amq.default`, as in RabbitMQ.
pub(crate) fn exchange_name(path_name: &str) -> &str {
    if path_name == "amq.default" { "" } else { path_name }
}

/// The value of `key` in a query string (`if-empty=true`).
pub(crate) fn query_flag(query: Option<&str>, key: &str) -> bool {
    query.unwrap_or_default().split('&').filter_map(|pair| pair.split_once('=')).any(|(k, v)| k == key && v == "true")
}
