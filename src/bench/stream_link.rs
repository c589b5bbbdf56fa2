//! A connection over RabbitMQ's stream protocol (the `rabbitmq_stream`
//! plugin, port 5552 by default) for a `protocol: stream` group's actor,
//! through the `rabbitmq-stream-client` crate, and the thread it runs on.
//!
//! The client spawns its reader and its batching writer on the runtime it
//! is built in, so each stream actor gets a single-threaded runtime on a
//! thread of its own ([`STREAM_THREAD`]), as an AMQP actor shares its
//! connection's I/O thread ([`super::link`]): the client's tasks and the
//! actor hand messages over without waking another thread.
//!
//! The stream protocol has its own port but the broker's hosts, users,
//! passwords and vhost: [`StreamEndpoint`] takes them from the AMQP URLs. The
//! client connects to the first node that answers, in the URLs' order, then
//! to the stream's leader (producers) or a replica (consumers) as the broker
//! advertises them. A stream actor whose connection drops connects again
//! through [`StreamReconnect`] (see the actors).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rabbitmq_stream_client::error::{ClientError, ConsumerCreateError, ProducerCreateError};
use rabbitmq_stream_client::types::{Message, OffsetSpecification};
use rabbitmq_stream_client::{Consumer, Environment, NoDedup, OnClosed, Producer};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::bench::link::{BACKOFF_FIRST, BACKOFF_MAX, RECONNECT_TIMEOUT, ReconnectError};
use crate::bench::scenario::StreamOffset;
use crate::target::{Node, redact_url};

/// The name of the thread each stream actor and its client run on.
pub const STREAM_THREAD: &str = "warren-stream";

/// Why a stream connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StreamLinkError {
    /// The AMQP URL the stream endpoint is taken from does not read.
    #[error("{reason}")]
    Url {
        /// Why, the URL's password redacted.
        reason: String,
    },
    /// `amqps://`: warren speaks the stream protocol without TLS only.
    #[error("the broker URL {url} uses TLS; warren speaks the stream protocol without TLS only")]
    Tls {
        /// The URL, password redacted.
        url: String,
    },
    /// The thread (or its runtime) could not start.
    #[error("starting the thread of {name}")]
    Thread {
        /// The actor.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `stream_port` lists a number of ports that is neither one nor the number of broker URLs.
    #[error(
        "stream_port lists {ports} ports for {urls} broker URLs: give one port for every node, or one per URL in their order"
    )]
    Ports {
        /// Ports given.
        ports: usize,
        /// Broker URLs given.
        urls: usize,
    },
    /// No node answered on its stream port, or each refused the login.
    #[error("connecting to the stream port at {tried} (is the rabbitmq_stream plugin enabled?)")]
    Connect {
        /// Each `host:port` tried, in order.
        tried: String,
        /// The client's error, from the last one.
        #[source]
        source: ClientError,
    },
    /// The broker refused the producer.
    #[error("declaring a producer on stream `{stream}`")]
    Producer {
        /// The stream.
        stream: String,
        /// The client's error.
        #[source]
        source: ProducerCreateError,
    },
    /// The broker refused the subscription.
    #[error("subscribing to stream `{stream}`")]
    Consumer {
        /// The stream.
        stream: String,
        /// The client's error.
        #[source]
        source: ConsumerCreateError,
    },
    /// The link's thread ended before the connection was made.
    #[error("the thread of {name} ended while it connected")]
    Ended {
        /// The actor.
        name: String,
    },
}

/// Where and as whom to speak the stream protocol: each node, in the broker URLs' order.
#[derive(Clone)]
pub struct StreamEndpoint {
    nodes: Vec<StreamNode>,
}

/// One node's stream port and login.
#[derive(Clone)]
struct StreamNode {
    host: String,
    port: u16,
    user: String,
    password: String,
    vhost: String,
}

impl std::fmt::Debug for StreamEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        let nodes: Vec<String> =
            self.nodes.iter().map(|n| format!("{}@{}:{} vhost {}", n.user, n.host, n.port, n.vhost)).collect();
        write!(f, "{}", nodes.join(", "))
    }
}

impl StreamEndpoint {
    /// The stream port on the host of each of `amqp_urls`, with its user, password and vhost
    /// (`guest`/`guest` and `/` when the URL names none, as for AMQP): `ports` holds one port for
    /// every node or one per URL.
    pub fn of_nodes(amqp_urls: &[String], ports: &[u16]) -> Result<StreamEndpoint, StreamLinkError> {
        if amqp_urls.is_empty() {
            return Err(StreamLinkError::Ports { ports: ports.len(), urls: 0 });
        }
        let port_of = |index: usize| match ports {
            [port] => Ok(*port),
            _ if ports.len() == amqp_urls.len() => Ok(ports[index]),
            _ => Err(StreamLinkError::Ports { ports: ports.len(), urls: amqp_urls.len() }),
        };
        let nodes = amqp_urls
            .iter()
            .enumerate()
            .map(|(index, url)| {
                let node = Node::parse(url).map_err(|error| StreamLinkError::Url { reason: format!("{error:#}") })?;
                if node.tls {
                    return Err(StreamLinkError::Tls { url: redact_url(url) });
                }
                // A socket address wants an IPv6 literal bare.
                let host = node.host.trim_start_matches('[').trim_end_matches(']').to_owned();
                let port = port_of(index)?;
                Ok(StreamNode { host, port, user: node.user, password: node.password, vhost: node.vhost })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Nodes on one host behind one port (a single port for URLs of one host) are tried once.
        let mut unique: Vec<StreamNode> = Vec::with_capacity(nodes.len());
        for node in nodes {
            if !unique.iter().any(|u| u.host == node.host && u.port == node.port) {
                unique.push(node);
            }
        }
        Ok(StreamEndpoint { nodes: unique })
    }

    /// A connection to the first node that answers and lets the user in, and that node's
    /// `host:port`.
    async fn environment(&self, name: &str) -> Result<(Environment, String), StreamLinkError> {
        let mut last = None;
        for node in &self.nodes {
            let connecting = Environment::builder()
                .host(&node.host)
                .port(node.port)
                .username(&node.user)
                .password(&node.password)
                .virtual_host(&node.vhost)
                .client_provided_name(name)
                .build()
                .await;
            match connecting {
                Ok(environment) => return Ok((environment, format!("{}:{}", node.host, node.port))),
                Err(error) => last = Some(error),
            }
        }
        match last {
            Some(source) => Err(StreamLinkError::Connect { tried: self.describe(), source }),
            None => Err(StreamLinkError::Ports { ports: 0, urls: 0 }),
        }
    }

    /// Each node's `host:port`, in the order they are tried.
    pub fn describe(&self) -> String {
        self.nodes.iter().map(|n| format!("{}:{}", n.host, n.port)).collect::<Vec<_>>().join(", ")
    }

    /// Connects the actor `name` and declares a producer on `stream`, handing it up to
    /// `batch_size` messages per write. On the thread the producer then runs on.
    pub async fn open_producer(
        &self,
        name: &str,
        stream: &str,
        batch_size: usize,
    ) -> Result<StreamProducer, StreamLinkError> {
        let (environment, node) = self.environment(name).await?;
        let closed = CancellationToken::new();
        let producer = environment
            .producer()
            .client_provided_name(name)
            .batch_size(batch_size.max(1))
            .on_closed(Box::new(ClosedSignal(closed.clone())))
            .build(stream)
            .await
            .map_err(|source| StreamLinkError::Producer { stream: stream.to_owned(), source })?;
        Ok(StreamProducer { producer, closed, node })
    }

    /// Connects the actor `name` and subscribes to `stream` from `offset`. On the thread the
    /// consumer then runs on.
    pub async fn open_consumer(
        &self,
        name: &str,
        stream: &str,
        offset: StreamOffset,
    ) -> Result<StreamConsumer, StreamLinkError> {
        let offset = match offset {
            StreamOffset::First => OffsetSpecification::First,
            StreamOffset::Last => OffsetSpecification::Last,
            StreamOffset::Next => OffsetSpecification::Next,
            StreamOffset::At(offset) => OffsetSpecification::Offset(offset),
        };
        let (environment, node) = self.environment(name).await?;
        let consumer = environment
            .consumer()
            .client_provided_name(name)
            .offset(offset)
            .build(stream)
            .await
            .map_err(|source| StreamLinkError::Consumer { stream: stream.to_owned(), source })?;
        Ok(StreamConsumer { consumer, node })
    }
}

/// What a stream actor needs to connect again after its connection dropped.
#[derive(Clone, Debug)]
pub struct StreamReconnect {
    /// The nodes to try.
    pub endpoint: StreamEndpoint,
    /// The client-provided connection name, e.g. `warren bench producer p#0`.
    pub name: String,
    /// How long the actor tries before the run fails.
    pub give_up_after: Duration,
}

impl StreamReconnect {
    /// Calls `open` until it succeeds, pausing a little longer after each failure (from 100 ms up
    /// to 1 s, each try bounded), until `give_up_after` passed or `stop` fired.
    pub async fn retry<T, F, Fut>(&self, stop: &CancellationToken, open: F) -> Result<T, ReconnectError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StreamLinkError>>,
    {
        let deadline = tokio::time::Instant::now() + self.give_up_after;
        let mut pause = BACKOFF_FIRST;
        loop {
            let error = tokio::select! {
                attempt = tokio::time::timeout(RECONNECT_TIMEOUT, open()) => match attempt {
                    Ok(Ok(ready)) => return Ok(ready),
                    Ok(Err(error)) => format!("{:#}", anyhow::Error::new(error)),
                    Err(_) => format!("no answer within {}s", RECONNECT_TIMEOUT.as_secs()),
                },
                _ = stop.cancelled() => return Err(ReconnectError::Stopped),
            };
            tracing::info!("{}: {error}", self.name);
            if tokio::time::Instant::now() + pause >= deadline {
                let nodes = self.endpoint.describe();
                return Err(ReconnectError::GaveUp { give_up_after: self.give_up_after, nodes, last: error });
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return Err(ReconnectError::Stopped),
            }
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }
}

/// A stream producer, and the token its connection cancels when it closes.
pub struct StreamProducer {
    /// The client's producer.
    pub producer: Producer<NoDedup>,
    /// Cancelled when the producer's connection closed: confirms still awaited will not come.
    pub closed: CancellationToken,
    /// The stream port it connected through first (`host:port`).
    pub node: String,
}

/// A stream consumer, subscribed.
pub struct StreamConsumer {
    /// The client's consumer.
    pub consumer: Consumer,
    /// The stream port it connected through first (`host:port`).
    pub node: String,
}

/// Tells [`StreamProducer::closed`] the connection closed.
struct ClosedSignal(CancellationToken);

impl OnClosed for ClosedSignal {
    fn on_closed<'s, 'f>(
        &'s self,
        _unconfirmed: Vec<Message>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'f>>
    where
        's: 'f,
        Self: 'f,
    {
        self.0.cancel();
        Box::pin(std::future::ready(()))
    }
}

/// A stream actor's thread and runtime; the runtime stops when this is dropped.
pub struct StreamLink {
    name: String,
    handle: Handle,
    _stop: Arc<DropGuard>,
}

impl StreamLink {
    /// Starts the thread of the actor `name` (e.g. `warren bench producer p#0`).
    pub fn start(name: String) -> Result<StreamLink, StreamLinkError> {
        let thread_error = |source| StreamLinkError::Thread { name: name.clone(), source };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(thread_error)?;
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name(STREAM_THREAD.into())
            .spawn(move || runtime.block_on(stopped.cancelled()))
            .map_err(thread_error)?;
        Ok(StreamLink { name, handle, _stop: Arc::new(stop.drop_guard()) })
    }

    /// Runs `actor` on the link's thread.
    pub fn spawn<F>(&self, actor: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(actor)
    }

    /// Connects a producer to `stream`, on the link's thread (where the client's tasks then run).
    pub async fn producer(
        &self,
        endpoint: &StreamEndpoint,
        stream: &str,
        batch_size: usize,
    ) -> Result<StreamProducer, StreamLinkError> {
        let (endpoint, stream, name) = (endpoint.clone(), stream.to_owned(), self.name.clone());
        let connecting = async move { endpoint.open_producer(&name, &stream, batch_size).await };
        self.handle.spawn(connecting).await.map_err(|_| StreamLinkError::Ended { name: self.name.clone() })?
    }

    /// Subscribes to `stream` from `offset`, on the link's thread.
    pub async fn consumer(
        &self,
        endpoint: &StreamEndpoint,
        stream: &str,
        offset: StreamOffset,
    ) -> Result<StreamConsumer, StreamLinkError> {
        let (endpoint, stream, name) = (endpoint.clone(), stream.to_owned(), self.name.clone());
        let connecting = async move { endpoint.open_consumer(&name, &stream, offset).await };
        self.handle.spawn(connecting).await.map_err(|_| StreamLinkError::Ended { name: self.name.clone() })?
    }

    /// The client-provided name of the link's connections.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(url: &str, port: u16) -> Result<StreamNode, StreamLinkError> {
        let mut endpoint = StreamEndpoint::of_nodes(&[url.to_owned()], &[port])?;
        Ok(endpoint.nodes.remove(0))
    }

    #[test]
    fn the_endpoint_comes_from_the_amqp_url_with_the_stream_port() {
        let node = one("amqp://bench:s%40cret@127.0.0.1:5681/bench%2F1", 5561).expect("an endpoint");
        assert_eq!(
            (node.host.as_str(), node.port, node.user.as_str(), node.password.as_str()),
            ("127.0.0.1", 5561, "bench", "s@cret")
        );
        assert_eq!(node.vhost, "bench/1");
        let endpoint = StreamEndpoint { nodes: vec![node] };
        assert!(!format!("{endpoint:?}").contains("s@cret"), "no password in debug output");
        let default = one("amqp://localhost", 5552).expect("an endpoint");
        assert_eq!((default.user.as_str(), default.password.as_str(), default.vhost.as_str()), ("guest", "guest", "/"));
        assert_eq!(one("amqp://h/%2f", 5552).map(|e| e.vhost).ok().as_deref(), Some("/"));
        assert!(matches!(one("amqps://h/", 5552), Err(StreamLinkError::Tls { .. })));
    }

    #[test]
    fn each_node_gets_the_one_port_or_its_own() {
        let urls: Vec<String> = (1..=3).map(|n| format!("amqp://guest:guest@node{n}:568{n}/%2f")).collect();
        let ports = |endpoint: StreamEndpoint| -> Vec<(String, u16)> {
            endpoint.nodes.into_iter().map(|n| (n.host, n.port)).collect()
        };
        let same = StreamEndpoint::of_nodes(&urls, &[5552]).expect("one port for all");
        assert_eq!(ports(same), [("node1".into(), 5552), ("node2".into(), 5552), ("node3".into(), 5552)]);
        let each = StreamEndpoint::of_nodes(&urls, &[5561, 5562, 5563]).expect("a port each");
        assert_eq!(ports(each), [("node1".into(), 5561), ("node2".into(), 5562), ("node3".into(), 5563)]);
        let local: Vec<String> = (1..=3).map(|n| format!("amqp://127.0.0.1:568{n}")).collect();
        let once = StreamEndpoint::of_nodes(&local, &[5552]).expect("one port for all");
        assert_eq!(ports(once), [("127.0.0.1".into(), 5552)], "one address is tried once");
        let error = StreamEndpoint::of_nodes(&urls, &[5561, 5562]).expect_err("two ports for three nodes");
        assert_eq!(
            error.to_string(),
            "stream_port lists 2 ports for 3 broker URLs: give one port for every node, or one per URL in their order"
        );
    }
}
