//! Throughput and CPU cost of the embedded broker with one lapin producer and one lapin consumer:
//! 16-byte transient messages, prefetch 100, a multiple ack every 50 (PerfTest's
//! `-x 1 -y 1 -s 16 -q 100 -A 50`).
//!
//! ```text
//! cargo run --release -p warren-broker --example throughput -- [MESSAGES] [amqp://URL]
//! ```
//!
//! Without a URL it starts the embedded broker on its own runtime (threads named `wb-broker`) and
//! reports the CPU time of those threads alone, read from `/proc/self/task/*/stat`; the client runs
//! on threads named `wb-client`. The run is bounded by the message count and by 120 seconds.
//! `FANOUT=10` publishes through a fanout exchange to 10 queues, each with its own consumer, and
//! counts every delivery.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_broker::{Broker, BrokerConfig};

const LIMIT: Duration = Duration::from_secs(120);

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
fn thread_cpu_seconds(prefix: &str) -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return f64::NAN };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // Format: pid (comm) state ... ; comm may contain spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the comm.
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    ticks as f64 / ticks_per_second
}

/// Consumes `count` messages from `queue` with prefetch 100 and a multiple ack every 50.
async fn consume_all(ch: lapin::Channel, queue: String, count: u64, start: Instant) -> Result<u64, lapin::Error> {
    ch.basic_qos(100, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    let mut received = 0u64;
    while received < count && start.elapsed() < LIMIT {
        let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_secs(10), consumer.next()).await else { break };
        let delivery = delivery?;
        received += 1;
        if received.is_multiple_of(50) || received == count {
            delivery.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
    }
    Ok(received)
}

/// Publishes `count` messages through a fanout exchange to `fanout` queues (1 = straight to one
/// queue through the default exchange) and returns deliveries received and the elapsed time.
async fn run(url: String, count: u64, fanout: usize) -> Result<(u64, Duration), lapin::Error> {
    let prefix = format!("throughput-{}", std::process::id());
    let consumer_conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let setup = consumer_conn.create_channel().await?;
    let exchange = if fanout > 1 { format!("{prefix}-fanout") } else { String::new() };
    if fanout > 1 {
        setup
            .exchange_declare(
                exchange.as_str().into(),
                lapin::ExchangeKind::Fanout,
                lapin::options::ExchangeDeclareOptions { auto_delete: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
    }
    let mut queues = Vec::new();
    for i in 0..fanout {
        let queue = format!("{prefix}-{i}");
        setup
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions { auto_delete: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
        if fanout > 1 {
            setup
                .queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    "".into(),
                    Default::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        queues.push(queue);
    }
    let producer_conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let pch = producer_conn.create_channel().await?;
    let start = Instant::now();
    let mut consumers = Vec::new();
    for queue in &queues {
        let ch = consumer_conn.create_channel().await?;
        consumers.push(tokio::spawn(consume_all(ch, queue.clone(), count, start)));
    }
    let routing_key = if fanout > 1 { String::new() } else { queues[0].clone() };
    let producer = tokio::spawn(async move {
        let body = [7u8; 16];
        for _ in 0..count {
            if start.elapsed() > LIMIT {
                break;
            }
            pch.basic_publish(
                exchange.as_str().into(),
                routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            )
            .await?;
        }
        Ok::<_, lapin::Error>(())
    });
    let mut received = 0;
    for c in consumers {
        if let Ok(r) = c.await {
            received += r?;
        }
    }
    let elapsed = start.elapsed();
    if let Ok(result) = producer.await {
        result?;
    }
    let _ = producer_conn.close(200, "done".into()).await;
    let _ = consumer_conn.close(200, "done".into()).await;
    Ok((received, elapsed))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let external = args.next();
    let fanout: usize = std::env::var("FANOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let broker_threads: usize = std::env::var("BROKER_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let broker_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(broker_threads)
        .thread_name("wb-broker")
        .enable_all()
        .build()
        .expect("broker runtime");
    let (broker, url) = match external {
        Some(url) => (None, url),
        None => {
            let broker = broker_rt.block_on(Broker::start(BrokerConfig::default())).expect("embedded broker starts");
            let url = format!("amqp://guest:guest@{}/%2f", broker.amqp_addr());
            (Some(broker), url)
        }
    };
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("wb-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let broker_cpu_before = thread_cpu_seconds("wb-broker");
    let client_cpu_before = thread_cpu_seconds("wb-client");
    match client_rt.block_on(run(url.clone(), count, fanout)) {
        Ok((received, elapsed)) => {
            let broker_cpu = thread_cpu_seconds("wb-broker") - broker_cpu_before;
            let client_cpu = thread_cpu_seconds("wb-client") - client_cpu_before;
            let rate = received as f64 / elapsed.as_secs_f64();
            println!("broker: {}", if broker.is_some() { "embedded" } else { url.as_str() });
            println!("messages: {received} in {:.2}s = {rate:.0} msgs/s", elapsed.as_secs_f64());
            if broker.is_some() {
                println!(
                    "broker CPU: {broker_cpu:.2}s = {:.2} CPU-s per million messages",
                    broker_cpu / received.max(1) as f64 * 1e6
                );
            }
            println!("client CPU: {client_cpu:.2}s");
        }
        Err(e) => eprintln!("run failed: {e}"),
    }
    if let Some(b) = broker {
        broker_rt.block_on(b.shutdown());
    }
}
