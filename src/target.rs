//! Which broker a command talks to: `--broker URL`, `WARREN_BROKER`, or the
//! embedded broker started in-process on free loopback ports. A cluster is
//! named by a comma-separated list of its nodes' URLs, for AMQP and for the
//! management API alike.

use std::fmt;

use anyhow::{Context, bail};
use url::Url;

/// The broker URL used by `apply`, `plan` and `export` when none is given.
pub const DEFAULT_BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The management API port assumed when only an AMQP URL is given.
pub const DEFAULT_MANAGEMENT_PORT: u16 = 15672;

/// A broker a command talks to, over AMQP and over its management API,
/// through one node or several nodes of a cluster.
pub struct Target {
    /// Each node's AMQP URL, credentials included, in the order given (at least one).
    pub amqp_urls: Vec<String>,
    /// Each node's management API, in the order given (at least one).
    pub management: Vec<Endpoint>,
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
        let urls: Vec<String> = self.amqp_urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("Target")
            .field("amqp_urls", &urls)
            .field("management", &self.management)
            .field("embedded", &self.embedded.is_some())
            .finish()
    }
}

impl Target {
    /// Resolves `--broker`/`--management` (each one URL, or a comma-separated
    /// list of a cluster's nodes); `default` is used when no broker is named
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
        let broker = broker.unwrap_or(default).trim();
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
                Some(urls) => list(urls).map(|url| Endpoint::parse(url, None)).collect::<anyhow::Result<_>>()?,
                None => vec![Endpoint::parse(&format!("http://{}", embedded.http_addr()), Some(("guest", "guest")))?],
            };
            return Ok(Target { amqp_urls: vec![amqp_url], management, embedded: Some(embedded), data_dir });
        }
        let nodes = list(broker).map(Node::parse).collect::<anyhow::Result<Vec<_>>>()?;
        let Some(first) = nodes.first() else { bail!("the broker list names no URL") };
        let management = match management {
            // Credentials a management URL leaves out are the first broker URL's.
            Some(urls) => list(urls)
                .map(|url| Endpoint::parse(url, Some((&first.user, &first.password))))
                .collect::<anyhow::Result<Vec<_>>>()?,
            None => {
                let mut derived: Vec<Endpoint> = Vec::new();
                for endpoint in nodes.iter().map(Node::management) {
                    let endpoint = endpoint?;
                    // Nodes on one host share its port 15672: one endpoint, not several.
                    if !derived.iter().any(|e| e.base_url == endpoint.base_url) {
                        derived.push(endpoint);
                    }
                }
                derived
            }
        };
        if management.is_empty() {
            bail!("the management list names no URL");
        }
        let amqp_urls = nodes.into_iter().map(|n| n.url).collect();
        Ok(Target { amqp_urls, management, embedded: None, data_dir: None })
    }

    /// The first node's AMQP URL.
    pub fn amqp_url(&self) -> &str {
        &self.amqp_urls[0]
    }

    /// Stops the embedded broker, if this target started one.
    pub async fn close(self) {
        if let Some(broker) = self.embedded {
            broker.shutdown().await;
        }
        drop(self.data_dir);
    }
}

/// The entries of a comma-separated list, trimmed, empty ones left out.
fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|entry| !entry.is_empty())
}

/// One node named by an AMQP URL, with RabbitMQ's defaults for what it leaves out.
pub(crate) struct Node {
    pub(crate) url: String,
    /// An IPv6 literal in brackets, as a URL writes it.
    pub(crate) host: String,
    pub(crate) tls: bool,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) vhost: String,
}

impl Node {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Node> {
        if text == "embedded" {
            bail!("`embedded` cannot be one node of a list: it is a broker of its own");
        }
        let url = Url::parse(text).with_context(|| format!("the broker URL {} is not a URL", redact_url(text)))?;
        let tls = match url.scheme() {
            "amqp" => false,
            "amqps" => true,
            other => bail!("the broker URL must start with amqp://, amqps:// or be `embedded`, not {other}://"),
        };
        let user = percent_decode(url.username()).unwrap_or_else(|| "guest".into());
        let user = if user.is_empty() { "guest".to_owned() } else { user };
        let password = url.password().and_then(percent_decode).unwrap_or_else(|| "guest".into());
        let host = url.host_str().context("the broker URL names no host")?;
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
        let vhost = match url.path().strip_prefix('/') {
            None | Some("") => "/".to_owned(),
            Some(path) => percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned(),
        };
        Ok(Node { url: text.to_owned(), host, tls, user, password, vhost })
    }

    /// The management API assumed for this node: its host, port 15672, its credentials.
    fn management(&self) -> anyhow::Result<Endpoint> {
        let scheme = if self.tls { "https" } else { "http" };
        let url = format!("{scheme}://{}:{DEFAULT_MANAGEMENT_PORT}", self.host);
        Endpoint::parse(&url, Some((&self.user, &self.password)))
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
