//! `basic.*`, `confirm.select` and `tx.*`: publishing, consuming, acknowledging.

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic, confirm as cf, tx as txm};
use amq_protocol::types::FieldTable;
use bytes::Bytes;
use rand::RngCore as _;

use super::channel::{BodyParts, Confirms, ConsumerInfo, Incoming, Reply, TxOp, Unacked};
use super::{Connection, Fail, codec, short};
use crate::state::auth::Access;
use crate::state::message::Message;
use crate::state::queue::{Consumer, Credit, DeadLetter, Delivery, Enqueued, Queue, QueuedMessage};
use crate::state::{EntityKind, args};

pub(super) fn handle(c: &mut Connection, channel: u16, m: basic::AMQPMethod) -> Result<(), Fail> {
    match m {
        basic::AMQPMethod::Publish(p) => {
            if p.immediate {
                return Err(Fail::not_implemented("immediate=true"));
            }
            let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
            ch.incoming = Some(Incoming { publish: p, properties: None, body_size: 0, body: BodyParts::Empty });
            Ok(())
        }
        basic::AMQPMethod::Ack(a) => {
            if let Some(ops) = c.channels.get_mut(&channel).and_then(|ch| ch.tx.as_mut()) {
                ops.push(TxOp::Ack { tag: a.delivery_tag, multiple: a.multiple });
                return Ok(());
            }
            ack(c, channel, a.delivery_tag, a.multiple)
        }
        basic::AMQPMethod::Nack(n) => {
            if let Some(ops) = c.channels.get_mut(&channel).and_then(|ch| ch.tx.as_mut()) {
                ops.push(TxOp::Nack { tag: n.delivery_tag, multiple: n.multiple, requeue: n.requeue });
                return Ok(());
            }
            nack(c, channel, n.delivery_tag, n.multiple, n.requeue)
        }
        basic::AMQPMethod::Reject(r) => {
            if let Some(ops) = c.channels.get_mut(&channel).and_then(|ch| ch.tx.as_mut()) {
                ops.push(TxOp::Nack { tag: r.delivery_tag, multiple: false, requeue: r.requeue });
                return Ok(());
            }
            nack(c, channel, r.delivery_tag, false, r.requeue)
        }
        basic::AMQPMethod::Qos(q) => qos(c, channel, q),
        basic::AMQPMethod::Consume(m) => consume(c, channel, m),
        basic::AMQPMethod::Cancel(m) => cancel(c, channel, m),
        basic::AMQPMethod::Get(g) => get(c, channel, g),
        basic::AMQPMethod::Recover(r) => {
            if !r.requeue {
                return Err(Fail::not_implemented("requeue=false"));
            }
            recover(c, channel);
            c.send(channel, AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})));
            Ok(())
        }
        basic::AMQPMethod::RecoverAsync(r) => {
            if !r.requeue {
                return Err(Fail::not_implemented("requeue=false"));
            }
            recover(c, channel);
            Ok(())
        }
        other => Err(Fail::command_invalid(format!(
            "server-to-client basic method {} sent by the client",
            AMQPClass::Basic(other).get_amqp_method_id()
        ))),
    }
}

pub(super) fn content_header(
    c: &mut Connection,
    channel: u16,
    class_id: u16,
    body_size: u64,
    properties: Bytes,
) -> Result<(), Fail> {
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    let Some(incoming) = ch.incoming.as_mut().filter(|i| i.properties.is_none()) else {
        return Err(Fail::connection(505, "UNEXPECTED_FRAME - content header without a preceding basic.publish"));
    };
    if class_id != 60 {
        return Err(Fail::connection(
            505,
            format!("UNEXPECTED_FRAME - content header for class {class_id}, expected 60"),
        ));
    }
    incoming.properties = Some(properties);
    incoming.body_size = body_size;
    if body_size == 0 {
        return complete_publish(c, channel);
    }
    Ok(())
}

pub(super) fn content_body(c: &mut Connection, channel: u16, bytes: Bytes) -> Result<(), Fail> {
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    let Some(incoming) = ch.incoming.as_mut().filter(|i| i.properties.is_some()) else {
        return Err(Fail::connection(505, "UNEXPECTED_FRAME - content body without a preceding content header"));
    };
    let received = incoming.body.len() as u64 + bytes.len() as u64;
    if received > incoming.body_size {
        return Err(Fail::connection(
            505,
            format!(
                "UNEXPECTED_FRAME - content body of {received} bytes exceeds the {} bytes the header announced",
                incoming.body_size
            ),
        ));
    }
    incoming.body.push(bytes);
    if received == incoming.body_size {
        return complete_publish(c, channel);
    }
    Ok(())
}

/// What the publish needs from the properties, decoded once.
struct PropertyFacts {
    priority: u8,
    expiration_ms: Option<u64>,
    persistent: bool,
    headers: Option<FieldTable>,
}

fn property_facts(c: &Connection, raw: &[u8]) -> Result<PropertyFacts, Fail> {
    // Fast path: no properties at all (flags are zero).
    if raw.len() == 2 && raw == [0, 0] {
        return Ok(PropertyFacts { priority: 0, expiration_ms: None, persistent: false, headers: None });
    }
    let props = crate::state::decode_properties(raw)
        .ok_or_else(|| Fail::connection(502, "SYNTAX_ERROR - content header properties do not decode"))?;
    if let Some(user_id) = props.user_id() {
        let login = c.user.as_ref().map(|u| u.name.as_str()).unwrap_or_default();
        if user_id.as_str() != login {
            return Err(Fail::precondition(format!(
                "user_id property set to '{}' but authenticated user was '{login}'",
                user_id.as_str()
            )));
        }
    }
    // After user_id, as RabbitMQ checks them.
    let expiration_ms = match props.expiration() {
        None => None,
        Some(s) => Some(
            s.as_str()
                .parse::<u64>()
                .map_err(|_| Fail::precondition(format!("invalid expiration '{}': no_integer", s.as_str())))?,
        ),
    };
    Ok(PropertyFacts {
        priority: props.priority().unwrap_or(0),
        expiration_ms,
        persistent: *props.delivery_mode() == Some(2),
        headers: props.headers().clone(),
    })
}

fn complete_publish(c: &mut Connection, channel: u16) -> Result<(), Fail> {
    let Some(ch) = c.channels.get_mut(&channel) else { return Ok(()) };
    let Some(incoming) = ch.incoming.take() else { return Ok(()) };
    let properties = incoming.properties.unwrap_or_default();
    // RabbitMQ's order: write permission, the exchange (404, internal), topic permission, and
    // only then the properties (user_id, expiration). A property error is kept until the checks
    // before it have passed.
    let facts = property_facts(c, &properties);
    let exchange = c.names.intern(incoming.publish.exchange.as_str());
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    if !ch.write_allowed.iter().any(|allowed| **allowed == *exchange) {
        let user = c.user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
        c.state.check_access(&user, &c.vhost, Access::Write, EntityKind::Exchange, &exchange)?;
        if let Some(ch) = c.channels.get_mut(&channel) {
            ch.write_allowed.push(Arc::clone(&exchange));
        }
    }
    if facts.is_err() {
        // Only on this rare path: publishing itself looks the exchange up while routing.
        c.state.route(&c.vhost, &exchange, "", None, true, &mut Vec::new())?;
    }
    c.check_topic(Access::Write, &exchange, incoming.publish.routing_key.as_str())?;
    let facts = facts?;
    c.published = true;
    let message = Arc::new(Message {
        routing_key: c.names.intern(incoming.publish.routing_key.as_str()),
        exchange,
        properties: if properties[..] == [0, 0] {
            Bytes::from_static(&[0, 0])
        } else if properties.len() <= 256 {
            c.arena.copy(&properties)
        } else {
            properties
        },
        body: incoming.body.finish(&mut c.arena),
        priority: facts.priority,
        expiration_ms: facts.expiration_ms,
        persistent: facts.persistent,
    });
    if let Some(ops) = c.channels.get_mut(&channel).and_then(|ch| ch.tx.as_mut()) {
        // Unknown exchanges still fail at publish time, as in RabbitMQ.
        let mut probe = Vec::new();
        c.state.route(&c.vhost, &message.exchange, "", None, true, &mut probe).map(|_| ())?;
        ops.push(TxOp::Publish { mandatory: incoming.publish.mandatory, message, headers: facts.headers });
        return Ok(());
    }
    publish(c, channel, incoming.publish.mandatory, message, facts.headers.as_ref())
}

fn publish(
    c: &mut Connection,
    channel: u16,
    mandatory: bool,
    message: Arc<Message>,
    headers: Option<&FieldTable>,
) -> Result<(), Fail> {
    // The routing buffer is reused across publishes: no allocation per message.
    let mut queues = std::mem::take(&mut c.route_buf);
    queues.clear();
    let routed = c.state.route(&c.vhost, &message.exchange, &message.routing_key, headers, true, &mut queues);
    let mut rejected = false;
    for q in &queues {
        match q.publish(Arc::clone(&message), &mut c.dead) {
            Enqueued::Rejected => rejected = true,
            Enqueued::Persisted => c.needs_sync = true,
            Enqueued::Accepted => {}
        }
        c.tallies.queue(q).publish += 1;
    }
    let routed_to = queues.len();
    if c.stored {
        for q in &queues {
            c.touch(q);
        }
    }
    let unroutable = queues.is_empty();
    queues.clear();
    c.route_buf = queues;
    routed?;
    c.tallies.exchange_published(&message.exchange, routed_to);
    if unroutable && mandatory {
        c.send(
            channel,
            AMQPClass::Basic(basic::AMQPMethod::Return(basic::Return {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: (&*message.exchange).into(),
                routing_key: short(&message.routing_key),
            })),
        );
        codec::content(&mut c.out, channel, &message.properties, &message.body, c.frame_max);
    }
    let Some(ch) = c.channels.get_mut(&channel) else { return Ok(()) };
    ch.stats.publish += 1;
    if unroutable {
        if mandatory {
            ch.stats.return_unroutable += 1;
        } else {
            ch.stats.drop_unroutable += 1;
        }
    }
    let Some(confirms) = ch.confirms.as_mut() else { return Ok(()) };
    confirms.next_seq += 1;
    let seq = confirms.next_seq;
    if rejected {
        // The run so far is acked first, then the refusal; both in order with what waits.
        let pending_ack = (confirms.ack_upto > confirms.confirmed).then_some(confirms.ack_upto);
        confirms.confirmed = seq;
        confirms.ack_upto = seq;
        if let Some(tag) = pending_ack {
            ch.replies.push_back((Reply::PENDING, Reply::Ack(tag)));
        }
        ch.replies.push_back((Reply::PENDING, Reply::Nack(seq)));
    } else {
        confirms.ack_upto = seq;
    }
    Ok(())
}

/// Writes one delivery from the outbox, assigning its delivery tag.
pub(super) fn write_delivery(c: &mut Connection, d: Delivery) {
    let Some(ch) = c.channels.get_mut(&d.channel).filter(|ch| ch.phase == super::channel::ChannelPhase::Open) else {
        if d.ack_required {
            d.credit.release(1);
            d.queue.requeue(vec![d.message], &mut c.dead);
        }
        return;
    };
    let tag = ch.next_tag;
    ch.next_tag += 1;
    ch.stats.handed_out(false, d.ack_required, d.message.redelivered);
    c.tallies.queue(&d.queue).handed_out(false, d.ack_required, d.message.redelivered);
    let m = &d.message.message;
    codec::deliver(
        &mut c.out,
        &codec::Deliver {
            channel: d.channel,
            consumer_tag: &d.consumer_tag,
            delivery_tag: tag,
            redelivered: d.message.redelivered,
            exchange: &m.exchange,
            routing_key: &m.routing_key,
        },
        &m.properties,
        &m.body,
        c.frame_max,
    );
    if d.ack_required {
        ch.unacked.push_back(Unacked { tag, queue: d.queue, message: d.message, credit: Some(d.credit) });
    }
}

/// Groups consecutive entries by queue so each queue is locked once per run.
fn by_queue(entries: Vec<Unacked>) -> Vec<(Arc<Queue>, Vec<Unacked>)> {
    let mut groups: Vec<(Arc<Queue>, Vec<Unacked>)> = Vec::new();
    for u in entries {
        match groups.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &u.queue)) {
            Some((_, list)) => list.push(u),
            None => groups.push((Arc::clone(&u.queue), vec![u])),
        }
    }
    groups
}

fn release_credit(entries: &[Unacked]) {
    for u in entries {
        if let Some(credit) = &u.credit {
            credit.release(1);
        }
    }
}

fn ack(c: &mut Connection, channel: u16, tag: u64, multiple: bool) -> Result<(), Fail> {
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    let entries =
        ch.take_acked(tag, multiple).ok_or_else(|| Fail::precondition(format!("unknown delivery tag {tag}")))?;
    // Only a channel consuming from several queues needs them all re-dispatched (global qos).
    let consumed: Vec<Arc<Queue>> =
        if ch.consumers.len() > 1 { ch.consumers.values().map(|i| Arc::clone(&i.queue)).collect() } else { Vec::new() };
    ch.stats.ack += entries.len() as u64;
    release_credit(&entries);
    for (queue, list) in by_queue(entries) {
        c.tallies.queue(&queue).ack += list.len() as u64;
        queue.ack(list.into_iter().map(|u| u.message));
        queue.dispatch(&mut c.dead);
        c.touch(&queue);
    }
    dispatch_all(c, consumed);
    Ok(())
}

/// With a channel-wide prefetch, freeing credit on one queue can unblock others.
fn dispatch_all(c: &mut Connection, queues: Vec<Arc<Queue>>) {
    if queues.len() > 1 {
        for q in queues {
            q.dispatch(&mut c.dead);
        }
    }
}

fn nack(c: &mut Connection, channel: u16, tag: u64, multiple: bool, requeue: bool) -> Result<(), Fail> {
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    let entries =
        ch.take_acked(tag, multiple).ok_or_else(|| Fail::precondition(format!("unknown delivery tag {tag}")))?;
    release_credit(&entries);
    for (queue, list) in by_queue(entries) {
        c.touch(&queue);
        let messages: Vec<QueuedMessage> = list.into_iter().map(|u| u.message).collect();
        if requeue {
            queue.requeue(messages, &mut c.dead);
        } else {
            queue.reject(messages, &mut c.dead);
            queue.dispatch(&mut c.dead);
        }
    }
    Ok(())
}

/// Requeues unacked entries, each queue's in delivery order.
pub(super) fn requeue_grouped(entries: Vec<Unacked>, dead: &mut Vec<DeadLetter>) {
    release_credit(&entries);
    for (queue, list) in by_queue(entries) {
        queue.requeue(list.into_iter().map(|u| u.message).collect(), dead);
    }
}

fn recover(c: &mut Connection, channel: u16) {
    let Some(ch) = c.channels.get_mut(&channel) else { return };
    let entries: Vec<Unacked> = ch.unacked.drain(..).collect();
    requeue_grouped(entries, &mut c.dead);
}

fn qos(c: &mut Connection, channel: u16, q: basic::Qos) -> Result<(), Fail> {
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    if q.global {
        ch.credit.prefetch.store(u32::from(q.prefetch_count), std::sync::atomic::Ordering::Relaxed);
    } else {
        ch.consumer_prefetch = u32::from(q.prefetch_count);
    }
    let queues: Vec<Arc<Queue>> = ch.consumers.values().map(|i| Arc::clone(&i.queue)).collect();
    c.send(channel, AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})));
    for q in queues {
        q.dispatch(&mut c.dead);
    }
    Ok(())
}

fn consume(c: &mut Connection, channel: u16, m: basic::Consume) -> Result<(), Fail> {
    let queue_name = c.resolve_queue(channel, m.queue.as_str())?;
    let queue = c.state.queue_for(&c.vhost, &queue_name, c.id)?;
    c.check(Access::Read, EntityKind::Queue, &queue_name)?;
    let tag: Arc<str> = if m.consumer_tag.as_str().is_empty() {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        use base64::Engine as _;
        format!("amq.ctag-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)).into()
    } else {
        m.consumer_tag.as_str().into()
    };
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    if ch.consumers.contains_key(&tag) {
        return Err(Fail::connection(530, format!("NOT_ALLOWED - attempt to reuse consumer tag '{tag}'")));
    }
    let priority = m.arguments.inner().get("x-priority").and_then(args::as_i64).unwrap_or(0);
    let credit = Arc::new(Credit {
        prefetch: ch.consumer_prefetch,
        in_flight: Default::default(),
        channel: Arc::clone(&ch.credit),
    });
    let consumer = Consumer {
        tag: Arc::clone(&tag),
        channel,
        connection: c.id,
        outbox: Arc::clone(&c.outbox),
        no_ack: m.no_ack,
        exclusive: m.exclusive,
        priority,
        credit,
    };
    // consume-ok must precede the first delivery: write it before the queue can dispatch.
    if !m.nowait {
        c.send(channel, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk { consumer_tag: short(&tag) })));
    }
    let mark = c.out.len();
    c.touch(&queue);
    if let Err(reason) = queue.add_consumer(consumer, &mut c.dead) {
        c.out.truncate(if m.nowait { mark } else { mark - consume_ok_len(&tag) });
        return Err(Fail::channel(403, format!("ACCESS_REFUSED - {reason}")));
    }
    if let Some(ch) = c.channels.get_mut(&channel) {
        ch.consumers.insert(tag, ConsumerInfo { queue });
    }
    Ok(())
}

/// Size of the consume-ok frame just written, so a refused consume can take it back.
fn consume_ok_len(tag: &str) -> usize {
    let mut buf = Vec::new();
    codec::method(
        &mut buf,
        0,
        AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk { consumer_tag: short(tag) })),
    );
    buf.len()
}

fn cancel(c: &mut Connection, channel: u16, m: basic::Cancel) -> Result<(), Fail> {
    let tag: Arc<str> = m.consumer_tag.as_str().into();
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    if let Some(info) = ch.consumers.remove(&tag) {
        let auto_delete = info.queue.remove_consumer(c.id, channel, &tag);
        // Deliveries the queue already handed over go out before cancel-ok.
        c.deliver_outbox();
        if auto_delete {
            c.state.auto_delete_queue(&info.queue);
        }
    }
    if !m.nowait {
        c.send(
            channel,
            AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk { consumer_tag: m.consumer_tag })),
        );
    }
    Ok(())
}

fn get(c: &mut Connection, channel: u16, g: basic::Get) -> Result<(), Fail> {
    let queue_name = c.resolve_queue(channel, g.queue.as_str())?;
    let queue = c.state.queue_for(&c.vhost, &queue_name, c.id)?;
    c.check(Access::Read, EntityKind::Queue, &queue_name)?;
    c.touch(&queue);
    let Some((entry, left)) = queue.get(g.no_ack, &mut c.dead) else {
        c.tallies.queue(&queue).get_empty += 1;
        if let Some(ch) = c.channels.get_mut(&channel) {
            ch.stats.get_empty += 1;
        }
        c.send(channel, AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})));
        return Ok(());
    };
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    let tag = ch.next_tag;
    ch.next_tag += 1;
    ch.stats.handed_out(true, !g.no_ack, entry.redelivered);
    c.tallies.queue(&queue).handed_out(true, !g.no_ack, entry.redelivered);
    let m = Arc::clone(&entry.message);
    codec::method(
        &mut c.out,
        channel,
        AMQPClass::Basic(basic::AMQPMethod::GetOk(basic::GetOk {
            delivery_tag: tag,
            redelivered: entry.redelivered,
            exchange: (&*m.exchange).into(),
            routing_key: short(&m.routing_key),
            message_count: left as u32,
        })),
    );
    codec::content(&mut c.out, channel, &m.properties, &m.body, c.frame_max);
    if !g.no_ack
        && let Some(ch) = c.channels.get_mut(&channel)
    {
        ch.unacked.push_back(Unacked { tag, queue, message: entry, credit: None });
    }
    Ok(())
}

pub(super) fn confirm(c: &mut Connection, channel: u16, m: cf::AMQPMethod) -> Result<(), Fail> {
    let cf::AMQPMethod::Select(s) = m else {
        return Err(Fail::command_invalid("confirm.select-ok sent by the client"));
    };
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    if ch.tx.is_some() {
        return Err(Fail::precondition("cannot switch from tx to confirm mode"));
    }
    if ch.confirms.is_none() {
        ch.confirms = Some(Confirms::default());
    }
    if !s.nowait {
        c.send(channel, AMQPClass::Confirm(cf::AMQPMethod::SelectOk(cf::SelectOk {})));
    }
    Ok(())
}

pub(super) fn tx(c: &mut Connection, channel: u16, m: txm::AMQPMethod) -> Result<(), Fail> {
    let ch = c.channels.get_mut(&channel).ok_or_else(|| Fail::channel_error("channel closed"))?;
    match m {
        txm::AMQPMethod::Select(_) => {
            if ch.confirms.is_some() {
                return Err(Fail::precondition("cannot switch from confirm to tx mode"));
            }
            if ch.tx.is_none() {
                ch.tx = Some(Vec::new());
            }
            c.send(channel, AMQPClass::Tx(txm::AMQPMethod::SelectOk(txm::SelectOk {})));
            Ok(())
        }
        txm::AMQPMethod::Commit(_) => {
            let Some(ops) = ch.tx.as_mut().map(std::mem::take) else {
                return Err(Fail::precondition("channel is not transactional"));
            };
            for op in ops {
                match op {
                    TxOp::Publish { mandatory, message, headers } => {
                        publish(c, channel, mandatory, message, headers.as_ref())?;
                    }
                    TxOp::Ack { tag, multiple } => ack(c, channel, tag, multiple)?,
                    TxOp::Nack { tag, multiple, requeue } => nack(c, channel, tag, multiple, requeue)?,
                }
            }
            // With persistent messages written, commit-ok waits for their sync, and the
            // connection reads no further frames until it is out (replies stay in order).
            match c.channels.get_mut(&channel) {
                Some(ch) if c.needs_sync || !ch.replies.is_empty() => {
                    ch.replies.push_back((Reply::PENDING, Reply::CommitOk));
                    c.hold = true;
                }
                _ => c.send(channel, AMQPClass::Tx(txm::AMQPMethod::CommitOk(txm::CommitOk {}))),
            }
            Ok(())
        }
        txm::AMQPMethod::Rollback(_) => {
            let Some(ops) = ch.tx.as_mut() else {
                return Err(Fail::precondition("channel is not transactional"));
            };
            ops.clear();
            c.send(channel, AMQPClass::Tx(txm::AMQPMethod::RollbackOk(txm::RollbackOk {})));
            Ok(())
        }
        _ => Err(Fail::command_invalid("server-to-client tx method sent by the client")),
    }
}
