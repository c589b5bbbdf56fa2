//! `warren broker`: the embedded broker as a server, until Ctrl-C or SIGTERM.

use anyhow::Context;

use crate::cli::BrokerArgs;
use crate::outcome::Outcome;

/// Runs the embedded broker until Ctrl-C or SIGTERM, then shuts it down cleanly.
pub async fn run(args: BrokerArgs) -> anyhow::Result<Outcome> {
    let config = warren_broker::BrokerConfig {
        amqp_addr: args.amqp,
        http_addr: args.http,
        data_dir: args.data_dir,
        disk_free_limit: args.disk_free_limit,
        ..warren_broker::BrokerConfig::default()
    };
    let broker = warren_broker::Broker::start(config).await.context("starting the embedded broker")?;
    eprintln!("warren broker: AMQP on {}, management HTTP on http://{}", broker.amqp_addr(), broker.http_addr());
    shutdown_signal().await?;
    eprintln!("warren broker: shutting down");
    broker.shutdown().await;
    Ok(Outcome::Success)
}

/// Waits for Ctrl-C (SIGINT) or, on Unix, SIGTERM — what service managers send
/// to stop a server — so either ends with a clean shutdown.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted.context("waiting for Ctrl-C")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}
