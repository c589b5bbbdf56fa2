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
//! The stream protocol has its own port but the broker's host, user,
//! password and vhost: [`StreamEndpoint`] takes them from the AMQP URL. The
//! client connects there first, then to the stream's leader (producers) or a
//! replica (consumers) as the broker advertises them. There is no
//! reconnection: a stream actor whose connection drops ends with an error.

use std::future::Future;
use std::sync::Arc;

use rabbitmq_stream_client::error::{ClientError, ConsumerCreateError, ProducerCreateError};
use rabbitmq_stream_client::types::{Message, OffsetSpecification};
use rabbitmq_stream_client::{Consumer, Environment, NoDedup, OnClosed, Producer};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

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
    /// Nothing answered on the stream port, or it refused the login.
    #[error("connecting to the stream port {host}:{port} (is the rabbitmq_stream plugin enabled?)")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The client's error.
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

/// Where and as whom to speak the stream protocol.
#[derive(Clone)]
pub struct StreamEndpoint {
    host: String,
    port: u16,
    user: String,
    password: String,
    vhost: String,
}

impl std::fmt::Debug for StreamEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "{}@{}:{} vhost {}", self.user, self.host, self.port, self.vhost)
    }
}

impl StreamEndpoint {
    /// The stream port `port` on the host of `amqp_url`, with its user, password and vhost
    /// (`guest`/`guest` and `/` when the URL names none, as for AMQP).
    pub fn from_amqp_url(amqp_url: &str, port: u16) -> Result<StreamEndpoint, StreamLinkError> {
        let node = Node::parse(amqp_url).map_err(|error| StreamLinkError::Url { reason: format!("{error:#}") })?;
        if node.tls {
            return Err(StreamLinkError::Tls { url: redact_url(amqp_url) });
        }
        // A socket address wants an IPv6 literal bare.
        let host = node.host.trim_start_matches('[').trim_end_matches(']').to_owned();
        Ok(StreamEndpoint { host, port, user: node.user, password: node.password, vhost: node.vhost })
    }

    async fn environment(&self, name: &str) -> Result<Environment, StreamLinkError> {
        Environment::builder()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(&self.password)
            .virtual_host(&self.vhost)
            .client_provided_name(name)
            .build()
            .await
            .map_err(|source| StreamLinkError::Connect { host: self.host.clone(), port: self.port, source })
    }
}

/// A stream producer, and the token its connection cancels when it closes.
pub struct StreamProducer {
    /// The client's producer.
    pub producer: Producer<NoDedup>,
    /// Cancelled when the producer's connection closed: confirms still awaited will not come.
    pub closed: CancellationToken,
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
        let connecting = async move {
            let environment = endpoint.environment(&name).await?;
            let closed = CancellationToken::new();
            let producer = environment
                .producer()
                .client_provided_name(&name)
                .batch_size(batch_size.max(1))
                .on_closed(Box::new(ClosedSignal(closed.clone())))
                .build(&stream)
                .await
                .map_err(|source| StreamLinkError::Producer { stream: stream.clone(), source })?;
            Ok(StreamProducer { producer, closed })
        };
        self.handle.spawn(connecting).await.map_err(|_| StreamLinkError::Ended { name: self.name.clone() })?
    }

    /// Subscribes to `stream` from `offset`, on the link's thread.
    pub async fn consumer(
        &self,
        endpoint: &StreamEndpoint,
        stream: &str,
        offset: StreamOffset,
    ) -> Result<Consumer, StreamLinkError> {
        let (endpoint, stream, name) = (endpoint.clone(), stream.to_owned(), self.name.clone());
        let offset = match offset {
            StreamOffset::First => OffsetSpecification::First,
            StreamOffset::Last => OffsetSpecification::Last,
            StreamOffset::Next => OffsetSpecification::Next,
            StreamOffset::At(offset) => OffsetSpecification::Offset(offset),
        };
        let connecting = async move {
            let environment = endpoint.environment(&name).await?;
            environment
                .consumer()
                .client_provided_name(&name)
                .offset(offset)
                .build(&stream)
                .await
                .map_err(|source| StreamLinkError::Consumer { stream: stream.clone(), source })
        };
        self.handle.spawn(connecting).await.map_err(|_| StreamLinkError::Ended { name: self.name.clone() })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_amqp_url_with_the_stream_port() {
        let endpoint =
            StreamEndpoint::from_amqp_url("amqp://bench:s%40cret@127.0.0.1:5681/bench%2F1", 5561).expect("an endpoint");
        assert_eq!(
            (endpoint.host.as_str(), endpoint.port, endpoint.user.as_str(), endpoint.password.as_str()),
            ("127.0.0.1", 5561, "bench", "s@cret")
        );
        assert_eq!(endpoint.vhost, "bench/1");
        assert!(!format!("{endpoint:?}").contains("s@cret"), "no password in debug output");
        let default = StreamEndpoint::from_amqp_url("amqp://localhost", 5552).expect("an endpoint");
        assert_eq!((default.user.as_str(), default.password.as_str(), default.vhost.as_str()), ("guest", "guest", "/"));
        assert_eq!(StreamEndpoint::from_amqp_url("amqp://h/%2f", 5552).map(|e| e.vhost).ok().as_deref(), Some("/"));
        assert!(matches!(StreamEndpoint::from_amqp_url("amqps://h/", 5552), Err(StreamLinkError::Tls { .. })));
    }
}
