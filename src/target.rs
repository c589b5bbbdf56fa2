//! Which broker a command talks to: `--broker URL`, `WARREN_BROKER`, or the
//! embedded broker started in-process on free loopback ports.

use std::fmt;

use anyhow::{Context, bail};
use url::Url;

/// The broker URL used by `apply`, `plan` and `export` when none is given.
pub const DEFAULT_BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The management API port assumed when only an AMQP URL is given.
pub const DEFAULT_MANAGEMENT_PORT: u16 = 15672;

/// A broker a command talks to, over AMQP and over its management API.
pub struct Target {
    /// The AMQP URL, credentials included.
    pub amqp_url: String,
    /// The management API.
    pub management: Endpoint,
    /// The embedded broker, when this target started one; dropped with the target.
    pub embedded: Option<warren_broker::Broker>,
    /// The embedded broker's temporary data directory, removed after it stops.
    data_dir: Option<tempfile::TempDir>,
}

/// Where an embedded broker a command starts keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedData {
    /// In memory only.
    InMemory,
    /// On a temporary data directory (persistent messages are written and synced).
    TempDir,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("amqp_url", &redact_url(&self.amqp_url))
            .field("management", &self.management)
            .field("embedded", &self.embedded.is_some())
            .finish()
    }
}

impl Target {
    /// Resolves `--broker`/`--management`; `default` is used when no broker is named
    /// (`"embedded"` for `bench`, [`DEFAULT_BROKER`] otherwise).
    pub async fn resolve(broker: Option<&str>, management: Option<&str>, default: &str) -> anyhow::Result<Target> {
        Self::resolve_with(broker, management, default, EmbeddedData::InMemory).await
    }

    /// [`Target::resolve`], choosing where an embedded broker keeps its messages.
    pub async fn resolve_with(
        broker: Option<&str>,
        management: Option<&str>,
        default: &str,
        data: EmbeddedData,
    ) -> anyhow::Result<Target> {
        let broker = broker.unwrap_or(default);
        if broker == "embedded" {
            let data_dir = match data {
                EmbeddedData::InMemory => None,
                EmbeddedData::TempDir => Some(
                    tempfile::Builder::new()
                        .prefix("warren-embedded-")
                        .tempdir()
                        .context("creating a temporary data directory for the embedded broker")?,
                ),
            };
            let config = warren_broker::BrokerConfig {
                data_dir: data_dir.as_ref().map(|d| d.path().to_owned()),
                ..warren_broker::BrokerConfig::default()
            };
            let embedded = warren_broker::Broker::start(config).await.context("starting the embedded broker")?;
            let amqp_url = format!("amqp://guest:guest@{}/%2f", embedded.amqp_addr());
            let management = match management {
                Some(url) => Endpoint::parse(url, None)?,
                None => Endpoint::parse(&format!("http://{}", embedded.http_addr()), Some(("guest", "guest")))?,
            };
            return Ok(Target { amqp_url, management, embedded: Some(embedded), data_dir });
        }
        let url = Url::parse(broker).with_context(|| format!("the broker URL {} is not a URL", redact_url(broker)))?;
        let tls = match url.scheme() {
            "amqp" => false,
            "amqps" => true,
            other => bail!("the broker URL must start with amqp://, amqps:// or be `embedded`, not {other}://"),
        };
        let user = percent_decode(url.username()).unwrap_or_else(|| "guest".into());
        let user = if user.is_empty() { "guest".to_owned() } else { user };
        let password = url.password().and_then(percent_decode).unwrap_or_else(|| "guest".into());
        let management = match management {
            Some(m) => Endpoint::parse(m, Some((&user, &password)))?,
            None => {
                let host = url.host_str().context("the broker URL names no host")?;
                let scheme = if tls { "https" } else { "http" };
                let host =
                    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
                Endpoint::parse(&format!("{scheme}://{host}:{DEFAULT_MANAGEMENT_PORT}"), Some((&user, &password)))?
            }
        };
        Ok(Target { amqp_url: broker.to_owned(), management, embedded: None, data_dir: None })
    }

    /// Stops the embedded broker, if this target started one.
    pub async fn close(self) {
        if let Some(broker) = self.embedded {
            broker.shutdown().await;
        }
        drop(self.data_dir);
    }
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned())
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

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
        let parsed = Url::parse(url).with_context(|| format!("the management URL {} is not a URL", redact_url(url)))?;
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
