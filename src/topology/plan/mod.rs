//! A plan: the ordered changes that bring a broker to a topology, each able
//! to explain itself for `plan`, `apply --dry-run` and `--format json`.

pub mod diff;
pub mod guard;

use std::fmt::Write as _;

use serde::Serialize;

use warren_definitions::password::HashingAlgorithm;

use super::model::{Binding, Exchange, Password, Permission, Policy, Queue, TopicPermission, Vhost};

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create what is missing.
    Create,
    /// Change in place (users, permissions, policies, vhost metadata).
    Update,
    /// Delete and create again: the broker cannot change it in place.
    Replace,
    /// Delete.
    Delete,
}

impl Action {
    /// Terraform's marker for the action.
    pub fn marker(self) -> &'static str {
        match self {
            Action::Create => "  +",
            Action::Update => "  ~",
            Action::Replace => "-/+",
            Action::Delete => "  -",
        }
    }
}

/// The kind of entity a change touches, in creation order (deletes run in reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A vhost.
    Vhost,
    /// A user.
    User,
    /// A user's permissions in a vhost.
    Permission,
    /// A user's topic permissions on an exchange.
    TopicPermission,
    /// A policy.
    Policy,
    /// An operator policy.
    OperatorPolicy,
    /// An exchange.
    Exchange,
    /// A queue.
    Queue,
    /// A binding.
    Binding,
}

impl Kind {
    /// Every kind in creation order.
    pub const ALL: [Kind; 9] = [
        Kind::Vhost,
        Kind::User,
        Kind::Permission,
        Kind::TopicPermission,
        Kind::Policy,
        Kind::OperatorPolicy,
        Kind::Exchange,
        Kind::Queue,
        Kind::Binding,
    ];

    /// The word used in plan output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vhost => "vhost",
            Kind::User => "user",
            Kind::Permission => "permissions",
            Kind::TopicPermission => "topic permissions",
            Kind::Policy => "policy",
            Kind::OperatorPolicy => "operator policy",
            Kind::Exchange => "exchange",
            Kind::Queue => "queue",
            Kind::Binding => "binding",
        }
    }
}

/// What becomes of a user's password.
#[derive(Clone, PartialEq)]
pub enum PasswordChange {
    /// Keep the stored one (sent back unchanged when tags change, because
    /// `PUT /api/users` replaces both).
    Keep(Password),
    /// Set this one.
    Set(Password),
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordChange::Keep(p) => write!(f, "Keep({p:?})"),
            PasswordChange::Set(p) => write!(f, "Set({p:?})"),
        }
    }
}

impl PasswordChange {
    /// The hash to send and its algorithm; a clear password gets a fresh salt.
    /// An empty hash means "no password".
    pub fn to_hash(&self) -> (String, HashingAlgorithm) {
        let password = match self {
            PasswordChange::Keep(p) | PasswordChange::Set(p) => p,
        };
        password.to_stored().unwrap_or_default()
    }
}

/// A user as it should be after the change.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSpec {
    /// Tags (sorted).
    pub tags: Vec<String>,
    /// The password.
    pub password: PasswordChange,
}

/// The entity a change touches, with its desired value (`None` for a delete).
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// A vhost; the desired value carries metadata only, no children.
    Vhost {
        /// Name.
        name: String,
        /// Metadata to set.
        desired: Option<Vhost>,
    },
    /// A user.
    User {
        /// Name.
        name: String,
        /// Tags and password to set.
        desired: Option<UserSpec>,
    },
    /// A user's permissions in a vhost.
    Permission {
        /// User.
        user: String,
        /// Vhost.
        vhost: String,
        /// Permissions to set.
        desired: Option<Permission>,
    },
    /// A user's topic permissions on one exchange.
    TopicPermission {
        /// User.
        user: String,
        /// Vhost.
        vhost: String,
        /// Exchange.
        exchange: String,
        /// Permissions to set.
        desired: Option<TopicPermission>,
    },
    /// A policy or operator policy.
    Policy {
        /// Vhost.
        vhost: String,
        /// Name.
        name: String,
        /// Operator policy rather than policy.
        operator: bool,
        /// The policy to set.
        desired: Option<Policy>,
    },
    /// An exchange.
    Exchange {
        /// Vhost.
        vhost: String,
        /// Name.
        name: String,
        /// The exchange to declare.
        desired: Option<Exchange>,
    },
    /// A queue.
    Queue {
        /// Vhost.
        vhost: String,
        /// Name.
        name: String,
        /// The queue to declare.
        desired: Option<Queue>,
    },
    /// A binding (its identity is the whole value).
    Binding {
        /// Vhost.
        vhost: String,
        /// The binding.
        binding: Binding,
    },
}

impl Subject {
    /// The kind of entity.
    pub fn kind(&self) -> Kind {
        match self {
            Subject::Vhost { .. } => Kind::Vhost,
            Subject::User { .. } => Kind::User,
            Subject::Permission { .. } => Kind::Permission,
            Subject::TopicPermission { .. } => Kind::TopicPermission,
            Subject::Policy { operator: false, .. } => Kind::Policy,
            Subject::Policy { operator: true, .. } => Kind::OperatorPolicy,
            Subject::Exchange { .. } => Kind::Exchange,
            Subject::Queue { .. } => Kind::Queue,
            Subject::Binding { .. } => Kind::Binding,
        }
    }

    /// The vhost the entity lives in (`None` for vhosts and users).
    pub fn vhost(&self) -> Option<&str> {
        match self {
            Subject::Vhost { .. } | Subject::User { .. } => None,
            Subject::Permission { vhost, .. }
            | Subject::TopicPermission { vhost, .. }
            | Subject::Policy { vhost, .. }
            | Subject::Exchange { vhost, .. }
            | Subject::Queue { vhost, .. }
            | Subject::Binding { vhost, .. } => Some(vhost),
        }
    }

    /// The entity's name as shown in a plan.
    pub fn name(&self) -> String {
        match self {
            Subject::Vhost { name, .. }
            | Subject::User { name, .. }
            | Subject::Policy { name, .. }
            | Subject::Exchange { name, .. }
            | Subject::Queue { name, .. } => name.clone(),
            Subject::Permission { user, .. } => user.clone(),
            Subject::TopicPermission { user, exchange, .. } => format!("{user} on {exchange}"),
            Subject::Binding { binding, .. } => binding_label(binding),
        }
    }
}

/// `source -> queue destination [key] {args}`, the way a plan names a binding.
pub fn binding_label(b: &Binding) -> String {
    let source = if b.source.is_empty() { "(default exchange)" } else { &b.source };
    let mut label = format!("{source} -> {} {} [{}]", b.destination_type.as_str(), b.destination, b.routing_key);
    if !b.arguments.is_empty() {
        let _ = write!(label, " {}", serde_json::to_string(&b.arguments).unwrap_or_default());
    }
    label
}

/// One planned change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What it does.
    pub action: Action,
    /// What it touches, with the desired value.
    pub subject: Subject,
    /// One line saying why.
    pub reason: String,
    /// For a replace: the fields or argument keys that differ (guards name them).
    pub changed: Vec<String>,
}

impl Change {
    /// A change without changed fields.
    pub fn new(action: Action, subject: Subject, reason: impl Into<String>) -> Change {
        Change { action, subject, reason: reason.into(), changed: Vec::new() }
    }

    /// One line: marker, kind, name, vhost, reason.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.entity(), self.reason)
    }

    /// The entity it changes, named: `queue "q" in vhost "/"`.
    pub fn entity(&self) -> String {
        let mut line = format!("{} {}", self.subject.kind().as_str(), quoted(&self.subject));
        if let Some(vhost) = self.subject.vhost() {
            let _ = write!(line, " in vhost {vhost:?}");
        }
        line
    }
}

fn quoted(subject: &Subject) -> String {
    match subject {
        Subject::Binding { .. } => subject.name(),
        _ => format!("{:?}", subject.name()),
    }
}

/// The machine-readable form of a change (`--format json`): never a password or hash.
#[derive(Debug, Serialize)]
pub struct ChangeJson<'a> {
    /// What it does.
    pub action: Action,
    /// What kind of entity.
    pub kind: Kind,
    /// Its vhost, for vhost-scoped entities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhost: Option<&'a str>,
    /// Its name (for bindings, a label of all identity fields).
    pub name: String,
    /// Why.
    pub reason: &'a str,
}

/// Changes to make, in execution order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The changes: deletes (bindings first, vhosts last), then creations,
    /// updates and replaces (vhosts first, bindings last).
    pub changes: Vec<Change>,
}

/// One stage of an apply: changes of one kind, all deleting or all creating.
#[derive(Debug)]
pub struct Stage<'a> {
    /// The kind of entity.
    pub kind: Kind,
    /// True for the deleting half (deletes, and the first half of replaces).
    pub deleting: bool,
    /// The changes, each with its index in [`Plan::changes`].
    pub changes: Vec<(usize, &'a Change)>,
}

/// Counts per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Creations.
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Replacements.
    pub replace: usize,
    /// Deletions.
    pub delete: usize,
}

impl Plan {
    /// Builds a plan and puts its changes in execution order.
    pub fn new(mut changes: Vec<Change>) -> Plan {
        changes.sort_by_key(|c| {
            let kind = c.subject.kind() as i32;
            if c.action == Action::Delete { (0, -kind) } else { (1, kind) }
        });
        Plan { changes }
    }

    /// The execution stages: first the deleting half of deletes and replaces,
    /// kind by kind in reverse creation order; then creations, updates and
    /// the creating half of replaces, in creation order. Empty stages are left out.
    pub fn stages(&self) -> Vec<Stage<'_>> {
        let mut stages = Vec::new();
        for kind in Kind::ALL.iter().rev() {
            let changes: Vec<(usize, &Change)> = self
                .changes
                .iter()
                .enumerate()
                .filter(|(_, c)| c.subject.kind() == *kind && matches!(c.action, Action::Delete | Action::Replace))
                .collect();
            if !changes.is_empty() {
                stages.push(Stage { kind: *kind, deleting: true, changes });
            }
        }
        for kind in Kind::ALL {
            let changes: Vec<(usize, &Change)> = self
                .changes
                .iter()
                .enumerate()
                .filter(|(_, c)| c.subject.kind() == kind && c.action != Action::Delete)
                .collect();
            if !changes.is_empty() {
                stages.push(Stage { kind, deleting: false, changes });
            }
        }
        stages
    }

    /// True when the broker already matches.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Counts per action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.delete += 1,
            }
        }
        s
    }

    /// The JSON view of every change.
    pub fn to_json(&self) -> Vec<ChangeJson<'_>> {
        self.changes
            .iter()
            .map(|c| ChangeJson {
                action: c.action,
                kind: c.subject.kind(),
                vhost: c.subject.vhost(),
                name: c.subject.name(),
                reason: &c.reason,
            })
            .collect()
    }

    /// The human rendering, Terraform style; `color` adds ANSI colours.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        if self.is_empty() {
            out.push_str("No changes: the broker matches the topology.\n");
            return out;
        }
        for change in &self.changes {
            let style = match change.action {
                Action::Create => console::Style::new().green(),
                Action::Update => console::Style::new().yellow(),
                Action::Replace => console::Style::new().magenta(),
                Action::Delete => console::Style::new().red(),
            };
            let style = if color { style.force_styling(true) } else { style.force_styling(false) };
            let _ = writeln!(out, "{} {}", style.apply_to(change.action.marker()), change.describe());
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "\nPlan: {} to create, {} to update, {} to replace, {} to delete.",
            s.create, s.update, s.replace, s.delete
        );
        out
    }
}

/// True when output to a stream should be coloured: a terminal, and `NO_COLOR` unset or empty.
pub fn use_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
