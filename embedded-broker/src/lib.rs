//! `warren-broker`: an embeddable AMQP 0-9-1 broker with the subset of the
//! RabbitMQ management HTTP API that `warren apply` and `warren export` use.
//!
//! A library first: [`Broker::start`] binds its listeners and returns a
//! [`Broker`] handle with the bound addresses and a graceful shutdown.
//!
//! # Layout
//!
//! - [`state`]: the model (vhosts, users, permissions, exchanges, queues with their
//!   messages and consumers, bindings, policies) shared by both protocols.
//! - `server.rs`: the AMQP accept loop and the periodic sweep.
//! - `connection/`: one task per client connection — `codec.rs` (frames),
//!   `handshake.rs`, `declare.rs` (exchange/queue methods), `basic.rs`
//!   (publish, consume, ack, confirms, tx), `channel.rs` (per-channel state).
//! - [`definitions`]: RabbitMQ's definitions document (crate `warren-definitions`)
//!   exported from and imported into the state, for the management API and the
//!   data directory alike.
//! - [`management`]: the management HTTP API; [`persist`]: the data directory.
//!
//! See `ARCHITECTURE.md` for tasks and channels.

pub mod connection;
pub mod definitions;
pub mod management;
pub mod persist;
mod server;
pub mod state;
pub mod store;
mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The RabbitMQ release whose management API shapes and definitions this broker reproduces,
/// and the version the AMQP handshake announces (as product `RabbitMQ`) for clients that
/// branch on it.
pub(crate) const COMPATIBLE_RABBITMQ_VERSION: &str = "3.10.8";
/// What this server calls itself where it names itself (`product_name`).
pub(crate) const PRODUCT_NAME: &str = "warren-broker";

/// How to start a broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address for AMQP 0-9-1 connections; port 0 picks a free port.
    pub amqp_addr: SocketAddr,
    /// Address for the management HTTP API; port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// Where durable definitions are kept across restarts; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Bytes of queued messages in memory past which publishing connections are blocked (with a
    /// data directory, queues move messages to disk from half of it on).
    pub memory_limit: usize,
    /// With a data directory: free bytes on its disk below which publishers are blocked
    /// (RabbitMQ's `disk_free_limit`, 50 MB by default).
    pub disk_free_limit: u64,
    /// With a data directory: the file system the message store uses (`None`: the real one; tests
    /// put the power-cut simulation here).
    pub storage: Option<Arc<dyn store::storage::Storage>>,
    /// With a data directory: bytes at which a message store segment file is closed.
    pub segment_size: u64,
    /// Protocol limits offered to clients.
    pub limits: ServerLimits,
}

/// Limits offered in `connection.tune` and enforced per connection.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Highest channel number (RabbitMQ: 2047).
    pub channel_max: u16,
    /// Largest frame in bytes (RabbitMQ: 131072).
    pub frame_max: u32,
    /// Heartbeat interval proposed, seconds (RabbitMQ: 60).
    pub heartbeat: u16,
    /// Concurrent connections accepted; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self { channel_max: 2047, frame_max: 131_072, heartbeat: 60, max_connections: 10_000 }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            amqp_addr: loopback,
            http_addr: loopback,
            data_dir: None,
            memory_limit: 1 << 30,
            disk_free_limit: 50_000_000,
            storage: None,
            segment_size: store::SEGMENT_SIZE,
            limits: ServerLimits::default(),
        }
    }
}

/// Why a broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind its address.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be opened or read.
    #[error("cannot use the data directory")]
    DataDir(#[source] persist::PersistError),
    /// The message store in the data directory could not be opened.
    #[error("cannot open the message store")]
    Messages(#[source] store::StoreError),
}

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    amqp_addr: SocketAddr,
    http_addr: SocketAddr,
    state: state::State,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Broker {
    /// Binds the listeners and starts serving on the current tokio runtime.
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
        };
        let amqp = bind(config.amqp_addr).await?;
        let http = bind(config.http_addr).await?;
        let amqp_addr = amqp.local_addr().map_err(|source| StartError::Bind { addr: config.amqp_addr, source })?;
        let http_addr = http.local_addr().map_err(|source| StartError::Bind { addr: config.http_addr, source })?;
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let state = match &config.data_dir {
            Some(dir) => {
                let store = persist::Store::open(dir).map_err(StartError::DataDir)?;
                let storage = config.storage.clone().unwrap_or_else(|| Arc::new(store::storage::DiskStorage));
                let messages = store::MessageStore::open(storage, &dir.join("messages"), config.segment_size)
                    .map_err(StartError::Messages)?;
                let started = std::time::Instant::now();
                let state = persist::initial_state_with(
                    &store,
                    config.memory_limit,
                    Some((Arc::new(messages), config.disk_free_limit)),
                )
                .map_err(StartError::DataDir)?;
                tracing::info!(elapsed = ?started.elapsed(), "data directory loaded");
                let saver = persist::spawn_saver(store, state.clone(), shutdown.clone());
                tasks.spawn(async move {
                    let _ = saver.await;
                });
                state
            }
            None => {
                tracing::warn!(
                    "no data directory: queued messages are kept in memory only and lost when the broker stops, \
                     persistent or not; publishers are blocked above the memory limit"
                );
                state::State::new(config.memory_limit)
            }
        };
        let limits = Arc::new(config.limits.clone());
        tasks.spawn(server::serve(amqp, state.clone(), limits, shutdown.clone(), tasks.clone()));
        tasks.spawn(server::sweep(state.clone(), Duration::from_millis(100), shutdown.clone()));
        {
            let state = state.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                if let Err(e) = management::serve(http, amqp_addr, state, shutdown).await {
                    tracing::error!("management API stopped: {e}");
                }
            });
        }
        Ok(Broker { amqp_addr, http_addr, state, shutdown, tasks })
    }

    /// The bound AMQP address.
    pub fn amqp_addr(&self) -> SocketAddr {
        self.amqp_addr
    }

    /// The bound management HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The broker's state, for embedding programs and tests.
    pub fn state(&self) -> &state::State {
        &self.state
    }

    /// Stops accepting connections, closes the open ones and waits for every task.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        // What the closed connections left in queue buffers (requeues, marks) goes to the files;
        // everything confirmed was synced already.
        if self.state.store().is_some() {
            for queue in self.state.queues(None) {
                queue.flush();
            }
        }
    }
}
