//! The AMQP listener: accepts connections (bounded by a semaphore), spawns one task per connection,
//! and runs the periodic sweep (message TTL at queue heads, `x-expires`).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ServerLimits;
use crate::connection;
use crate::state::State;

/// Accepts AMQP connections until `shutdown`; every connection task is tracked by `tasks`.
pub async fn serve(
    listener: TcpListener,
    state: State,
    limits: Arc<ServerLimits>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => return,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => {
                let state = state.clone();
                let limits = Arc::clone(&limits);
                let shutdown = shutdown.clone();
                tasks.spawn(async move {
                    connection::serve(socket, peer, state, limits, shutdown).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Running out of file descriptors is transient; back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Expires messages and queues every `interval` until `shutdown`.
pub async fn sweep(state: State, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => state.sweep(),
        }
    }
}
