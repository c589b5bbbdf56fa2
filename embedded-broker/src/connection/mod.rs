//! One client connection: a single task reads frames, handles every method in one place, drains
//! deliveries queued for its consumers, and writes everything produced by one read batch with one
//! socket write.

mod basic;
mod channel;
pub mod codec;
mod declare;
mod error;
mod handshake;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::protocol::{AMQPClass, basic as basic_m, channel as chan, connection as conn};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::ServerLimits;
use crate::state::auth::{Access, TopicRule, User};
use crate::state::connections::Probe;
use crate::state::exchange::ExchangeKind;
use crate::state::queue::{DeadLetter, Outbox, Outgoing};
use crate::state::stats::{ChannelReport, ConnectionReport, IoStats, MessageStats, Tallies};
use crate::state::{ConnectionId, State};
use channel::{Channel, ChannelPhase};
use codec::Frame;
pub use error::{Fail, Level};

/// Heartbeat ticks (250 ms) between two passes forgetting the counts of deleted queues.
const FORGET_EVERY_TICKS: u32 = 40;

/// Where the handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the 8-byte protocol header.
    Header,
    /// `connection.start` sent.
    StartOk,
    /// `connection.tune` sent.
    TuneOk,
    /// Waiting for `connection.open`.
    Open,
    /// Serving channels.
    Running,
    /// We sent `connection.close`; waiting for `close-ok` until the deadline.
    Closing,
    /// Done; close the socket after the final write.
    Done,
}

/// What the client said it understands.
#[derive(Debug, Default, Clone, Copy)]
struct ClientCapabilities {
    authentication_failure_close: bool,
    connection_blocked: bool,
    consumer_cancel_notify: bool,
}

/// A client connection being served.
pub struct Connection {
    id: ConnectionId,
    state: State,
    limits: Arc<ServerLimits>,
    peer: SocketAddr,
    /// The address the connection arrived on (`None` if the socket could not tell).
    local: Option<SocketAddr>,
    phase: Phase,
    user: Option<User>,
    vhost: String,
    frame_max: u32,
    channel_max: u16,
    heartbeat: u16,
    caps: ClientCapabilities,
    /// Looked up several times per frame: a fast fixed hasher instead of SipHash (channel numbers are
    /// chosen by the client, but a connection holds at most `channel_max` of them).
    channels: HashMap<u16, Channel, foldhash::fast::FixedState>,
    outbox: Arc<Outbox>,
    out: Vec<u8>,
    /// Where small bodies and properties of published messages are packed.
    arena: channel::Arena,
    /// Exchange names and routing keys of published messages, each kept once.
    names: crate::state::message::Names,
    /// The user's topic permissions in the vhost, as of a [`State::permission_generation`]; for
    /// most users empty, so a publish or bind costs one atomic load.
    topic_rules: TopicRules,
    /// The [`State::permission_generation`] the channels' cached write permissions are from.
    write_generation: u64,
    /// Reused routing result.
    route_buf: Vec<Arc<crate::state::queue::Queue>>,
    drained: Vec<Outgoing>,
    dead: Vec<DeadLetter>,
    /// A publisher: subject to `connection.blocked` under memory pressure.
    published: bool,
    /// The broker has a message store: queues used in a batch are flushed at its end.
    stored: bool,
    /// Queues whose store buffers this batch may have filled; flushed at the end of the batch
    /// (kept when the disk refused, to try again).
    touched: Vec<Arc<crate::state::queue::Queue>>,
    /// This batch wrote messages that must be synced before their confirms go out.
    needs_sync: bool,
    /// A `tx.commit-ok` waits for a sync: no further frames are read until it is out.
    hold: bool,
    blocked: bool,
    closing_deadline: Option<Instant>,
    /// The client closed the connection (`close-ok` sent): it closes the socket.
    client_closed: bool,
    /// What the client said of itself in `start-ok`, and the mechanism it logged in with.
    client_properties: amq_protocol::types::FieldTable,
    auth_mechanism: String,
    /// Where the management API asks for [`Connection::report`].
    probe: Arc<Probe>,
    /// Counters, owned by this task alone (see `state/stats.rs`).
    io: IoStats,
    tallies: Tallies,
    /// What channels closed so far counted, and how many opened and closed.
    closed_channels: MessageStats,
    channels_opened: u64,
    channels_closed: u64,
    /// Heartbeat ticks, to forget the counts of deleted queues now and then.
    ticks: u32,
}

/// A connection's cache of [`State::topic_rules`].
#[derive(Debug, Default)]
struct TopicRules {
    /// The generation they were read at (`None` before the first check).
    generation: Option<u64>,
    rules: Vec<TopicRule>,
}

/// Serves one accepted socket until the client leaves, an error closes it, or shutdown.
pub async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    state: State,
    limits: Arc<ServerLimits>,
    shutdown: CancellationToken,
) {
    let _ = socket.set_nodelay(true);
    let id = state.next_connection_id();
    let mut connection = Connection {
        id,
        state: state.clone(),
        limits,
        peer,
        local: socket.local_addr().ok(),
        phase: Phase::Header,
        user: None,
        vhost: String::new(),
        frame_max: 131_072,
        channel_max: 2047,
        heartbeat: 0,
        caps: ClientCapabilities::default(),
        channels: HashMap::default(),
        outbox: Arc::new(Outbox::default()),
        out: Vec::with_capacity(64 * 1024),
        arena: channel::Arena::default(),
        names: crate::state::message::Names::default(),
        topic_rules: TopicRules::default(),
        write_generation: state.permission_generation(),
        route_buf: Vec::new(),
        drained: Vec::new(),
        dead: Vec::new(),
        published: false,
        stored: state.store().is_some(),
        touched: Vec::new(),
        needs_sync: false,
        hold: false,
        blocked: false,
        closing_deadline: None,
        client_closed: false,
        client_properties: Default::default(),
        auth_mechanism: String::new(),
        probe: Arc::new(Probe::default()),
        io: IoStats::default(),
        tallies: Tallies::default(),
        closed_channels: MessageStats::default(),
        channels_opened: 0,
        channels_closed: 0,
        ticks: 0,
    };
    if let Err(e) = connection.run(socket, &shutdown).await {
        tracing::debug!(peer = %connection.peer, "connection ended: {e}");
    }
    connection.teardown_all();
    state.connection_retired(id, &connection.probe, connection.report());
    state.connection_closed(id);
}

impl Connection {
    /// RabbitMQ's topic authorisation, for publishes (`Write`, against the routing key) and for
    /// bindings from an exchange (`Read`, against the binding key): when the user has a topic
    /// permission on `exchange` and it is a topic exchange, the key must match the pattern (403 on
    /// the channel otherwise). A missing exchange passes: the caller's lookup answers 404, as
    /// RabbitMQ's does. Without topic permissions this is one atomic load and an empty search.
    pub(super) fn check_topic(&mut self, access: Access, exchange: &str, routing_key: &str) -> Result<(), Fail> {
        let generation = self.state.permission_generation();
        if self.topic_rules.generation != Some(generation) {
            let user = self.user.as_ref().map(|u| u.name.as_str()).unwrap_or_default();
            self.topic_rules.rules = self.state.topic_rules(user, &self.vhost);
            self.topic_rules.generation = Some(generation);
        }
        let Some(rule) = self.topic_rules.rules.iter().find(|r| r.exchange == exchange) else { return Ok(()) };
        if rule.allows(access, routing_key)
            || !self.state.exchange(&self.vhost, exchange).is_ok_and(|x| x.kind == ExchangeKind::Topic)
        {
            return Ok(());
        }
        let user = self.user.as_ref().map(|u| u.name.as_str()).unwrap_or_default();
        Err(Fail::channel(
            403,
            format!(
                "ACCESS_REFUSED - access to topic '{routing_key}' in exchange '{exchange}' in vhost '{}' refused for user '{user}'",
                self.vhost
            ),
        ))
    }

    async fn run(&mut self, mut socket: TcpStream, shutdown: &CancellationToken) -> std::io::Result<()> {
        let mut rbuf = BytesMut::with_capacity(64 * 1024);
        // Reads and writes only raise flags; the ticker turns them into times, so the hot path
        // does not read the clock once per socket call.
        let mut last_recv = Instant::now();
        let mut last_sent = Instant::now();
        let mut received = false;
        let mut sent = false;
        let tick = Duration::from_millis(250);
        let mut ticker = tokio::time::interval(tick);
        let mut sync_rx = self.state.store().map(|s| s.subscribe());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.process(&mut rbuf);
            if !self.out.is_empty() {
                socket.write_all(&self.out).await?;
                self.io.send_oct += self.out.len() as u64;
                self.io.send_cnt += 1;
                self.out.clear();
                // Do not keep a large buffer (a big message) for the life of the connection.
                if self.out.capacity() > 1 << 20 {
                    self.out = Vec::with_capacity(64 * 1024);
                }
                sent = true;
            }
            if self.phase == Phase::Done {
                if self.client_closed {
                    // As RabbitMQ does, let the client hang up first after `close-ok`:
                    // lapin reports a broker that closes the socket first as a broken
                    // connection. Bounded, and cut short by a broker shutdown.
                    let mut sink = [0u8; 256];
                    let client_hangs_up = async { while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {} };
                    tokio::select! {
                        () = client_hangs_up => {}
                        () = shutdown.cancelled() => {}
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                let _ = socket.shutdown().await;
                return Ok(());
            }
            if rbuf.capacity() - rbuf.len() < 8 * 1024 {
                rbuf.reserve(64 * 1024);
            }
            let reading = !self.blocked && !self.hold;
            let waiting = self.channels.values().any(|ch| !ch.replies.is_empty());
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    self.close_connection(Fail::connection(320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"), 0, 0);
                    socket.write_all(&self.out).await?;
                    let _ = socket.shutdown().await;
                    return Ok(());
                }
                read = socket.read_buf(&mut rbuf), if reading => {
                    let read = read?;
                    if read == 0 {
                        return Ok(());
                    }
                    self.io.recv_oct += read as u64;
                    self.io.recv_cnt += 1;
                    received = true;
                }
                // No yield here: on tokio a yield costs an extra driver poll (epoll_wait) per wake
                // and measured no fewer writes, since a publisher routes its whole read batch
                // before this task runs.
                () = self.outbox.notify.notified() => {}
                // A sync round finished: the confirms it covers go out at the top of the loop.
                Ok(()) = async { match sync_rx.as_mut() { Some(rx) => rx.changed().await, None => std::future::pending().await } }, if waiting => {}
                _ = ticker.tick() => {
                    let now = Instant::now();
                    if std::mem::take(&mut received) {
                        last_recv = now;
                    }
                    if std::mem::take(&mut sent) {
                        last_sent = now;
                    }
                    if self.blocked {
                        // We are not reading, so the client's heartbeats cannot arrive; RabbitMQ
                        // also pauses its heartbeat monitor for blocked connections.
                        last_recv = now;
                    }
                    if self.heartbeat > 0 {
                        let interval = Duration::from_secs(u64::from(self.heartbeat));
                        if now.duration_since(last_recv) > interval * 2 {
                            tracing::info!(peer = %self.peer, "missed heartbeats from client, closing connection");
                            return Ok(());
                        }
                        if now.duration_since(last_sent) >= interval / 2 {
                            codec::encode(&mut self.out, &amq_protocol::frame::AMQPFrame::Heartbeat);
                        }
                    }
                    if let Some(deadline) = self.closing_deadline && now >= deadline {
                        return Ok(());
                    }
                    // Retries a flush the disk refused.
                    self.finish_batch();
                    self.update_blocked();
                    self.ticks = self.ticks.wrapping_add(1);
                    if self.ticks.is_multiple_of(FORGET_EVERY_TICKS) {
                        self.forget_gone();
                    }
                }
            }
        }
    }

    /// Handles every complete frame in the buffer, then the deliveries waiting in the outbox.
    fn process(&mut self, rbuf: &mut BytesMut) {
        if self.phase == Phase::Header {
            if rbuf.len() < 8 {
                return;
            }
            if &rbuf[..8] != codec::PROTOCOL_HEADER {
                // RabbitMQ answers any other header with the one it speaks, then closes.
                self.out.extend_from_slice(codec::PROTOCOL_HEADER);
                self.phase = Phase::Done;
                return;
            }
            let _ = rbuf.split_to(8);
            handshake::send_start(self);
            self.phase = Phase::StartOk;
        }
        // A permission changed or removed reaches open channels at their next publish: the
        // write permissions they cached are checked again. One atomic load per read batch.
        let generation = self.state.permission_generation();
        if generation != self.write_generation {
            self.write_generation = generation;
            for ch in self.channels.values_mut() {
                ch.write_allowed.clear();
            }
        }
        let limit = if self.phase == Phase::Running { self.frame_max } else { 131_072 };
        while !matches!(self.phase, Phase::Done | Phase::Header) && !self.hold {
            match codec::decode(rbuf, limit) {
                Ok(Some(frame)) => self.handle_frame(frame),
                Ok(None) => break,
                Err(e) => {
                    let fail = Fail::connection(e.reply_code(), e.to_string());
                    if self.phase == Phase::Closing {
                        self.phase = Phase::Done;
                    } else {
                        self.close_connection(fail, 0, 0);
                    }
                    rbuf.clear();
                    break;
                }
            }
        }
        self.deliver_outbox();
        self.flush_confirms();
        if !self.dead.is_empty() {
            let dead = std::mem::take(&mut self.dead);
            self.state.dead_letter(&self.vhost, dead);
        }
        self.finish_batch();
        self.update_blocked();
        if self.probe.asked() {
            let probe = Arc::clone(&self.probe);
            probe.answer(|| Arc::new(self.report()));
        }
    }

    /// What this connection counted, and its channels as they are now.
    fn report(&self) -> ConnectionReport {
        let mut channels: Vec<ChannelReport> = self.channels.iter().map(|(number, ch)| ch.report(*number)).collect();
        channels.sort_by_key(|c| c.number);
        ConnectionReport {
            io: self.io,
            blocked: self.blocked,
            channels,
            closed_channels: self.closed_channels,
            channels_opened: self.channels_opened,
            channels_closed: self.channels_closed,
            tallies: self.tallies.clone(),
        }
    }

    /// Forgets the counts of queues and exchanges deleted since (a connection replying to many
    /// short-lived queues would otherwise keep every one).
    fn forget_gone(&mut self) {
        crate::state::stats::forget_deleted_queues(&mut self.tallies.queues);
        let (state, vhost) = (&self.state, &self.vhost);
        self.tallies.exchanges.retain(|name, _| state.exchange(vhost, name).is_ok());
    }

    /// Ends a batch: writes what it left in queue stores, numbers its waiting replies with the
    /// sync round that covers them, and sends every reply whose round is done.
    fn finish_batch(&mut self) {
        if !self.stored {
            self.send_replies(u64::MAX);
            return;
        }
        let mut failed = false;
        self.touched.retain(|q| {
            let flushed = q.flush();
            failed |= !flushed;
            !flushed
        });
        if failed {
            // The replies of this batch wait until a retry succeeds.
            self.state.raise_disk_alarm();
            return;
        }
        let store = self.state.store();
        let round = if std::mem::take(&mut self.needs_sync) { store.map_or(0, |s| s.ticket()) } else { 0 };
        for ch in self.channels.values_mut() {
            for reply in ch.replies.iter_mut().rev() {
                if reply.0 != channel::Reply::PENDING {
                    break;
                }
                reply.0 = round;
            }
        }
        self.send_replies(store.map_or(u64::MAX, |s| s.synced()));
    }

    /// Sends, per channel in order, the replies whose sync round is done.
    fn send_replies(&mut self, synced: u64) {
        let mut out = std::mem::take(&mut self.out);
        let mut held = false;
        for (id, ch) in self.channels.iter_mut() {
            while let Some(&(round, reply)) = ch.replies.front() {
                if round > synced {
                    held |=
                        reply == channel::Reply::CommitOk || ch.replies.iter().any(|r| r.1 == channel::Reply::CommitOk);
                    break;
                }
                ch.replies.pop_front();
                let method = match reply {
                    channel::Reply::Ack(tag) => {
                        ch.stats.confirm += tag.saturating_sub(ch.confirm_sent);
                        ch.confirm_sent = tag;
                        AMQPClass::Basic(basic_m::AMQPMethod::Ack(basic_m::Ack { delivery_tag: tag, multiple: true }))
                    }
                    channel::Reply::Nack(tag) => {
                        ch.confirm_sent = tag;
                        AMQPClass::Basic(basic_m::AMQPMethod::Nack(basic_m::Nack {
                            delivery_tag: tag,
                            multiple: false,
                            requeue: false,
                        }))
                    }
                    channel::Reply::CommitOk => AMQPClass::Tx(amq_protocol::protocol::tx::AMQPMethod::CommitOk(
                        amq_protocol::protocol::tx::CommitOk {},
                    )),
                };
                codec::method(&mut out, *id, method);
            }
        }
        self.out = out;
        self.hold = held;
    }

    fn update_blocked(&mut self) {
        if !self.published || self.phase != Phase::Running {
            return;
        }
        let memory = self.state.memory_alarm();
        let alarm = memory || self.state.disk_alarm();
        if alarm && !self.blocked {
            self.blocked = true;
            if self.caps.connection_blocked {
                // RabbitMQ names the alarm's resource.
                let reason = if memory { "low on memory" } else { "low on disk" };
                codec::method(
                    &mut self.out,
                    0,
                    AMQPClass::Connection(conn::AMQPMethod::Blocked(conn::Blocked { reason: reason.into() })),
                );
            }
        } else if !alarm && self.blocked {
            self.blocked = false;
            if self.caps.connection_blocked {
                codec::method(&mut self.out, 0, AMQPClass::Connection(conn::AMQPMethod::Unblocked(conn::Unblocked {})));
            }
        }
    }

    fn handle_frame(&mut self, frame: Frame) {
        match self.phase {
            Phase::StartOk | Phase::TuneOk | Phase::Open => {
                if let Err(fail) = handshake::handle(self, frame) {
                    self.close_connection(fail, 0, 0);
                }
            }
            Phase::Closing => {
                if let Frame::Method(0, AMQPClass::Connection(m)) = frame {
                    match m {
                        conn::AMQPMethod::CloseOk(_) => self.phase = Phase::Done,
                        conn::AMQPMethod::Close(_) => {
                            self.send(0, AMQPClass::Connection(conn::AMQPMethod::CloseOk(conn::CloseOk {})));
                            self.phase = Phase::Done;
                        }
                        _ => {}
                    }
                }
            }
            Phase::Running => self.handle_running(frame),
            Phase::Header | Phase::Done => {}
        }
    }

    fn handle_running(&mut self, frame: Frame) {
        let (channel, class_method) = match &frame {
            Frame::Heartbeat => return,
            Frame::Method(ch, class) => (*ch, (class.get_amqp_class_id(), class.get_amqp_method_id())),
            Frame::QosPrefetchSize(ch, _) => (*ch, (60, 10)),
            Frame::Header(ch, ..) | Frame::Body(ch, _) => (*ch, (0, 0)),
        };
        if channel == 0 {
            let result = match frame {
                Frame::Method(_, AMQPClass::Connection(m)) => self.connection_method(m),
                Frame::Method(_, _) | Frame::QosPrefetchSize(..) => {
                    Err(Fail::command_invalid("only connection methods are allowed on channel 0".to_string()))
                }
                _ => Err(Fail::connection(505, "UNEXPECTED_FRAME - content frame on channel 0")),
            };
            if let Err(fail) = result {
                self.close_connection(fail, class_method.0, class_method.1);
            }
            return;
        }
        if let Frame::Method(_, AMQPClass::Channel(m)) = &frame {
            let result = self.channel_method(channel, m.clone());
            if let Err(fail) = result {
                self.fail(channel, fail, class_method);
            }
            return;
        }
        match self.channels.get(&channel).map(|c| c.phase) {
            None => {
                let fail = Fail::channel_error(format!("expected 'channel.open' on channel {channel}"));
                self.close_connection(fail, class_method.0, class_method.1);
                return;
            }
            Some(ChannelPhase::Closing) => return,
            Some(ChannelPhase::Open) => {}
        }
        let result = match frame {
            Frame::Method(ch, class) => {
                if self.channels.get(&ch).is_some_and(|c| c.incoming.is_some()) {
                    Err(Fail::connection(
                        505,
                        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
                    ))
                } else {
                    self.method(ch, class)
                }
            }
            Frame::QosPrefetchSize(_, size) => Err(Fail::not_implemented(format!("prefetch_size!=0 ({size})"))),
            Frame::Header(ch, class_id, size, props) => basic::content_header(self, ch, class_id, size, props),
            Frame::Body(ch, bytes) => basic::content_body(self, ch, bytes),
            Frame::Heartbeat => Ok(()),
        };
        if let Err(fail) = result {
            self.fail(channel, fail, class_method);
        }
    }

    fn fail(&mut self, channel: u16, fail: Fail, (class_id, method_id): (u16, u16)) {
        match fail.level {
            Level::Channel => self.close_channel(channel, fail, class_id, method_id),
            Level::Connection => self.close_connection(fail, class_id, method_id),
        }
    }

    fn method(&mut self, channel: u16, class: AMQPClass) -> Result<(), Fail> {
        match class {
            AMQPClass::Basic(m) => basic::handle(self, channel, m),
            AMQPClass::Exchange(m) => declare::exchange(self, channel, m),
            AMQPClass::Queue(m) => declare::queue(self, channel, m),
            AMQPClass::Tx(m) => basic::tx(self, channel, m),
            AMQPClass::Confirm(m) => basic::confirm(self, channel, m),
            AMQPClass::Access(_) => {
                self.send(
                    channel,
                    AMQPClass::Access(amq_protocol::protocol::access::AMQPMethod::RequestOk(
                        amq_protocol::protocol::access::RequestOk {},
                    )),
                );
                Ok(())
            }
            AMQPClass::Connection(_) | AMQPClass::Channel(_) => {
                Err(Fail::command_invalid(format!("connection method on channel {channel}")))
            }
        }
    }

    fn connection_method(&mut self, m: conn::AMQPMethod) -> Result<(), Fail> {
        match m {
            conn::AMQPMethod::Close(_) => {
                self.teardown_all();
                self.send(0, AMQPClass::Connection(conn::AMQPMethod::CloseOk(conn::CloseOk {})));
                self.phase = Phase::Done;
                self.client_closed = true;
                Ok(())
            }
            conn::AMQPMethod::UpdateSecret(_) => {
                self.send(0, AMQPClass::Connection(conn::AMQPMethod::UpdateSecretOk(conn::UpdateSecretOk {})));
                Ok(())
            }
            conn::AMQPMethod::Blocked(_) | conn::AMQPMethod::Unblocked(_) => Ok(()),
            other => Err(Fail::command_invalid(format!(
                "unexpected connection method {} after the handshake",
                AMQPClass::Connection(other).get_amqp_method_id()
            ))),
        }
    }

    fn channel_method(&mut self, channel: u16, m: chan::AMQPMethod) -> Result<(), Fail> {
        match m {
            chan::AMQPMethod::Open(_) => {
                if self.channels.contains_key(&channel) {
                    return Err(Fail::channel_error(format!("second 'channel.open' seen on channel {channel}")));
                }
                if channel > self.channel_max {
                    return Err(Fail::channel_error(format!(
                        "channel {channel} is above the negotiated channel_max {}",
                        self.channel_max
                    )));
                }
                self.channels.insert(channel, Channel::new());
                self.channels_opened += 1;
                self.send(channel, AMQPClass::Channel(chan::AMQPMethod::OpenOk(chan::OpenOk {})));
                Ok(())
            }
            chan::AMQPMethod::Close(_) => {
                if !self.channels.contains_key(&channel) {
                    return Err(Fail::channel_error(format!("expected 'channel.open' on channel {channel}")));
                }
                self.teardown_channel(channel);
                self.remove_channel(channel);
                self.send(channel, AMQPClass::Channel(chan::AMQPMethod::CloseOk(chan::CloseOk {})));
                Ok(())
            }
            chan::AMQPMethod::CloseOk(_) => {
                if self.channels.get(&channel).is_some_and(|c| c.phase == ChannelPhase::Closing) {
                    self.remove_channel(channel);
                }
                Ok(())
            }
            chan::AMQPMethod::Flow(flow) => {
                let Some(ch) = self.channels.get(&channel) else {
                    return Err(Fail::channel_error(format!("expected 'channel.open' on channel {channel}")));
                };
                if ch.phase == ChannelPhase::Closing {
                    return Ok(());
                }
                if !flow.active {
                    // RabbitMQ does not let clients stop deliveries with flow; basic.qos is the way.
                    return Err(Fail::not_implemented("active=false"));
                }
                self.send(channel, AMQPClass::Channel(chan::AMQPMethod::FlowOk(chan::FlowOk { active: true })));
                Ok(())
            }
            chan::AMQPMethod::OpenOk(_) | chan::AMQPMethod::FlowOk(_) => {
                Err(Fail::command_invalid("server-to-client channel method sent by the client"))
            }
        }
    }

    /// Forgets a closed channel, keeping what it counted.
    fn remove_channel(&mut self, channel: u16) {
        if let Some(ch) = self.channels.remove(&channel) {
            self.closed_channels.add(&ch.stats);
            self.channels_closed += 1;
        }
    }

    /// Appends a method frame to the output batch.
    fn send(&mut self, channel: u16, class: AMQPClass) {
        codec::method(&mut self.out, channel, class);
    }

    /// Sends `channel.close`, releases the channel's consumers and unacked messages, and drops
    /// further frames on it until `close-ok`.
    fn close_channel(&mut self, channel: u16, fail: Fail, class_id: u16, method_id: u16) {
        if !self.channels.contains_key(&channel) {
            return;
        }
        self.teardown_channel(channel);
        if let Some(ch) = self.channels.get_mut(&channel) {
            ch.phase = ChannelPhase::Closing;
        }
        self.send(
            channel,
            AMQPClass::Channel(chan::AMQPMethod::Close(chan::Close {
                reply_code: fail.code,
                reply_text: short(&fail.text),
                class_id,
                method_id,
            })),
        );
    }

    /// Sends `connection.close` and waits (bounded) for `close-ok`.
    fn close_connection(&mut self, fail: Fail, class_id: u16, method_id: u16) {
        if matches!(self.phase, Phase::Closing | Phase::Done) {
            return;
        }
        tracing::debug!(peer = %self.peer, code = fail.code, "closing connection: {}", fail.text);
        self.teardown_all();
        self.send(
            0,
            AMQPClass::Connection(conn::AMQPMethod::Close(conn::Close {
                reply_code: fail.code,
                reply_text: short(&fail.text),
                class_id,
                method_id,
            })),
        );
        self.phase = Phase::Closing;
        self.closing_deadline = Some(Instant::now() + Duration::from_secs(3));
    }

    fn teardown_all(&mut self) {
        let ids: Vec<u16> = self.channels.keys().copied().collect();
        for id in ids {
            self.teardown_channel(id);
        }
    }

    /// Cancels the channel's consumers and requeues its unacked messages in delivery order.
    fn teardown_channel(&mut self, channel: u16) {
        let Some(ch) = self.channels.get_mut(&channel) else { return };
        let consumers: Vec<_> = ch.consumers.drain().collect();
        let unacked: Vec<_> = ch.unacked.drain(..).collect();
        ch.incoming = None;
        ch.tx = None;
        let mut auto_delete = Vec::new();
        for (tag, info) in consumers {
            if info.queue.remove_consumer(self.id, channel, &tag) {
                auto_delete.push(info.queue);
            }
        }
        // Deliveries already queued for this channel go back too.
        self.requeue_outbox_for(Some(channel));
        basic::requeue_grouped(unacked, &mut self.dead);
        for q in auto_delete {
            self.state.auto_delete_queue(&q);
        }
    }

    /// Returns deliveries waiting in the outbox for a channel (or all) to their queues.
    fn requeue_outbox_for(&mut self, channel: Option<u16>) {
        let mut items = Vec::new();
        self.outbox.drain_into(&mut items);
        for item in items {
            match item {
                Outgoing::Deliver(d) if channel.is_none_or(|c| c == d.channel) => {
                    if d.ack_required {
                        d.credit.release(1);
                        d.queue.requeue(vec![d.message], &mut self.dead);
                    }
                }
                other => self.drained.push(other),
            }
        }
    }

    /// Writes deliveries and cancel notifications queued by queues since the last batch.
    fn deliver_outbox(&mut self) {
        let mut items = std::mem::take(&mut self.drained);
        self.outbox.drain_into(&mut items);
        for item in items.drain(..) {
            self.write_outgoing(item);
        }
        self.drained = items;
    }

    /// [`Connection::deliver_outbox`] for every channel but `channel`, whose items stay pending (in
    /// order, ahead of later ones) until the end of the batch.
    fn deliver_outbox_except(&mut self, channel: u16) {
        let mut items = std::mem::take(&mut self.drained);
        self.outbox.drain_into(&mut items);
        let mut held = Vec::new();
        for item in items {
            if item.channel() == channel {
                held.push(item);
            } else {
                self.write_outgoing(item);
            }
        }
        self.drained = held;
    }

    fn write_outgoing(&mut self, item: Outgoing) {
        match item {
            Outgoing::Deliver(d) => basic::write_delivery(self, d),
            Outgoing::Cancelled { channel, tag } => {
                let Some(ch) = self.channels.get_mut(&channel) else { return };
                if ch.consumers.remove(&tag).is_some() && self.caps.consumer_cancel_notify {
                    codec::method(
                        &mut self.out,
                        channel,
                        AMQPClass::Basic(amq_protocol::protocol::basic::AMQPMethod::Cancel(
                            amq_protocol::protocol::basic::Cancel { consumer_tag: short(&tag), nowait: true },
                        )),
                    );
                }
            }
            Outgoing::Close { code, text } => {
                if self.phase == Phase::Running {
                    self.close_connection(Fail::connection(code, text), 0, 0);
                }
            }
        }
    }

    /// Queues one `basic.ack(multiple)` per channel for the run of publishes this batch confirmed.
    fn flush_confirms(&mut self) {
        for ch in self.channels.values_mut() {
            if let Some(c) = ch.confirms.as_mut()
                && c.ack_upto > c.confirmed
            {
                ch.replies.push_back((channel::Reply::PENDING, channel::Reply::Ack(c.ack_upto)));
                c.confirmed = c.ack_upto;
            }
        }
    }

    /// Remembers a queue whose store this batch may have written to.
    pub(super) fn touch(&mut self, queue: &Arc<crate::state::queue::Queue>) {
        if self.stored && !self.touched.iter().any(|t| Arc::ptr_eq(t, queue)) {
            self.touched.push(Arc::clone(queue));
        }
    }
}

/// A short string from text that may be longer than 255 bytes (cut at a char boundary).
pub(crate) fn short(s: &str) -> amq_protocol::types::ShortString {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].into()
}
