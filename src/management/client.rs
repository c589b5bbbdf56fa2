//! A management API client for warren's needs: read the whole state in a few
//! bulk requests, write one entity or one definitions import at a time.
//!
//! Every request goes through `rabbitmq_http_client`'s async client with
//! automatic retries off: a write retried after a timeout could apply twice.
//!
//! A client may know several nodes of one cluster. Requests go to the current
//! node (the first that answered); when it cannot be reached the client says
//! so on stderr and moves to the next. A read is then simply asked again. A
//! write is asked again only when it never left (the connection was refused);
//! one that may have reached the broker before the answer was lost is never
//! repeated blindly: it fails with [`ManagementError::Interrupted`], and the
//! caller re-reads the broker's state through the next node before going on.

use std::collections::BTreeMap;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rabbitmq_http_client::api::{Client, ClientBuilder};
use rabbitmq_http_client::commons::{BindingDestinationType, QueueType as ClientQueueType, RetrySettings};
use rabbitmq_http_client::error::{EndpointValidationError, HttpClientError};
use rabbitmq_http_client::requests::{BindingDeletionParams, VirtualHostParams};

use warren_definitions::password;
use warren_definitions::{BindingDef, Definitions, PermissionDef, Tags, TopicPermissionDef, UserDef, VhostDef};

use crate::target::Endpoint;

/// How long one request may take; a definitions import of tens of thousands
/// of entities takes a while on a busy broker.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a lenient read ([`Management::read_json`]) waits for one node.
const LENIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed management API call.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// The HTTP client could not be built for this endpoint.
    #[error("cannot use the management API at {url}")]
    Client {
        /// The endpoint's base URL.
        url: String,
        /// Why.
        #[source]
        source: EndpointValidationError,
    },
    /// A request failed; `action` names the entity.
    #[error("{action} failed{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Request {
        /// What was being done, naming the entity (`deleting queue "q" in vhost "/"`).
        action: String,
        /// The broker's own explanation, when it gave one.
        reason: Option<String>,
        /// The HTTP error.
        #[source]
        source: Box<HttpClientError>,
    },
    /// No node of the list could be reached.
    #[error("{action} failed: no management API answers ({tried})")]
    Unreachable {
        /// What was being done.
        action: String,
        /// Each node tried, with why it did not answer.
        tried: String,
    },
    /// A write reached a node that then stopped answering: it may or may not
    /// have been applied. The client has moved to the next node; re-read the
    /// state there before deciding what is left to do.
    #[error("{action} was interrupted: the management API at {url} stopped answering ({reason})")]
    Interrupted {
        /// What was being done.
        action: String,
        /// The node that stopped answering.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// A lenient read ([`Management::read_json`]) got no JSON from any node.
    #[error("{action} failed: {reasons}")]
    Read {
        /// What was being read.
        action: String,
        /// Each node tried, with what went wrong there.
        reasons: String,
    },
    /// A response did not have the expected shape.
    #[error("the response to {action} is not what a RabbitMQ management API sends")]
    Decode {
        /// What was being read.
        action: String,
        /// Why it did not decode.
        #[source]
        source: serde_json::Error,
    },
}

/// Messages and consumers of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages ready and unacknowledged.
    pub messages: u64,
    /// Consumers.
    pub consumers: u64,
}

/// Queue statistics by (vhost, queue).
pub type QueueStatsMap = BTreeMap<(String, String), QueueStats>;

/// A management API client for one broker, through one or more of its nodes.
pub struct Management {
    nodes: Vec<Node>,
    /// Index of the node requests go to.
    current: AtomicUsize,
    /// For [`Management::read_json`]: plain requests with a short timeout.
    lenient: reqwest::Client,
}

/// One node's management API.
struct Node {
    client: Client<String, String, String>,
    endpoint: Endpoint,
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self.nodes.iter().map(|n| n.endpoint.base_url.as_str()).collect();
        f.debug_struct("Management").field("nodes", &urls).finish_non_exhaustive()
    }
}

/// Whether a request changes the broker: a write that may have been applied
/// is never sent again by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

/// How a request that failed on one node goes on.
enum Next {
    /// Ask again: the client has moved to another node.
    Again,
    /// Give up with this error.
    Fail(ManagementError),
}

/// Runs `$call` (an expression using the client `$client`) on the current
/// node, moving to the next node as [`Management::failed`] decides.
macro_rules! on_nodes {
    ($self:ident, $kind:expr, $action:expr, |$client:ident| $call:expr) => {{
        let action: String = $action.into();
        let mut tried = Vec::new();
        loop {
            let index = $self.current.load(Ordering::Relaxed) % $self.nodes.len();
            let $client = &$self.nodes[index].client;
            match $call.await {
                Ok(value) => break Ok(value),
                Err(error) => match $self.failed(index, $kind, &action, error, &mut tried) {
                    Next::Again => continue,
                    Next::Fail(error) => break Err(error),
                },
            }
        }
    }};
}

/// Installs rustls' ring provider once per process, before any https client exists.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one already: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn request_error(action: impl Into<String>) -> impl FnOnce(HttpClientError) -> ManagementError {
    let action = action.into();
    move |source| {
        let reason = match &source {
            HttpClientError::ClientErrorResponse { error_details, body, status_code, .. }
            | HttpClientError::ServerErrorResponse { error_details, body, status_code, .. } => {
                let detail = error_details
                    .as_ref()
                    .and_then(|d| d.reason().map(str::to_owned))
                    .or_else(|| body.clone().filter(|b| !b.is_empty()));
                // RabbitMQ HTML-escapes its reasons and spreads them over lines.
                let detail = detail.map(|d| {
                    let d = d.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
                    d.split_whitespace().collect::<Vec<_>>().join(" ")
                });
                Some(match detail {
                    Some(detail) => format!("HTTP {status_code}: {detail}"),
                    None => format!("HTTP {status_code}"),
                })
            }
            HttpClientError::NotFound => Some("not found".to_owned()),
            HttpClientError::RequestError { error, .. } => Some(transport_words(error)),
            _ => None,
        };
        ManagementError::Request { action, reason, source: Box::new(source) }
    }
}

impl Management {
    /// A client for the nodes `endpoints` (at least one), tried in order;
    /// nothing is sent until the first call.
    pub fn new(endpoints: &[Endpoint]) -> Result<Management, ManagementError> {
        install_crypto_provider();
        let nodes = endpoints.iter().map(Node::new).collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(ManagementError::Unreachable {
                action: "starting".to_owned(),
                tried: "no node given".to_owned(),
            });
        }
        let lenient = reqwest::Client::builder()
            .timeout(LENIENT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ManagementError::Read { action: "starting".to_owned(), reasons: source.to_string() })?;
        Ok(Management { nodes, current: AtomicUsize::new(0), lenient })
    }

    /// The management API requests go to now, for messages.
    pub fn url(&self) -> &str {
        &self.node().endpoint.base_url
    }

    fn node(&self) -> &Node {
        &self.nodes[self.current.load(Ordering::Relaxed) % self.nodes.len()]
    }

    /// Decides how a request that failed on node `index` goes on: a node that
    /// cannot be reached is left for the next (said on stderr), and the request
    /// is asked again there when that is safe.
    fn failed(&self, index: usize, kind: Kind, action: &str, error: HttpClientError, tried: &mut Vec<String>) -> Next {
        let Some((sent, reason)) = transport_failure(&error) else {
            return Next::Fail(request_error(action)(error));
        };
        let url = self.nodes[index].endpoint.base_url.clone();
        tried.push(format!("{url}: {reason}"));
        let next = (index + 1) % self.nodes.len();
        // Another request may have moved on already; only the first one says so.
        let moved = self.current.compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed).is_ok();
        if tried.len() >= self.nodes.len() {
            return Next::Fail(ManagementError::Unreachable { action: action.to_owned(), tried: tried.join("; ") });
        }
        if moved {
            eprintln!(
                "note: the management API at {url} does not answer ({reason}); going on with {}",
                self.nodes[next].endpoint.base_url
            );
        }
        if kind == Kind::Write && sent {
            return Next::Fail(ManagementError::Interrupted { action: action.to_owned(), url, reason });
        }
        Next::Again
    }
}

impl Node {
    fn new(endpoint: &Endpoint) -> Result<Node, ManagementError> {
        let url = endpoint.base_url.clone();
        let client = ClientBuilder::new()
            .with_endpoint(endpoint.api_url())
            .with_basic_auth_credentials(endpoint.username.clone(), endpoint.password.clone())
            .with_retry_settings(RetrySettings { max_attempts: 0, delay_ms: 0 })
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_redirect_policy(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ManagementError::Client { url, source })?;
        Ok(Node { client, endpoint: endpoint.clone() })
    }
}

/// The transport's own words ("Connection refused", a TLS alert), at the
/// bottom of reqwest's error chain; its top only repeats the URL.
fn transport_words(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Whether `error` means the node could not be reached, and if so, whether
/// the request may have been sent (`true`) or certainly was not (`false`,
/// the connection was never made), with the transport's words.
fn transport_failure(error: &HttpClientError) -> Option<(bool, String)> {
    let HttpClientError::RequestError { error, .. } = error else { return None };
    Some((!error.is_connect(), transport_words(error)))
}

impl Management {
    /// The broker's product name and version from `GET /api/overview`, when
    /// it answers within a few seconds. Read leniently (any JSON object
    /// with these fields), since it only labels a result.
    pub async fn product(&self) -> (Option<String>, Option<String>) {
        let Ok(overview) = self.read_json("overview").await else { return (None, None) };
        let field = |key: &str| overview.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        (field("product_name"), field("product_version").or_else(|| field("rabbitmq_version")))
    }

    /// `GET /api/{path}` as any JSON value, from the current node or, when it
    /// does not answer within a few seconds, the next ones (without moving
    /// the client's other requests there). For figures read while something
    /// else runs (a result's labels, the broker's view of a bench), where a
    /// field one broker lacks is simply absent.
    pub async fn read_json(&self, path: &str) -> Result<serde_json::Value, ManagementError> {
        let first = self.current.load(Ordering::Relaxed);
        let mut reasons = Vec::new();
        for offset in 0..self.nodes.len() {
            let endpoint = &self.nodes[(first + offset) % self.nodes.len()].endpoint;
            let request = self
                .lenient
                .get(format!("{}/{path}", endpoint.api_url()))
                .basic_auth(&endpoint.username, Some(&endpoint.password));
            let answer = match request.send().await {
                Ok(response) => match response.error_for_status() {
                    Ok(response) => match response.text().await {
                        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}")),
                        Err(error) => Err(error.to_string()),
                    },
                    Err(error) => Err(error.status().map_or_else(|| error.to_string(), |s| format!("HTTP {s}"))),
                },
                Err(error) => Err(transport_words(&error)),
            };
            match answer {
                Ok(value) => return Ok(value),
                Err(reason) => reasons.push(format!("{}: {reason}", endpoint.base_url)),
            }
        }
        Err(ManagementError::Read { action: format!("reading /api/{path}"), reasons: reasons.join("; ") })
    }

    /// The user this client logs in as.
    pub async fn whoami(&self) -> Result<String, ManagementError> {
        let user = on_nodes!(self, Kind::Read, "asking the broker who we are", |c| c.current_user())?;
        Ok(user.name)
    }

    /// The whole definitions document (`GET /api/definitions`), hashes included.
    pub async fn definitions(&self) -> Result<Definitions, ManagementError> {
        let action = "reading the broker's definitions";
        let text = on_nodes!(self, Kind::Read, action, |c| c.export_cluster_wide_definitions_as_string())?;
        serde_json::from_str(&text).map_err(|source| ManagementError::Decode { action: action.to_owned(), source })
    }

    /// The definitions of one vhost (`GET /api/definitions/{vhost}`), with
    /// every entity's `vhost` filled in (the per-vhost export leaves it out).
    pub async fn vhost_definitions(&self, vhost: &str) -> Result<Definitions, ManagementError> {
        let action = format!("reading the definitions of vhost {vhost:?}");
        let text = on_nodes!(self, Kind::Read, action.clone(), |c| c.export_vhost_definitions_as_string(vhost))?;
        let mut d: Definitions =
            serde_json::from_str(&text).map_err(|source| ManagementError::Decode { action, source })?;
        let v = || Some(vhost.to_owned());
        d.queues.iter_mut().for_each(|x| x.vhost = v());
        d.exchanges.iter_mut().for_each(|x| x.vhost = v());
        d.bindings.iter_mut().for_each(|x| x.vhost = v());
        d.policies.iter_mut().for_each(|x| x.vhost = v());
        d.parameters.iter_mut().for_each(|x| x.vhost = v());
        // Users and permissions are not per vhost; they are read separately.
        d.users = None;
        d.vhosts = None;
        d.permissions = None;
        d.topic_permissions = None;
        Ok(d)
    }

    /// Users with their stored hashes, permissions and topic permissions, as
    /// definitions entries (three requests, none of them per vhost).
    pub async fn users_and_permissions(&self) -> Result<Definitions, ManagementError> {
        let (users, permissions, topic_permissions) = tokio::try_join!(
            async { on_nodes!(self, Kind::Read, "listing users", |c| c.list_users()) },
            async { on_nodes!(self, Kind::Read, "listing permissions", |c| c.list_permissions()) },
            async { on_nodes!(self, Kind::Read, "listing topic permissions", |c| c.list_topic_permissions()) },
        )?;
        let users = users
            .into_iter()
            .map(|u| {
                let password_hash = u.password_hash.map(|h| h.as_str().to_owned()).unwrap_or_default();
                // `GET /api/users` leaves out the algorithm; the digest length tells it.
                let hashing_algorithm = password::detect(&password_hash).map(|a| a.as_str().to_owned());
                UserDef {
                    name: u.name,
                    password_hash,
                    password: None,
                    hashing_algorithm,
                    tags: Some(Tags::List(u.tags.0)),
                    limits: None,
                }
            })
            .collect();
        let permissions = permissions
            .into_iter()
            .map(|p| PermissionDef {
                user: p.user,
                vhost: Some(p.vhost),
                configure: p.configure,
                write: p.write,
                read: p.read,
            })
            .collect();
        let topic_permissions = topic_permissions
            .into_iter()
            .map(|p| TopicPermissionDef {
                user: p.user,
                vhost: Some(p.vhost),
                exchange: p.exchange,
                write: p.write,
                read: p.read,
            })
            .collect();
        Ok(Definitions {
            users: Some(users),
            permissions: Some(permissions),
            topic_permissions: Some(topic_permissions),
            ..Definitions::default()
        })
    }

    /// Every vhost with its metadata (3.10's definitions hold only names).
    pub async fn vhosts(&self) -> Result<Vec<VhostDef>, ManagementError> {
        let vhosts = on_nodes!(self, Kind::Read, "listing vhosts", |c| c.list_vhosts())?;
        Ok(vhosts
            .into_iter()
            .map(|v| VhostDef {
                name: v.name,
                description: v.description,
                tags: v.tags.map(|t| Tags::List(t.0)),
                default_queue_type: v.default_queue_type,
                metadata: None,
            })
            .collect())
    }

    /// Message and consumer counts of every queue in `vhost` (one request).
    ///
    /// The management API refreshes these every few seconds, so a queue that
    /// just received messages may still show none; guards add an AMQP check.
    pub async fn queue_stats(&self, vhost: &str) -> Result<QueueStatsMap, ManagementError> {
        let queues =
            on_nodes!(self, Kind::Read, format!("listing queues of vhost {vhost:?}"), |c| c.list_queues_in(vhost))?;
        Ok(queues
            .into_iter()
            .map(|q| {
                let stats = QueueStats { messages: q.message_count, consumers: u64::from(q.consumer_count) };
                ((q.vhost, q.name), stats)
            })
            .collect())
    }

    /// Creates or updates a vhost's metadata (`PUT /api/vhosts/{name}`).
    pub async fn put_vhost(&self, vhost: &VhostDef) -> Result<(), ManagementError> {
        let tags = vhost.tags().map(Tags::to_vec).unwrap_or_default();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let default_queue_type = match vhost.default_queue_type() {
            Some("classic") => Some(ClientQueueType::Classic),
            Some("quorum") => Some(ClientQueueType::Quorum),
            Some("stream") => Some(ClientQueueType::Stream),
            _ => None,
        };
        let params = VirtualHostParams {
            name: &vhost.name,
            description: vhost.description(),
            tags: Some(tags),
            default_queue_type,
            tracing: false,
        };
        let action = format!("declaring vhost {:?}", vhost.name);
        on_nodes!(self, Kind::Write, action, |c| c.create_vhost(&params))
    }

    /// Deletes a vhost and everything in it; an absent vhost is not an error.
    pub async fn delete_vhost(&self, name: &str) -> Result<(), ManagementError> {
        on_nodes!(self, Kind::Write, format!("deleting vhost {name:?}"), |c| c.delete_vhost(name, true))
    }

    /// Deletes a user; an absent user is not an error.
    pub async fn delete_user(&self, name: &str) -> Result<(), ManagementError> {
        on_nodes!(self, Kind::Write, format!("deleting user {name:?}"), |c| c.delete_user(name, true))
    }

    /// Clears a user's permissions in a vhost.
    pub async fn clear_permissions(&self, user: &str, vhost: &str) -> Result<(), ManagementError> {
        let action = format!("clearing permissions of user {user:?} in vhost {vhost:?}");
        on_nodes!(self, Kind::Write, action, |c| c.clear_permissions(vhost, user, true))
    }

    /// Clears all of a user's topic permissions in a vhost (the API has no per-exchange delete).
    pub async fn clear_topic_permissions(&self, user: &str, vhost: &str) -> Result<(), ManagementError> {
        let action = format!("clearing topic permissions of user {user:?} in vhost {vhost:?}");
        on_nodes!(self, Kind::Write, action, |c| c.clear_topic_permissions(vhost, user, true))
    }

    /// Deletes a policy or an operator policy.
    pub async fn delete_policy(&self, vhost: &str, name: &str, operator: bool) -> Result<(), ManagementError> {
        if operator {
            let action = format!("deleting operator policy {name:?} in vhost {vhost:?}");
            on_nodes!(self, Kind::Write, action, |c| c.delete_operator_policy(vhost, name, true))
        } else {
            let action = format!("deleting policy {name:?} in vhost {vhost:?}");
            on_nodes!(self, Kind::Write, action, |c| c.delete_policy(vhost, name, true))
        }
    }

    /// Deletes an exchange (and with it every binding that touches it).
    pub async fn delete_exchange(&self, vhost: &str, name: &str) -> Result<(), ManagementError> {
        let action = format!("deleting exchange {name:?} in vhost {vhost:?}");
        on_nodes!(self, Kind::Write, action, |c| c.delete_exchange(vhost, name, true))
    }

    /// Deletes a queue, its messages and its bindings.
    pub async fn delete_queue(&self, vhost: &str, name: &str) -> Result<(), ManagementError> {
        let action = format!("deleting queue {name:?} in vhost {vhost:?}");
        on_nodes!(self, Kind::Write, action, |c| c.delete_queue(vhost, name, true))
    }

    /// Deletes one binding of `vhost` (looked up by all its fields to find its properties key).
    pub async fn delete_binding(&self, vhost: &str, binding: &BindingDef) -> Result<(), ManagementError> {
        let arguments = if binding.arguments.is_empty() {
            None
        } else {
            Some(binding.arguments.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        let destination_type = match binding.destination_type.as_str() {
            "exchange" => BindingDestinationType::Exchange,
            _ => BindingDestinationType::Queue,
        };
        let params = BindingDeletionParams {
            virtual_host: vhost,
            source: &binding.source,
            destination: &binding.destination,
            destination_type,
            routing_key: &binding.routing_key,
            arguments,
        };
        let action = format!(
            "deleting binding {} -> {} {} [{}] in vhost {vhost:?}",
            binding.source, binding.destination_type, binding.destination, binding.routing_key
        );
        on_nodes!(self, Kind::Write, action, |c| c.delete_binding(&params, true))
    }

    /// Imports a definitions document (`POST /api/definitions`): creates what
    /// is missing, overwrites users, permissions and policies, leaves existing
    /// exchanges and queues as they are.
    pub async fn import(&self, what: &str, definitions: &Definitions) -> Result<(), ManagementError> {
        let action = format!("importing {what}");
        let value = serde_json::to_value(definitions)
            .map_err(|source| ManagementError::Decode { action: action.clone(), source })?;
        on_nodes!(self, Kind::Write, action, |c| c.import_cluster_wide_definitions(value.clone()))
    }
}
