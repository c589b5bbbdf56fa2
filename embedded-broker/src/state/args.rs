//! Argument tables: RabbitMQ's rules for accepting queue arguments at declare time and for
//! comparing them on redeclaration. Their conversion from and to JSON is
//! `warren_definitions::arguments`.

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};
use warren_definitions::arguments::value_to_json;

use super::error::StateError;
use super::queue::QueueType;

/// The value as a signed integer when it is of any integer type (RabbitMQ accepts every one).
pub fn as_i64(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(i) => Some(i64::from(*i)),
        AMQPValue::ShortShortUInt(i) => Some(i64::from(*i)),
        AMQPValue::ShortInt(i) => Some(i64::from(*i)),
        AMQPValue::ShortUInt(i) => Some(i64::from(*i)),
        AMQPValue::LongInt(i) => Some(i64::from(*i)),
        AMQPValue::LongUInt(i) => Some(i64::from(*i)),
        AMQPValue::LongLongInt(i) => Some(*i),
        AMQPValue::Timestamp(t) => i64::try_from(*t).ok(),
        _ => None,
    }
}

/// The value as text when it is a string of either width.
pub fn as_str(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

/// The value as a boolean when it is one.
pub fn as_bool(value: &AMQPValue) -> Option<bool> {
    match value {
        AMQPValue::Boolean(b) => Some(*b),
        _ => None,
    }
}

/// RabbitMQ's name for a value's type in "inequivalent arg" messages.
pub fn type_name(value: &AMQPValue) -> &'static str {
    match value {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) | AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

/// A value rendered as RabbitMQ renders it in error texts.
pub fn display(value: &AMQPValue) -> String {
    match value {
        AMQPValue::ShortString(_) | AMQPValue::LongString(_) => as_str(value).unwrap_or_default(),
        other => value_to_json(other).to_string(),
    }
}

/// Whether two argument values are equivalent as RabbitMQ compares them: integers of any width
/// are the same type class, strings of either width are equal when their text is.
pub fn equivalent(a: &AMQPValue, b: &AMQPValue) -> bool {
    if let (Some(x), Some(y)) = (as_i64(a), as_i64(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (as_str(a), as_str(b)) {
        return x == y;
    }
    a == b
}

/// Compares `key` in an existing and a new table; on a difference returns the RabbitMQ detail text
/// ("received the value '2000' of type 'long' but current is none").
pub fn compare_key(current: &FieldTable, new: &FieldTable, key: &str) -> Result<(), String> {
    let cur = current.inner().get(key);
    let got = new.inner().get(key);
    match (cur, got) {
        (None, None) => Ok(()),
        (Some(c), Some(g)) if equivalent(c, g) => Ok(()),
        // Both present: RabbitMQ shows the bare values, without their types.
        (Some(c), Some(g)) => Err(format!("received '{}' but current is '{}'", display(g), display(c))),
        (c, g) => {
            let received = match g {
                Some(g) => format!("the value '{}' of type '{}'", display(g), type_name(g)),
                None => "none".to_owned(),
            };
            let current = match c {
                Some(c) => format!("the value '{}' of type '{}'", display(c), type_name(c)),
                None => "none".to_owned(),
            };
            Err(format!("received {received} but current is {current}"))
        }
    }
}

/// The arguments a queue type takes, in RabbitMQ 3.10's order (its `queue_arguments`
/// capabilities): the ones a redeclaration must repeat, and compared in this order. At declare
/// time an argument only another type takes is refused; arguments no type knows are unchecked.
pub fn queue_arguments(kind: QueueType) -> &'static [&'static str] {
    match kind {
        QueueType::Classic => CLASSIC_ARGUMENTS,
        QueueType::Quorum => QUORUM_ARGUMENTS,
    }
}

const CLASSIC_ARGUMENTS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
];
const QUORUM_ARGUMENTS: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-overflow",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-message-ttl",
    "x-queue-leader-locator",
];
const STREAM_ARGUMENTS: &[&str] = &[
    "x-max-length-bytes",
    "x-queue-type",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

/// The arguments whose values are checked, in the order RabbitMQ checks them (the first refusal
/// is the one reported). The stream-only ones are left out: stream queues are refused first.
const CHECKED: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-quorum-initial-group-size",
    "x-queue-leader-locator",
];

/// The longest TTL or expiry RabbitMQ accepts: ten years in milliseconds.
const MAX_EXPIRY: i64 = 315_360_000_000;

/// Validates a new queue's arguments as RabbitMQ 3.10 does at declare time (the queue type, then
/// each checked value in RabbitMQ's order, then arguments of other queue types), with RabbitMQ's
/// reply texts. Returns the queue type.
pub fn validate_queue_arguments(vhost: &str, name: &str, arguments: &FieldTable) -> Result<QueueType, StateError> {
    let invalid = |arg: &str, reason: String| StateError::InvalidArgument {
        kind: super::EntityKind::Queue,
        vhost: vhost.to_owned(),
        name: name.to_owned(),
        arg: arg.to_owned(),
        reason,
    };
    let kind = match arguments.inner().get("x-queue-type") {
        None => QueueType::Classic,
        Some(value) => match as_str(value).as_deref() {
            Some("classic") => QueueType::Classic,
            Some("quorum") => QueueType::Quorum,
            Some("stream") => {
                return Err(invalid("x-queue-type", "stream queues are not supported by the embedded broker".into()));
            }
            Some(other) => {
                return Err(invalid("x-queue-type", erlang_string(&format!("unsupported queue type '{other}'"))));
            }
            None => return Err(invalid("x-queue-type", unacceptable(value))),
        },
    };
    let accepted = queue_arguments(kind);
    for key in CHECKED.iter().filter(|key| accepted.contains(key)) {
        if let Some(value) = arguments.inner().get(*key) {
            check_value(key, value, arguments).map_err(|reason| invalid(key, reason))?;
        }
    }
    let foreign = |key: &str| {
        !accepted.contains(&key)
            && [CLASSIC_ARGUMENTS, QUORUM_ARGUMENTS, STREAM_ARGUMENTS].iter().any(|args| args.contains(&key))
    };
    if let Some(key) = arguments.inner().keys().map(ShortString::as_str).find(|key| foreign(key)) {
        return Err(StateError::ArgumentOfOtherQueueType {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            arg: key.to_owned(),
            queue_type: match kind {
                QueueType::Classic => "rabbit_classic_queue",
                QueueType::Quorum => "rabbit_quorum_queue",
            },
        });
    }
    Ok(kind)
}

/// One argument's value against RabbitMQ's rule for it; the error is RabbitMQ's term for the
/// refusal, as its `~p` prints it.
fn check_value(key: &str, value: &AMQPValue, arguments: &FieldTable) -> Result<(), String> {
    match key {
        "x-expires" => match integer(value)? {
            0 => Err("{value_zero,0}".to_owned()),
            v => expiry(v),
        },
        "x-message-ttl" => expiry(integer(value)?),
        "x-dead-letter-exchange" => text(value).map(drop),
        "x-dead-letter-routing-key" => {
            text(value)?;
            match arguments.inner().contains_key("x-dead-letter-exchange") {
                true => Ok(()),
                false => Err("routing_key_but_no_dlx_defined".to_owned()),
            }
        }
        "x-dead-letter-strategy" => one_of(value, &["at-most-once", "at-least-once"], "invalid_dlx_strategy"),
        "x-max-priority" => match non_negative(value)? {
            v if v > 255 => Err(format!("{{max_value_exceeded,{v}}}")),
            _ => Ok(()),
        },
        "x-overflow" => one_of(value, &["drop-head", "reject-publish", "reject-publish-dlx"], "invalid_overflow"),
        "x-queue-mode" => match text(value)? {
            mode if mode == "default" || mode == "lazy" => Ok(()),
            mode => Err(erlang_string(&format!("unsupported queue mode '{mode}'"))),
        },
        "x-queue-version" => match non_negative(value)? {
            1 | 2 => Ok(()),
            v => Err(erlang_string(&format!("unsupported queue version '{v}'"))),
        },
        "x-single-active-consumer" => as_bool(value).map(drop).ok_or_else(|| unacceptable(value)),
        "x-quorum-initial-group-size" => match non_negative(value)? {
            0 => Err("{value_zero,0}".to_owned()),
            _ => Ok(()),
        },
        "x-queue-leader-locator" => {
            one_of(value, &["client-local", "balanced", "random", "least-leaders"], "invalid_queue_locator_arg")
        }
        // The lengths and sizes.
        _ => non_negative(value).map(drop),
    }
}

/// An integer of any AMQP integer type but timestamp, as RabbitMQ's `check_int_arg` wants it.
fn integer(value: &AMQPValue) -> Result<i64, String> {
    match value {
        AMQPValue::Timestamp(_) => None,
        other => as_i64(other),
    }
    .ok_or_else(|| erlang_string(&format!("expected integer, got {}", type_name(value))))
}

fn non_negative(value: &AMQPValue) -> Result<i64, String> {
    match integer(value)? {
        v if v < 0 => Err(format!("{{value_negative,{v}}}")),
        v => Ok(v),
    }
}

fn expiry(v: i64) -> Result<(), String> {
    match v {
        v if v < 0 => Err(format!("{{value_negative,{v}}}")),
        v if v > MAX_EXPIRY => Err(format!("{{value_too_large,{v}}}")),
        _ => Ok(()),
    }
}

fn text(value: &AMQPValue) -> Result<String, String> {
    as_str(value).ok_or_else(|| unacceptable(value))
}

fn one_of(value: &AMQPValue, known: &[&str], refusal: &str) -> Result<(), String> {
    match known.contains(&text(value)?.as_str()) {
        true => Ok(()),
        false => Err(refusal.to_owned()),
    }
}

fn unacceptable(value: &AMQPValue) -> String {
    format!("{{unacceptable_type,{}}}", type_name(value))
}

/// Text as Erlang's `~p` prints a string: in double quotes, with quotes and backslashes escaped.
fn erlang_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_different_width_are_equivalent() {
        assert!(equivalent(&AMQPValue::LongInt(5), &AMQPValue::LongLongInt(5)));
        assert!(!equivalent(&AMQPValue::LongInt(5), &AMQPValue::LongLongInt(6)));
        assert!(equivalent(&AMQPValue::ShortString("a".into()), &AMQPValue::LongString("a".into())));
    }

    #[test]
    fn missing_argument_is_reported_as_none() {
        let mut new = FieldTable::default();
        new.insert("x-message-ttl".into(), AMQPValue::LongInt(2000));
        let err = compare_key(&FieldTable::default(), &new, "x-message-ttl").expect_err("differs");
        assert_eq!(err, "received the value '2000' of type 'signedint' but current is none");
    }

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    #[test]
    fn the_first_refusal_in_rabbitmq_order_is_reported() {
        // x-expires is checked before x-max-priority, whatever the table's order.
        let both = table(&[("x-max-priority", AMQPValue::LongInt(1000)), ("x-expires", AMQPValue::LongInt(0))]);
        let err = validate_queue_arguments("/", "q", &both).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}"
        );
        // The queue type comes first of all.
        let typed =
            table(&[("x-queue-type", AMQPValue::LongString("foo".into())), ("x-expires", AMQPValue::LongInt(0))]);
        let err = validate_queue_arguments("/", "q", &typed).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': \"unsupported queue type 'foo'\""
        );
        assert_eq!(err.reply_code(), 406);
    }

    #[test]
    fn stream_queues_and_arguments_of_other_queue_types_are_refused() {
        let stream = table(&[("x-queue-type", AMQPValue::LongString("stream".into()))]);
        assert_eq!(validate_queue_arguments("/", "q", &stream).map_err(|e| e.reply_code()), Err(406));
        let quorum_only = table(&[("x-delivery-limit", AMQPValue::LongInt(3))]);
        let err = validate_queue_arguments("/", "q", &quorum_only).expect_err("classic queues take no delivery limit");
        assert_eq!(
            err.to_string(),
            "PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"
        );
        let quorum = table(&[
            ("x-queue-type", AMQPValue::LongString("quorum".into())),
            ("x-delivery-limit", AMQPValue::LongInt(3)),
        ]);
        assert_eq!(validate_queue_arguments("/", "q", &quorum), Ok(QueueType::Quorum));
    }

    #[test]
    fn differing_values_are_reported_without_their_types() {
        let mut current = FieldTable::default();
        current.insert("x-queue-mode".into(), AMQPValue::LongString("lazy".into()));
        let mut new = FieldTable::default();
        new.insert("x-queue-mode".into(), AMQPValue::LongString("default".into()));
        let err = compare_key(&current, &new, "x-queue-mode").expect_err("differs");
        assert_eq!(err, "received 'default' but current is 'lazy'");
    }
}
