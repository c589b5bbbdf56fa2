//! Resident memory of the embedded broker holding 1 million queued 16-byte messages.
//!
//! ```text
//! cargo run --release -p warren-broker --example queued_memory -- [MESSAGES]
//! ```
//!
//! Publishes with confirms in windows of 10,000 (so nothing is still in flight), then reports the
//! growth of this process's resident set since before publishing. The client shares the process,
//! so the figure is an upper bound for the broker.

use std::time::{Duration, Instant};

use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_broker::{Broker, BrokerConfig};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let broker = Broker::start(BrokerConfig { memory_limit: 4 << 30, ..Default::default() }).await?;
    let url = format!("amqp://guest:guest@{}/%2f", broker.amqp_addr());
    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    ch.queue_declare("memory".into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
    let before = rss_bytes();
    let start = Instant::now();
    let body = [1u8; 16];
    let mut sent = 0;
    while sent < count && start.elapsed() < Duration::from_secs(300) {
        for _ in 0..10_000.min(count - sent) {
            ch.basic_publish("".into(), "memory".into(), Default::default(), &body, BasicProperties::default()).await?;
            sent += 1;
        }
        ch.wait_for_confirms().await?;
    }
    let queued = broker.state().queue("/", "memory")?.counts().ready;
    let after = rss_bytes();
    println!("queued: {queued} messages of 16 bytes in {:.1}s", start.elapsed().as_secs_f64());
    println!(
        "resident memory grew by {:.1} MB ({:.0} bytes per message); total RSS {:.1} MB",
        (after.saturating_sub(before)) as f64 / 1e6,
        after.saturating_sub(before) as f64 / queued.max(1) as f64,
        after as f64 / 1e6
    );
    println!("broker's own estimate of queued bytes: {:.1} MB", broker.state().memory_used() as f64 / 1e6);
    conn.close(200, "done".into()).await?;
    broker.shutdown().await;
    Ok(())
}
