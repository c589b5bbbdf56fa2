//! The one place that talks to a management HTTP API (RabbitMQ's, or the
//! embedded broker's subset of it).

pub mod client;

use std::fmt;

use anyhow::{Context, bail};
use url::Url;

pub use client::{Management, ManagementError, QueueStats, QueueStatsMap};

/// Where a management API is and how to log in to it.
#[derive(Clone)]
pub struct Endpoint {
    /// Base URL, `http(s)://host:port`, without `/api`.
    pub base_url: String,
    /// User name.
    pub username: String,
    /// Password; never printed.
    pub password: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Parses `http(s)://[user:pass@]host:port[/api]`; credentials in the URL win over `fallback`.
    pub fn parse(url: &str, fallback: Option<(&str, &str)>) -> anyhow::Result<Endpoint> {
        let parsed = Url::parse(url)
            .with_context(|| format!("the management URL {} is not a URL", crate::target::redact_url(url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            bail!("the management URL must start with http:// or https://");
        }
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let (username, password) = if !parsed.username().is_empty() {
            (decode(parsed.username()), parsed.password().map(decode).unwrap_or_default())
        } else if let Some((u, p)) = fallback {
            (u.to_owned(), p.to_owned())
        } else {
            ("guest".to_owned(), "guest".to_owned())
        };
        let host = parsed.host_str().context("the management URL names no host")?;
        let port = parsed.port_or_known_default().unwrap_or(15672);
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
        Ok(Endpoint { base_url: format!("{}://{host}:{port}", parsed.scheme()), username, password })
    }

    /// The API root, `…/api`, as `rabbitmq_http_client` wants it.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url)
    }
}
