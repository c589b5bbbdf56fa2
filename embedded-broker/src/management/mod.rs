//! The subset of RabbitMQ's management HTTP API that `warren apply`, `plan` and
//! `export` use, served over the broker's [`State`] so one client code path
//! (`rabbitmq_http_client`) reconciles both brokers.
//!
//! Layout: `auth` (basic auth and tags), `error` (RabbitMQ-shaped JSON errors),
//! `body` (request bodies), `routes/`, one file per resource, and `ui/`, the web
//! page served at `/` (no login for the files; the page logs in through the API). Definitions
//! import and export live in [`crate::definitions`]; the document, password
//! hashes and binding `properties_key`s in the `warren-definitions` crate. Every
//! route answers in RabbitMQ's shapes; RabbitMQ 3.10 is the reference for
//! fields, status codes and error texts.

mod auth;
mod body;
mod error;
mod routes;
mod ui;

use std::net::SocketAddr;

use axum::Router;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;

use crate::state::State;

/// What every handler sees: the broker state.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) state: State,
}

/// Serves the management API on `listener` until `shutdown` is cancelled, then
/// finishes the requests in flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// The API's routes, with authentication, over `state`, and the web page.
pub fn router(state: State) -> Router {
    let api = Api { state };
    routes::all(api).merge(ui::routes())
}
