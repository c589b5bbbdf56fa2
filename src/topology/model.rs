//! The validated topology: what a file declares, or what a broker holds.
//!
//! Everything here is already resolved (`${ENV}` substituted), validated and
//! normalised, so two `Topology` values compare equal exactly when a broker
//! holding one needs no change to hold the other. Both the file loader and
//! the broker reader produce this type; the diff only ever sees this type.

use std::collections::BTreeMap;
use std::fmt;

use warren_definitions::password::{self, HashingAlgorithm};

/// Arguments of an exchange, queue or binding, or a policy definition.
///
/// Values are normalised JSON: numeric strings the broker would accept as
/// numbers are numbers, so `"60000"` and `60000` compare equal.
pub type Arguments = BTreeMap<String, serde_json::Value>;

/// A whole topology: vhosts with their entities, and users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Topology {
    /// Vhosts by name.
    pub vhosts: BTreeMap<String, Vhost>,
    /// Users by name.
    pub users: BTreeMap<String, User>,
}

/// Whether an entity should exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Created or kept.
    #[default]
    Present,
    /// Removed if present (`state: absent`).
    Absent,
}

/// A virtual host and everything declared inside it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vhost {
    /// `absent` removes the vhost and all it holds.
    pub state: State,
    /// Free-text description shown in the management UI.
    pub description: Option<String>,
    /// Vhost tags.
    pub tags: Vec<String>,
    /// Queue type used when a declare names none (`default_queue_type`).
    pub default_queue_type: Option<QueueType>,
    /// Exchanges by name.
    pub exchanges: BTreeMap<String, Exchange>,
    /// Queues by name.
    pub queues: BTreeMap<String, Queue>,
    /// Bindings; identity is the whole value.
    pub bindings: Vec<Binding>,
    /// Policies by name.
    pub policies: BTreeMap<String, Policy>,
    /// Operator policies by name.
    pub operator_policies: BTreeMap<String, Policy>,
    /// Regular expressions (anchored by the author) naming exchanges, queues
    /// and policies that `--prune` must leave alone.
    pub unmanaged: Vec<String>,
}

/// An exchange type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExchangeType {
    /// Routes on exact routing-key equality.
    Direct,
    /// Routes to every binding.
    Fanout,
    /// Routes on dotted routing-key patterns.
    Topic,
    /// Routes on message headers.
    Headers,
    /// A plugin-provided type, e.g. `x-delayed-message`, `x-consistent-hash`.
    Plugin(String),
}

impl ExchangeType {
    /// The name the broker uses.
    pub fn as_str(&self) -> &str {
        match self {
            ExchangeType::Direct => "direct",
            ExchangeType::Fanout => "fanout",
            ExchangeType::Topic => "topic",
            ExchangeType::Headers => "headers",
            ExchangeType::Plugin(name) => name,
        }
    }

    /// Parses a type name; `None` for a name that is neither built in nor `x-` prefixed.
    pub fn parse(name: &str) -> Option<ExchangeType> {
        Some(match name {
            "direct" => ExchangeType::Direct,
            "fanout" => ExchangeType::Fanout,
            "topic" => ExchangeType::Topic,
            "headers" => ExchangeType::Headers,
            other if other.starts_with("x-") && other.len() > 2 => ExchangeType::Plugin(other.to_owned()),
            _ => return None,
        })
    }
}

impl fmt::Display for ExchangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// `absent` deletes it.
    pub state: State,
    /// Routing algorithm.
    pub kind: ExchangeType,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
    /// Cannot be published to directly.
    pub internal: bool,
    /// Declare arguments, e.g. `alternate-exchange`.
    pub arguments: Arguments,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            state: State::Present,
            kind: ExchangeType::Direct,
            durable: true,
            auto_delete: false,
            internal: false,
            arguments: Arguments::new(),
        }
    }
}

/// A queue type (`x-queue-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueType {
    /// The classic queue.
    Classic,
    /// A replicated Raft queue.
    Quorum,
    /// An append-only log.
    Stream,
}

impl QueueType {
    /// The name the broker uses.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
            QueueType::Stream => "stream",
        }
    }

    /// Parses `classic`, `quorum` or `stream`.
    pub fn parse(name: &str) -> Option<QueueType> {
        match name {
            "classic" => Some(QueueType::Classic),
            "quorum" => Some(QueueType::Quorum),
            "stream" => Some(QueueType::Stream),
            _ => None,
        }
    }
}

impl fmt::Display for QueueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A queue.
///
/// The queue type lives in `arguments["x-queue-type"]` only when it is not
/// the vhost's default (classic unless the vhost says otherwise), so a
/// server-filled `x-queue-type` never shows up as a difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    /// `absent` deletes it (guarded when it holds messages).
    pub state: State,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Declare arguments (`x-message-ttl`, `x-dead-letter-exchange`, …).
    pub arguments: Arguments,
}

impl Default for Queue {
    fn default() -> Self {
        Queue { state: State::Present, durable: true, auto_delete: false, arguments: Arguments::new() }
    }
}

/// What a binding routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestinationType {
    /// A queue.
    Queue,
    /// Another exchange (exchange-to-exchange binding).
    Exchange,
}

impl DestinationType {
    /// The name the management API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationType::Queue => "queue",
            DestinationType::Exchange => "exchange",
        }
    }
}

/// A binding. Its identity is every field but `state`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// `absent` removes it.
    pub state: State,
    /// The source exchange; `""` is the default exchange.
    pub source: String,
    /// The destination queue or exchange.
    pub destination: String,
    /// Whether `destination` is a queue or an exchange.
    pub destination_type: DestinationType,
    /// The binding key.
    pub routing_key: String,
    /// Binding arguments, e.g. headers `x-match`.
    pub arguments: Arguments,
}

impl Binding {
    /// True when both name the same binding (all identity fields equal).
    pub fn same_identity(&self, other: &Binding) -> bool {
        self.source == other.source
            && self.destination == other.destination
            && self.destination_type == other.destination_type
            && self.routing_key == other.routing_key
            && self.arguments == other.arguments
    }
}

/// What a policy applies to (`apply-to`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApplyTo {
    /// Exchanges and queues.
    #[default]
    All,
    /// Exchanges only.
    Exchanges,
    /// Queues only.
    Queues,
    /// Classic queues only (RabbitMQ 3.12+).
    ClassicQueues,
    /// Quorum queues only (RabbitMQ 3.12+).
    QuorumQueues,
    /// Streams only (RabbitMQ 3.12+).
    Streams,
}

impl ApplyTo {
    /// The name the management API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyTo::All => "all",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::Queues => "queues",
            ApplyTo::ClassicQueues => "classic_queues",
            ApplyTo::QuorumQueues => "quorum_queues",
            ApplyTo::Streams => "streams",
        }
    }

    /// Parses the management API's name.
    pub fn parse(name: &str) -> Option<ApplyTo> {
        Some(match name {
            "all" => ApplyTo::All,
            "exchanges" => ApplyTo::Exchanges,
            "queues" => ApplyTo::Queues,
            "classic_queues" => ApplyTo::ClassicQueues,
            "quorum_queues" => ApplyTo::QuorumQueues,
            "streams" => ApplyTo::Streams,
            _ => return None,
        })
    }
}

/// A policy or operator policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `absent` removes it.
    pub state: State,
    /// Regular expression matched against exchange/queue names.
    pub pattern: String,
    /// What the policy applies to.
    pub apply_to: ApplyTo,
    /// Higher wins when several match.
    pub priority: i64,
    /// The keys it sets, e.g. `message-ttl`.
    pub definition: Arguments,
}

/// A user's password as declared.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    /// A clear-text password (from `${ENV}`); compared against the stored salted hash.
    Clear(String),
    /// A RabbitMQ password hash: base64(salt ++ digest).
    Hash {
        /// The base64 hash as RabbitMQ stores it.
        hash: String,
        /// The digest algorithm.
        algorithm: HashingAlgorithm,
    },
    /// The file gives no password: a new user is created without one (it can
    /// only log in through other mechanisms), an existing user keeps its own.
    /// Leaving the password out is never a reason to change a stored one.
    None,
}

impl Password {
    /// What a broker stores for it: a declared hash as it is, a clear-text
    /// password hashed with a fresh salt by RabbitMQ's default algorithm;
    /// `None` without a password.
    pub fn to_stored(&self) -> Option<(String, HashingAlgorithm)> {
        match self {
            Password::Clear(clear) => {
                let algorithm = HashingAlgorithm::default();
                Some((password::hash(clear, algorithm), algorithm))
            }
            Password::Hash { hash, algorithm } => Some((hash.clone(), *algorithm)),
            Password::None => None,
        }
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a password or a hash, not even in debug output.
        match self {
            Password::Clear(_) => f.write_str("Password::Clear(<redacted>)"),
            Password::Hash { algorithm, .. } => write!(f, "Password::Hash({algorithm:?}, <redacted>)"),
            Password::None => f.write_str("Password::None"),
        }
    }
}

/// A user.
///
/// An entry that gives a password, a hash or tags defines the user: it is
/// created when missing. One that gives none of them only grants
/// permissions ([`User::only_grants`]): the user must already exist, and
/// its password and tags are left as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `absent` deletes the user.
    pub state: State,
    /// The declared password; compared through the stored hash, never printed.
    pub password: Password,
    /// Tags, sorted and deduplicated (`administrator`, `monitoring`, …);
    /// `None` leaves the user's tags as they are (a new user gets none).
    pub tags: Option<Vec<String>>,
    /// Permissions by vhost.
    pub permissions: BTreeMap<String, Permission>,
    /// Topic permissions by vhost, then by exchange.
    pub topic_permissions: BTreeMap<String, BTreeMap<String, TopicPermission>>,
}

impl User {
    /// A user entry that only grants permissions to a user it names.
    pub fn granting(state: State) -> User {
        User {
            state,
            password: Password::None,
            tags: None,
            permissions: BTreeMap::new(),
            topic_permissions: BTreeMap::new(),
        }
    }

    /// True when the entry gives neither a password nor tags: it manages the
    /// user's permissions only, and the user must exist on the broker.
    pub fn only_grants(&self) -> bool {
        matches!(self.password, Password::None) && self.tags.is_none()
    }
}

/// A user's permissions in one vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// Regex of resources the user may configure.
    pub configure: String,
    /// Regex of resources the user may write to.
    pub write: String,
    /// Regex of resources the user may read from.
    pub read: String,
}

/// A user's topic permissions on one exchange of one vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPermission {
    /// Regex of routing keys the user may publish with.
    pub write: String,
    /// Regex of routing keys the user may bind with.
    pub read: String,
}
