//! What a client costs per message when it speaks AMQP on one thread, with no
//! I/O thread per connection: the counterpart of `lapin_floor` for deciding
//! how warren's bench could meet a CPU target that lapin cannot.
//!
//! One producer connection and one consumer connection, both driven by one
//! task each on a single-threaded tokio runtime, frames encoded and parsed
//! with amq-protocol (the codec lapin uses). The producer keeps up to 1,000
//! publishes unconfirmed and refills once half are confirmed, writing each
//! burst with one `write`; the consumer (prefetch P) acks with `multiple`
//! every A deliveries, writing the acks of one read together. Both run at
//! once, as in `warren bench scenarios/max-throughput.yaml`. This is a
//! measuring tool, not a client: no heartbeats, no errors beyond "stop".
//!
//! ```sh
//! cargo run --release --example raw_floor -- 127.0.0.1:5672 500000 100 50
//! ```

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, confirm, connection, queue};
use amq_protocol::types::FieldTable;
use anyhow::{Context, bail};

mod floor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const QUEUE: &str = "warren.raw-floor";
const WINDOW: u64 = 1000;

fn main() -> anyhow::Result<()> {
    let floor::Args { target: addr, messages, prefetch, ack_every } = floor::args("127.0.0.1:5672")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut producer = Conn::open(&addr).await?;
        delete_queue(&mut producer).await?;
        producer
            .call(queue_method(queue::AMQPMethod::Declare(queue::Declare {
                queue: QUEUE.into(),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: FieldTable::default(),
            })))
            .await?;
        producer.call(AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false }))).await?;
        let mut consumer = Conn::open(&addr).await?;
        consumer
            .call(basic_method(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: prefetch, global: false })))
            .await?;
        consumer
            .call(basic_method(basic::AMQPMethod::Consume(basic::Consume {
                queue: QUEUE.into(),
                consumer_tag: "".into(),
                no_local: false,
                no_ack: false,
                exclusive: false,
                nowait: false,
                arguments: FieldTable::default(),
            })))
            .await?;

        let phase = floor::Phase::start()?;
        let (published, consumed) =
            tokio::try_join!(publish(&mut producer, messages), consume(&mut consumer, messages, ack_every))?;
        if published != consumed {
            bail!("{published} publishes confirmed, {consumed} deliveries");
        }
        phase.report(&format!("publish and consume at once (prefetch {prefetch}, ack every {ack_every})"), consumed)?;
        delete_queue(&mut producer).await?;
        Ok(())
    })
}

/// Publishes `messages` 16-byte bodies with confirms; returns how many were confirmed.
async fn publish(conn: &mut Conn, messages: u64) -> anyhow::Result<u64> {
    let (mut published, mut confirmed) = (0u64, 0u64);
    let body = vec![0u8; 16];
    while confirmed < messages {
        if published - confirmed <= WINDOW / 2 {
            while published < messages && published - confirmed < WINDOW {
                conn.push(AMQPFrame::Method(
                    1,
                    basic_method(basic::AMQPMethod::Publish(basic::Publish {
                        exchange: "".into(),
                        routing_key: QUEUE.into(),
                        mandatory: false,
                        immediate: false,
                    })),
                ))?;
                conn.push(AMQPFrame::Header(
                    1,
                    AMQPContentHeader { class_id: 60, body_size: 16, properties: BasicProperties::default() },
                ))?;
                conn.push(AMQPFrame::Body(1, body.clone()))?;
                published += 1;
            }
            conn.flush().await?;
        }
        conn.fill().await?;
        while let Some(frame) = conn.next_frame()? {
            match frame {
                AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))) => {
                    confirmed = if ack.multiple { ack.delivery_tag } else { confirmed.max(ack.delivery_tag) };
                }
                AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Nack(_))) => bail!("a publish was nacked"),
                AMQPFrame::Heartbeat => {}
                other => bail!("the producer got {other:?}"),
            }
        }
    }
    Ok(confirmed)
}

/// Consumes `messages` deliveries, acking every `ack_every`; returns how many arrived.
async fn consume(conn: &mut Conn, messages: u64, ack_every: u64) -> anyhow::Result<u64> {
    let (mut received, mut last_tag) = (0u64, 0u64);
    while received < messages {
        conn.fill().await?;
        while let Some(frame) = conn.next_frame()? {
            match frame {
                AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver))) => {
                    last_tag = deliver.delivery_tag;
                }
                AMQPFrame::Header(..) | AMQPFrame::Heartbeat => {}
                AMQPFrame::Body(..) => {
                    received += 1;
                    if received % ack_every == 0 || received == messages {
                        conn.push(AMQPFrame::Method(
                            1,
                            basic_method(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: last_tag, multiple: true })),
                        ))?;
                    }
                }
                other => bail!("the consumer got {other:?}"),
            }
        }
        conn.flush().await?;
    }
    Ok(received)
}

async fn delete_queue(conn: &mut Conn) -> anyhow::Result<()> {
    let delete = queue::Delete { queue: QUEUE.into(), if_unused: false, if_empty: false, nowait: false };
    conn.call(queue_method(queue::AMQPMethod::Delete(delete))).await?;
    Ok(())
}

fn basic_method(method: basic::AMQPMethod) -> AMQPClass {
    AMQPClass::Basic(method)
}

fn queue_method(method: queue::AMQPMethod) -> AMQPClass {
    AMQPClass::Queue(method)
}

/// One connection with channel 1 open: a read buffer and a write buffer.
struct Conn {
    socket: TcpStream,
    input: Vec<u8>,
    start: usize,
    output: Vec<u8>,
}

impl Conn {
    /// Connects as guest to `/`, frame_max 4096, no heartbeats, and opens channel 1.
    async fn open(addr: &str) -> anyhow::Result<Conn> {
        let socket = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        socket.set_nodelay(true)?;
        let mut conn =
            Conn { socket, input: Vec::with_capacity(1 << 16), start: 0, output: Vec::with_capacity(1 << 16) };
        conn.socket.write_all(b"AMQP\x00\x00\x09\x01").await?;
        conn.expect("connection.start").await?;
        conn.push(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: "PLAIN".into(),
                response: "\0guest\0guest".into(),
                locale: "en_US".into(),
            })),
        ))?;
        conn.flush().await?;
        conn.expect("connection.tune").await?;
        conn.push(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 1,
                frame_max: 4096,
                heartbeat: 0,
            })),
        ))?;
        conn.push(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open { virtual_host: "/".into() })),
        ))?;
        conn.flush().await?;
        conn.expect("connection.open-ok").await?;
        conn.call(AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await?;
        Ok(conn)
    }

    /// Sends a synchronous method on channel 1 (channel 0 for connection methods) and waits for its reply.
    async fn call(&mut self, method: AMQPClass) -> anyhow::Result<AMQPFrame> {
        let channel = u16::from(!matches!(method, AMQPClass::Connection(_)));
        self.push(AMQPFrame::Method(channel, method))?;
        self.flush().await?;
        self.expect("a reply").await
    }

    /// The next frame, reading as needed.
    async fn expect(&mut self, what: &str) -> anyhow::Result<AMQPFrame> {
        loop {
            if let Some(frame) = self.next_frame()? {
                if let AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(close))) = &frame {
                    bail!("the broker closed the connection waiting for {what}: {}", close.reply_text);
                }
                if let AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(close))) = &frame {
                    bail!("the broker closed the channel waiting for {what}: {}", close.reply_text);
                }
                return Ok(frame);
            }
            self.fill().await?;
        }
    }

    /// A complete frame from what was read, if there is one.
    fn next_frame(&mut self) -> anyhow::Result<Option<AMQPFrame>> {
        match parse_frame(&self.input[self.start..]) {
            Ok((rest, frame)) => {
                self.start = self.input.len() - rest.len();
                Ok(Some(frame))
            }
            Err(error) if error.is_incomplete() => Ok(None),
            Err(error) => bail!("unparsable frame: {error:?}"),
        }
    }

    /// Reads what the socket has (at least one byte).
    async fn fill(&mut self) -> anyhow::Result<()> {
        self.input.drain(..self.start);
        self.start = 0;
        if self.input.capacity() - self.input.len() < 4096 {
            self.input.reserve(1 << 16);
        }
        if self.socket.read_buf(&mut self.input).await? == 0 {
            bail!("the broker closed the socket");
        }
        Ok(())
    }

    /// Encodes a frame into the write buffer.
    fn push(&mut self, frame: AMQPFrame) -> anyhow::Result<()> {
        let output = std::mem::take(&mut self.output);
        self.output = gen_frame(&frame)(WriteContext::from(output)).map_err(|e| anyhow::anyhow!("{e:?}"))?.write;
        Ok(())
    }

    /// Writes the write buffer with one call.
    async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.output.is_empty() {
            self.socket.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }
}
