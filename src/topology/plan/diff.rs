//! The diff: what a file declares against what a broker holds, both
//! normalised, as a [`Plan`] of explained changes.
//!
//! Rules (DESIGN.md, "Reconciliation rules"): identity by name (bindings by
//! every field); exchanges and queues that differ in anything are replaced,
//! because RabbitMQ cannot change them in place and silently ignores some
//! argument changes on redeclare; a replace re-creates the bindings that
//! touched the entity; `--prune` only acts inside the file's vhosts, and
//! never on built-in exchanges, server-named queues or `unmanaged` names.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde_json::Value;

use super::{Action, Change, PasswordChange, Plan, Subject, UserSpec};
use crate::topology::model::{
    Arguments, Binding, DestinationType, Exchange, Password, Policy, Queue, QueueType, State, Topology, User, Vhost,
};
use crate::topology::normalise::{is_builtin_exchange, is_server_named_queue};

/// How to diff.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Delete what the file's vhosts do not declare.
    pub prune: bool,
    /// The user warren connects as; never deleted.
    pub connecting_user: Option<String>,
}

/// A declared change warren refuses to plan at all.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// `/` declared absent.
    #[error("refusing to delete the default vhost \"/\" (declared absent)")]
    DefaultVhost,
    /// The connecting user declared absent.
    #[error("refusing to delete user {name:?}: warren is connected as that user")]
    ConnectingUser {
        /// The user.
        name: String,
    },
    /// Permissions for a user the file does not define and the broker lacks.
    #[error(
        "user {name:?} does not exist on the broker, and the file only grants it permissions without defining it \
         (create the user first, or give it a password, password_hash or tags to have warren create it)"
    )]
    UndefinedUser {
        /// The user.
        name: String,
    },
}

/// Plans the changes that make `current` hold `desired`.
pub fn diff(desired: &Topology, current: &Topology, options: &DiffOptions) -> Result<Plan, DiffError> {
    let mut changes = Vec::new();
    for (name, dv) in &desired.vhosts {
        let cv = current.vhosts.get(name);
        if dv.state == State::Absent {
            if cv.is_some() {
                if name == "/" {
                    return Err(DiffError::DefaultVhost);
                }
                changes.push(Change::new(
                    Action::Delete,
                    Subject::Vhost { name: name.clone(), desired: None },
                    "declared absent; deletes everything in it",
                ));
            }
            continue;
        }
        match cv {
            None => changes.push(Change::new(
                Action::Create,
                Subject::Vhost { name: name.clone(), desired: Some(vhost_metadata(dv, None)) },
                "declared, missing on the broker",
            )),
            Some(cv) => {
                let differences = vhost_differences(dv, cv);
                if !differences.is_empty() {
                    changes.push(Change::new(
                        Action::Update,
                        Subject::Vhost { name: name.clone(), desired: Some(vhost_metadata(dv, Some(cv))) },
                        differences.join("; "),
                    ));
                }
            }
        }
        let empty = Vhost::default();
        diff_vhost(name, dv, cv.unwrap_or(&empty), options.prune, &mut changes);
    }
    for (name, du) in &desired.users {
        diff_user(name, du, current.users.get(name), desired, options, &mut changes)?;
    }
    Ok(Plan::new(changes))
}

/// A vhost's metadata: the declared fields, the current ones where the file says nothing.
fn vhost_metadata(desired: &Vhost, current: Option<&Vhost>) -> Vhost {
    let current_meta = current.cloned().unwrap_or_default();
    Vhost {
        state: State::Present,
        description: desired.description.clone().or(current_meta.description),
        tags: if desired.tags.is_empty() { current_meta.tags } else { desired.tags.clone() },
        default_queue_type: desired.default_queue_type.or(current_meta.default_queue_type),
        ..Vhost::default()
    }
}

/// Metadata the file declares and the broker holds differently. Fields the
/// file leaves out are not managed (`/` has a description nobody declares).
fn vhost_differences(desired: &Vhost, current: &Vhost) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = &desired.description
        && current.description.as_ref() != Some(d)
    {
        out.push(format!("description {:?} -> {d:?}", current.description.as_deref().unwrap_or("")));
    }
    if !desired.tags.is_empty() && desired.tags != current.tags {
        out.push(format!("tags {:?} -> {:?}", current.tags, desired.tags));
    }
    if let Some(d) = desired.default_queue_type
        && current.default_queue_type != Some(d)
    {
        let from = current.default_queue_type.map(|t| t.as_str()).unwrap_or("unset");
        out.push(format!("default queue type {from} -> {d} (RabbitMQ before 3.11 only sets it on a new vhost)"));
    }
    out
}

fn unmanaged_patterns(vhost: &Vhost) -> Vec<Regex> {
    // The loader rejects invalid patterns; one that slipped through protects nothing.
    vhost.unmanaged.iter().filter_map(|p| Regex::new(p).ok()).collect()
}

/// Plans one vhost's contents: exchanges, queues, then the bindings between
/// them (which a replace of either end takes along), then policies.
fn diff_vhost(vhost: &str, dv: &Vhost, cv: &Vhost, prune: bool, changes: &mut Vec<Change>) {
    let mut diff = VhostDiff { vhost, dv, cv, prune, unmanaged: unmanaged_patterns(dv), changes };
    let replaced = Replaced { exchanges: diff.exchanges(), queues: diff.queues() };
    diff.bindings(&replaced);
    if prune {
        diff.prune_bindings();
    } else {
        diff.note_lost_bindings();
    }
    diff.policies(false, &dv.policies, &cv.policies);
    diff.policies(true, &dv.operator_policies, &cv.operator_policies);
}

/// One vhost's diff: what the file declares in it (`dv`) against what the
/// broker holds (`cv`), adding to the plan's changes.
struct VhostDiff<'a> {
    vhost: &'a str,
    dv: &'a Vhost,
    cv: &'a Vhost,
    prune: bool,
    /// The vhost's `unmanaged` patterns: `--prune` leaves matching names alone.
    unmanaged: Vec<Regex>,
    changes: &'a mut Vec<Change>,
}

/// The exchanges and queues a diff replaces, by name.
struct Replaced {
    exchanges: BTreeSet<String>,
    queues: BTreeSet<String>,
}

impl Replaced {
    /// The end of `b` that is replaced (and takes `b` with it), if any.
    fn end(&self, b: &Binding) -> Option<String> {
        if self.exchanges.contains(&b.source) {
            return Some(format!("exchange {:?}", b.source));
        }
        match b.destination_type {
            DestinationType::Exchange if self.exchanges.contains(&b.destination) => {
                Some(format!("exchange {:?}", b.destination))
            }
            DestinationType::Queue if self.queues.contains(&b.destination) => {
                Some(format!("queue {:?}", b.destination))
            }
            _ => None,
        }
    }
}

impl VhostDiff<'_> {
    fn is_unmanaged(&self, name: &str) -> bool {
        self.unmanaged.iter().any(|r| r.is_match(name))
    }

    /// Plans the exchanges; returns the names of those replaced.
    fn exchanges(&mut self) -> BTreeSet<String> {
        let (vhost, dv, cv) = (self.vhost, self.dv, self.cv);
        let mut replaced = BTreeSet::new();
        for (name, dx) in &dv.exchanges {
            if is_builtin_exchange(name) {
                continue;
            }
            let subject = |desired| Subject::Exchange { vhost: vhost.to_owned(), name: name.clone(), desired };
            match (dx.state, cv.exchanges.get(name)) {
                (State::Absent, Some(_)) => {
                    self.changes.push(Change::new(Action::Delete, subject(None), "declared absent"))
                }
                (State::Absent, None) => {}
                (State::Present, None) => self.changes.push(Change::new(
                    Action::Create,
                    subject(Some(dx.clone())),
                    "declared, missing on the broker",
                )),
                (State::Present, Some(cx)) => {
                    let (changed, lines) = exchange_differences(dx, cx);
                    if !changed.is_empty() {
                        replaced.insert(name.clone());
                        self.changes.push(replace(subject(Some(dx.clone())), changed, lines));
                    }
                }
            }
        }
        self.prune_undeclared(&dv.exchanges, &cv.exchanges, is_builtin_exchange, |name| Subject::Exchange {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            desired: None,
        });
        replaced
    }

    /// Plans the queues; returns the names of those replaced.
    fn queues(&mut self) -> BTreeSet<String> {
        let (vhost, dv, cv) = (self.vhost, self.dv, self.cv);
        let mut replaced = BTreeSet::new();
        for (name, dq) in &dv.queues {
            if is_server_named_queue(name) {
                continue;
            }
            let subject = |desired| Subject::Queue { vhost: vhost.to_owned(), name: name.clone(), desired };
            match (dq.state, cv.queues.get(name)) {
                (State::Absent, Some(_)) => {
                    self.changes.push(Change::new(Action::Delete, subject(None), "declared absent"))
                }
                (State::Absent, None) => {}
                (State::Present, None) => self.changes.push(Change::new(
                    Action::Create,
                    subject(Some(self.declared_queue(dq))),
                    "declared, missing on the broker",
                )),
                (State::Present, Some(cq)) => {
                    let (changed, lines) = queue_differences(
                        dq,
                        dv.default_queue_type.or(cv.default_queue_type),
                        cq,
                        cv.default_queue_type,
                    );
                    if !changed.is_empty() {
                        replaced.insert(name.clone());
                        self.changes.push(replace(subject(Some(self.declared_queue(dq))), changed, lines));
                    }
                }
            }
        }
        self.prune_undeclared(&dv.queues, &cv.queues, is_server_named_queue, |name| Subject::Queue {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            desired: None,
        });
        replaced
    }

    /// The queue as warren declares it: with its type spelled out. RabbitMQ
    /// 3.10 applies a vhost's default queue type to AMQP declares only, not to
    /// the management API or definitions imports that apply uses.
    fn declared_queue(&self, q: &Queue) -> Queue {
        let mut q = q.clone();
        if let Some(t) = self.dv.default_queue_type.or(self.cv.default_queue_type) {
            q.arguments.entry("x-queue-type".to_owned()).or_insert_with(|| Value::from(t.as_str()));
        }
        q
    }

    /// Plans the declared bindings: a replaced exchange or queue takes its bindings with it.
    fn bindings(&mut self, replaced: &Replaced) {
        let (vhost, dv, cv) = (self.vhost, self.dv, self.cv);
        let exists = |b: &Binding| cv.bindings.iter().any(|c| c.same_identity(b));
        for b in &dv.bindings {
            let subject = || Subject::Binding {
                vhost: vhost.to_owned(),
                binding: Binding { state: State::Present, ..b.clone() },
            };
            match b.state {
                State::Present if !exists(b) => {
                    self.changes.push(Change::new(Action::Create, subject(), "declared, missing on the broker"))
                }
                State::Present => {
                    if let Some(end) = replaced.end(b) {
                        self.changes.push(Change::new(
                            Action::Create,
                            subject(),
                            format!("re-created: {end} is replaced"),
                        ));
                    }
                }
                State::Absent if exists(b) => {
                    self.changes.push(Change::new(Action::Delete, subject(), "declared absent"))
                }
                State::Absent => {}
            }
        }
    }

    /// `--prune`: deletes the bindings the file does not declare.
    fn prune_bindings(&mut self) {
        let (vhost, dv, cv) = (self.vhost, self.dv, self.cv);
        for c in &cv.bindings {
            let declared = dv.bindings.iter().any(|b| b.same_identity(c));
            if !declared && !self.is_unmanaged(&c.source) && !self.is_unmanaged(&c.destination) {
                self.changes.push(Change::new(
                    Action::Delete,
                    Subject::Binding { vhost: vhost.to_owned(), binding: c.clone() },
                    "not declared (--prune)",
                ));
            }
        }
    }

    /// Without `--prune` undeclared bindings are left alone, but a replace
    /// still drops them: say so on the replace.
    fn note_lost_bindings(&mut self) {
        let (vhost, dv, cv) = (self.vhost, self.dv, self.cv);
        for change in
            self.changes.iter_mut().filter(|c| c.action == Action::Replace && c.subject.vhost() == Some(vhost))
        {
            let lost = cv
                .bindings
                .iter()
                .filter(|c| !dv.bindings.iter().any(|b| b.same_identity(c)))
                .filter(|c| touches(c, &change.subject))
                .count();
            if lost > 0 {
                change.reason.push_str(&format!("; {lost} undeclared binding(s) touching it will be lost"));
            }
        }
    }

    /// Plans the policies, or the operator policies.
    fn policies(&mut self, operator: bool, declared: &BTreeMap<String, Policy>, held: &BTreeMap<String, Policy>) {
        let vhost = self.vhost;
        let subject = |name: &str, desired: Option<Policy>| Subject::Policy {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            operator,
            desired,
        };
        for (name, dp) in declared {
            match (dp.state, held.get(name)) {
                (State::Absent, Some(_)) => {
                    self.changes.push(Change::new(Action::Delete, subject(name, None), "declared absent"))
                }
                (State::Absent, None) => {}
                (State::Present, None) => self.changes.push(Change::new(
                    Action::Create,
                    subject(name, Some(dp.clone())),
                    "declared, missing on the broker",
                )),
                (State::Present, Some(cp)) => {
                    let lines = policy_differences(dp, cp);
                    if !lines.is_empty() {
                        self.changes.push(Change::new(
                            Action::Update,
                            subject(name, Some(dp.clone())),
                            lines.join(", "),
                        ));
                    }
                }
            }
        }
        self.prune_undeclared(declared, held, |_| false, |name| subject(name, None));
    }

    /// `--prune`: deletes what the broker holds and the file does not
    /// declare, unless `builtin` says the broker owns it or it is unmanaged.
    fn prune_undeclared<T>(
        &mut self,
        declared: &BTreeMap<String, T>,
        held: &BTreeMap<String, T>,
        builtin: impl Fn(&str) -> bool,
        subject: impl Fn(&str) -> Subject,
    ) {
        if !self.prune {
            return;
        }
        for name in held.keys() {
            if !declared.contains_key(name) && !builtin(name) && !self.is_unmanaged(name) {
                self.changes.push(Change::new(Action::Delete, subject(name), "not declared (--prune)"));
            }
        }
    }
}

fn touches(b: &Binding, subject: &Subject) -> bool {
    match subject {
        Subject::Exchange { name, .. } => {
            &b.source == name || (b.destination_type == DestinationType::Exchange && &b.destination == name)
        }
        Subject::Queue { name, .. } => b.destination_type == DestinationType::Queue && &b.destination == name,
        _ => false,
    }
}

/// A line for every field of the policy that differs.
fn policy_differences(dp: &Policy, cp: &Policy) -> Vec<String> {
    let mut lines = Vec::new();
    if dp.pattern != cp.pattern {
        lines.push(format!("pattern {:?} -> {:?}", cp.pattern, dp.pattern));
    }
    if dp.apply_to != cp.apply_to {
        lines.push(format!("apply-to {} -> {}", cp.apply_to.as_str(), dp.apply_to.as_str()));
    }
    if dp.priority != cp.priority {
        lines.push(format!("priority {} -> {}", cp.priority, dp.priority));
    }
    lines.extend(argument_differences(&dp.definition, &cp.definition).into_iter().map(|(_, l)| l));
    lines
}

fn replace(subject: Subject, changed: Vec<String>, lines: Vec<String>) -> Change {
    let reason = format!("{}; RabbitMQ cannot change this in place", lines.join(", "));
    Change { action: Action::Replace, subject, reason, changed }
}

fn show(value: &Value) -> String {
    value.to_string()
}

/// (key, line) for every argument that differs.
fn argument_differences(desired: &Arguments, current: &Arguments) -> Vec<(String, String)> {
    let keys: BTreeSet<&String> = desired.keys().chain(current.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (current.get(k), desired.get(k)) {
            (Some(c), Some(d)) if c != d => Some((k.clone(), format!("{k} {} -> {}", show(c), show(d)))),
            (None, Some(d)) => Some((k.clone(), format!("{k} unset -> {}", show(d)))),
            (Some(c), None) => Some((k.clone(), format!("{k} {} -> unset", show(c)))),
            _ => None,
        })
        .collect()
}

fn flag(name: &str, desired: bool, current: bool, out: &mut Vec<(String, String)>) {
    if desired != current {
        out.push((name.to_owned(), format!("{name} {current} -> {desired}")));
    }
}

fn exchange_differences(d: &Exchange, c: &Exchange) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    if d.kind != c.kind {
        out.push(("type".to_owned(), format!("type {} -> {}", c.kind, d.kind)));
    }
    flag("durable", d.durable, c.durable, &mut out);
    flag("auto_delete", d.auto_delete, c.auto_delete, &mut out);
    flag("internal", d.internal, c.internal, &mut out);
    out.extend(argument_differences(&d.arguments, &c.arguments));
    out.into_iter().unzip()
}

/// Compares two queues. Their types are compared as each side means them:
/// normalisation drops an `x-queue-type` equal to its own vhost's default,
/// and the file's vhost default may differ from the broker's.
fn queue_differences(
    d: &Queue,
    d_default: Option<QueueType>,
    c: &Queue,
    c_default: Option<QueueType>,
) -> (Vec<String>, Vec<String>) {
    const TYPE: &str = "x-queue-type";
    let effective = |q: &Queue, default: Option<QueueType>| -> Value {
        q.arguments.get(TYPE).cloned().unwrap_or_else(|| Value::from(default.unwrap_or(QueueType::Classic).as_str()))
    };
    let mut out = Vec::new();
    flag("durable", d.durable, c.durable, &mut out);
    flag("auto_delete", d.auto_delete, c.auto_delete, &mut out);
    let (d_type, c_type) = (effective(d, d_default), effective(c, c_default));
    if d_type != c_type {
        out.push((TYPE.to_owned(), format!("{TYPE} {c_type} -> {d_type}")));
    }
    let without_type = |q: &Queue| -> Arguments {
        q.arguments.iter().filter(|(k, _)| k.as_str() != TYPE).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    out.extend(argument_differences(&without_type(d), &without_type(c)));
    out.into_iter().unzip()
}

fn password_change(desired: &Password, current: &Password) -> (bool, PasswordChange) {
    let same = match (desired, current) {
        (Password::Clear(clear), Password::Hash { hash, algorithm }) => {
            warren_definitions::password::verify(clear, hash, *algorithm)
        }
        (Password::Hash { hash: d, algorithm: da }, Password::Hash { hash: c, algorithm: ca }) => d == c && da == ca,
        // A file without a password leaves the stored one alone: removing a
        // credential is not something an omission should do.
        (Password::None, _) => true,
        _ => false,
    };
    if same { (false, PasswordChange::Keep(current.clone())) } else { (true, PasswordChange::Set(desired.clone())) }
}

/// Plans one user: the user itself, then its permissions and topic
/// permissions (an absent user takes them along).
fn diff_user(
    name: &str,
    du: &User,
    cu: Option<&User>,
    desired: &Topology,
    options: &DiffOptions,
    changes: &mut Vec<Change>,
) -> Result<(), DiffError> {
    if du.state == State::Absent {
        if cu.is_some() {
            if options.connecting_user.as_deref() == Some(name) {
                return Err(DiffError::ConnectingUser { name: name.to_owned() });
            }
            changes.push(Change::new(
                Action::Delete,
                Subject::User { name: name.to_owned(), desired: None },
                "declared absent",
            ));
        }
        return Ok(());
    }
    diff_account(name, du, cu, changes)?;
    let empty = User::granting(State::Present);
    let mut diff = UserDiff { name, du, cu: cu.unwrap_or(&empty), desired, prune: options.prune, changes };
    diff.permissions();
    diff.topic_permissions();
    Ok(())
}

/// The user itself: created when missing, updated when its tags or password differ.
fn diff_account(name: &str, du: &User, cu: Option<&User>, changes: &mut Vec<Change>) -> Result<(), DiffError> {
    let subject = |spec| Subject::User { name: name.to_owned(), desired: Some(spec) };
    let Some(cu) = cu else {
        if du.only_grants() {
            return Err(DiffError::UndefinedUser { name: name.to_owned() });
        }
        let spec =
            UserSpec { tags: du.tags.clone().unwrap_or_default(), password: PasswordChange::Set(du.password.clone()) };
        changes.push(Change::new(Action::Create, subject(spec), "declared, missing on the broker"));
        return Ok(());
    };
    let (password_changed, password) = password_change(&du.password, &cu.password);
    let held_tags = cu.tags.clone().unwrap_or_default();
    // Tags the file leaves out are not managed.
    let tags = du.tags.clone().unwrap_or_else(|| held_tags.clone());
    let mut lines = Vec::new();
    if tags != held_tags {
        lines.push(format!("tags {held_tags:?} -> {tags:?}"));
    }
    if password_changed {
        lines.push(
            match &cu.password {
                Password::None => "password set",
                _ => "password changed",
            }
            .to_owned(),
        );
    }
    if !lines.is_empty() {
        changes.push(Change::new(Action::Update, subject(UserSpec { tags, password }), lines.join(", ")));
    }
    Ok(())
}

/// One user's grants: what the file declares (`du`) against what the broker
/// holds (`cu`, empty for a user still to create), adding to the plan's changes.
struct UserDiff<'a> {
    name: &'a str,
    du: &'a User,
    cu: &'a User,
    desired: &'a Topology,
    prune: bool,
    changes: &'a mut Vec<Change>,
}

impl UserDiff<'_> {
    /// Permissions are planned only in vhosts the file keeps.
    fn vhost_kept(&self, vhost: &str) -> bool {
        self.desired.vhosts.get(vhost).is_none_or(|v| v.state == State::Present)
    }

    /// `--prune` deletes grants only in vhosts the file declares.
    fn managed_vhost(&self, vhost: &str) -> bool {
        self.desired.vhosts.get(vhost).is_some_and(|v| v.state == State::Present)
    }

    fn permissions(&mut self) {
        let (user, du, cu) = (self.name, self.du, self.cu);
        for (vhost, dp) in &du.permissions {
            if !self.vhost_kept(vhost) {
                continue;
            }
            let subject =
                |p: Option<_>| Subject::Permission { user: user.to_owned(), vhost: vhost.clone(), desired: p };
            match cu.permissions.get(vhost) {
                None => self.changes.push(Change::new(
                    Action::Create,
                    subject(Some(dp.clone())),
                    "declared, missing on the broker",
                )),
                Some(cp) if cp != dp => {
                    let mut lines = Vec::new();
                    for (what, d, c) in [
                        ("configure", &dp.configure, &cp.configure),
                        ("write", &dp.write, &cp.write),
                        ("read", &dp.read, &cp.read),
                    ] {
                        if d != c {
                            lines.push(format!("{what} {c:?} -> {d:?}"));
                        }
                    }
                    self.changes.push(Change::new(Action::Update, subject(Some(dp.clone())), lines.join(", ")));
                }
                Some(_) => {}
            }
        }
        if self.prune {
            for vhost in cu.permissions.keys() {
                if self.managed_vhost(vhost) && !du.permissions.contains_key(vhost) {
                    self.changes.push(Change::new(
                        Action::Delete,
                        Subject::Permission { user: user.to_owned(), vhost: vhost.clone(), desired: None },
                        "not declared (--prune)",
                    ));
                }
            }
        }
    }

    fn topic_permissions(&mut self) {
        let (du, cu) = (self.du, self.cu);
        let vhosts: BTreeSet<&String> = du.topic_permissions.keys().chain(cu.topic_permissions.keys()).collect();
        for vhost in vhosts {
            if self.vhost_kept(vhost) {
                self.topic_permissions_in(vhost);
            }
        }
    }

    /// The user's topic permissions in one vhost. The API clears a user's
    /// topic permissions per vhost, all exchanges at once, so clearing one
    /// re-creates the others.
    fn topic_permissions_in(&mut self, vhost: &str) {
        let user = self.name;
        let declared = self.du.topic_permissions.get(vhost).cloned().unwrap_or_default();
        let held = self.cu.topic_permissions.get(vhost).cloned().unwrap_or_default();
        let subject = |exchange: &str, p| Subject::TopicPermission {
            user: user.to_owned(),
            vhost: vhost.to_owned(),
            exchange: exchange.to_owned(),
            desired: p,
        };
        let mut cleared = false;
        if self.prune && self.managed_vhost(vhost) {
            for exchange in held.keys().filter(|e| !declared.contains_key(*e)) {
                cleared = true;
                self.changes.push(Change::new(Action::Delete, subject(exchange, None), "not declared (--prune)"));
            }
        }
        for (exchange, dp) in &declared {
            let (action, reason) = match held.get(exchange) {
                None => (Action::Create, "declared, missing on the broker".to_owned()),
                Some(cp) if cp != dp => (
                    Action::Update,
                    format!("write {:?} -> {:?}, read {:?} -> {:?}", cp.write, dp.write, cp.read, dp.read),
                ),
                Some(_) if cleared => (
                    Action::Create,
                    "re-created: clearing this user's topic permissions in the vhost clears them all".to_owned(),
                ),
                Some(_) => continue,
            };
            self.changes.push(Change::new(action, subject(exchange, Some(dp.clone())), reason));
        }
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
