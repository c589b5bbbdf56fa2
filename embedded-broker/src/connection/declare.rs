//! `exchange.*` and `queue.*` methods.

use amq_protocol::protocol::{AMQPClass, exchange as ex, queue as qu};
use base64::Engine as _;
use rand::RngCore as _;

use super::{Connection, Fail};
use crate::state::auth::Access;
use crate::state::exchange::{Binding, DestinationKind};
use crate::state::{EntityKind, ExchangeDecl, QueueDecl, StateError};

impl Connection {
    fn user_name(&self) -> String {
        self.user.as_ref().map(|u| u.name.clone()).unwrap_or_default()
    }

    pub(super) fn check(&self, access: Access, kind: EntityKind, name: &str) -> Result<(), Fail> {
        self.state.check_access(&self.user_name(), &self.vhost, access, kind, name).map_err(Fail::from)
    }

    /// An exchange-to-exchange binding, once the user may write to its destination, read from its
    /// source, and (topic permissions) read the routing key from it (as for `exchange.bind` and
    /// `unbind`).
    fn exchange_binding(
        &mut self,
        source: &amq_protocol::types::ShortString,
        destination: &amq_protocol::types::ShortString,
        routing_key: &amq_protocol::types::ShortString,
        arguments: amq_protocol::types::FieldTable,
    ) -> Result<Binding, Fail> {
        self.check(Access::Write, EntityKind::Exchange, destination.as_str())?;
        self.check(Access::Read, EntityKind::Exchange, source.as_str())?;
        self.check_topic(Access::Read, source.as_str(), routing_key.as_str())?;
        Ok(Binding {
            source: source.as_str().to_owned(),
            destination: destination.as_str().to_owned(),
            destination_kind: DestinationKind::Exchange,
            routing_key: routing_key.as_str().to_owned(),
            arguments,
        })
    }

    /// An empty queue name means the channel's last declared queue (404-free only if there is one).
    pub(super) fn resolve_queue(&self, channel: u16, name: &str) -> Result<String, Fail> {
        if !name.is_empty() {
            return Ok(name.to_owned());
        }
        self.channels
            .get(&channel)
            .and_then(|c| c.last_queue.clone())
            .ok_or_else(|| Fail::not_found("no previously declared queue"))
    }
}

pub(super) fn exchange(c: &mut Connection, channel: u16, m: ex::AMQPMethod) -> Result<(), Fail> {
    let vhost = c.vhost.clone();
    match m {
        ex::AMQPMethod::Declare(d) => {
            let name = d.exchange.as_str().to_owned();
            if d.passive {
                c.state.exchange(&vhost, &name).map_err(Fail::from)?;
            } else {
                if crate::state::exchange::ExchangeKind::parse(d.kind.as_str()).is_none() {
                    return Err(Fail::command_invalid(format!("unknown exchange type '{}'", d.kind.as_str())));
                }
                if name.is_empty() {
                    return Err(Fail::channel(403, "ACCESS_REFUSED - operation not permitted on the default exchange"));
                }
                c.check(Access::Configure, EntityKind::Exchange, &name)?;
                if let Some(ae) = d.arguments.inner().get("alternate-exchange").and_then(crate::state::args::as_str) {
                    c.check(Access::Write, EntityKind::Exchange, &ae)?;
                }
                let decl = ExchangeDecl {
                    name,
                    kind: d.kind.as_str().to_owned(),
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: d.arguments,
                };
                c.state.declare_exchange(&vhost, decl, true)?;
            }
            if !d.nowait {
                c.send(channel, AMQPClass::Exchange(ex::AMQPMethod::DeclareOk(ex::DeclareOk {})));
            }
            Ok(())
        }
        ex::AMQPMethod::Delete(d) => {
            let name = d.exchange.as_str().to_owned();
            if name.is_empty() || name.starts_with("amq.") {
                return Err(Fail::channel(
                    403,
                    format!("ACCESS_REFUSED - operation not permitted on exchange '{name}' in vhost '{vhost}'"),
                ));
            }
            c.check(Access::Configure, EntityKind::Exchange, &name)?;
            match c.state.delete_exchange(&vhost, &name, d.if_unused) {
                // Deleting a missing exchange succeeds, as in RabbitMQ.
                Ok(()) | Err(StateError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            if !d.nowait {
                c.send(channel, AMQPClass::Exchange(ex::AMQPMethod::DeleteOk(ex::DeleteOk {})));
            }
            Ok(())
        }
        ex::AMQPMethod::Bind(b) => {
            let binding = c.exchange_binding(&b.source, &b.destination, &b.routing_key, b.arguments)?;
            c.state.bind(&vhost, binding)?;
            if !b.nowait {
                c.send(channel, AMQPClass::Exchange(ex::AMQPMethod::BindOk(ex::BindOk {})));
            }
            Ok(())
        }
        ex::AMQPMethod::Unbind(b) => {
            let binding = c.exchange_binding(&b.source, &b.destination, &b.routing_key, b.arguments)?;
            c.state.unbind(&vhost, &binding)?;
            if !b.nowait {
                c.send(channel, AMQPClass::Exchange(ex::AMQPMethod::UnbindOk(ex::UnbindOk {})));
            }
            Ok(())
        }
        other => Err(Fail::command_invalid(format!(
            "server-to-client exchange method {} sent by the client",
            AMQPClass::Exchange(other).get_amqp_method_id()
        ))),
    }
}

fn generated_name() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    format!("amq.gen-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

pub(super) fn queue(c: &mut Connection, channel: u16, m: qu::AMQPMethod) -> Result<(), Fail> {
    let vhost = c.vhost.clone();
    match m {
        qu::AMQPMethod::Declare(d) => {
            let requested = d.queue.as_str().to_owned();
            let (name, counts) = if d.passive {
                let name = c.resolve_queue(channel, &requested)?;
                let q = c.state.queue_for(&vhost, &name, c.id)?;
                // A passive declare counts as use for x-expires, as in RabbitMQ.
                q.touch();
                (name, q.counts())
            } else {
                let name = if requested.is_empty() { generated_name() } else { requested };
                if name.starts_with("amq.") && !d.queue.as_str().is_empty() {
                    return Err(Fail::channel(
                        403,
                        format!("ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'"),
                    ));
                }
                c.check(Access::Configure, EntityKind::Queue, &name)?;
                if let Some(dlx) =
                    d.arguments.inner().get("x-dead-letter-exchange").and_then(crate::state::args::as_str)
                {
                    c.check(Access::Write, EntityKind::Exchange, &dlx)?;
                }
                let decl = QueueDecl {
                    name: name.clone(),
                    durable: d.durable,
                    exclusive_owner: d.exclusive.then_some(c.id),
                    auto_delete: d.auto_delete,
                    arguments: d.arguments,
                };
                let (q, _) = c.state.declare_queue(&vhost, decl)?;
                (name, q.counts())
            };
            if let Some(ch) = c.channels.get_mut(&channel) {
                ch.last_queue = Some(name.clone());
            }
            if !d.nowait {
                c.send(
                    channel,
                    AMQPClass::Queue(qu::AMQPMethod::DeclareOk(qu::DeclareOk {
                        queue: name.as_str().into(),
                        message_count: counts.ready as u32,
                        consumer_count: counts.consumers as u32,
                    })),
                );
            }
            Ok(())
        }
        qu::AMQPMethod::Bind(b) => {
            let queue = c.resolve_queue(channel, b.queue.as_str())?;
            let key = if b.routing_key.as_str().is_empty() && b.queue.as_str().is_empty() {
                queue.clone()
            } else {
                b.routing_key.as_str().to_owned()
            };
            let binding = queue_binding(c, &vhost, queue, b.exchange.as_str(), key, b.arguments)?;
            c.state.bind(&vhost, binding)?;
            if !b.nowait {
                c.send(channel, AMQPClass::Queue(qu::AMQPMethod::BindOk(qu::BindOk {})));
            }
            Ok(())
        }
        qu::AMQPMethod::Unbind(b) => {
            let queue = c.resolve_queue(channel, b.queue.as_str())?;
            let key = b.routing_key.as_str().to_owned();
            let binding = queue_binding(c, &vhost, queue, b.exchange.as_str(), key, b.arguments)?;
            c.state.unbind(&vhost, &binding)?;
            c.send(channel, AMQPClass::Queue(qu::AMQPMethod::UnbindOk(qu::UnbindOk {})));
            Ok(())
        }
        qu::AMQPMethod::Purge(p) => {
            let queue = c.resolve_queue(channel, p.queue.as_str())?;
            let q = c.state.queue_for(&vhost, &queue, c.id)?;
            c.check(Access::Read, EntityKind::Queue, &queue)?;
            let n = q.purge();
            if !p.nowait {
                c.send(channel, AMQPClass::Queue(qu::AMQPMethod::PurgeOk(qu::PurgeOk { message_count: n as u32 })));
            }
            Ok(())
        }
        qu::AMQPMethod::Delete(d) => {
            let queue = c.resolve_queue(channel, d.queue.as_str())?;
            let n = match c.state.queue_for(&vhost, &queue, c.id) {
                Ok(_) => {
                    c.check(Access::Configure, EntityKind::Queue, &queue)?;
                    match c.state.delete_queue(&vhost, &queue, d.if_unused, d.if_empty) {
                        Ok(n) => n,
                        Err(StateError::NotFound { .. }) => 0,
                        Err(e) => return Err(e.into()),
                    }
                }
                // Deleting a missing queue succeeds with a count of 0, as in RabbitMQ.
                Err(StateError::NotFound { .. }) => 0,
                Err(e) => return Err(e.into()),
            };
            // The consumers of the deleted queue were told through the outbox. In RabbitMQ the
            // deleting channel answers delete-ok first and only then handles the queue going down
            // (the basic.cancel for its own consumers, and whatever the queue had sent it): kombu,
            // waiting for delete-ok, raises ConsumerCancelled on a cancel that comes before it.
            // Consumers on other channels hear of it at once.
            c.deliver_outbox_except(channel);
            if !d.nowait {
                c.send(channel, AMQPClass::Queue(qu::AMQPMethod::DeleteOk(qu::DeleteOk { message_count: n as u32 })));
            }
            Ok(())
        }
        other => Err(Fail::command_invalid(format!(
            "server-to-client queue method {} sent by the client",
            AMQPClass::Queue(other).get_amqp_method_id()
        ))),
    }
}

/// The binding a `queue.bind`/`queue.unbind` names, after the checks RabbitMQ's `binding_action`
/// makes, in its order: write on the queue, the default exchange (403), read on the exchange, the
/// topic read pattern, and only then the queue itself (404, exclusive 405).
fn queue_binding(
    c: &mut Connection,
    vhost: &str,
    queue: String,
    exchange: &str,
    key: String,
    arguments: amq_protocol::types::FieldTable,
) -> Result<Binding, Fail> {
    c.check(Access::Write, EntityKind::Queue, &queue)?;
    if exchange.is_empty() {
        return Err(Fail::channel(
            403,
            format!("ACCESS_REFUSED - operation not permitted on the default exchange in vhost '{vhost}'"),
        ));
    }
    c.check(Access::Read, EntityKind::Exchange, exchange)?;
    c.check_topic(Access::Read, exchange, &key)?;
    c.state.queue_for(vhost, &queue, c.id)?;
    Ok(Binding {
        source: exchange.to_owned(),
        destination: queue,
        destination_kind: DestinationKind::Queue,
        routing_key: key,
        arguments,
    })
}
