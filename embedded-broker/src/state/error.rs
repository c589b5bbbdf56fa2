//! Errors of the broker state, each carrying the AMQP reply code and text RabbitMQ would send.

/// What kind of entity an error is about; shown as RabbitMQ names it ("queue 'q' in vhost '/'").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    /// A virtual host.
    Vhost,
    /// A user.
    User,
    /// An exchange.
    Exchange,
    /// A queue.
    Queue,
    /// A binding.
    Binding,
    /// A policy or operator policy.
    Policy,
    /// A permission entry.
    Permission,
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntityKind::Vhost => "vhost",
            EntityKind::User => "user",
            EntityKind::Exchange => "exchange",
            EntityKind::Queue => "queue",
            EntityKind::Binding => "binding",
            EntityKind::Policy => "policy",
            EntityKind::Permission => "permission",
        })
    }
}

/// A refused state change. [`StateError::reply_code`] gives the AMQP code; the management API maps
/// `NotFound` to 404, `AccessRefused` to 403 and everything else to 400, as RabbitMQ does.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    /// The entity does not exist (AMQP 404).
    #[error("NOT_FOUND - no {kind} '{name}' in vhost '{vhost}'")]
    NotFound {
        /// Entity kind.
        kind: EntityKind,
        /// Its virtual host.
        vhost: String,
        /// Its name.
        name: String,
    },
    /// The virtual host does not exist (AMQP 530 on connection open, 404 over HTTP).
    #[error("NOT_FOUND - no vhost '{vhost}'")]
    VhostNotFound {
        /// The missing virtual host.
        vhost: String,
    },
    /// The user does not exist.
    #[error("NOT_FOUND - no user '{user}'")]
    UserNotFound {
        /// The missing user.
        user: String,
    },
    /// A redeclaration differs from the existing entity (AMQP 406).
    #[error("PRECONDITION_FAILED - inequivalent arg '{arg}' for {kind} '{name}' in vhost '{vhost}': {detail}")]
    Inequivalent {
        /// Entity kind.
        kind: EntityKind,
        /// Its virtual host.
        vhost: String,
        /// Its name.
        name: String,
        /// The property or argument that differs.
        arg: String,
        /// "received X but current is Y", as RabbitMQ words it.
        detail: String,
    },
    /// An argument value is not acceptable (AMQP 406).
    #[error("PRECONDITION_FAILED - invalid arg '{arg}' for {kind} '{name}' in vhost '{vhost}': {reason}")]
    InvalidArgument {
        /// Entity kind.
        kind: EntityKind,
        /// Its virtual host.
        vhost: String,
        /// Its name.
        name: String,
        /// The argument.
        arg: String,
        /// Why it was refused.
        reason: String,
    },
    /// An argument that only another queue type takes (AMQP 406).
    #[error(
        "PRECONDITION_FAILED - invalid arg '{arg}' for queue '{name}' in vhost '{vhost}' of queue type {queue_type}"
    )]
    ArgumentOfOtherQueueType {
        /// Its virtual host.
        vhost: String,
        /// The queue.
        name: String,
        /// The argument.
        arg: String,
        /// RabbitMQ's module name for the queue's type (`rabbit_classic_queue`).
        queue_type: &'static str,
    },
    /// An argument naming an entity has a type that cannot name one (AMQP 406), as RabbitMQ's
    /// channel refuses a non-string `x-dead-letter-exchange` before the other argument checks.
    #[error("PRECONDITION_FAILED - invalid type '{type_name}' for arg '{arg}' in {kind} '{name}' in vhost '{vhost}'")]
    InvalidArgumentType {
        /// Entity kind.
        kind: EntityKind,
        /// Its virtual host.
        vhost: String,
        /// Its name.
        name: String,
        /// The argument.
        arg: String,
        /// RabbitMQ's name for the value's type.
        type_name: &'static str,
    },
    /// A precondition other than equivalence failed (if-unused, if-empty...; AMQP 406).
    #[error("PRECONDITION_FAILED - {kind} '{name}' in vhost '{vhost}' {reason}")]
    PreconditionFailed {
        /// Entity kind.
        kind: EntityKind,
        /// Its virtual host.
        vhost: String,
        /// Its name.
        name: String,
        /// What is wrong, e.g. "in use" or "not empty".
        reason: String,
    },
    /// The operation is not allowed for this name or user (AMQP 403).
    #[error("ACCESS_REFUSED - {reason}")]
    AccessRefused {
        /// The refusal as RabbitMQ words it.
        reason: String,
    },
    /// An exclusive queue belongs to another connection (AMQP 405).
    #[error(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
    )]
    ResourceLocked {
        /// Its virtual host.
        vhost: String,
        /// The queue.
        name: String,
    },
    /// A feature RabbitMQ has but this broker does not (AMQP 540).
    #[error("NOT_IMPLEMENTED - {what}")]
    NotImplemented {
        /// What was asked for.
        what: String,
    },
    /// Bad input that is not an argument of an entity, e.g. a malformed regex in a permission.
    #[error("PRECONDITION_FAILED - {reason}")]
    Invalid {
        /// What was wrong.
        reason: String,
    },
    /// The message store could not read or write a queue's files (AMQP 541).
    #[error("INTERNAL_ERROR - cannot use the messages of queue '{name}' in vhost '{vhost}': {reason}")]
    Storage {
        /// Its virtual host.
        vhost: String,
        /// The queue.
        name: String,
        /// The file and what the operating system said.
        reason: String,
    },
}

impl StateError {
    /// The AMQP reply code RabbitMQ uses for this error.
    pub fn reply_code(&self) -> u16 {
        match self {
            StateError::NotFound { .. } | StateError::UserNotFound { .. } => 404,
            StateError::VhostNotFound { .. } => 530,
            StateError::Inequivalent { .. }
            | StateError::InvalidArgument { .. }
            | StateError::ArgumentOfOtherQueueType { .. }
            | StateError::InvalidArgumentType { .. }
            | StateError::PreconditionFailed { .. }
            | StateError::Invalid { .. } => 406,
            StateError::AccessRefused { .. } => 403,
            StateError::ResourceLocked { .. } => 405,
            StateError::NotImplemented { .. } => 540,
            StateError::Storage { .. } => 541,
        }
    }

    /// The HTTP status the management API should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            StateError::NotFound { .. } | StateError::VhostNotFound { .. } | StateError::UserNotFound { .. } => 404,
            StateError::AccessRefused { .. } => 403,
            StateError::Storage { .. } => 500,
            _ => 400,
        }
    }

    /// Shorthand for a missing exchange or queue.
    pub fn not_found(kind: EntityKind, vhost: &str, name: &str) -> Self {
        StateError::NotFound { kind, vhost: vhost.to_owned(), name: name.to_owned() }
    }
}
