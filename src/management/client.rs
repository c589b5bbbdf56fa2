//! A management API client for warren's needs: read the whole state in a few
//! bulk requests, write one entity or one definitions import at a time.
//!
//! Every request goes through `rabbitmq_http_client`'s async client with
//! automatic retries off: a write retried after a timeout could apply twice.

use std::collections::BTreeMap;
use std::sync::Once;
use std::time::Duration;

use rabbitmq_http_client::api::{Client, ClientBuilder};
use rabbitmq_http_client::commons::{BindingDestinationType, QueueType as ClientQueueType, RetrySettings};
use rabbitmq_http_client::error::{EndpointValidationError, HttpClientError};
use rabbitmq_http_client::requests::{BindingDeletionParams, VirtualHostParams};

use warren_definitions::password;
use warren_definitions::{Definitions, PermissionDef, Tags, TopicPermissionDef, UserDef, VhostDef};

use crate::target::Endpoint;
use crate::topology::model::{Binding, DestinationType, QueueType, Vhost};

/// How long one request may take; a definitions import of tens of thousands
/// of entities takes a while on a busy broker.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A connected management API client.
pub struct Management {
    client: Client<String, String, String>,
    url: String,
    endpoint: Endpoint,
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Management").field("url", &self.url).finish_non_exhaustive()
    }
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
            // The transport's own words ("Connection refused", a TLS alert)
            // sit at the bottom of reqwest's chain; its top only repeats the URL.
            HttpClientError::RequestError { error, .. } => {
                let mut cause: &dyn std::error::Error = error;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                Some(cause.to_string())
            }
            _ => None,
        };
        ManagementError::Request { action, reason, source: Box::new(source) }
    }
}

impl Management {
    /// A client for `endpoint`; nothing is sent until the first call.
    pub fn new(endpoint: &Endpoint) -> Result<Management, ManagementError> {
        install_crypto_provider();
        let url = endpoint.base_url.clone();
        let client = ClientBuilder::new()
            .with_endpoint(endpoint.api_url())
            .with_basic_auth_credentials(endpoint.username.clone(), endpoint.password.clone())
            .with_retry_settings(RetrySettings { max_attempts: 0, delay_ms: 0 })
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_request_timeout(REQUEST_TIMEOUT)
            .with_redirect_policy(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ManagementError::Client { url: url.clone(), source })?;
        Ok(Management { client, url, endpoint: endpoint.clone() })
    }

    /// The management API's base URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The broker's product name and version from `GET /api/overview`, when
    /// it answers within a few seconds. Read leniently (any JSON object
    /// with these fields), since it only labels a result.
    pub async fn product(&self) -> (Option<String>, Option<String>) {
        let request = async {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
            let response = client
                .get(format!("{}/overview", self.endpoint.api_url()))
                .basic_auth(&self.endpoint.username, Some(&self.endpoint.password))
                .send()
                .await
                .ok()?;
            let text = response.error_for_status().ok()?.text().await.ok()?;
            serde_json::from_str::<serde_json::Value>(&text).ok()
        };
        let Some(overview) = request.await else { return (None, None) };
        let field = |key: &str| overview.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        (field("product_name"), field("product_version").or_else(|| field("rabbitmq_version")))
    }

    /// The user this client logs in as.
    pub async fn whoami(&self) -> Result<String, ManagementError> {
        let user = self.client.current_user().await.map_err(request_error("asking the broker who we are"))?;
        Ok(user.name)
    }

    /// The whole definitions document (`GET /api/definitions`), hashes included.
    pub async fn definitions(&self) -> Result<Definitions, ManagementError> {
        let action = "reading the broker's definitions";
        let text = self.client.export_cluster_wide_definitions_as_string().await.map_err(request_error(action))?;
        serde_json::from_str(&text).map_err(|source| ManagementError::Decode { action: action.to_owned(), source })
    }

    /// The definitions of one vhost (`GET /api/definitions/{vhost}`), with
    /// every entity's `vhost` filled in (the per-vhost export leaves it out).
    pub async fn vhost_definitions(&self, vhost: &str) -> Result<Definitions, ManagementError> {
        let action = format!("reading the definitions of vhost {vhost:?}");
        let text =
            self.client.export_vhost_definitions_as_string(vhost).await.map_err(request_error(action.clone()))?;
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
            async { self.client.list_users().await.map_err(request_error("listing users")) },
            async { self.client.list_permissions().await.map_err(request_error("listing permissions")) },
            async { self.client.list_topic_permissions().await.map_err(request_error("listing topic permissions")) },
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
        let vhosts = self.client.list_vhosts().await.map_err(request_error("listing vhosts"))?;
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
        let queues = self
            .client
            .list_queues_in(vhost)
            .await
            .map_err(request_error(format!("listing queues of vhost {vhost:?}")))?;
        Ok(queues
            .into_iter()
            .map(|q| {
                let stats = QueueStats { messages: q.message_count, consumers: u64::from(q.consumer_count) };
                ((q.vhost, q.name), stats)
            })
            .collect())
    }

    /// Creates or updates a vhost's metadata (`PUT /api/vhosts/{name}`).
    pub async fn put_vhost(&self, name: &str, vhost: &Vhost) -> Result<(), ManagementError> {
        let tags: Vec<&str> = vhost.tags.iter().map(String::as_str).collect();
        let params = VirtualHostParams {
            name,
            description: vhost.description.as_deref(),
            tags: Some(tags),
            default_queue_type: vhost.default_queue_type.map(|t| match t {
                QueueType::Classic => ClientQueueType::Classic,
                QueueType::Quorum => ClientQueueType::Quorum,
                QueueType::Stream => ClientQueueType::Stream,
            }),
            tracing: false,
        };
        self.client.create_vhost(&params).await.map_err(request_error(format!("declaring vhost {name:?}")))
    }

    /// Deletes a vhost and everything in it; an absent vhost is not an error.
    pub async fn delete_vhost(&self, name: &str) -> Result<(), ManagementError> {
        self.client.delete_vhost(name, true).await.map_err(request_error(format!("deleting vhost {name:?}")))
    }

    /// Deletes a user; an absent user is not an error.
    pub async fn delete_user(&self, name: &str) -> Result<(), ManagementError> {
        self.client.delete_user(name, true).await.map_err(request_error(format!("deleting user {name:?}")))
    }

    /// Clears a user's permissions in a vhost.
    pub async fn clear_permissions(&self, user: &str, vhost: &str) -> Result<(), ManagementError> {
        self.client
            .clear_permissions(vhost, user, true)
            .await
            .map_err(request_error(format!("clearing permissions of user {user:?} in vhost {vhost:?}")))
    }

    /// Clears all of a user's topic permissions in a vhost (the API has no per-exchange delete).
    pub async fn clear_topic_permissions(&self, user: &str, vhost: &str) -> Result<(), ManagementError> {
        self.client
            .clear_topic_permissions(vhost, user, true)
            .await
            .map_err(request_error(format!("clearing topic permissions of user {user:?} in vhost {vhost:?}")))
    }

    /// Deletes a policy or an operator policy.
    pub async fn delete_policy(&self, vhost: &str, name: &str, operator: bool) -> Result<(), ManagementError> {
        if operator {
            self.client
                .delete_operator_policy(vhost, name, true)
                .await
                .map_err(request_error(format!("deleting operator policy {name:?} in vhost {vhost:?}")))
        } else {
            self.client
                .delete_policy(vhost, name, true)
                .await
                .map_err(request_error(format!("deleting policy {name:?} in vhost {vhost:?}")))
        }
    }

    /// Deletes an exchange (and with it every binding that touches it).
    pub async fn delete_exchange(&self, vhost: &str, name: &str) -> Result<(), ManagementError> {
        self.client
            .delete_exchange(vhost, name, true)
            .await
            .map_err(request_error(format!("deleting exchange {name:?} in vhost {vhost:?}")))
    }

    /// Deletes a queue, its messages and its bindings.
    pub async fn delete_queue(&self, vhost: &str, name: &str) -> Result<(), ManagementError> {
        self.client
            .delete_queue(vhost, name, true)
            .await
            .map_err(request_error(format!("deleting queue {name:?} in vhost {vhost:?}")))
    }

    /// Deletes one binding (looked up by all its fields to find its properties key).
    pub async fn delete_binding(&self, vhost: &str, binding: &Binding) -> Result<(), ManagementError> {
        let arguments = if binding.arguments.is_empty() {
            None
        } else {
            Some(binding.arguments.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        let params = BindingDeletionParams {
            virtual_host: vhost,
            source: &binding.source,
            destination: &binding.destination,
            destination_type: match binding.destination_type {
                DestinationType::Queue => BindingDestinationType::Queue,
                DestinationType::Exchange => BindingDestinationType::Exchange,
            },
            routing_key: &binding.routing_key,
            arguments,
        };
        self.client.delete_binding(&params, true).await.map_err(request_error(format!(
            "deleting binding {} -> {} {} [{}] in vhost {vhost:?}",
            binding.source,
            binding.destination_type.as_str(),
            binding.destination,
            binding.routing_key
        )))
    }

    /// Imports a definitions document (`POST /api/definitions`): creates what
    /// is missing, overwrites users, permissions and policies, leaves existing
    /// exchanges and queues as they are.
    pub async fn import(&self, what: &str, definitions: &Definitions) -> Result<(), ManagementError> {
        let action = format!("importing {what}");
        let value = serde_json::to_value(definitions)
            .map_err(|source| ManagementError::Decode { action: action.clone(), source })?;
        self.client.import_cluster_wide_definitions(value).await.map_err(request_error(action))
    }
}
