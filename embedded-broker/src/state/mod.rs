//! The broker's state: vhosts, users, permissions, exchanges, queues, bindings and policies — the
//! one model both the AMQP side and the management API read and change.
//!
//! # For the management API
//!
//! Hold a [`State`] (cheap to clone; every method takes `&self` and is synchronous, never blocking
//! on I/O — call it straight from async handlers). Use:
//!
//! - vhosts: [`State::vhosts`], [`State::vhost`], [`State::put_vhost`], [`State::delete_vhost`]
//! - users: [`State::users`], [`State::user`], [`State::put_user`] (give a hash; hash plain
//!   passwords with [`warren_definitions::password::hash`]), [`State::delete_user`], [`State::authenticate`]
//! - permissions: [`State::permissions`], [`State::put_permission`], [`State::delete_permission`],
//!   topic permissions likewise ([`State::topic_permissions`], ...)
//! - exchanges: [`State::exchanges`], [`State::exchange`], [`State::declare_exchange`],
//!   [`State::delete_exchange`]
//! - queues: [`State::queues`], [`State::queue`] (then [`queue::Queue::counts`] and
//!   [`queue::Queue::settings`] for message/consumer counts and the applied policy),
//!   [`State::declare_queue`] (with `exclusive_owner: None`), [`State::delete_queue`],
//!   [`State::purge_queue`]
//! - bindings: [`State::bindings`], [`State::bind`], [`State::unbind`]
//! - policies: [`State::policies`], [`State::put_policy`], [`State::delete_policy`] and the
//!   `operator_` variants; queues pick up policy changes immediately.
//! - persistence: [`State::generation`] increases on every definition change; compare it to know
//!   when to write the data dir.
//!
//! Errors are [`StateError`]; [`StateError::http_status`] gives the status to answer with, and its
//! `Display` is RabbitMQ's reason text.

pub mod args;
pub mod auth;
pub mod connections;
mod error;
pub mod exchange;
pub mod message;
pub mod policy;
pub mod queue;
pub mod stats;
mod topology;

#[cfg(test)]
mod durability_tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

pub use error::{EntityKind, StateError};
pub use topology::{ExchangeDecl, QueueDecl, RouteError, decode_properties, encode_properties};

use auth::{Access, Permission, TopicPermission, TopicRule, User};
use exchange::{Binding, Exchange, ExchangeKind};
use policy::Policy;
use queue::Queue;
use warren_definitions::password::{self, HashingAlgorithm};

/// Identifies a client connection (owner of exclusive queues and consumers).
pub type ConnectionId = u64;

pub(crate) use crate::sync::lock;

/// Milliseconds on the broker's monotonic clock, for TTLs and `x-expires`.
pub fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A virtual host's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VhostInfo {
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Queue type for declarations that name none.
    pub default_queue_type: Option<String>,
}

/// Everything inside one virtual host.
#[derive(Debug, Default)]
pub(crate) struct Vhost {
    pub(crate) info: VhostInfo,
    pub(crate) exchanges: BTreeMap<String, Arc<Exchange>>,
    pub(crate) queues: BTreeMap<String, Arc<Queue>>,
    /// Bindings by source exchange, in creation order.
    pub(crate) bindings: BTreeMap<String, Vec<Binding>>,
    pub(crate) policies: BTreeMap<String, Policy>,
    pub(crate) operator_policies: BTreeMap<String, Policy>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) vhosts: BTreeMap<String, Vhost>,
    pub(crate) users: BTreeMap<String, User>,
    /// By (user, vhost).
    pub(crate) permissions: BTreeMap<(String, String), Permission>,
    /// By (user, vhost, exchange).
    pub(crate) topic_permissions: BTreeMap<(String, String, String), TopicPermission>,
}

/// Shared handle to the broker state.
#[derive(Debug, Clone)]
pub struct State {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) registry: Mutex<Registry>,
    pub(crate) memory: Arc<AtomicUsize>,
    memory_limit: usize,
    generation: AtomicU64,
    /// Increases whenever permissions or topic permissions may have changed, so connections
    /// drop what they cached of them.
    permission_generation: AtomicU64,
    next_connection: AtomicU64,
    connections: connections::Connections,
    loopback_users: Vec<String>,
    /// The message store, with a data directory (set once, before any queue is declared).
    pub(crate) store: OnceLock<Arc<crate::store::MessageStore>>,
    /// Free bytes on the data directory's disk below which publishers are blocked.
    disk_free_limit: AtomicU64,
    disk_alarm: AtomicBool,
    /// A write to the data directory failed and none has succeeded since: the disk alarm stays on
    /// whatever the free space (a full quota, an I/O error).
    write_failed: AtomicBool,
    /// Ready messages per queue level kept in memory (with a store), for queues declared from now on.
    pub(crate) head_messages: AtomicUsize,
}

/// The exchanges every vhost starts with: (name, type, internal).
const PREDECLARED: [(&str, ExchangeKind, bool); 7] = [
    ("", ExchangeKind::Direct, false),
    ("amq.direct", ExchangeKind::Direct, false),
    ("amq.fanout", ExchangeKind::Fanout, false),
    ("amq.topic", ExchangeKind::Topic, false),
    ("amq.headers", ExchangeKind::Headers, false),
    ("amq.match", ExchangeKind::Headers, false),
    ("amq.rabbitmq.trace", ExchangeKind::Topic, true),
];

impl State {
    /// A fresh state with vhost `/` and user guest/guest (administrator, full permissions on `/`,
    /// loopback only), like a new RabbitMQ node. `memory_limit` is in bytes of queued messages.
    pub fn new(memory_limit: usize) -> Self {
        let state = State::empty(memory_limit);
        state.put_vhost(VhostInfo {
            name: "/".into(),
            description: "Default virtual host".into(),
            ..Default::default()
        });
        state.put_user(User {
            name: "guest".into(),
            password_hash: password::hash("guest", HashingAlgorithm::Sha256),
            hashing_algorithm: HashingAlgorithm::Sha256,
            tags: vec!["administrator".into()],
        });
        // Both exist, and the patterns are valid: this cannot fail.
        let _ = state.put_permission(Permission {
            user: "guest".into(),
            vhost: "/".into(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        });
        state
    }

    /// A state with no vhosts and no users, for loading persisted definitions.
    pub fn empty(memory_limit: usize) -> Self {
        State {
            shared: Arc::new(Shared {
                registry: Mutex::new(Registry::default()),
                memory: Arc::new(AtomicUsize::new(0)),
                memory_limit,
                generation: AtomicU64::new(0),
                permission_generation: AtomicU64::new(0),
                next_connection: AtomicU64::new(1),
                connections: connections::Connections::default(),
                loopback_users: vec!["guest".into()],
                store: OnceLock::new(),
                disk_free_limit: AtomicU64::new(0),
                disk_alarm: AtomicBool::new(false),
                write_failed: AtomicBool::new(false),
                head_messages: AtomicUsize::new(queue::HEAD_MESSAGES),
            }),
        }
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.shared.registry)
    }

    pub(crate) fn changed(&self) {
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Increases on every definition change (not on message traffic).
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Relaxed)
    }

    /// A new connection id.
    pub fn next_connection_id(&self) -> ConnectionId {
        self.shared.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Estimated bytes held by queued messages.
    pub fn memory_used(&self) -> usize {
        self.shared.memory.load(Ordering::Relaxed)
    }

    /// The configured memory limit; publishers are blocked above it.
    pub fn memory_limit(&self) -> usize {
        self.shared.memory_limit
    }

    /// Whether the memory alarm is on.
    pub fn memory_alarm(&self) -> bool {
        self.memory_used() > self.shared.memory_limit
    }

    /// Keeps messages in `store` from now on (before any queue is declared, so durable queues
    /// recover theirs); publishers are blocked while the disk has less than `disk_free_limit`
    /// bytes free.
    pub fn attach_store(&self, store: Arc<crate::store::MessageStore>, disk_free_limit: u64) {
        self.shared.disk_free_limit.store(disk_free_limit, Ordering::Relaxed);
        let _ = self.shared.store.set(store);
        self.check_disk();
    }

    /// Ready messages per queue level kept in memory before new ones go to disk, for queues
    /// declared from now on (default [`queue::HEAD_MESSAGES`]; small values exercise the disk in tests).
    pub fn set_head_messages(&self, messages: usize) {
        self.shared.head_messages.store(messages.max(1), Ordering::Relaxed);
    }

    /// The message store, with a data directory.
    pub fn store(&self) -> Option<&Arc<crate::store::MessageStore>> {
        self.shared.store.get()
    }

    /// Whether the disk alarm is on (free space under the limit, or a write refused).
    pub fn disk_alarm(&self) -> bool {
        self.shared.disk_alarm.load(Ordering::Relaxed)
    }

    /// Free bytes on the data directory's disk (`None` without a data directory, or when the
    /// file system cannot tell).
    pub fn disk_free(&self) -> Option<u64> {
        self.shared.store.get()?.free_space().ok()
    }

    /// Free bytes under which publishers are blocked (with a data directory).
    pub fn disk_free_limit(&self) -> u64 {
        self.shared.disk_free_limit.load(Ordering::Relaxed)
    }

    /// Raises the disk alarm at once: a write to the data directory failed. It stays on until
    /// [`State::writes_succeed`] (whatever the free space says).
    pub fn raise_disk_alarm(&self) {
        self.shared.write_failed.store(true, Ordering::Relaxed);
        if !self.shared.disk_alarm.swap(true, Ordering::Relaxed) {
            tracing::warn!("disk alarm: a write to the data directory failed, publishers are blocked");
        }
    }

    /// Every queue wrote what it held: a failed write no longer holds the disk alarm up (the free
    /// space still may, at the next [`State::check_disk`]).
    pub(crate) fn writes_succeed(&self) {
        if self.shared.write_failed.swap(false, Ordering::Relaxed) {
            tracing::info!("writes to the data directory succeed again");
        }
    }

    /// Sets the disk alarm from the data directory's free space against the limit, and from a
    /// write that failed since the last time every queue wrote what it held.
    pub fn check_disk(&self) {
        let Some(store) = self.shared.store.get() else { return };
        let limit = self.shared.disk_free_limit.load(Ordering::Relaxed);
        let free = match store.free_space() {
            Ok(free) => free,
            Err(error) => {
                tracing::debug!(%error, "cannot read the data directory's free space");
                return;
            }
        };
        let write_failed = self.shared.write_failed.load(Ordering::Relaxed);
        let alarm = free < limit || write_failed;
        if self.shared.disk_alarm.swap(alarm, Ordering::Relaxed) != alarm {
            if alarm {
                tracing::warn!(free, limit, "disk alarm: free space under the limit, publishers are blocked");
            } else {
                tracing::info!(free, limit, "disk alarm cleared");
            }
        }
    }

    // ---- vhosts ----

    /// All vhosts, by name.
    pub fn vhosts(&self) -> Vec<VhostInfo> {
        self.registry().vhosts.values().map(|v| v.info.clone()).collect()
    }

    /// One vhost.
    pub fn vhost(&self, name: &str) -> Option<VhostInfo> {
        self.registry().vhosts.get(name).map(|v| v.info.clone())
    }

    /// Creates a vhost (with its predeclared exchanges) or updates its metadata.
    pub fn put_vhost(&self, info: VhostInfo) {
        let mut reg = self.registry();
        match reg.vhosts.get_mut(&info.name) {
            Some(existing) => existing.info = info,
            None => {
                let mut vhost = Vhost { info: info.clone(), ..Default::default() };
                for (name, kind, internal) in PREDECLARED {
                    vhost.exchanges.insert(
                        name.to_owned(),
                        Arc::new(Exchange {
                            name: name.to_owned(),
                            kind,
                            durable: true,
                            auto_delete: false,
                            internal,
                            arguments: Default::default(),
                        }),
                    );
                }
                reg.vhosts.insert(info.name.clone(), vhost);
            }
        }
        drop(reg);
        self.changed();
    }

    /// Deletes a vhost with everything in it, including permissions on it.
    pub fn delete_vhost(&self, name: &str) -> Result<(), StateError> {
        let mut reg = self.registry();
        let vhost = reg.vhosts.remove(name).ok_or_else(|| StateError::VhostNotFound { vhost: name.to_owned() })?;
        reg.permissions.retain(|(_, v), _| v != name);
        reg.topic_permissions.retain(|(_, v, _), _| v != name);
        drop(reg);
        self.permissions_changed();
        for queue in vhost.queues.values() {
            topology::notify_deleted(queue);
        }
        // After the consumers' cancels, as RabbitMQ: then the connections go.
        self.shared.connections.force_close(|c| c.vhost == name, &format!("vhost '{name}' is deleted"));
        self.changed();
        Ok(())
    }

    // ---- users ----

    /// All users, by name.
    pub fn users(&self) -> Vec<User> {
        self.registry().users.values().cloned().collect()
    }

    /// One user.
    pub fn user(&self, name: &str) -> Option<User> {
        self.registry().users.get(name).cloned()
    }

    /// Creates or replaces a user.
    pub fn put_user(&self, user: User) {
        self.registry().users.insert(user.name.clone(), user);
        self.changed();
    }

    /// Deletes a user and their permissions.
    pub fn delete_user(&self, name: &str) -> Result<(), StateError> {
        let mut reg = self.registry();
        reg.users.remove(name).ok_or_else(|| StateError::UserNotFound { user: name.to_owned() })?;
        reg.permissions.retain(|(u, _), _| u != name);
        reg.topic_permissions.retain(|(u, _, _), _| u != name);
        drop(reg);
        self.permissions_changed();
        self.shared.connections.force_close(|c| c.user == name, &format!("user '{name}' is deleted"));
        self.changed();
        Ok(())
    }

    /// The user when the password matches.
    pub fn authenticate(&self, name: &str, password: &[u8]) -> Option<User> {
        self.registry().users.get(name).filter(|u| u.check_password(password)).cloned()
    }

    /// Whether the user may only connect from loopback (RabbitMQ's `loopback_users`).
    pub fn is_loopback_only(&self, name: &str) -> bool {
        self.shared.loopback_users.iter().any(|u| u == name)
    }

    /// Whether `name` may log in over a connection on `addr`: users in `loopback_users` (guest)
    /// only over loopback. RabbitMQ checks the socket's local address for AMQP and the peer's for
    /// HTTP; either is loopback exactly when the traffic never left the host.
    pub fn may_log_in_from(&self, name: &str, addr: std::net::IpAddr) -> bool {
        !self.is_loopback_only(name) || is_loopback(addr)
    }

    // ---- permissions ----

    /// All permissions.
    pub fn permissions(&self) -> Vec<Permission> {
        self.registry().permissions.values().cloned().collect()
    }

    /// Sets a user's permissions in a vhost; both must exist and the patterns must compile.
    pub fn put_permission(&self, permission: Permission) -> Result<(), StateError> {
        for pattern in [&permission.configure, &permission.write, &permission.read] {
            auth::compile_pattern(pattern)
                .map_err(|e| StateError::Invalid { reason: format!("invalid permission pattern '{pattern}': {e}") })?;
        }
        let mut reg = self.registry();
        if !reg.vhosts.contains_key(&permission.vhost) {
            return Err(StateError::VhostNotFound { vhost: permission.vhost });
        }
        if !reg.users.contains_key(&permission.user) {
            return Err(StateError::UserNotFound { user: permission.user });
        }
        reg.permissions.insert((permission.user.clone(), permission.vhost.clone()), permission);
        drop(reg);
        self.permissions_changed();
        self.changed();
        Ok(())
    }

    /// Removes a user's permissions in a vhost.
    pub fn delete_permission(&self, user: &str, vhost: &str) -> Result<(), StateError> {
        let removed = self.registry().permissions.remove(&(user.to_owned(), vhost.to_owned()));
        self.permissions_changed();
        if removed.is_none() {
            return Err(StateError::NotFound {
                kind: EntityKind::Permission,
                vhost: vhost.to_owned(),
                name: user.to_owned(),
            });
        }
        self.changed();
        Ok(())
    }

    /// All topic permissions.
    pub fn topic_permissions(&self) -> Vec<TopicPermission> {
        self.registry().topic_permissions.values().cloned().collect()
    }

    /// Sets a topic permission.
    pub fn put_topic_permission(&self, permission: TopicPermission) -> Result<(), StateError> {
        for pattern in [&permission.write, &permission.read] {
            auth::compile_pattern(pattern)
                .map_err(|e| StateError::Invalid { reason: format!("invalid permission pattern '{pattern}': {e}") })?;
        }
        let mut reg = self.registry();
        if !reg.vhosts.contains_key(&permission.vhost) {
            return Err(StateError::VhostNotFound { vhost: permission.vhost });
        }
        if !reg.users.contains_key(&permission.user) {
            return Err(StateError::UserNotFound { user: permission.user });
        }
        let key = (permission.user.clone(), permission.vhost.clone(), permission.exchange.clone());
        reg.topic_permissions.insert(key, permission);
        drop(reg);
        self.permissions_changed();
        self.changed();
        Ok(())
    }

    /// Removes topic permissions of a user in a vhost: for one exchange, or all when `None`.
    pub fn delete_topic_permission(&self, user: &str, vhost: &str, exchange: Option<&str>) -> Result<(), StateError> {
        let mut reg = self.registry();
        let before = reg.topic_permissions.len();
        reg.topic_permissions.retain(|(u, v, x), _| !(u == user && v == vhost && exchange.is_none_or(|e| e == x)));
        let removed = before != reg.topic_permissions.len();
        drop(reg);
        self.permissions_changed();
        if !removed {
            return Err(StateError::NotFound {
                kind: EntityKind::Permission,
                vhost: vhost.to_owned(),
                name: user.to_owned(),
            });
        }
        self.changed();
        Ok(())
    }

    fn permissions_changed(&self) {
        self.shared.permission_generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Increases whenever permissions or topic permissions may have changed: what a connection
    /// cached of them ([`State::topic_rules`], the exchanges a channel may write to) is current
    /// while this stays the same.
    pub fn permission_generation(&self) -> u64 {
        self.shared.permission_generation.load(Ordering::Relaxed)
    }

    /// The user's topic permissions in a vhost, one rule per exchange (none for most users). As in
    /// RabbitMQ, `{username}` and `{vhost}` in a pattern are replaced (unescaped) before it is
    /// compiled, and an empty pattern allows only the empty routing key.
    pub fn topic_rules(&self, user: &str, vhost: &str) -> Vec<TopicRule> {
        let compile = |pattern: &str| {
            let pattern = if pattern.is_empty() { "^$" } else { pattern };
            auth::compile_pattern(&pattern.replace("{username}", user).replace("{vhost}", vhost)).ok()
        };
        let reg = self.registry();
        reg.topic_permissions
            .values()
            .filter(|p| p.user == user && p.vhost == vhost)
            .map(|p| TopicRule { exchange: p.exchange.clone(), write: compile(&p.write), read: compile(&p.read) })
            .collect()
    }

    /// Whether the user has any permission entry in the vhost (needed to open a connection there).
    pub fn can_access_vhost(&self, user: &str, vhost: &str) -> Result<(), StateError> {
        let reg = self.registry();
        if !reg.vhosts.contains_key(vhost) {
            return Err(StateError::VhostNotFound { vhost: vhost.to_owned() });
        }
        if !reg.permissions.contains_key(&(user.to_owned(), vhost.to_owned())) {
            return Err(StateError::AccessRefused {
                reason: format!("access to vhost '{vhost}' refused for user '{user}'"),
            });
        }
        Ok(())
    }

    /// Checks a configure/write/read permission on a named exchange or queue, with RabbitMQ's
    /// refusal text.
    pub fn check_access(
        &self,
        user: &str,
        vhost: &str,
        access: Access,
        kind: EntityKind,
        name: &str,
    ) -> Result<(), StateError> {
        let reg = self.registry();
        let allowed = reg.permissions.get(&(user.to_owned(), vhost.to_owned())).is_some_and(|p| {
            let pattern = match access {
                Access::Configure => &p.configure,
                Access::Write => &p.write,
                Access::Read => &p.read,
            };
            // RabbitMQ anchors nothing implicitly; an empty pattern grants nothing.
            !pattern.is_empty() && auth::compile_pattern(pattern).is_ok_and(|re| re.is_match(name))
        });
        if allowed {
            Ok(())
        } else {
            Err(StateError::AccessRefused {
                reason: format!("access to {kind} '{name}' in vhost '{vhost}' refused for user '{user}'",),
            })
        }
    }
}

/// RabbitMQ's `rabbit_net:is_loopback`: 127.0.0.0/8, `::1`, and IPv4 loopback mapped into IPv6
/// (`::ffff:127.0.0.1`, how a dual-stack listener sees an IPv4 client), which
/// `IpAddr::is_loopback` alone does not count.
pub fn is_loopback(addr: std::net::IpAddr) -> bool {
    addr.to_canonical().is_loopback()
}
