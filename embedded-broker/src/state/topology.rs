//! Exchanges, queues, bindings and policies inside vhosts; routing and dead-lettering.

use std::collections::HashSet;
use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use bytes::Bytes;

use super::error::{EntityKind, StateError};
use super::exchange::{Binding, DestinationKind, Exchange, ExchangeKind};
use super::message::Message;
use super::policy::{self, Policy};
use super::queue::{DeadLetter, Outgoing, Queue, QueueSettings, QueueType};
use super::{ConnectionId, Registry, State, Vhost, args};

/// An exchange declaration.
#[derive(Debug, Clone)]
pub struct ExchangeDecl {
    /// Name.
    pub name: String,
    /// Type name as sent ("direct", ...); unknown types are refused.
    pub kind: String,
    /// Durable.
    pub durable: bool,
    /// Auto-delete.
    pub auto_delete: bool,
    /// Internal.
    pub internal: bool,
    /// Arguments.
    pub arguments: FieldTable,
}

/// A queue declaration.
#[derive(Debug, Clone)]
pub struct QueueDecl {
    /// Name; must not be empty (the AMQP layer generates `amq.gen-…` names).
    pub name: String,
    /// Durable.
    pub durable: bool,
    /// The declaring connection for exclusive queues; `None` for the management API.
    pub exclusive_owner: Option<ConnectionId>,
    /// Auto-delete.
    pub auto_delete: bool,
    /// Arguments.
    pub arguments: FieldTable,
}

/// Why a publish could not be routed at all (channel error 404 / 403).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// The exchange does not exist.
    #[error("NOT_FOUND - no exchange '{exchange}' in vhost '{vhost}'")]
    NoExchange {
        /// The vhost.
        vhost: String,
        /// The exchange.
        exchange: String,
    },
    /// The exchange is internal.
    #[error("ACCESS_REFUSED - cannot publish to internal exchange '{exchange}' in vhost '{vhost}'")]
    Internal {
        /// The vhost.
        vhost: String,
        /// The exchange.
        exchange: String,
    },
}

impl RouteError {
    /// The AMQP reply code.
    pub fn reply_code(&self) -> u16 {
        match self {
            RouteError::NoExchange { .. } => 404,
            RouteError::Internal { .. } => 403,
        }
    }
}

fn vhost_mut<'a>(reg: &'a mut Registry, vhost: &str) -> Result<&'a mut Vhost, StateError> {
    reg.vhosts.get_mut(vhost).ok_or_else(|| StateError::VhostNotFound { vhost: vhost.to_owned() })
}

fn vhost_ref<'a>(reg: &'a Registry, vhost: &str) -> Result<&'a Vhost, StateError> {
    reg.vhosts.get(vhost).ok_or_else(|| StateError::VhostNotFound { vhost: vhost.to_owned() })
}

fn inequivalent(kind: EntityKind, vhost: &str, name: &str, arg: &str, detail: String) -> StateError {
    StateError::Inequivalent { kind, vhost: vhost.to_owned(), name: name.to_owned(), arg: arg.to_owned(), detail }
}

fn flag_detail(received: bool, current: bool) -> String {
    format!("received '{received}' but current is '{current}'")
}

/// Tells the consumers of a deleted queue (consumer_cancel_notify) and drops its messages.
pub(crate) fn notify_deleted(queue: &Arc<Queue>) -> usize {
    let (consumers, ready) = queue.mark_deleted();
    for c in consumers {
        if c.outbox.push(Outgoing::Cancelled { channel: c.channel, tag: c.tag.clone() }) {
            c.outbox.notify.notify_one();
        }
    }
    ready
}

fn queue_settings(vhost: &Vhost, name: &str, kind: QueueType, arguments: &FieldTable) -> QueueSettings {
    let p = policy::select(vhost.policies.values(), name, kind);
    let op = policy::select(vhost.operator_policies.values(), name, kind);
    policy::effective_settings(kind, arguments, p, op)
}

impl State {
    // ---- exchanges ----

    /// Exchanges of one vhost, or of all vhosts when `None`, as (vhost, exchange).
    pub fn exchanges(&self, vhost: Option<&str>) -> Vec<(String, Arc<Exchange>)> {
        let reg = self.registry();
        reg.vhosts
            .iter()
            .filter(|(name, _)| vhost.is_none_or(|v| v == name.as_str()))
            .flat_map(|(name, v)| v.exchanges.values().map(move |x| (name.clone(), Arc::clone(x))))
            .collect()
    }

    /// One exchange.
    pub fn exchange(&self, vhost: &str, name: &str) -> Result<Arc<Exchange>, StateError> {
        let reg = self.registry();
        let v = vhost_ref(&reg, vhost)?;
        v.exchanges.get(name).cloned().ok_or_else(|| StateError::not_found(EntityKind::Exchange, vhost, name))
    }

    /// Declares an exchange, or checks an existing one is equivalent (406 otherwise).
    /// `from_client` applies the AMQP rule that `amq.`-prefixed names are reserved (403).
    pub fn declare_exchange(&self, vhost: &str, decl: ExchangeDecl, from_client: bool) -> Result<(), StateError> {
        let kind = ExchangeKind::parse(&decl.kind).ok_or_else(|| StateError::InvalidArgument {
            kind: EntityKind::Exchange,
            vhost: vhost.to_owned(),
            name: decl.name.clone(),
            arg: "type".to_owned(),
            reason: format!("unknown exchange type '{}'", decl.kind),
        })?;
        let mut reg = self.registry();
        let v = vhost_mut(&mut reg, vhost)?;
        if let Some(existing) = v.exchanges.get(&decl.name) {
            let e = |arg: &str, detail| inequivalent(EntityKind::Exchange, vhost, &decl.name, arg, detail);
            if existing.kind != kind {
                return Err(e(
                    "type",
                    format!("received '{}' but current is '{}'", kind.as_str(), existing.kind.as_str()),
                ));
            }
            if existing.durable != decl.durable {
                return Err(e("durable", flag_detail(decl.durable, existing.durable)));
            }
            if existing.auto_delete != decl.auto_delete {
                return Err(e("auto_delete", flag_detail(decl.auto_delete, existing.auto_delete)));
            }
            if existing.internal != decl.internal {
                return Err(e("internal", flag_detail(decl.internal, existing.internal)));
            }
            args::compare_key(&existing.arguments, &decl.arguments, "alternate-exchange")
                .map_err(|d| e("alternate-exchange", d))?;
            return Ok(());
        }
        if from_client && decl.name.starts_with("amq.") {
            return Err(StateError::AccessRefused {
                reason: format!("exchange name '{}' contains reserved prefix 'amq.*'", decl.name),
            });
        }
        v.exchanges.insert(
            decl.name.clone(),
            Arc::new(Exchange {
                name: decl.name,
                kind,
                durable: decl.durable,
                auto_delete: decl.auto_delete,
                internal: decl.internal,
                arguments: decl.arguments,
            }),
        );
        drop(reg);
        self.changed();
        Ok(())
    }

    /// Deletes an exchange and every binding to or from it. `if_unused` refuses (406) while it
    /// is the source of bindings. Predeclared exchanges cannot be deleted (403).
    pub fn delete_exchange(&self, vhost: &str, name: &str, if_unused: bool) -> Result<(), StateError> {
        let mut reg = self.registry();
        let v = vhost_mut(&mut reg, vhost)?;
        if name.is_empty() || name.starts_with("amq.") {
            return Err(StateError::AccessRefused {
                reason: format!("operation not permitted on the default exchange or 'amq.*' exchange '{name}'"),
            });
        }
        if !v.exchanges.contains_key(name) {
            return Err(StateError::not_found(EntityKind::Exchange, vhost, name));
        }
        if if_unused && v.bindings.get(name).is_some_and(|b| !b.is_empty()) {
            return Err(StateError::PreconditionFailed {
                kind: EntityKind::Exchange,
                vhost: vhost.to_owned(),
                name: name.to_owned(),
                reason: "in use".to_owned(),
            });
        }
        v.exchanges.remove(name);
        v.bindings.remove(name);
        for list in v.bindings.values_mut() {
            list.retain(|b| !(b.destination_kind == DestinationKind::Exchange && b.destination == name));
        }
        drop(reg);
        self.changed();
        Ok(())
    }

    // ---- queues ----

    /// Queues of one vhost, or of all vhosts when `None`.
    pub fn queues(&self, vhost: Option<&str>) -> Vec<Arc<Queue>> {
        let reg = self.registry();
        reg.vhosts
            .iter()
            .filter(|(name, _)| vhost.is_none_or(|v| v == name.as_str()))
            .flat_map(|(_, v)| v.queues.values().cloned())
            .collect()
    }

    /// One queue.
    pub fn queue(&self, vhost: &str, name: &str) -> Result<Arc<Queue>, StateError> {
        let reg = self.registry();
        let v = vhost_ref(&reg, vhost)?;
        v.queues.get(name).cloned().ok_or_else(|| StateError::not_found(EntityKind::Queue, vhost, name))
    }

    /// A queue that `connection` may use: an exclusive queue of another connection is 405.
    pub fn queue_for(&self, vhost: &str, name: &str, connection: ConnectionId) -> Result<Arc<Queue>, StateError> {
        let q = self.queue(vhost, name)?;
        match q.exclusive_owner {
            Some(owner) if owner != connection => {
                Err(StateError::ResourceLocked { vhost: vhost.to_owned(), name: name.to_owned() })
            }
            _ => Ok(q),
        }
    }

    /// Declares a queue, or checks an existing one is equivalent. Returns the queue and whether it
    /// was created.
    pub fn declare_queue(&self, vhost: &str, decl: QueueDecl) -> Result<(Arc<Queue>, bool), StateError> {
        let mut reg = self.registry();
        let memory = Arc::clone(&self.shared.memory);
        let v = vhost_mut(&mut reg, vhost)?;
        let mut arguments = decl.arguments;
        if let Some(existing) = v.queues.get(&decl.name) {
            if let Some(owner) = existing.exclusive_owner
                && Some(owner) != decl.exclusive_owner
            {
                return Err(StateError::ResourceLocked { vhost: vhost.to_owned(), name: decl.name });
            }
            let e = |arg: &str, detail| inequivalent(EntityKind::Queue, vhost, &decl.name, arg, detail);
            if existing.durable != decl.durable {
                return Err(e("durable", flag_detail(decl.durable, existing.durable)));
            }
            if existing.auto_delete != decl.auto_delete {
                return Err(e("auto_delete", flag_detail(decl.auto_delete, existing.auto_delete)));
            }
            if existing.exclusive_owner.is_some() != decl.exclusive_owner.is_some() {
                return Err(StateError::ResourceLocked { vhost: vhost.to_owned(), name: decl.name });
            }
            // The queue type is compared last, with a classic queue's missing type as "classic".
            let kind = existing.settings().kind;
            for key in args::queue_arguments(kind).iter().filter(|key| **key != "x-queue-type") {
                args::compare_key(&existing.arguments, &arguments, key).map_err(|d| e(key, d))?;
            }
            if arguments.inner().contains_key("x-queue-type") {
                let mut current = existing.arguments.clone();
                if !current.inner().contains_key("x-queue-type") {
                    current.insert("x-queue-type".into(), AMQPValue::LongString("classic".into()));
                }
                args::compare_key(&current, &arguments, "x-queue-type").map_err(|d| e("x-queue-type", d))?;
            }
            existing.touch();
            return Ok((Arc::clone(existing), false));
        }
        if !arguments.inner().contains_key("x-queue-type")
            && let Some(default) = v.info.default_queue_type.as_deref().filter(|t| *t != "classic")
        {
            arguments.insert("x-queue-type".into(), AMQPValue::LongString(default.into()));
        }
        if let Some(dlx) = arguments.inner().get("x-dead-letter-exchange")
            && args::as_str(dlx).is_none()
        {
            return Err(StateError::InvalidArgumentType {
                kind: EntityKind::Queue,
                vhost: vhost.to_owned(),
                name: decl.name,
                arg: "x-dead-letter-exchange".to_owned(),
                type_name: args::type_name(dlx),
            });
        }
        let kind = args::validate_queue_arguments(vhost, &decl.name, &arguments)?;
        if kind == QueueType::Quorum {
            let invalid = |prop: &str| StateError::Invalid {
                reason: format!("invalid property '{prop}' for queue '{}' in vhost '{vhost}'", decl.name),
            };
            if !decl.durable {
                return Err(invalid("non-durable"));
            }
            if decl.exclusive_owner.is_some() {
                return Err(invalid("exclusive"));
            }
            if decl.auto_delete {
                return Err(invalid("auto-delete"));
            }
        }
        let settings = queue_settings(v, &decl.name, kind, &arguments);
        let name = decl.name.clone();
        let store = match self.shared.store.get() {
            Some(store) => {
                let levels = usize::from(settings.max_priority.unwrap_or(0)) + 1;
                let meta = || {
                    serde_json::json!({
                        "name": decl.name,
                        "vhost": vhost,
                        "durable": decl.durable,
                        "auto_delete": decl.auto_delete,
                        "arguments": warren_definitions::arguments::table_to_json(&arguments),
                    })
                    .to_string()
                };
                let store = store.queue(vhost, &decl.name, decl.durable, levels, meta).map_err(|e| {
                    StateError::Storage { vhost: vhost.to_owned(), name: decl.name.clone(), reason: format!("{e:#}") }
                })?;
                Some(store)
            }
            None => None,
        };
        let paging = (self.memory_limit() / 2, self.shared.head_messages.load(std::sync::atomic::Ordering::Relaxed));
        let queue = Arc::new(Queue::new(vhost, QueueDecl { arguments, ..decl }, settings, memory, store, paging));
        v.queues.insert(name, Arc::clone(&queue));
        drop(reg);
        self.changed();
        Ok((queue, true))
    }

    /// Deletes a queue, its bindings and messages, and cancels its consumers. Returns the number of
    /// ready messages it held. `if_unused`/`if_empty` refuse with 406.
    pub fn delete_queue(&self, vhost: &str, name: &str, if_unused: bool, if_empty: bool) -> Result<usize, StateError> {
        let mut reg = self.registry();
        let v = vhost_mut(&mut reg, vhost)?;
        let queue = v.queues.get(name).cloned().ok_or_else(|| StateError::not_found(EntityKind::Queue, vhost, name))?;
        let counts = queue.counts();
        let refuse = |reason: &str| StateError::PreconditionFailed {
            kind: EntityKind::Queue,
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        if if_unused && counts.consumers > 0 {
            return Err(refuse("in use"));
        }
        if if_empty && counts.messages > 0 {
            return Err(refuse("not empty"));
        }
        Self::remove_queue_locked(v, name);
        let removed_auto = Self::auto_delete_exchanges(v);
        drop(reg);
        let _ = removed_auto;
        let n = notify_deleted(&queue);
        self.changed();
        Ok(n)
    }

    fn remove_queue_locked(v: &mut Vhost, name: &str) {
        v.queues.remove(name);
        for list in v.bindings.values_mut() {
            list.retain(|b| !(b.destination_kind == DestinationKind::Queue && b.destination == name));
        }
    }

    /// Removes auto-delete exchanges that lost their last binding as source.
    fn auto_delete_exchanges(v: &mut Vhost) -> usize {
        let doomed: Vec<String> = v
            .exchanges
            .values()
            .filter(|x| x.auto_delete && v.bindings.get(&x.name).is_some_and(Vec::is_empty))
            .map(|x| x.name.clone())
            .collect();
        for name in &doomed {
            v.exchanges.remove(name);
            v.bindings.remove(name);
        }
        doomed.len()
    }

    /// Removes every ready message; returns how many.
    pub fn purge_queue(&self, vhost: &str, name: &str) -> Result<usize, StateError> {
        Ok(self.queue(vhost, name)?.purge())
    }

    /// Deletes the exclusive queues of a closed connection.
    pub fn connection_closed(&self, connection: ConnectionId) {
        self.shared.connections.closed(connection);
        let mut doomed = Vec::new();
        {
            let mut reg = self.registry();
            for v in reg.vhosts.values_mut() {
                let names: Vec<String> = v
                    .queues
                    .values()
                    .filter(|q| q.exclusive_owner == Some(connection))
                    .map(|q| q.name.clone())
                    .collect();
                for name in names {
                    if let Some(q) = v.queues.get(&name).cloned() {
                        Self::remove_queue_locked(v, &name);
                        doomed.push(q);
                    }
                }
                Self::auto_delete_exchanges(v);
            }
        }
        if !doomed.is_empty() {
            for q in &doomed {
                notify_deleted(q);
            }
            self.changed();
        }
    }

    /// Deletes an auto-delete queue after its last consumer left, unless it was redeclared meanwhile.
    pub fn auto_delete_queue(&self, queue: &Arc<Queue>) {
        let removed = {
            let mut reg = self.registry();
            let Some(v) = reg.vhosts.get_mut(&queue.vhost) else { return };
            let same = v.queues.get(&queue.name).is_some_and(|q| Arc::ptr_eq(q, queue));
            if same && queue.counts().consumers == 0 {
                Self::remove_queue_locked(v, &queue.name);
                Self::auto_delete_exchanges(v);
                true
            } else {
                false
            }
        };
        if removed {
            notify_deleted(queue);
            self.changed();
        }
    }

    /// Periodic work: expire messages at queue heads, write what queues buffered, delete queues
    /// past `x-expires`, route dead letters, and set the disk alarm.
    pub fn sweep(&self) {
        let now = super::clock_ms();
        let queues = self.queues(None);
        let mut dead = Vec::new();
        let mut write_failed = false;
        for q in queues {
            if q.sweep(now, &mut dead, &mut write_failed) {
                let removed = {
                    let mut reg = self.registry();
                    match reg.vhosts.get_mut(&q.vhost) {
                        Some(v) if v.queues.get(&q.name).is_some_and(|x| Arc::ptr_eq(x, &q)) => {
                            Self::remove_queue_locked(v, &q.name);
                            Self::auto_delete_exchanges(v);
                            true
                        }
                        _ => false,
                    }
                };
                if removed {
                    notify_deleted(&q);
                    self.changed();
                }
            }
            if !dead.is_empty() {
                let vhost = q.vhost.clone();
                self.dead_letter(&vhost, std::mem::take(&mut dead));
            }
        }
        if write_failed {
            self.raise_disk_alarm();
        } else {
            self.writes_succeed();
        }
        self.check_disk();
    }

    // ---- bindings ----

    /// Bindings of one vhost (or all), as (vhost, binding), excluding the implicit default-exchange ones.
    pub fn bindings(&self, vhost: Option<&str>) -> Vec<(String, Binding)> {
        let reg = self.registry();
        reg.vhosts
            .iter()
            .filter(|(name, _)| vhost.is_none_or(|v| v == name.as_str()))
            .flat_map(|(name, v)| v.bindings.values().flatten().map(move |b| (name.clone(), b.clone())))
            .collect()
    }

    /// Adds a binding (idempotent). Source and destination must exist (404); the default exchange
    /// cannot be bound (403).
    pub fn bind(&self, vhost: &str, binding: Binding) -> Result<(), StateError> {
        let mut reg = self.registry();
        let v = vhost_mut(&mut reg, vhost)?;
        Self::check_binding_ends(v, vhost, &binding)?;
        let list = v.bindings.entry(binding.source.clone()).or_default();
        if !list.contains(&binding) {
            list.push(binding);
        }
        drop(reg);
        self.changed();
        Ok(())
    }

    fn check_binding_ends(v: &Vhost, vhost: &str, binding: &Binding) -> Result<(), StateError> {
        if binding.source.is_empty()
            || (binding.destination.is_empty() && binding.destination_kind == DestinationKind::Exchange)
        {
            return Err(StateError::AccessRefused {
                reason: format!("operation not permitted on the default exchange in vhost '{vhost}'"),
            });
        }
        if !v.exchanges.contains_key(&binding.source) {
            return Err(StateError::not_found(EntityKind::Exchange, vhost, &binding.source));
        }
        let exists = match binding.destination_kind {
            DestinationKind::Queue => v.queues.contains_key(&binding.destination),
            DestinationKind::Exchange => v.exchanges.contains_key(&binding.destination),
        };
        if !exists {
            let kind = match binding.destination_kind {
                DestinationKind::Queue => EntityKind::Queue,
                DestinationKind::Exchange => EntityKind::Exchange,
            };
            return Err(StateError::not_found(kind, vhost, &binding.destination));
        }
        Ok(())
    }

    /// Removes a binding. Unbinding something that is not bound succeeds, as in RabbitMQ, but
    /// missing ends are 404.
    pub fn unbind(&self, vhost: &str, binding: &Binding) -> Result<(), StateError> {
        let mut reg = self.registry();
        let v = vhost_mut(&mut reg, vhost)?;
        Self::check_binding_ends(v, vhost, binding)?;
        if let Some(list) = v.bindings.get_mut(&binding.source) {
            list.retain(|b| b != binding);
        }
        Self::auto_delete_exchanges(v);
        drop(reg);
        self.changed();
        Ok(())
    }

    // ---- policies ----

    /// Policies of one vhost (or all).
    pub fn policies(&self, vhost: Option<&str>) -> Vec<Policy> {
        let reg = self.registry();
        reg.vhosts
            .iter()
            .filter(|(name, _)| vhost.is_none_or(|v| v == name.as_str()))
            .flat_map(|(_, v)| v.policies.values().cloned())
            .collect()
    }

    /// Operator policies of one vhost (or all).
    pub fn operator_policies(&self, vhost: Option<&str>) -> Vec<Policy> {
        let reg = self.registry();
        reg.vhosts
            .iter()
            .filter(|(name, _)| vhost.is_none_or(|v| v == name.as_str()))
            .flat_map(|(_, v)| v.operator_policies.values().cloned())
            .collect()
    }

    /// Creates or replaces a policy and re-applies policies to the vhost's queues.
    pub fn put_policy(&self, policy: Policy) -> Result<(), StateError> {
        self.change_policies(&policy.vhost.clone(), |v| {
            v.policies.insert(policy.name.clone(), policy);
            true
        })
    }

    /// Deletes a policy.
    pub fn delete_policy(&self, vhost: &str, name: &str) -> Result<(), StateError> {
        let mut found = false;
        self.change_policies(vhost, |v| {
            found = v.policies.remove(name).is_some();
            found
        })?;
        if found { Ok(()) } else { Err(StateError::not_found(EntityKind::Policy, vhost, name)) }
    }

    /// Creates or replaces an operator policy.
    pub fn put_operator_policy(&self, policy: Policy) -> Result<(), StateError> {
        self.change_policies(&policy.vhost.clone(), |v| {
            v.operator_policies.insert(policy.name.clone(), policy);
            true
        })
    }

    /// Deletes an operator policy.
    pub fn delete_operator_policy(&self, vhost: &str, name: &str) -> Result<(), StateError> {
        let mut found = false;
        self.change_policies(vhost, |v| {
            found = v.operator_policies.remove(name).is_some();
            found
        })?;
        if found { Ok(()) } else { Err(StateError::not_found(EntityKind::Policy, vhost, name)) }
    }

    fn change_policies(&self, vhost: &str, change: impl FnOnce(&mut Vhost) -> bool) -> Result<(), StateError> {
        let mut reg = self.registry();
        let v = vhost_mut(&mut reg, vhost)?;
        if !change(v) {
            return Ok(());
        }
        for q in v.queues.values() {
            let kind = q.settings().kind;
            q.set_settings(queue_settings(v, &q.name, kind, &q.arguments));
        }
        drop(reg);
        self.changed();
        Ok(())
    }

    // ---- routing ----

    /// Routes a message: fills `out` with the distinct queues it goes to, following
    /// exchange-to-exchange bindings and alternate exchanges. The default exchange routes to the
    /// queue named by the key.
    pub fn route(
        &self,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
        headers: Option<&FieldTable>,
        from_client: bool,
        out: &mut Vec<Arc<Queue>>,
    ) -> Result<(), RouteError> {
        let reg = self.registry();
        let no_exchange = || RouteError::NoExchange { vhost: vhost.to_owned(), exchange: exchange.to_owned() };
        let v = reg.vhosts.get(vhost).ok_or_else(no_exchange)?;
        if exchange.is_empty() {
            if let Some(q) = v.queues.get(routing_key) {
                out.push(Arc::clone(q));
            }
            return Ok(());
        }
        let x = v.exchanges.get(exchange).ok_or_else(no_exchange)?;
        if from_client && x.internal {
            return Err(RouteError::Internal { vhost: vhost.to_owned(), exchange: exchange.to_owned() });
        }
        let mut visited: Vec<&str> = Vec::new();
        Self::route_from(v, x, routing_key, headers, out, &mut visited);
        if out.len() > 1 {
            let mut seen = HashSet::new();
            out.retain(|q| seen.insert(Arc::as_ptr(q)));
        }
        Ok(())
    }

    fn route_from<'a>(
        v: &'a Vhost,
        x: &'a Exchange,
        key: &str,
        headers: Option<&FieldTable>,
        out: &mut Vec<Arc<Queue>>,
        visited: &mut Vec<&'a str>,
    ) {
        if visited.contains(&x.name.as_str()) {
            return;
        }
        visited.push(&x.name);
        let before = out.len();
        if let Some(list) = v.bindings.get(&x.name) {
            for b in list {
                if !b.matches(x.kind, key, headers) {
                    continue;
                }
                match b.destination_kind {
                    DestinationKind::Queue => {
                        if let Some(q) = v.queues.get(&b.destination) {
                            out.push(Arc::clone(q));
                        }
                    }
                    DestinationKind::Exchange => {
                        if let Some(dx) = v.exchanges.get(&b.destination) {
                            Self::route_from(v, dx, key, headers, out, visited);
                        }
                    }
                }
            }
        }
        if out.len() == before
            && let Some(ae) = x.alternate_exchange()
            && let Some(ax) = v.exchanges.get(&ae)
        {
            Self::route_from(v, ax, key, headers, out, visited);
        }
    }

    /// Publishes dead letters to their exchanges with the `x-death` header RabbitMQ adds. Messages
    /// whose dead-letter exchange is missing are dropped, as in RabbitMQ.
    pub fn dead_letter(&self, vhost: &str, dead: Vec<DeadLetter>) {
        let mut pending = dead;
        // Bounded: a dead-letter cycle without a rejection stops after one round, as RabbitMQ
        // drops messages that would cycle back to a queue they already died in for the same reason.
        let mut rounds = 0;
        while !pending.is_empty() && rounds < 16 {
            rounds += 1;
            let mut next = Vec::new();
            for d in pending {
                // The queue's dead-letter routing key, else the message's own (shared, not copied).
                let key = d.routing_key.as_deref().map_or_else(|| Arc::clone(&d.message.routing_key), Arc::from);
                let (message, headers, cycle) = with_x_death(&d);
                let mut queues = Vec::new();
                if self.route(vhost, &d.exchange, &key, headers.as_ref(), false, &mut queues).is_err() {
                    continue;
                }
                let message = Arc::new(Message { routing_key: key, ..message });
                for q in queues {
                    if cycle && q.name == d.queue && d.reason != super::queue::DeathReason::Rejected {
                        continue;
                    }
                    q.publish(Arc::clone(&message), &mut next);
                    q.flush();
                }
            }
            pending = next;
        }
    }
}

/// Builds the dead-lettered copy of a message: `x-death` updated (count incremented for the same
/// queue and reason, else a new entry first), `x-first-death-*` set once; expiration removed.
/// Returns the new message, its headers, and whether it had already died in this queue.
fn with_x_death(d: &DeadLetter) -> (Message, Option<FieldTable>, bool) {
    let props = decode_properties(&d.message.properties).unwrap_or_default();
    let mut headers = props.headers().clone().unwrap_or_default();
    let mut deaths: Vec<AMQPValue> = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        _ => Vec::new(),
    };
    let reason = d.reason.as_str();
    let mut cycle = false;
    let mut found = None;
    for (i, entry) in deaths.iter().enumerate() {
        if let AMQPValue::FieldTable(t) = entry {
            let q = t.inner().get("queue").and_then(args::as_str);
            let r = t.inner().get("reason").and_then(args::as_str);
            if q.as_deref() == Some(d.queue.as_str()) {
                cycle = true;
                if r.as_deref() == Some(reason) {
                    found = Some(i);
                }
            }
        }
    }
    let now_secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_secs()).unwrap_or_default();
    let entry = match found {
        Some(i) => {
            let mut t = match deaths.remove(i) {
                AMQPValue::FieldTable(t) => t,
                _ => FieldTable::default(),
            };
            let count = t.inner().get("count").and_then(args::as_i64).unwrap_or(0) + 1;
            t.insert("count".into(), AMQPValue::LongLongInt(count));
            t.insert("time".into(), AMQPValue::Timestamp(now_secs));
            t
        }
        None => {
            let mut t = FieldTable::default();
            t.insert("count".into(), AMQPValue::LongLongInt(1));
            t.insert("reason".into(), AMQPValue::LongString(reason.into()));
            t.insert("queue".into(), AMQPValue::LongString(d.queue.as_str().into()));
            t.insert("time".into(), AMQPValue::Timestamp(now_secs));
            t.insert("exchange".into(), AMQPValue::LongString((&*d.message.exchange).into()));
            let keys = vec![AMQPValue::LongString(LongString::from(&*d.message.routing_key))];
            t.insert("routing-keys".into(), AMQPValue::FieldArray(FieldArray::from(keys)));
            if let Some(exp) = props.expiration() {
                t.insert("original-expiration".into(), AMQPValue::LongString(exp.as_str().into()));
            }
            t
        }
    };
    deaths.insert(0, AMQPValue::FieldTable(entry));
    headers.insert("x-death".into(), AMQPValue::FieldArray(FieldArray::from(deaths)));
    if !headers.inner().contains_key("x-first-death-reason") {
        headers.insert("x-first-death-reason".into(), AMQPValue::LongString(reason.into()));
        headers.insert("x-first-death-queue".into(), AMQPValue::LongString(d.queue.as_str().into()));
        headers.insert("x-first-death-exchange".into(), AMQPValue::LongString((&*d.message.exchange).into()));
    }
    headers.insert("x-last-death-reason".into(), AMQPValue::LongString(reason.into()));
    headers.insert("x-last-death-queue".into(), AMQPValue::LongString(d.queue.as_str().into()));
    headers.insert("x-last-death-exchange".into(), AMQPValue::LongString((&*d.message.exchange).into()));
    let new_props = strip_expiration(props).with_headers(headers.clone());
    let message = Message {
        exchange: d.message.exchange.clone(),
        routing_key: d.message.routing_key.clone(),
        properties: encode_properties(&new_props),
        body: d.message.body.clone(),
        priority: d.message.priority,
        expiration_ms: None,
        persistent: d.message.persistent,
    };
    (message, Some(headers), cycle)
}

fn strip_expiration(p: BasicProperties) -> BasicProperties {
    // AMQPProperties has no setter to clear one field; rebuild it without `expiration`.
    let mut out = BasicProperties::default();
    if let Some(v) = p.content_type() {
        out = out.with_content_type(v.clone());
    }
    if let Some(v) = p.content_encoding() {
        out = out.with_content_encoding(v.clone());
    }
    if let Some(v) = p.delivery_mode() {
        out = out.with_delivery_mode(*v);
    }
    if let Some(v) = p.priority() {
        out = out.with_priority(*v);
    }
    if let Some(v) = p.correlation_id() {
        out = out.with_correlation_id(v.clone());
    }
    if let Some(v) = p.reply_to() {
        out = out.with_reply_to(v.clone());
    }
    if let Some(v) = p.message_id() {
        out = out.with_message_id(v.clone());
    }
    if let Some(v) = p.timestamp() {
        out = out.with_timestamp(*v);
    }
    if let Some(v) = p.kind() {
        out = out.with_type(v.clone());
    }
    if let Some(v) = p.user_id() {
        out = out.with_user_id(v.clone());
    }
    if let Some(v) = p.app_id() {
        out = out.with_app_id(v.clone());
    }
    if let Some(v) = p.cluster_id() {
        out = out.with_cluster_id(v.clone());
    }
    out
}

/// Decodes raw content-header properties (flags and values).
pub fn decode_properties(raw: &[u8]) -> Option<BasicProperties> {
    amq_protocol::protocol::basic::parse_properties(raw).ok().map(|(_, p)| p)
}

/// Encodes properties to the raw form kept in [`Message::properties`].
pub fn encode_properties(props: &BasicProperties) -> Bytes {
    let buf = Vec::with_capacity(64);
    match amq_protocol::protocol::basic::gen_properties(props)(buf.into()) {
        Ok(ctx) => Bytes::from(ctx.write),
        Err(_) => Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::new(usize::MAX)
    }

    fn xdecl(name: &str, kind: &str) -> ExchangeDecl {
        ExchangeDecl {
            name: name.into(),
            kind: kind.into(),
            durable: true,
            auto_delete: false,
            internal: false,
            arguments: FieldTable::default(),
        }
    }

    fn qdecl(name: &str) -> QueueDecl {
        QueueDecl {
            name: name.into(),
            durable: true,
            exclusive_owner: None,
            auto_delete: false,
            arguments: FieldTable::default(),
        }
    }

    fn bind(s: &State, source: &str, dest: &str, kind: DestinationKind, key: &str) {
        let b = Binding {
            source: source.into(),
            destination: dest.into(),
            destination_kind: kind,
            routing_key: key.into(),
            arguments: FieldTable::default(),
        };
        s.bind("/", b).expect("bind");
    }

    #[test]
    fn guest_logs_in_only_over_loopback_and_other_users_from_anywhere() {
        use warren_definitions::password::{self, HashingAlgorithm};

        use crate::state::auth::User;
        let s = state();
        s.put_user(User {
            name: "remote".into(),
            password_hash: password::hash("pw", HashingAlgorithm::Sha256),
            hashing_algorithm: HashingAlgorithm::Sha256,
            tags: vec![],
        });
        let ip = |text: &str| text.parse::<std::net::IpAddr>().expect("an address");
        for loopback in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(s.may_log_in_from("guest", ip(loopback)), "guest over {loopback}");
        }
        for remote in
            ["10.0.0.7", "192.168.1.20", "0.0.0.0", "fe80::1", "2001:db8::1", "::ffff:10.0.0.7", "::127.0.0.1"]
        {
            assert!(!s.may_log_in_from("guest", ip(remote)), "guest refused from {remote}");
            assert!(s.may_log_in_from("remote", ip(remote)), "other users are not loopback-only ({remote})");
        }
    }

    #[test]
    fn new_state_has_guest_and_predeclared_exchanges() {
        let s = state();
        assert!(s.authenticate("guest", b"guest").is_some());
        assert!(s.authenticate("guest", b"nope").is_none());
        assert!(s.is_loopback_only("guest"));
        let names: Vec<String> = s.exchanges(Some("/")).into_iter().map(|(_, x)| x.name.clone()).collect();
        for n in ["", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace"] {
            assert!(names.iter().any(|x| x == n), "missing {n:?}");
        }
        assert!(s.exchange("/", "amq.rabbitmq.trace").expect("trace").internal);
        s.declare_exchange("/", xdecl("amq.direct", "direct"), true).expect("redeclaring amq.direct is allowed");
    }

    #[test]
    fn redeclare_checks_equivalence_and_reserved_prefix() {
        let s = state();
        s.declare_exchange("/", xdecl("x", "direct"), true).expect("declare");
        let err = s.declare_exchange("/", xdecl("x", "fanout"), true).expect_err("type differs");
        assert_eq!(err.reply_code(), 406);
        assert_eq!(
            err.to_string(),
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"
        );
        let err = s.declare_exchange("/", xdecl("amq.mine", "direct"), true).expect_err("reserved");
        assert_eq!(err.reply_code(), 403);
        s.declare_queue("/", qdecl("q")).expect("declare");
        let mut d = qdecl("q");
        d.durable = false;
        assert_eq!(s.declare_queue("/", d).expect_err("durable differs").reply_code(), 406);
    }

    #[test]
    fn routes_through_exchange_bindings_and_alternate_exchange() {
        let s = state();
        s.declare_exchange("/", xdecl("up", "topic"), true).expect("declare");
        s.declare_exchange("/", xdecl("down", "fanout"), true).expect("declare");
        let mut with_ae = xdecl("ae-src", "direct");
        with_ae.arguments.insert("alternate-exchange".into(), AMQPValue::LongString("down".into()));
        s.declare_exchange("/", with_ae, true).expect("declare");
        s.declare_queue("/", qdecl("q1")).expect("declare");
        bind(&s, "up", "down", DestinationKind::Exchange, "a.#");
        bind(&s, "down", "q1", DestinationKind::Queue, "");
        let mut out = Vec::new();
        s.route("/", "up", "a.b", None, true, &mut out).expect("route");
        assert_eq!(out.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(), ["q1"]);
        out.clear();
        s.route("/", "up", "b", None, true, &mut out).expect("route");
        assert!(out.is_empty());
        s.route("/", "ae-src", "nothing-bound", None, true, &mut out).expect("route");
        assert_eq!(out.len(), 1, "unroutable message goes to the alternate exchange");
        let err = s.route("/", "amq.rabbitmq.trace", "k", None, true, &mut out).expect_err("internal");
        assert_eq!(err.reply_code(), 403);
    }

    #[test]
    fn policy_changes_apply_to_existing_queues_and_deleting_a_queue_drops_its_bindings() {
        let s = state();
        s.declare_queue("/", qdecl("tmp.q")).expect("declare");
        let serde_json::Value::Object(def) = serde_json::json!({"max-length": 7}) else { unreachable!() };
        let p = Policy::new("/", "cap", "^tmp\\.", policy::ApplyTo::Queues, 0, def).expect("policy");
        s.put_policy(p).expect("put");
        let q = s.queue("/", "tmp.q").expect("queue");
        assert_eq!(q.settings().max_length, Some(7));
        assert_eq!(q.settings().policy.as_deref(), Some("cap"));
        bind(&s, "amq.direct", "tmp.q", DestinationKind::Queue, "k");
        s.delete_queue("/", "tmp.q", false, false).expect("delete");
        assert!(s.bindings(Some("/")).is_empty());
        assert_eq!(s.delete_queue("/", "tmp.q", false, false).expect_err("gone").http_status(), 404);
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn sweep_deletes_a_queue_unused_for_longer_than_x_expires() {
        let s = State::new(usize::MAX);
        let mut arguments = FieldTable::default();
        arguments.insert("x-expires".into(), AMQPValue::LongInt(20));
        let decl = QueueDecl { name: "e".into(), durable: false, exclusive_owner: None, auto_delete: false, arguments };
        s.declare_queue("/", decl).expect("declare");
        assert_eq!(s.queue("/", "e").expect("queue").settings().expires, Some(20));
        let start = std::time::Instant::now();
        while s.queue("/", "e").is_ok() {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "queue never expired");
            std::thread::sleep(std::time::Duration::from_millis(10));
            s.sweep();
        }
    }
}
