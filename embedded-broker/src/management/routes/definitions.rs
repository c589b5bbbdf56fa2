//! `GET`/`POST /api/definitions` and `/api/definitions/{vhost}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;

use warren_definitions::Definitions;

use super::{existing_vhost, written};
use crate::definitions::export::{self, Scope};
use crate::definitions::import;
use crate::management::{Api, ApiError, body};

pub(crate) async fn export_all(State(api): State<Api>) -> Json<Definitions> {
    Json(export::definitions(&api.state, Scope::All))
}

pub(crate) async fn export_vhost(
    State(api): State<Api>,
    Path(vhost): Path<String>,
) -> Result<Json<Definitions>, ApiError> {
    existing_vhost(&api, &vhost)?;
    Ok(Json(export::definitions(&api.state, Scope::Vhost(&vhost))))
}

pub(crate) async fn import_all(State(api): State<Api>, bytes: Bytes) -> Result<Response, ApiError> {
    let document: Definitions = body::parse(&bytes)?;
    let imported = import::import(&api.state, &document, None)?;
    tracing::info!(?imported, "imported definitions");
    Ok(written(false))
}

/// Imports into the path's vhost; entries name no vhost of their own.
pub(crate) async fn import_vhost(
    State(api): State<Api>,
    Path(vhost): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    existing_vhost(&api, &vhost)?;
    let mut document: Definitions = body::parse(&bytes)?;
    // A vhost-scoped import touches only that vhost, whatever the entries say.
    document.users = None;
    document.vhosts = None;
    document.permissions = None;
    document.topic_permissions = None;
    for q in &mut document.queues {
        q.vhost = Some(vhost.clone());
    }
    for x in &mut document.exchanges {
        x.vhost = Some(vhost.clone());
    }
    for b in &mut document.bindings {
        b.vhost = Some(vhost.clone());
    }
    for p in &mut document.policies {
        p.vhost = Some(vhost.clone());
    }
    for p in &mut document.parameters {
        p.vhost = Some(vhost.clone());
    }
    let imported = import::import(&api.state, &document, Some(&vhost))?;
    tracing::info!(vhost, ?imported, "imported vhost definitions");
    Ok(written(false))
}
