//! What lapin alone costs per message, with none of warren's code: the floor
//! under `warren bench`'s own CPU figure.
//!
//! Two phases against one broker, each timed by the process's CPU time:
//! publish N 16-byte messages with publisher confirms (up to 1,000 in flight,
//! topped up once half have been confirmed, as warren's producer does), then
//! consume them from the queue they filled (prefetch P, one multiple ack
//! every A deliveries, acks not awaited). Run it on a quiet machine:
//!
//! ```sh
//! cargo run --release --example lapin_floor -- amqp://guest:guest@127.0.0.1:5672/%2f 500000 100 50
//! ```

use anyhow::Context;

mod floor;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

const QUEUE: &str = "warren.lapin-floor";
const WINDOW: usize = 1000;

fn main() -> anyhow::Result<()> {
    let floor::Args { target: url, messages, prefetch, ack_every } =
        floor::args("amqp://guest:guest@127.0.0.1:5672/%2f")?;
    // Small frames, as warren asks for with 16-byte bodies.
    let url = format!("{url}{}frame_max=4096", if url.contains('?') { '&' } else { '?' });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let publisher = Connection::connect(&url, ConnectionProperties::default()).await?;
        let channel = publisher.create_channel().await?;
        channel.queue_delete(QUEUE.into(), QueueDeleteOptions::default()).await?;
        channel.queue_declare(QUEUE.into(), QueueDeclareOptions::default(), FieldTable::default()).await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;

        let body = [0u8; 16];
        let phase = floor::Phase::start()?;
        let mut in_flight = FuturesUnordered::new();
        let mut sent = 0;
        while sent < messages || !in_flight.is_empty() {
            while sent < messages && in_flight.len() < WINDOW {
                let channel = &channel;
                in_flight.push(async move {
                    let options = BasicPublishOptions::default();
                    let properties = BasicProperties::default();
                    channel.basic_publish("".into(), QUEUE.into(), options, &body, properties).await?.await
                });
                sent += 1;
            }
            let refill_at = if sent < messages { WINDOW / 2 } else { 0 };
            while in_flight.len() > refill_at {
                if let Some(confirm) = in_flight.next().await {
                    confirm?;
                }
            }
        }
        phase.report("publish (confirms)", messages)?;

        let consumer = Connection::connect(&url, ConnectionProperties::default()).await?;
        let channel = consumer.create_channel().await?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let mut deliveries = channel
            .basic_consume(QUEUE.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        let phase = floor::Phase::start()?;
        let mut acks = FuturesUnordered::new();
        let mut received = 0;
        while received < messages {
            tokio::select! {
                Some(ack) = acks.next(), if !acks.is_empty() => ack?,
                delivery = deliveries.next() => {
                    let delivery = delivery.context("the consumer was cancelled")??;
                    received += 1;
                    if received % ack_every == 0 || received == messages {
                        acks.push(channel.basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true }));
                    }
                }
            }
        }
        while let Some(ack) = acks.next().await {
            ack?;
        }
        phase.report(&format!("consume (prefetch {prefetch}, ack every {ack_every})"), messages)?;
        channel.queue_delete(QUEUE.into(), QueueDeleteOptions::default()).await?;
        Ok(())
    })
}
