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
//! actors on it still see the error, stop and report.
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
use lapin::{Connection, ConnectionProperties, Event};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::target::redact_url;

/// How long one AMQP connection may take to open before the run gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Connects to `url`; errors name `amqp_url`, the broker as the user gave it.
    pub async fn open(url: &str, amqp_url: &str, name: String) -> anyhow::Result<Link> {
        let own = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .with_context(|| format!("starting the runtime of {name}"))?;
        let handle = own.handle().clone();
        let runtime = TokioRuntime::tokio_with_runtime(own);
        let properties = ConnectionProperties::default().with_connection_name(name.clone().into());
        let connecting = Connection::connect_with_runtime(url, properties, runtime.clone());
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
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
                CONNECT_TIMEOUT.as_secs()
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

/// Until `done` fires: every link whose connection has closed or failed gets
/// a thread that drives its runtime, since its I/O thread no longer does.
///
/// A runtime driven from two threads stays correct (one drives, the other
/// waits for it), so catching a connection in the middle of closing is safe.
pub async fn keep_driven(mut links: Vec<Watched>, done: CancellationToken) {
    let mut ticker = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = ticker.tick() => {}
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
        tokio::spawn(keep_driven(vec![watched], done.clone()));
        // Bounded so a regression fails instead of hanging; nothing else drives that runtime.
        let report = tokio::time::timeout(Duration::from_secs(30), actor).await;
        done.cancel();
        assert_eq!(report.expect("the actor finished").expect("the actor did not panic"), "reported");
    }
}
