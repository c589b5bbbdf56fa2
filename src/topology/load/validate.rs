//! Checks that relate entities to each other: every binding, dead-letter
//! exchange and alternate exchange names something declared; permissions
//! name declared vhosts; regular expressions compile; nothing is declared
//! twice or both present and absent.
//!
//! References may also point at the broker's own exchanges (`amq.*`) and at
//! names matching the vhost's `unmanaged` patterns: those exist without this
//! file declaring them.

use regex::Regex;
use serde_json::Value;

use super::convert::Origins;
use super::diagnostic::{Diagnostics, did_you_mean};
use super::env::Env;
use super::source::{Locator, NodePath, describe};
use crate::topology::model::{Binding, DestinationType, State, Topology, Vhost};

/// Records every cross-entity problem of `topology` in `diags`.
pub fn validate(topology: &Topology, origins: &Origins, loc: &Locator, env: &dyn Env, diags: &mut Diagnostics) {
    let mut check = Checker { origins, loc, env, diags };
    for (name, vhost) in &topology.vhosts {
        check.vhost(name, vhost);
    }
    check.users(topology);
    check.duplicates();
}

struct Checker<'a> {
    origins: &'a Origins,
    loc: &'a Locator,
    env: &'a dyn Env,
    diags: &'a mut Diagnostics,
}

/// What a name refers to, for messages.
#[derive(Clone, Copy)]
enum Kind {
    Exchange,
    Queue,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Exchange => "exchange",
            Kind::Queue => "queue",
        }
    }
}

impl Checker<'_> {
    /// Names the entity at `path` as the broker will see it.
    fn describe(&self, path: &NodePath) -> String {
        describe(&path.resolved(self.env))
    }

    /// A name whose `${VAR}` could not be substituted: that has been
    /// reported, and checking the name as a reference would only add noise.
    fn unresolved(&self, name: &str) -> bool {
        name.contains("${") && super::env::substitute(name, self.env).is_err()
    }

    fn at_key(&mut self, path: Option<&NodePath>, message: String) {
        let pos = path.and_then(|p| self.loc.key(p));
        self.diags.push(pos, message);
    }

    fn at_value(&mut self, path: Option<&NodePath>, message: String) {
        let pos = path.and_then(|p| self.loc.value(p));
        self.diags.push(pos, message);
    }

    fn vhost(&mut self, name: &str, vhost: &Vhost) {
        if vhost.state == State::Absent {
            self.absent_vhost_contents(name, vhost);
        }
        let unmanaged = self.unmanaged(name, vhost);
        let resolver = Resolver { vhost_name: name, vhost, unmanaged: &unmanaged };
        self.bindings(name, vhost, &resolver);
        self.argument_references(name, vhost, &resolver);
        self.policies(name, vhost, &resolver);
    }

    /// A vhost declared absent is deleted with everything in it: declaring
    /// contents as well is a contradiction.
    fn absent_vhost_contents(&mut self, name: &str, vhost: &Vhost) {
        let count = |n: usize, noun: &str| (n > 0).then(|| format!("{n} {noun}"));
        let declared: Vec<String> = [
            count(vhost.exchanges.len(), "exchange(s)"),
            count(vhost.queues.len(), "queue(s)"),
            count(vhost.bindings.len(), "binding(s)"),
            count(vhost.policies.len() + vhost.operator_policies.len(), "policy(ies)"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !declared.is_empty() {
            let vhost_path = self.origins.vhosts.get(name).cloned();
            self.at_key(
                vhost_path.as_ref(),
                format!(
                    "vhost `{name}` is `state: absent`, which deletes it with everything in it, yet the file declares {} in it; remove them or the `state`",
                    declared.join(", ")
                ),
            );
        }
    }

    /// Every present binding names existing ends and is declared once.
    fn bindings(&mut self, name: &str, vhost: &Vhost, resolver: &Resolver<'_>) {
        // Identity of every binding seen so far, to find repeats without
        // comparing each binding with all the others (files have thousands).
        let mut seen = std::collections::HashMap::new();
        for (i, binding) in vhost.bindings.iter().enumerate() {
            let path = self.origins.bindings.get(&(name.to_owned(), i)).cloned();
            let what = path.as_ref().map_or_else(|| format!("a binding of vhost `{name}`"), |p| self.describe(p));
            if binding.state == State::Absent {
                continue;
            }
            self.binding_ends(resolver, binding, path.as_ref(), &what);
            match seen.entry(crate::topology::normalise::binding_sort_key(binding)) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    let number = self.binding_number(name, *first.get());
                    self.at_value(
                        path.as_ref(),
                        format!(
                            "{what} repeats binding #{number}: same exchange, destination, routing key and arguments"
                        ),
                    );
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
    }

    /// A binding's source and destination exist (or may, unresolved or unmanaged).
    fn binding_ends(&mut self, resolver: &Resolver<'_>, binding: &Binding, path: Option<&NodePath>, what: &str) {
        if binding.source.is_empty() {
            self.at_value(
                path.map(|p| p.key("exchange")).as_ref(),
                format!(
                    "{what}: cannot bind from the default exchange (`\"\"`); it already routes to every queue by name"
                ),
            );
        } else if !self.unresolved(&binding.source)
            && let Some(problem) = resolver.missing(Kind::Exchange, &binding.source)
        {
            self.at_value(path.map(|p| p.key("exchange")).as_ref(), format!("{what} names {problem}"));
        }
        let (kind, field) = match binding.destination_type {
            DestinationType::Queue => (Kind::Queue, "queue"),
            DestinationType::Exchange => (Kind::Exchange, "to_exchange"),
        };
        if !self.unresolved(&binding.destination)
            && let Some(problem) = resolver.missing(kind, &binding.destination)
        {
            self.at_value(path.map(|p| p.key(field)).as_ref(), format!("{what} names {problem}"));
        }
    }

    /// The number, from 1, the file gives the vhost's binding `index` of the
    /// model (which may skip a binding that failed to convert).
    fn binding_number(&self, vhost_name: &str, index: usize) -> usize {
        match self.origins.bindings.get(&(vhost_name.to_owned(), index)) {
            Some(NodePath(segs)) => match segs.last() {
                Some(super::source::Seg::Index(file_index)) => file_index + 1,
                _ => index + 1,
            },
            None => index + 1,
        }
    }

    /// Dead-letter exchanges of queues and alternate exchanges of exchanges exist.
    fn argument_references(&mut self, name: &str, vhost: &Vhost, resolver: &Resolver<'_>) {
        let key = |entity: &str| (name.to_owned(), entity.to_owned());
        for (queue_name, queue) in &vhost.queues {
            if queue.state == State::Absent {
                continue;
            }
            let path = self.origins.queues.get(&key(queue_name)).map(|p| p.key("arguments"));
            self.exchange_reference(
                resolver,
                path.as_ref(),
                &queue.arguments,
                "x-dead-letter-exchange",
                "dead-letters to",
            );
        }
        for (exchange_name, exchange) in &vhost.exchanges {
            if exchange.state == State::Absent {
                continue;
            }
            let path = self.origins.exchanges.get(&key(exchange_name)).map(|p| p.key("arguments"));
            self.exchange_reference(
                resolver,
                path.as_ref(),
                &exchange.arguments,
                "alternate-exchange",
                "routes unroutable messages to",
            );
        }
    }

    /// Policies' patterns compile, and the exchanges their definitions name exist.
    fn policies(&mut self, name: &str, vhost: &Vhost, resolver: &Resolver<'_>) {
        let key = |entity: &str| (name.to_owned(), entity.to_owned());
        for (policy_name, policy) in &vhost.policies {
            let path = self.origins.policies.get(&key(policy_name)).cloned();
            self.regex(path.as_ref().map(|p| p.key("pattern")).as_ref(), &policy.pattern);
            if policy.state == State::Absent {
                continue;
            }
            let definition = path.as_ref().map(|p| p.key("definition"));
            self.exchange_reference(
                resolver,
                definition.as_ref(),
                &policy.definition,
                "dead-letter-exchange",
                "dead-letters to",
            );
            self.exchange_reference(
                resolver,
                definition.as_ref(),
                &policy.definition,
                "alternate-exchange",
                "routes unroutable messages to",
            );
        }
        for (policy_name, policy) in &vhost.operator_policies {
            let path = self.origins.operator_policies.get(&key(policy_name)).map(|p| p.key("pattern"));
            self.regex(path.as_ref(), &policy.pattern);
        }
    }

    /// The vhost's `unmanaged` patterns that compile; reports those that do not.
    fn unmanaged(&mut self, vhost_name: &str, vhost: &Vhost) -> Vec<Regex> {
        let mut compiled = Vec::new();
        for (i, pattern) in vhost.unmanaged.iter().enumerate() {
            let path = self.origins.unmanaged.get(&(vhost_name.to_owned(), i)).cloned();
            // warren itself matches these when pruning, with the regex crate:
            // a pattern it cannot compile would protect nothing, and `--prune`
            // would delete what it was meant to keep.
            match Regex::new(pattern) {
                Ok(regex) => compiled.push(regex),
                Err(error) => {
                    let what = path.as_ref().map_or_else(|| "an `unmanaged` pattern".to_owned(), |p| self.describe(p));
                    let reason = regex_reason(&error);
                    let hint = if reason.contains("look-around") || reason.contains("backreferences") {
                        " (warren matches `unmanaged` names itself, without look-around or backreferences)"
                    } else {
                        ""
                    };
                    self.at_value(
                        path.as_ref(),
                        format!("{what}: `{pattern}` is not a valid regular expression: {reason}{hint}"),
                    );
                }
            }
        }
        compiled
    }

    /// `arguments[key]` names an exchange of this vhost.
    fn exchange_reference(
        &mut self,
        resolver: &Resolver<'_>,
        arguments_path: Option<&NodePath>,
        arguments: &crate::topology::model::Arguments,
        key: &str,
        verb: &str,
    ) {
        let Some(Value::String(target)) = arguments.get(key) else { return };
        // An empty dead-letter exchange means the default exchange, which always exists.
        if target.is_empty() || self.unresolved(target) {
            return;
        }
        if let Some(problem) = resolver.missing(Kind::Exchange, target) {
            let path = arguments_path.map(|p| p.key(key));
            let owner = arguments_path.map_or_else(String::new, |p| {
                let mut parent = p.clone();
                parent.0.pop();
                self.describe(&parent)
            });
            self.at_value(path.as_ref(), format!("{owner} {verb} {problem}"));
        }
    }

    /// Reports `pattern` when it is not a regular expression RabbitMQ
    /// accepts; true when it is.
    fn regex(&mut self, path: Option<&NodePath>, pattern: &str) -> bool {
        match Regex::new(pattern) {
            Ok(_) => true,
            // RabbitMQ matches with Erlang's PCRE, which has look-around and
            // backreferences; the regex crate does not, so those are not errors.
            Err(regex::Error::Syntax(text))
                if text.contains("look-around") || text.contains("backreferences are not supported") =>
            {
                true
            }
            Err(error) => {
                let what = path.map_or_else(|| "a pattern".to_owned(), |p| self.describe(p));
                let reason = regex_reason(&error);
                self.at_value(path, format!("{what}: `{pattern}` is not a valid regular expression: {reason}"));
                false
            }
        }
    }

    fn users(&mut self, topology: &Topology) {
        let vhost_names: Vec<&str> = topology.vhosts.keys().map(String::as_str).collect();
        for (user_name, user) in &topology.users {
            if user.state == State::Absent && (!user.permissions.is_empty() || !user.topic_permissions.is_empty()) {
                self.at_key(
                    self.origins.users.get(user_name),
                    format!(
                        "user `{user_name}` is `state: absent` but declares permissions; remove them or the `state`"
                    ),
                );
            }
            for (vhost, permission) in &user.permissions {
                let path = self.origins.permissions.get(&(user_name.clone(), vhost.clone())).cloned();
                self.vhost_reference(topology, &vhost_names, path.as_ref(), user_name, vhost, "permissions");
                for (field, pattern) in
                    [("configure", &permission.configure), ("write", &permission.write), ("read", &permission.read)]
                {
                    self.regex(path.as_ref().map(|p| p.key(field)).as_ref(), pattern);
                }
            }
            for (vhost, exchanges) in &user.topic_permissions {
                let mut reported = false;
                for (exchange, permission) in exchanges {
                    let path = self
                        .origins
                        .topic_permissions
                        .get(&(user_name.clone(), vhost.clone(), exchange.clone()))
                        .cloned();
                    if !reported {
                        let mut vhost_path = path.clone();
                        if let Some(p) = vhost_path.as_mut() {
                            p.0.pop();
                        }
                        self.vhost_reference(
                            topology,
                            &vhost_names,
                            vhost_path.as_ref(),
                            user_name,
                            vhost,
                            "topic permissions",
                        );
                        reported = true;
                    }
                    for (field, pattern) in [("write", &permission.write), ("read", &permission.read)] {
                        self.regex(path.as_ref().map(|p| p.key(field)).as_ref(), pattern);
                    }
                }
            }
        }
    }

    /// Permissions may only name vhosts the file declares present (or `/`,
    /// which every broker has, so granting on it need not make the file manage it).
    fn vhost_reference(
        &mut self,
        topology: &Topology,
        names: &[&str],
        path: Option<&NodePath>,
        user: &str,
        vhost: &str,
        what: &str,
    ) {
        match topology.vhosts.get(vhost) {
            Some(declared) if declared.state == State::Absent => self.at_key(
                path,
                format!("{what} of user `{user}` are for vhost `{vhost}`, which this file declares `state: absent`"),
            ),
            Some(_) => {}
            None if vhost == "/" => {}
            None => self.at_key(
                path,
                format!(
                    "{what} of user `{user}` are for vhost `{vhost}`, which this file does not declare under `vhosts`{}",
                    did_you_mean(vhost, names.iter().copied())
                ),
            ),
        }
    }

    fn duplicates(&mut self) {
        for dup in self.loc.duplicates() {
            let (line, column) = (dup.first.line, dup.first.column);
            let what = self.describe(&dup.path);
            // An entity is declared; a setting is given.
            let entity = super::source::entity(&dup.path).1.is_empty();
            let verb = match (entity, what.starts_with("permissions") || what.starts_with("topic permissions")) {
                (true, true) => "are declared",
                (true, false) => "is declared",
                (false, _) => "is given",
            };
            self.diags.push(
                Some(dup.again),
                format!("{what} {verb} twice (first at line {line}, column {column}); YAML keeps only the last one"),
            );
        }
    }
}

/// Whether names exist in one vhost.
struct Resolver<'a> {
    vhost_name: &'a str,
    vhost: &'a Vhost,
    unmanaged: &'a [Regex],
}

impl Resolver<'_> {
    /// Why `name` cannot be referred to, or `None` when it can.
    fn missing(&self, kind: Kind, name: &str) -> Option<String> {
        if self.unmanaged.iter().any(|r| r.is_match(name)) {
            return None;
        }
        let state = match kind {
            Kind::Exchange if name.starts_with("amq.") => return None,
            Kind::Exchange => self.vhost.exchanges.get(name).map(|e| e.state),
            Kind::Queue => self.vhost.queues.get(name).map(|q| q.state),
        };
        let noun = kind.noun();
        let vhost = self.vhost_name;
        match state {
            Some(State::Present) => None,
            Some(State::Absent) => Some(format!("{noun} `{name}`, which this file declares `state: absent`")),
            None => {
                let names: Vec<&str> = match kind {
                    Kind::Exchange => self.vhost.exchanges.keys().map(String::as_str).collect(),
                    Kind::Queue => self.vhost.queues.keys().map(String::as_str).collect(),
                };
                Some(format!(
                    "{noun} `{name}`, which is not declared in vhost `{vhost}`{}",
                    did_you_mean(name, names.iter().copied())
                ))
            }
        }
    }
}

/// The last line of the regex crate's message: the one that says what is wrong.
fn regex_reason(error: &regex::Error) -> String {
    let text = match error {
        regex::Error::Syntax(text) => text.lines().last().unwrap_or(text).trim().to_owned(),
        other => other.to_string(),
    };
    text.trim_start_matches("error: ").to_owned()
}
