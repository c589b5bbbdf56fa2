//! Disk space under a steady flow: persistent messages through a durable queue while a consumer
//! acknowledges them, except one message in every `PIN_EVERY` that it holds unacknowledged to the
//! end (each pins the segment it is in). Reports the data directory's size against what is still
//! queued or unacknowledged.
//!
//! ```text
//! cargo run --release -p warren-broker --example steady_flow -- [MESSAGES] [PIN_EVERY]
//! ```
//!
//! Loopback only, bounded by the message count and by 15 minutes.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_broker::{Broker, BrokerConfig};

fn dir_size(dir: &Path) -> (u64, usize) {
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (bytes, files) = dir_size(&path);
            total = (total.0 + bytes, total.1 + files);
        } else if let Ok(meta) = entry.metadata() {
            total = (total.0 + meta.len(), total.1 + 1);
        }
    }
    total
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let pin_every: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let data = tempfile::tempdir()?;
    let broker = Broker::start(BrokerConfig { data_dir: Some(data.path().to_owned()), ..Default::default() }).await?;
    let url = format!("amqp://guest:guest@{}/%2f", broker.amqp_addr());
    let deadline = Instant::now() + Duration::from_secs(900);

    let pconn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let publisher = pconn.create_channel().await?;
    publisher.confirm_select(ConfirmSelectOptions::default()).await?;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    publisher.queue_declare("steady".into(), durable, FieldTable::default()).await?;

    let cconn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let consumer = cconn.create_channel().await?;
    consumer.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut deliveries = consumer
        .basic_consume("steady".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    let consuming = tokio::spawn(async move {
        let (mut got, mut held) = (0u64, Vec::new());
        while got < count && Instant::now() < deadline {
            let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(30), deliveries.next()).await else { break };
            if got % pin_every == 0 {
                held.push(d);
            } else {
                d.ack(BasicAckOptions::default()).await.ok();
            }
            got += 1;
        }
        (got, held)
    });

    let start = Instant::now();
    let props = BasicProperties::default().with_delivery_mode(2);
    let body = [7u8; 16];
    let (mut sent, mut peak, mut next_report) = (0u64, (0u64, 0usize), Instant::now());
    let mut window = std::collections::VecDeque::new();
    while sent < count && Instant::now() < deadline {
        let confirm = publisher
            .basic_publish("".into(), "steady".into(), BasicPublishOptions::default(), &body, props.clone())
            .await?;
        window.push_back(confirm);
        sent += 1;
        if window.len() >= 1000
            && let Some(c) = window.pop_front()
        {
            c.await?;
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(5);
            let size = dir_size(data.path());
            peak = (peak.0.max(size.0), peak.1.max(size.1));
            let q = broker.state().queue("/", "steady")?.counts();
            println!(
                "{:>6.1}s sent {sent:>9} ready {:>7} unacked {:>5} data dir {:>7.1} MB in {} files",
                start.elapsed().as_secs_f64(),
                q.ready,
                q.unacked,
                size.0 as f64 / 1e6,
                size.1
            );
        }
    }
    for c in window {
        c.await?;
    }
    let (got, held) = consuming.await?;
    // The sweep (every 100 ms) compacts what the last acknowledgements left sparse.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let q = broker.state().queue("/", "steady")?.counts();
    let size = dir_size(data.path());
    println!(
        "{sent} messages sent, {got} received in {:.1}s; {} held unacknowledged, {} ready",
        start.elapsed().as_secs_f64(),
        held.len(),
        q.ready
    );
    println!(
        "data directory at the end: {:.2} MB in {} files (peak {:.1} MB, {} files); segment size {} MB",
        size.0 as f64 / 1e6,
        size.1,
        peak.0 as f64 / 1e6,
        peak.1,
        warren_broker::store::SEGMENT_SIZE >> 20
    );
    drop(held);
    cconn.close(200, "done".into()).await?;
    pconn.close(200, "done".into()).await?;
    broker.shutdown().await;
    Ok(())
}
