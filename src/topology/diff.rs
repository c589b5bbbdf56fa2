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

use super::model::{
    Arguments, Binding, DestinationType, Exchange, Password, Policy, Queue, QueueType, State, Topology, User, Vhost,
};
use super::normalise::{is_builtin_exchange, is_server_named_queue};
use super::plan::{Action, Change, PasswordChange, Plan, Subject, UserSpec};

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

fn diff_vhost(vhost: &str, dv: &Vhost, cv: &Vhost, prune: bool, changes: &mut Vec<Change>) {
    let unmanaged = unmanaged_patterns(dv);
    let is_unmanaged = |name: &str| unmanaged.iter().any(|r| r.is_match(name));
    let v = || vhost.to_owned();

    // Exchanges.
    let mut replaced_exchanges = BTreeSet::new();
    for (name, dx) in &dv.exchanges {
        if is_builtin_exchange(name) {
            continue;
        }
        let subject = |desired: Option<Exchange>| Subject::Exchange { vhost: v(), name: name.clone(), desired };
        match (dx.state, cv.exchanges.get(name)) {
            (State::Absent, Some(_)) => changes.push(Change::new(Action::Delete, subject(None), "declared absent")),
            (State::Absent, None) => {}
            (State::Present, None) => {
                changes.push(Change::new(Action::Create, subject(Some(dx.clone())), "declared, missing on the broker"))
            }
            (State::Present, Some(cx)) => {
                let (changed, lines) = exchange_differences(dx, cx);
                if !changed.is_empty() {
                    replaced_exchanges.insert(name.clone());
                    changes.push(replace(subject(Some(dx.clone())), changed, lines));
                }
            }
        }
    }
    if prune {
        for name in cv.exchanges.keys() {
            if !dv.exchanges.contains_key(name) && !is_builtin_exchange(name) && !is_unmanaged(name) {
                changes.push(Change::new(
                    Action::Delete,
                    Subject::Exchange { vhost: v(), name: name.clone(), desired: None },
                    "not declared (--prune)",
                ));
            }
        }
    }

    // Queues. A queue is declared with its type spelled out: RabbitMQ 3.10
    // applies a vhost's default queue type to AMQP declares only, not to the
    // management API or definitions imports that apply uses.
    let default_type = dv.default_queue_type.or(cv.default_queue_type);
    let declared = |q: &Queue| -> Queue {
        let mut q = q.clone();
        if let Some(t) = default_type {
            q.arguments.entry("x-queue-type".to_owned()).or_insert_with(|| Value::from(t.as_str()));
        }
        q
    };
    let mut replaced_queues = BTreeSet::new();
    for (name, dq) in &dv.queues {
        if is_server_named_queue(name) {
            continue;
        }
        let subject = |desired: Option<Queue>| Subject::Queue { vhost: v(), name: name.clone(), desired };
        match (dq.state, cv.queues.get(name)) {
            (State::Absent, Some(_)) => changes.push(Change::new(Action::Delete, subject(None), "declared absent")),
            (State::Absent, None) => {}
            (State::Present, None) => changes.push(Change::new(
                Action::Create,
                subject(Some(declared(dq))),
                "declared, missing on the broker",
            )),
            (State::Present, Some(cq)) => {
                let (changed, lines) =
                    queue_differences(dq, dv.default_queue_type.or(cv.default_queue_type), cq, cv.default_queue_type);
                if !changed.is_empty() {
                    replaced_queues.insert(name.clone());
                    changes.push(replace(subject(Some(declared(dq))), changed, lines));
                }
            }
        }
    }
    if prune {
        for name in cv.queues.keys() {
            if !dv.queues.contains_key(name) && !is_server_named_queue(name) && !is_unmanaged(name) {
                changes.push(Change::new(
                    Action::Delete,
                    Subject::Queue { vhost: v(), name: name.clone(), desired: None },
                    "not declared (--prune)",
                ));
            }
        }
    }

    // Bindings: a replaced exchange or queue takes its bindings with it.
    let replaced_end = |b: &Binding| -> Option<String> {
        if replaced_exchanges.contains(&b.source) {
            return Some(format!("exchange {:?}", b.source));
        }
        match b.destination_type {
            DestinationType::Exchange if replaced_exchanges.contains(&b.destination) => {
                Some(format!("exchange {:?}", b.destination))
            }
            DestinationType::Queue if replaced_queues.contains(&b.destination) => {
                Some(format!("queue {:?}", b.destination))
            }
            _ => None,
        }
    };
    let exists = |b: &Binding| cv.bindings.iter().any(|c| c.same_identity(b));
    for b in &dv.bindings {
        let subject = || Subject::Binding { vhost: v(), binding: Binding { state: State::Present, ..b.clone() } };
        match b.state {
            State::Present if !exists(b) => {
                changes.push(Change::new(Action::Create, subject(), "declared, missing on the broker"))
            }
            State::Present => {
                if let Some(end) = replaced_end(b) {
                    changes.push(Change::new(Action::Create, subject(), format!("re-created: {end} is replaced")));
                }
            }
            State::Absent if exists(b) => changes.push(Change::new(Action::Delete, subject(), "declared absent")),
            State::Absent => {}
        }
    }
    if prune {
        for c in &cv.bindings {
            let declared = dv.bindings.iter().any(|b| b.same_identity(c));
            if !declared && !is_unmanaged(&c.source) && !is_unmanaged(&c.destination) {
                changes.push(Change::new(
                    Action::Delete,
                    Subject::Binding { vhost: v(), binding: c.clone() },
                    "not declared (--prune)",
                ));
            }
        }
    } else {
        // Without --prune undeclared bindings are left alone, but a replace
        // still drops them: say so on the replace.
        for change in changes.iter_mut().filter(|c| c.action == Action::Replace && c.subject.vhost() == Some(vhost)) {
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

    // Policies and operator policies.
    for (operator, declared, held) in
        [(false, &dv.policies, &cv.policies), (true, &dv.operator_policies, &cv.operator_policies)]
    {
        diff_policies(vhost, operator, declared, held, prune, &is_unmanaged, changes);
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

fn diff_policies(
    vhost: &str,
    operator: bool,
    declared: &BTreeMap<String, Policy>,
    held: &BTreeMap<String, Policy>,
    prune: bool,
    is_unmanaged: &dyn Fn(&str) -> bool,
    changes: &mut Vec<Change>,
) {
    let subject = |name: &str, desired: Option<Policy>| Subject::Policy {
        vhost: vhost.to_owned(),
        name: name.to_owned(),
        operator,
        desired,
    };
    for (name, dp) in declared {
        match (dp.state, held.get(name)) {
            (State::Absent, Some(_)) => {
                changes.push(Change::new(Action::Delete, subject(name, None), "declared absent"))
            }
            (State::Absent, None) => {}
            (State::Present, None) => changes.push(Change::new(
                Action::Create,
                subject(name, Some(dp.clone())),
                "declared, missing on the broker",
            )),
            (State::Present, Some(cp)) => {
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
                if !lines.is_empty() {
                    changes.push(Change::new(Action::Update, subject(name, Some(dp.clone())), lines.join(", ")));
                }
            }
        }
    }
    if prune {
        for name in held.keys() {
            if !declared.contains_key(name) && !is_unmanaged(name) {
                changes.push(Change::new(Action::Delete, subject(name, None), "not declared (--prune)"));
            }
        }
    }
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

fn diff_user(
    name: &str,
    du: &User,
    cu: Option<&User>,
    desired: &Topology,
    options: &DiffOptions,
    changes: &mut Vec<Change>,
) -> Result<(), DiffError> {
    let user_subject = |spec: Option<UserSpec>| Subject::User { name: name.to_owned(), desired: spec };
    if du.state == State::Absent {
        if cu.is_some() {
            if options.connecting_user.as_deref() == Some(name) {
                return Err(DiffError::ConnectingUser { name: name.to_owned() });
            }
            changes.push(Change::new(Action::Delete, user_subject(None), "declared absent"));
        }
        return Ok(());
    }
    let empty = User::granting(State::Present);
    match cu {
        None if du.only_grants() => return Err(DiffError::UndefinedUser { name: name.to_owned() }),
        None => changes.push(Change::new(
            Action::Create,
            user_subject(Some(UserSpec {
                tags: du.tags.clone().unwrap_or_default(),
                password: PasswordChange::Set(du.password.clone()),
            })),
            "declared, missing on the broker",
        )),
        Some(cu) => {
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
                changes.push(Change::new(
                    Action::Update,
                    user_subject(Some(UserSpec { tags, password })),
                    lines.join(", "),
                ));
            }
        }
    }
    let cu = cu.unwrap_or(&empty);
    // Permissions only in vhosts the file keeps.
    let vhost_kept = |v: &str| desired.vhosts.get(v).is_none_or(|v| v.state == State::Present);
    let managed_vhost = |v: &str| desired.vhosts.get(v).is_some_and(|v| v.state == State::Present);

    for (vhost, dp) in du.permissions.iter().filter(|(v, _)| vhost_kept(v)) {
        let subject = |p: Option<_>| Subject::Permission { user: name.to_owned(), vhost: vhost.clone(), desired: p };
        match cu.permissions.get(vhost) {
            None => {
                changes.push(Change::new(Action::Create, subject(Some(dp.clone())), "declared, missing on the broker"))
            }
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
                changes.push(Change::new(Action::Update, subject(Some(dp.clone())), lines.join(", ")));
            }
            Some(_) => {}
        }
    }
    if options.prune {
        for vhost in cu.permissions.keys() {
            if managed_vhost(vhost) && !du.permissions.contains_key(vhost) {
                changes.push(Change::new(
                    Action::Delete,
                    Subject::Permission { user: name.to_owned(), vhost: vhost.clone(), desired: None },
                    "not declared (--prune)",
                ));
            }
        }
    }

    // Topic permissions: the API clears a user's topic permissions per vhost,
    // all exchanges at once, so clearing one re-creates the others.
    let vhosts: BTreeSet<&String> = du.topic_permissions.keys().chain(cu.topic_permissions.keys()).collect();
    for vhost in vhosts.into_iter().filter(|v| vhost_kept(v)) {
        let declared = du.topic_permissions.get(vhost).cloned().unwrap_or_default();
        let held = cu.topic_permissions.get(vhost).cloned().unwrap_or_default();
        let subject = |exchange: &str, p| Subject::TopicPermission {
            user: name.to_owned(),
            vhost: vhost.clone(),
            exchange: exchange.to_owned(),
            desired: p,
        };
        let mut cleared = false;
        if options.prune && managed_vhost(vhost) {
            for exchange in held.keys().filter(|e| !declared.contains_key(*e)) {
                cleared = true;
                changes.push(Change::new(Action::Delete, subject(exchange, None), "not declared (--prune)"));
            }
        }
        for (exchange, dp) in &declared {
            match held.get(exchange) {
                None => changes.push(Change::new(
                    Action::Create,
                    subject(exchange, Some(dp.clone())),
                    "declared, missing on the broker",
                )),
                Some(cp) if cp != dp => changes.push(Change::new(
                    Action::Update,
                    subject(exchange, Some(dp.clone())),
                    format!("write {:?} -> {:?}, read {:?} -> {:?}", cp.write, dp.write, cp.read, dp.read),
                )),
                Some(_) if cleared => changes.push(Change::new(
                    Action::Create,
                    subject(exchange, Some(dp.clone())),
                    "re-created: clearing this user's topic permissions in the vhost clears them all",
                )),
                Some(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
