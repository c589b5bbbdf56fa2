//! `warren-broker`: an embeddable AMQP 0-9-1 broker with the subset of the
//! RabbitMQ management HTTP API that `warren apply` and `warren export` use.
//!
//! A library first: [`Broker::start`] binds its listeners and returns a
//! [`Broker`] handle with the bound addresses and a graceful shutdown.

pub mod management;
pub mod persist;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;

/// How to start a broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address for AMQP 0-9-1 connections; port 0 picks a free port.
    pub amqp_addr: SocketAddr,
    /// Address for the management HTTP API; port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// Where durable definitions are kept across restarts; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self { amqp_addr: loopback, http_addr: loopback, data_dir: None }
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
}

/// A running broker.
#[derive(Debug)]
pub struct Broker {
    amqp_addr: SocketAddr,
    http_addr: SocketAddr,
}

impl Broker {
    /// Binds the listeners and starts serving on the current tokio runtime.
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        let _ = config;
        unimplemented!("the embedded broker is being built (issue 3)")
    }

    /// The bound AMQP address.
    pub fn amqp_addr(&self) -> SocketAddr {
        self.amqp_addr
    }

    /// The bound management HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops accepting connections, closes the open ones and waits for every task.
    pub async fn shutdown(self) {}
}
