//! Checks of declare arguments and policy definitions that RabbitMQ would
//! otherwise reject at apply time (a negative TTL, an unknown queue type,
//! a string where a number goes), so `validate` catches them without a broker.

use serde_json::Value;

use super::{Converter, unknown_queue_type};
use crate::topology::load::diagnostic::did_you_mean;
use crate::topology::load::source::NodePath;
use crate::topology::model::{Arguments, QueueType};

/// Numeric queue arguments and the smallest value RabbitMQ accepts.
const QUEUE_NUMBERS: &[(&str, i64, &str)] = &[
    ("x-message-ttl", 0, "milliseconds"),
    ("x-expires", 1, "milliseconds"),
    ("x-max-length", 0, "messages"),
    ("x-max-length-bytes", 0, "bytes"),
    ("x-delivery-limit", 0, "deliveries"),
    ("x-max-priority", 1, "priority levels"),
    ("x-quorum-initial-group-size", 1, "replicas"),
    ("x-initial-cluster-size", 1, "replicas"),
    ("x-stream-max-segment-size-bytes", 1, "bytes"),
];

/// Numeric policy keys and the smallest value RabbitMQ accepts.
const POLICY_NUMBERS: &[(&str, i64, &str)] = &[
    ("message-ttl", 0, "milliseconds"),
    ("expires", 1, "milliseconds"),
    ("max-length", 0, "messages"),
    ("max-length-bytes", 0, "bytes"),
    ("delivery-limit", 0, "deliveries"),
];

const OVERFLOW: &[&str] = &["drop-head", "reject-publish", "reject-publish-dlx"];

/// Queue arguments RabbitMQ (3.10 to 3.13) knows. Others are passed through
/// and ignored by the broker, so a typo silently does nothing.
const QUEUE_ARGUMENTS: &[&str] = &[
    "x-queue-type",
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-priority",
    "x-queue-mode",
    "x-queue-version",
    "x-queue-master-locator",
    "x-queue-leader-locator",
    "x-single-active-consumer",
    "x-delivery-limit",
    "x-quorum-initial-group-size",
    "x-initial-cluster-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-consumer-timeout",
];

/// Exchange arguments of RabbitMQ and its common plugins.
const EXCHANGE_ARGUMENTS: &[&str] = &["alternate-exchange", "x-delayed-type", "hash-header", "hash-property"];

/// Policy keys RabbitMQ knows.
const POLICY_KEYS: &[&str] = &[
    "alternate-exchange",
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "dead-letter-strategy",
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "overflow",
    "delivery-limit",
    "max-age",
    "stream-max-segment-size-bytes",
    "queue-mode",
    "queue-version",
    "queue-master-locator",
    "queue-leader-locator",
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-sync-batch-size",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "federation-upstream",
    "federation-upstream-set",
    "consumer-timeout",
];

/// A key close to a known one but not known is a typo. A key close to none
/// may belong to a plugin, so it is let through.
fn typos(conv: &mut Converter<'_>, arguments: &Arguments, at: &NodePath, known: &[&str], consequence: &str) {
    for key in arguments.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        if let Some(intended) = crate::topology::load::diagnostic::suggest(key, known.iter().copied()) {
            let arg_at = at.key(key);
            let owner = {
                let mut parent = at.clone();
                parent.0.pop();
                conv.describe(&parent)
            };
            conv.at_key(
                &arg_at,
                format!("{owner}: unknown key `{key}`, which {consequence} (did you mean `{intended}`?)"),
            );
        }
    }
}

/// Checks a queue's arguments; returns the declared `x-queue-type`, if valid.
pub fn check_queue_arguments(conv: &mut Converter<'_>, arguments: &Arguments, at: &NodePath) -> Option<QueueType> {
    typos(conv, arguments, at, QUEUE_ARGUMENTS, "RabbitMQ would silently ignore");
    numbers(conv, arguments, at, QUEUE_NUMBERS);
    if let Some(Value::Number(n)) = arguments.get("x-max-priority")
        && n.as_i64().is_some_and(|p| p > 255)
    {
        let arg_at = at.key("x-max-priority");
        conv.at_value(&arg_at, format!("{}: at most 255, got {n}", conv.describe(&arg_at)));
    }
    strings(conv, arguments, at, &["x-dead-letter-exchange", "x-dead-letter-routing-key", "x-max-age"]);
    choice(conv, arguments, at, "x-overflow", OVERFLOW);
    choice(conv, arguments, at, "x-queue-mode", &["default", "lazy"]);
    choice(conv, arguments, at, "x-dead-letter-strategy", &["at-most-once", "at-least-once"]);
    if let Some(value) = arguments.get("x-single-active-consumer")
        && !value.is_boolean()
    {
        let arg_at = at.key("x-single-active-consumer");
        conv.at_value(&arg_at, format!("{}: must be `true` or `false`, got {value}", conv.describe(&arg_at)));
    }
    let value = arguments.get("x-queue-type")?;
    let arg_at = at.key("x-queue-type");
    match value.as_str().map(|s| (s, QueueType::parse(s))) {
        Some((_, Some(kind))) => Some(kind),
        Some((given, None)) => {
            conv.at_value(&arg_at, unknown_queue_type(&conv.describe(&arg_at), given));
            None
        }
        None => {
            conv.at_value(
                &arg_at,
                format!("{}: must be `classic`, `quorum` or `stream`, got {value}", conv.describe(&arg_at)),
            );
            None
        }
    }
}

/// Checks an exchange's arguments.
pub fn check_exchange_arguments(conv: &mut Converter<'_>, arguments: &Arguments, at: &NodePath) {
    typos(conv, arguments, at, EXCHANGE_ARGUMENTS, "RabbitMQ would silently ignore");
    strings(conv, arguments, at, &["alternate-exchange"]);
}

/// Checks a binding's arguments.
pub fn check_binding_arguments(conv: &mut Converter<'_>, arguments: &Arguments, at: &NodePath) {
    choice(conv, arguments, at, "x-match", &["all", "any", "all-with-x", "any-with-x"]);
}

/// Checks a policy definition.
pub fn check_policy_definition(conv: &mut Converter<'_>, definition: &Arguments, at: &NodePath) {
    typos(conv, definition, at, POLICY_KEYS, "RabbitMQ would refuse");
    numbers(conv, definition, at, POLICY_NUMBERS);
    strings(
        conv,
        definition,
        at,
        &["dead-letter-exchange", "dead-letter-routing-key", "alternate-exchange", "max-age"],
    );
    choice(conv, definition, at, "overflow", OVERFLOW);
    choice(conv, definition, at, "queue-mode", &["default", "lazy"]);
}

/// Whole numbers at least the minimum; a numeric string counts, since
/// `${VAR}` always yields a string and the normaliser turns it into a number.
fn numbers(conv: &mut Converter<'_>, arguments: &Arguments, at: &NodePath, rules: &[(&str, i64, &str)]) {
    for (key, min, unit) in rules {
        let Some(value) = arguments.get(*key) else { continue };
        let number = match value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let arg_at = at.key(key);
        match number {
            Some(n) if n >= *min => {}
            Some(_) => conv.at_value(
                &arg_at,
                format!("{}: must be a whole number of {unit} of at least {min}, got {value}", conv.describe(&arg_at)),
            ),
            None => conv.at_value(
                &arg_at,
                format!("{}: must be a whole number of {unit}, got {value}", conv.describe(&arg_at)),
            ),
        }
    }
}

fn strings(conv: &mut Converter<'_>, arguments: &Arguments, at: &NodePath, keys: &[&str]) {
    for key in keys {
        if let Some(value) = arguments.get(*key)
            && !value.is_string()
        {
            let arg_at = at.key(key);
            conv.at_value(&arg_at, format!("{}: must be a string, got {value}", conv.describe(&arg_at)));
        }
    }
}

fn choice(conv: &mut Converter<'_>, arguments: &Arguments, at: &NodePath, key: &str, allowed: &[&str]) {
    let Some(value) = arguments.get(key) else { return };
    if value.as_str().is_some_and(|s| allowed.contains(&s)) {
        return;
    }
    let arg_at = at.key(key);
    let given = value.as_str().map_or_else(|| value.to_string(), |s| format!("`{s}`"));
    let hint = value.as_str().map(|s| did_you_mean(s, allowed.iter().copied())).unwrap_or_default();
    conv.at_value(
        &arg_at,
        format!("{}: unknown value {given}, expected one of `{}`{hint}", conv.describe(&arg_at), allowed.join("`, `")),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::topology::load::load_str_with_env;

    fn check(arguments: &str) -> Vec<String> {
        let text = format!("vhosts:\n  /:\n    queues:\n      q:\n        arguments: {{ {arguments} }}\n");
        match load_str_with_env("t.yaml", &text, &HashMap::<String, String>::new()) {
            Ok(_) => Vec::new(),
            Err(error) => error.diagnostics().iter().map(|d| d.message.clone()).collect(),
        }
    }

    #[test]
    fn a_misspelt_argument_is_reported_instead_of_silently_ignored() {
        assert_eq!(
            check("x-mesage-ttl: 1000"),
            [
                "queue `q`: unknown key `x-mesage-ttl`, which RabbitMQ would silently ignore (did you mean `x-message-ttl`?)"
            ]
        );
        assert_eq!(check("x-dead-letter-exchnage: dlx").len(), 1);
    }

    #[test]
    fn arguments_unlike_any_known_one_are_left_to_plugins() {
        for key in ["x-custom-flag", "x-cancel-on-ha-failover", "x-stream-filter-size-bytes", "owner", "x-tenant"] {
            assert_eq!(check(&format!("{key}: 1")), Vec::<String>::new(), "{key}");
        }
    }
}
