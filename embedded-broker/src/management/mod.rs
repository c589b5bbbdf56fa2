//! RabbitMQ's management HTTP API as `warren apply`, `plan` and `export`, the
//! management UI, `rabbitmqadmin` and Prometheus use it, served over the broker's
//! [`State`] so one client code path (`rabbitmq_http_client`) reconciles both brokers.
//!
//! Layout: `auth` (basic auth and tags), `error` (RabbitMQ-shaped JSON errors),
//! `body` (request bodies), `live` (counters read from the connections, and
//! their rates), `routes/`, one file per resource, and `ui/`, the web page
//! served at `/` (no login for the files; the page logs in through the API). Definitions
//! import and export live in [`crate::definitions`]; the document, password
//! hashes and binding `properties_key`s in the `warren-definitions` crate. Every
//! route answers in RabbitMQ's shapes; RabbitMQ 3.10 is the reference for
//! fields, status codes and error texts.

mod auth;
mod body;
mod error;
mod live;
mod routes;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

use crate::state::State;

/// What every handler sees: the broker state, the earlier reads of counters that rates are
/// computed from, when the broker started and where it listens.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) state: State,
    pub(crate) rates: Arc<live::Rates>,
    pub(crate) started: Instant,
    pub(crate) listeners: Listeners,
}

/// The addresses the broker listens on, for `listeners` in the overview.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listeners {
    /// AMQP.
    pub amqp: Option<SocketAddr>,
    /// This API.
    pub http: Option<SocketAddr>,
}

/// Serves the management API on `listener` until `shutdown` is cancelled, then
/// finishes the requests in flight and returns. `amqp` is the AMQP listener's address, shown
/// in the overview.
pub async fn serve(
    listener: tokio::net::TcpListener,
    amqp: SocketAddr,
    state: State,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listeners = Listeners { amqp: Some(amqp), http: listener.local_addr().ok() };
    let app = router_with(state, listeners).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// The API's routes, with authentication, over `state`, and the web page.
pub fn router(state: State) -> Router {
    router_with(state, Listeners::default())
}

/// The API's routes over `state`, reporting `listeners`, and the web page.
pub fn router_with(state: State, listeners: Listeners) -> Router {
    let api = Api { state, rates: Arc::default(), started: Instant::now(), listeners };
    routes::all(api).merge(ui::routes())
}
