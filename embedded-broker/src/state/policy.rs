//! Policies and operator policies, and how they combine with queue arguments into the settings
//! a queue runs with.

use amq_protocol::types::FieldTable;
use serde_json::{Map, Value};

use super::args;
use super::error::{EntityKind, StateError};
use super::queue::{Overflow, QueueSettings, QueueType};

/// Which entities a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyTo {
    /// Exchanges and queues.
    All,
    /// Exchanges only.
    Exchanges,
    /// Queues of every type.
    Queues,
    /// Classic queues only.
    ClassicQueues,
    /// Quorum queues only.
    QuorumQueues,
}

impl ApplyTo {
    /// Parses the management API's `apply-to`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(ApplyTo::All),
            "exchanges" => Some(ApplyTo::Exchanges),
            "queues" => Some(ApplyTo::Queues),
            "classic_queues" => Some(ApplyTo::ClassicQueues),
            "quorum_queues" => Some(ApplyTo::QuorumQueues),
            _ => None,
        }
    }

    /// As the management API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyTo::All => "all",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::Queues => "queues",
            ApplyTo::ClassicQueues => "classic_queues",
            ApplyTo::QuorumQueues => "quorum_queues",
        }
    }

    fn applies_to_queue(self, kind: QueueType) -> bool {
        match self {
            ApplyTo::All | ApplyTo::Queues => true,
            ApplyTo::Exchanges => false,
            ApplyTo::ClassicQueues => kind == QueueType::Classic,
            ApplyTo::QuorumQueues => kind == QueueType::Quorum,
        }
    }
}

/// A policy (or operator policy: same shape, stored separately).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its virtual host.
    pub vhost: String,
    /// Its name.
    pub name: String,
    /// Regex over entity names.
    pub pattern: String,
    /// What it applies to.
    pub apply_to: ApplyTo,
    /// Higher wins when several match.
    pub priority: i64,
    /// Keys such as `message-ttl`, `max-length`, `dead-letter-exchange`, `expires`.
    pub definition: Map<String, Value>,
    compiled: regex::Regex,
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.vhost == other.vhost
            && self.name == other.name
            && self.pattern == other.pattern
            && self.apply_to == other.apply_to
            && self.priority == other.priority
            && self.definition == other.definition
    }
}

impl Policy {
    /// Validates the pattern and builds a policy.
    pub fn new(
        vhost: &str,
        name: &str,
        pattern: &str,
        apply_to: ApplyTo,
        priority: i64,
        definition: Map<String, Value>,
    ) -> Result<Self, StateError> {
        let compiled = regex::Regex::new(pattern).map_err(|e| StateError::InvalidArgument {
            kind: EntityKind::Policy,
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            arg: "pattern".to_owned(),
            reason: e.to_string(),
        })?;
        if definition.is_empty() {
            return Err(StateError::InvalidArgument {
                kind: EntityKind::Policy,
                vhost: vhost.to_owned(),
                name: name.to_owned(),
                arg: "definition".to_owned(),
                reason: "must not be empty".to_owned(),
            });
        }
        Ok(Policy {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            pattern: pattern.to_owned(),
            apply_to,
            priority,
            definition,
            compiled,
        })
    }

    /// Whether it applies to a queue of this name and type.
    pub fn matches_queue(&self, name: &str, kind: QueueType) -> bool {
        self.apply_to.applies_to_queue(kind) && self.compiled.is_match(name)
    }
}

/// The highest-priority policy that applies to the queue (ties go to the first name, stable).
pub fn select<'a>(policies: impl Iterator<Item = &'a Policy>, name: &str, kind: QueueType) -> Option<&'a Policy> {
    let mut best: Option<&Policy> = None;
    for p in policies.filter(|p| p.matches_queue(name, kind)) {
        if best.is_none_or(|b| p.priority > b.priority) {
            best = Some(p);
        }
    }
    best
}

fn int(def: &Map<String, Value>, key: &str) -> Option<u64> {
    def.get(key).and_then(Value::as_u64)
}

fn text(def: &Map<String, Value>, key: &str) -> Option<String> {
    def.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn arg_int(arguments: &FieldTable, key: &str) -> Option<u64> {
    arguments.inner().get(key).and_then(args::as_i64).and_then(|v| u64::try_from(v).ok())
}

fn arg_text(arguments: &FieldTable, key: &str) -> Option<String> {
    arguments.inner().get(key).and_then(args::as_str)
}

fn parse_overflow(s: &str) -> Option<Overflow> {
    match s {
        "drop-head" => Some(Overflow::DropHead),
        "reject-publish" => Some(Overflow::RejectPublish),
        "reject-publish-dlx" => Some(Overflow::RejectPublishDlx),
        _ => None,
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Queue arguments win over the policy (as RabbitMQ does for these keys); operator policies cap
/// numeric limits at the lower of the two.
pub fn effective_settings(
    kind: QueueType,
    arguments: &FieldTable,
    policy: Option<&Policy>,
    operator: Option<&Policy>,
) -> QueueSettings {
    let empty = Map::new();
    let def = policy.map_or(&empty, |p| &p.definition);
    let op = operator.map_or(&empty, |p| &p.definition);
    let pick_int = |arg: &str, key: &str| {
        let base = arg_int(arguments, arg).or_else(|| int(def, key));
        min_opt(base, int(op, key))
    };
    QueueSettings {
        kind,
        message_ttl: pick_int("x-message-ttl", "message-ttl"),
        expires: pick_int("x-expires", "expires"),
        max_length: pick_int("x-max-length", "max-length"),
        max_length_bytes: pick_int("x-max-length-bytes", "max-length-bytes"),
        overflow: arg_text(arguments, "x-overflow")
            .or_else(|| text(def, "overflow"))
            .or_else(|| text(op, "overflow"))
            .and_then(|s| parse_overflow(&s))
            .unwrap_or_default(),
        dead_letter_exchange: arg_text(arguments, "x-dead-letter-exchange")
            .or_else(|| text(def, "dead-letter-exchange")),
        dead_letter_routing_key: arg_text(arguments, "x-dead-letter-routing-key")
            .or_else(|| text(def, "dead-letter-routing-key")),
        max_priority: arg_int(arguments, "x-max-priority").map(|p| p.min(255) as u8),
        single_active_consumer: arguments
            .inner()
            .get("x-single-active-consumer")
            .and_then(args::as_bool)
            .unwrap_or(false),
        delivery_limit: pick_int("x-delivery-limit", "delivery-limit").map(|v| v.min(u64::from(u32::MAX)) as u32),
        policy: policy.map(|p| p.name.clone()),
        operator_policy: operator.map(|p| p.name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::AMQPValue;

    fn policy(priority: i64, def: Value) -> Policy {
        let Value::Object(map) = def else { panic!("test definition is an object") };
        Policy::new("/", &format!("p{priority}"), "^q", ApplyTo::Queues, priority, map).expect("valid policy")
    }

    #[test]
    fn arguments_win_over_policy_and_operator_policy_caps() {
        let p = policy(1, serde_json::json!({"message-ttl": 5000, "max-length": 10, "dead-letter-exchange": "dlx"}));
        let op = policy(0, serde_json::json!({"max-length": 3}));
        let mut a = FieldTable::default();
        a.insert("x-message-ttl".into(), AMQPValue::LongInt(100));
        let s = effective_settings(QueueType::Classic, &a, Some(&p), Some(&op));
        assert_eq!(s.message_ttl, Some(100));
        assert_eq!(s.max_length, Some(3));
        assert_eq!(s.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(s.policy.as_deref(), Some("p1"));
    }

    #[test]
    fn highest_priority_policy_is_selected() {
        let ps = [policy(1, serde_json::json!({"max-length": 1})), policy(5, serde_json::json!({"max-length": 5}))];
        assert_eq!(select(ps.iter(), "queue", QueueType::Classic).map(|p| p.priority), Some(5));
        assert!(select(ps.iter(), "other", QueueType::Classic).is_none());
    }
}
