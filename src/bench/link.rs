//! A bench connection and the runtime its actors run on.
//!
//! Each connection gets a single-threaded runtime of its own, which lapin's
//! I/O thread drives while it waits for its socket (the change to lapin that
//! `vendor/README.md` describes). The actors spawned on a link run on that same
//! thread: a delivery, a confirm or a publish goes between the socket and the
//! actor without waking another thread. Against RabbitMQ on two cores this
//! cost about 40% less CPU per message than one thread for all actors beside
//! lapin's I/O threads, which handed every batch over twice (docs/bench.md).
//!
//! Once a connection ends its I/O thread is gone, and with it what drove the
//! runtime; [`keep_driven`] gives such a runtime a thread of its own so the
//! actors on it still see the error, hand back what they hold (a producer
//! its unconfirmed messages, to re-send on the next connection) and stop.
//! Links opened mid-run (reconnections) join the watch through [`Drivers`].
//!
//! Each link also keeps the time its broker held it blocked
//! (`connection.blocked` until `connection.unblocked`, [`BlockedTime`]), so a
//! producer can tell waiting on a blocked connection from other waits.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_rs::TokioRuntime;
use async_rs::traits::Executor;
use futures::StreamExt;
use lapin::{Connection, ConnectionProperties, ConnectionStatus, Event};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::target::redact_url;

/// How long one AMQP connection may take to open before the run gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a node may take to accept a connection after another was lost,
/// before the next node is tried.
pub(crate) const RECONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The pause after a round in which no node answered; it doubles each round, up to [`BACKOFF_MAX`].
pub(crate) const BACKOFF_FIRST: Duration = Duration::from_millis(100);

/// The longest pause between two rounds of reconnection attempts.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How often [`keep_driven`] looks for connections that ended.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// A connection, with the runtime its I/O thread drives.
pub struct Link {
    /// The connection.
    pub connection: Connection,
    /// How long the broker has held this connection blocked.
    pub blocked: Arc<BlockedTime>,
    runtime: TokioRuntime,
    handle: Handle,
}

impl Link {
    /// Connects to `url` within `timeout`; errors name `amqp_url`, the broker as the user gave it.
    pub async fn open(url: &str, amqp_url: &str, name: String, timeout: Duration) -> anyhow::Result<Link> {
        let own = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .with_context(|| format!("starting the runtime of {name}"))?;
        let handle = own.handle().clone();
        let runtime = TokioRuntime::tokio_with_runtime(own);
        let properties = ConnectionProperties::default().with_connection_name(name.clone().into());
        let connecting = Connection::connect_with_runtime(url, properties, runtime.clone());
        match tokio::time::timeout(timeout, connecting).await {
            Ok(connected) => {
                let connection = connected.with_context(|| format!("connecting {name} to {}", redact_url(amqp_url)))?;
                let blocked = Arc::new(BlockedTime::default());
                // Before anything is published, so no `connection.blocked` goes unseen. The stream
                // lives as long as the connection; the task goes with the link's runtime.
                handle.spawn(blocked.clone().follow(connection.events_listener()));
                Ok(Link { connection, blocked, runtime, handle })
            }
            Err(_) => anyhow::bail!(
                "connecting {name} to {}: no answer within {}s",
                redact_url(amqp_url),
                timeout.as_secs_f64()
            ),
        }
    }

    /// Runs `actor` on this connection's I/O thread.
    pub fn spawn<F>(&self, actor: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(actor)
    }

    /// What [`keep_driven`] needs to watch this link.
    pub fn watch(&self) -> Watched {
        let status = self.connection.status().clone();
        Watched { ended: Box::new(move || status.closed() || status.errored()), runtime: self.runtime.clone() }
    }

    /// The connection's status, for actors that must tell a lost connection from a failed channel.
    pub fn status(&self) -> ConnectionStatus {
        self.connection.status().clone()
    }
}

/// Whether `error`, seen by an actor on the connection whose status is
/// `status`, means the connection was lost (the actor reconnects) rather than
/// its channel failed on a live connection (the run's own mistake: it fails).
///
/// The connection's status may change a moment after the actor sees the
/// error, so a live connection is watched for up to a second first.
pub async fn connection_lost(status: &ConnectionStatus, error: Option<&lapin::Error>) -> bool {
    if error.is_some_and(lapin::Error::is_amqp_soft_error) {
        return false;
    }
    let deadline = Instant::now() + LOSS_SETTLES;
    loop {
        if !status.connected() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long [`connection_lost`] watches a connection that still looks open.
const LOSS_SETTLES: Duration = Duration::from_secs(1);

/// The nodes a run's actors connect to, in the order given: each node's URL
/// as warren connects to it (its `frame_max` added) and as the user gave it,
/// which messages name.
#[derive(Debug, Clone)]
pub struct Nodes {
    urls: Vec<String>,
    given: Vec<String>,
}

impl Nodes {
    /// The nodes of `given` (at least one), each connected to as `adjust` rewrites its URL.
    pub fn new(given: &[String], adjust: impl Fn(&str) -> String) -> Nodes {
        Nodes { urls: given.iter().map(|url| adjust(url)).collect(), given: given.to_vec() }
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// True for a list without nodes (a run never has one).
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Node `index` as the result and messages name it: its URL, password redacted.
    pub fn name(&self, index: usize) -> String {
        self.given.get(index).map(|url| redact_url(url)).unwrap_or_default()
    }

    /// A connection named `name` to the first node that answers, trying each
    /// once from `start` on, in the list's order; with the node's index.
    pub async fn open_from(&self, start: usize, name: &str, timeout: Duration) -> anyhow::Result<(Link, usize)> {
        let count = self.urls.len().max(1);
        let mut last = None;
        for step in 0..count {
            let index = (start + step) % count;
            let (Some(url), Some(given)) = (self.urls.get(index), self.given.get(index)) else { break };
            match Link::open(url, given, name.to_owned(), timeout).await {
                Ok(link) => return Ok((link, index)),
                Err(error) => {
                    if count > 1 {
                        tracing::info!("{error:#}; trying the next node");
                    }
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no broker node to connect {name} to")))
    }
}

/// What an actor needs to reconnect after its connection dropped: the
/// nodes, how long to keep trying, and where links opened mid-run go.
#[derive(Clone)]
pub struct Failover {
    /// The cluster's nodes.
    pub nodes: Arc<Nodes>,
    /// How long an actor tries the nodes before it gives up; `None`: it does not reconnect.
    pub give_up_after: Option<Duration>,
    /// Links opened mid-run, watched and closed at the end.
    pub drivers: Drivers,
}

/// Why an actor could not reconnect.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReconnectError {
    /// Every node was tried, round after round, for the whole allowance.
    #[error("no node answered within {}s (tried {nodes}); last: {last}", give_up_after.as_secs_f64())]
    GaveUp {
        /// The allowance.
        give_up_after: Duration,
        /// The nodes tried, passwords redacted.
        nodes: String,
        /// The last attempt's error.
        last: String,
    },
    /// The run ended while the actor was still reconnecting.
    #[error("the run ended before a node answered")]
    Stopped,
}

impl Failover {
    /// A connection to the first node that answers, from `home` on, made
    /// ready by `setup` (a channel, a subscription): round after round over
    /// every node, pausing a little longer after each round in which none
    /// would do (from 100 ms up to 1 s), until `give_up_after` passed or
    /// `stop` fired. The link is adopted ([`Drivers::adopt`]).
    pub async fn reconnect<T, F, Fut>(
        &self,
        home: usize,
        name: &str,
        stop: &CancellationToken,
        setup: F,
    ) -> Result<(Arc<Link>, usize, T), ReconnectError>
    where
        F: Fn(Arc<Link>) -> Fut,
        Fut: Future<Output = Result<T, lapin::Error>>,
    {
        let give_up_after = self.give_up_after.unwrap_or_default();
        let deadline = Instant::now() + give_up_after;
        let mut pause = BACKOFF_FIRST;
        loop {
            let attempt = async {
                let (link, node) = self.nodes.open_from(home, name, RECONNECT_TIMEOUT).await?;
                let link = self.drivers.adopt(link);
                match tokio::time::timeout(RECONNECT_TIMEOUT, setup(link.clone())).await {
                    Ok(Ok(ready)) => Ok((link, node, ready)),
                    failed => {
                        let _ = link.connection.close(200, "warren bench: setting up failed".into()).await;
                        let why = match failed {
                            Ok(Err(error)) => format!("{error}"),
                            _ => format!("no answer within {}s", RECONNECT_TIMEOUT.as_secs()),
                        };
                        Err(anyhow::anyhow!("setting up {name} on {}: {why}", self.nodes.name(node)))
                    }
                }
            };
            let error = tokio::select! {
                attempt = attempt => match attempt {
                    Ok(ready) => return Ok(ready),
                    Err(error) => error,
                },
                _ = stop.cancelled() => return Err(ReconnectError::Stopped),
            };
            tracing::info!("{error:#}");
            if Instant::now() + pause >= deadline {
                let nodes = (0..self.nodes.len()).map(|i| self.nodes.name(i)).collect::<Vec<_>>().join(", ");
                return Err(ReconnectError::GaveUp { give_up_after, nodes, last: format!("{error:#}") });
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return Err(ReconnectError::Stopped),
            }
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }
}

/// Links opened during the run (reconnections): [`keep_driven`] watches
/// them, and the runner closes them at the end with the others.
#[derive(Clone)]
pub struct Drivers {
    watch: tokio::sync::mpsc::UnboundedSender<Watched>,
    links: Arc<Mutex<Vec<Arc<Link>>>>,
}

impl Drivers {
    /// A handle, and the receiving end [`keep_driven`] takes.
    pub fn new() -> (Drivers, tokio::sync::mpsc::UnboundedReceiver<Watched>) {
        let (watch, receiver) = tokio::sync::mpsc::unbounded_channel();
        (Drivers { watch, links: Arc::default() }, receiver)
    }

    /// Watches `link` until the run ends.
    pub fn watch(&self, link: &Link) {
        // A closed receiver means the run is over: nothing is left to drive.
        let _ = self.watch.send(link.watch());
    }

    /// Watches `link` and keeps it for the runner to close: the actor that
    /// opened it shares it. (The runner drops it where the first links are
    /// dropped, never an actor on another connection's runtime.)
    pub fn adopt(&self, link: Link) -> Arc<Link> {
        self.watch(&link);
        let link = Arc::new(link);
        if let Ok(mut links) = self.links.lock() {
            links.push(link.clone());
        }
        link
    }

    /// The adopted links, for closing at the end.
    pub fn take(&self) -> Vec<Arc<Link>> {
        self.links.lock().map(|mut links| std::mem::take(&mut *links)).unwrap_or_default()
    }
}

/// The time a broker held one connection blocked: `connection.blocked`
/// (RabbitMQ's memory or disk alarm, the embedded broker's memory limit)
/// until `connection.unblocked`. lapin writes nothing on a blocked
/// connection, so its publishes wait for as long as the block lasts.
#[derive(Debug, Default)]
pub struct BlockedTime(Mutex<Blocks>);

#[derive(Debug, Default)]
struct Blocks {
    /// Ended blocks, added up.
    ended: Duration,
    /// The start of the block in force, if one is.
    since: Option<Instant>,
}

impl BlockedTime {
    /// The broker blocked the connection at `at`.
    pub fn block(&self, at: Instant) {
        if let Ok(mut blocks) = self.0.lock() {
            blocks.since.get_or_insert(at);
        }
    }

    /// The broker unblocked the connection at `at`.
    pub fn unblock(&self, at: Instant) {
        if let Ok(mut blocks) = self.0.lock()
            && let Some(since) = blocks.since.take()
        {
            blocks.ended += at.saturating_duration_since(since);
        }
    }

    /// Blocked time from the connection's start up to `at`, a block still in force included.
    pub fn until(&self, at: Instant) -> Duration {
        let Ok(blocks) = self.0.lock() else { return Duration::ZERO };
        blocks.ended + blocks.since.map_or(Duration::ZERO, |since| at.saturating_duration_since(since))
    }

    /// Records the blocks announced on a connection's event stream until it ends.
    async fn follow(self: Arc<Self>, events: impl futures::Stream<Item = Event>) {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Event::ConnectionBlocked(_) => self.block(Instant::now()),
                Event::ConnectionUnblocked => self.unblock(Instant::now()),
                _ => {}
            }
        }
    }
}

/// A link as [`keep_driven`] watches it.
pub struct Watched {
    /// True once the connection closed or failed: its I/O thread is ending or gone.
    ended: Box<dyn Fn() -> bool + Send>,
    runtime: TokioRuntime,
}

/// Until `done` fires: every link handed over through `added` whose
/// connection has closed or failed gets a thread that drives its runtime,
/// since its I/O thread no longer does.
///
/// A runtime driven from two threads stays correct (one drives, the other
/// waits for it), so catching a connection in the middle of closing is safe.
pub async fn keep_driven(mut added: tokio::sync::mpsc::UnboundedReceiver<Watched>, done: CancellationToken) {
    let mut links: Vec<Watched> = Vec::new();
    let mut ticker = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = ticker.tick() => {}
        }
        while let Ok(link) = added.try_recv() {
            links.push(link);
        }
        let (ended, open): (Vec<Watched>, Vec<Watched>) = links.into_iter().partition(|link| (link.ended)());
        links = open;
        for link in ended {
            let done = done.clone();
            let driver = std::thread::Builder::new()
                .name("warren-bench-ended".into())
                .spawn(move || link.runtime.block_on(done.cancelled_owned()));
            if let Err(error) = driver {
                tracing::warn!("no thread to finish a closed connection's actors: {error}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime nothing drives, and a handle to spawn on it.
    fn undriven() -> (TokioRuntime, Handle) {
        let own = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let handle = own.handle().clone();
        (TokioRuntime::tokio_with_runtime(own), handle)
    }

    #[test]
    fn blocked_time_counts_ended_blocks_and_the_one_in_force() {
        let blocked = BlockedTime::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(blocked.until(at(10)), Duration::ZERO);
        blocked.block(at(10));
        blocked.block(at(15)); // a repeated notice does not restart the block
        assert_eq!(blocked.until(at(40)), Duration::from_millis(30), "a block in force counts up to now");
        blocked.unblock(at(50));
        blocked.unblock(at(60)); // nor does a repeated unblock add anything
        assert_eq!(blocked.until(at(100)), Duration::from_millis(40));
        blocked.block(at(200));
        assert_eq!(blocked.until(at(205)), Duration::from_millis(45));
    }

    #[tokio::test]
    async fn an_ended_connections_actors_still_run_to_the_end() {
        let (runtime, handle) = undriven();
        // An actor that needs its runtime's timer, as a producer's pacing does.
        let actor = handle.spawn(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            "reported"
        });
        let done = CancellationToken::new();
        let watched = Watched { ended: Box::new(|| true), runtime };
        let (drivers, added) = Drivers::new();
        let _ = drivers.watch.send(watched);
        tokio::spawn(keep_driven(added, done.clone()));
        // Bounded so a regression fails instead of hanging; nothing else drives that runtime.
        let report = tokio::time::timeout(Duration::from_secs(30), actor).await;
        done.cancel();
        assert_eq!(report.expect("the actor finished").expect("the actor did not panic"), "reported");
    }
}
