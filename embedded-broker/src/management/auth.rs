//! HTTP basic authentication against the broker's users, with RabbitMQ's tag
//! rules: `whoami` and `overview` need any management tag, reading connections,
//! channels, consumers and nodes `monitoring`, everything else `administrator`.
//! Users in `loopback_users` (guest) log in only from loopback, as RabbitMQ
//! enforces for its API too.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Api, ApiError};

/// The logged-in user, put into request extensions for handlers that report it.
#[derive(Debug, Clone)]
pub(crate) struct AuthUser {
    /// User name.
    pub(crate) name: String,
    /// Its tags.
    pub(crate) tags: Vec<String>,
}

/// Tags that open the management API at all.
const MANAGEMENT_TAGS: [&str; 4] = ["management", "monitoring", "policymaker", "administrator"];

/// Checks the credentials and the tags the path needs, then runs the handler.
pub(crate) async fn require_login(
    State(api): State<Api>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (name, password) = basic_credentials(request.headers()).ok_or(ApiError::LoginFailed)?;
    let user = api.state.authenticate(&name, password.as_bytes()).ok_or(ApiError::LoginFailed)?;
    if !peer(&request).is_some_and(|peer| api.state.may_log_in_from(&name, peer.ip())) {
        return Err(ApiError::LoginFailed);
    }
    let has = |tag: &str| user.tags.iter().any(|t| t == tag);
    if !MANAGEMENT_TAGS.iter().any(|t| has(t)) {
        return Err(ApiError::MissingTag { required: "management" });
    }
    let path = request.uri().path();
    let monitoring_suffices = request.method() == Method::GET && monitoring_may_read(path);
    let allowed = management_tag_suffices(path) || (monitoring_suffices && has("monitoring")) || has("administrator");
    if !allowed {
        return Err(ApiError::MissingTag { required: "administrator" });
    }
    request.extensions_mut().insert(AuthUser { name: user.name, tags: user.tags });
    Ok(next.run(request).await)
}

/// Endpoints any management user may read (identity, overview, health checks); the rest of this
/// subset changes or reveals definitions.
fn management_tag_suffices(path: &str) -> bool {
    matches!(path.trim_end_matches('/'), "/api/whoami" | "/api/overview")
        || path.starts_with("/api/health/")
        || path.starts_with("/api/aliveness-test/")
}

/// What RabbitMQ lets a `monitoring` user read of every vhost: connections, channels,
/// consumers and nodes.
fn monitoring_may_read(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    ["/api/connections", "/api/channels", "/api/consumers", "/api/nodes"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
        || (path.starts_with("/api/vhosts/") && (path.ends_with("/connections") || path.ends_with("/channels")))
}

fn peer(request: &Request) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| *peer)
}

/// `Authorization: Basic base64(user:password)`; `None` when absent or malformed.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn monitoring_reads_connections_channels_consumers_and_nodes_only() {
        for path in
            ["/api/connections", "/api/channels/x%20(1)", "/api/nodes/warren@localhost", "/api/vhosts/%2F/channels"]
        {
            assert!(monitoring_may_read(path), "{path}");
        }
        for path in ["/api/users", "/api/vhosts/%2F", "/api/connectionsX", "/api/definitions"] {
            assert!(!monitoring_may_read(path), "{path}");
        }
    }

    #[test]
    fn basic_credentials_decode_and_keep_colons_in_the_password() {
        let encoded = STANDARD.encode("jack:pa:ss");
        assert_eq!(basic_credentials(&headers(&format!("Basic {encoded}"))), Some(("jack".into(), "pa:ss".into())));
        assert_eq!(basic_credentials(&headers("Bearer abc")), None);
        assert_eq!(basic_credentials(&headers("Basic !!!")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }
}
