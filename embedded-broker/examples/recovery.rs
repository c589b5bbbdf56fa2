//! Time to recover persistent messages at start: publishes `MESSAGES` persistent 16-byte messages
//! with confirms to a durable queue, stops the broker, and times a start on the same data
//! directory until the queue answers with every message counted.
//!
//! ```text
//! cargo run --release -p warren-broker --example recovery -- [MESSAGES]
//! ```

use std::time::{Duration, Instant};

use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_broker::{Broker, BrokerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let data = tempfile::tempdir()?;
    let config = || BrokerConfig { data_dir: Some(data.path().to_owned()), ..Default::default() };
    let broker = Broker::start(config()).await?;
    let url = format!("amqp://guest:guest@{}/%2f", broker.amqp_addr());
    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("recover".into(), durable, FieldTable::default()).await?;
    let props = BasicProperties::default().with_delivery_mode(2);
    let start = Instant::now();
    let mut sent = 0;
    while sent < count && start.elapsed() < Duration::from_secs(300) {
        for _ in 0..10_000.min(count - sent) {
            ch.basic_publish("".into(), "recover".into(), BasicPublishOptions::default(), &[1u8; 16], props.clone())
                .await?;
            sent += 1;
        }
        ch.wait_for_confirms().await?;
    }
    println!("published {sent} persistent messages in {:.1}s", start.elapsed().as_secs_f64());
    conn.close(200, "done".into()).await?;
    broker.shutdown().await;

    let start = Instant::now();
    let broker = Broker::start(config()).await?;
    let started = start.elapsed();
    let ready = broker.state().queue("/", "recover")?.counts().ready;
    let url = format!("amqp://guest:guest@{}/%2f", broker.amqp_addr());
    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let first = ch.basic_get("recover".into(), BasicGetOptions { no_ack: true }).await?;
    let served = start.elapsed();
    println!(
        "recovered {ready} messages: broker started in {:.3}s, first message served at {:.3}s ({})",
        started.as_secs_f64(),
        served.as_secs_f64(),
        if first.is_some() { "present" } else { "missing" }
    );
    conn.close(200, "done".into()).await?;
    broker.shutdown().await;
    Ok(())
}
