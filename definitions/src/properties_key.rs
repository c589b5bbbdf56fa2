//! A binding's `properties_key`: the last path segment that names one binding
//! among those between the same source and destination, in
//! `DELETE /api/bindings/{vhost}/e/{source}/q/{destination}/{props}`.
//!
//! RabbitMQ builds it from the routing key, quoted like a form value with `~`
//! escaped, plus `~` and the base64url of Erlang's `phash2` of the argument
//! table when there are arguments. Both parts are computed as RabbitMQ does, so
//! the same binding has the same key on both brokers. The argument table is
//! hashed as RabbitMQ holds it: entries sorted by name, each value tagged with
//! RabbitMQ's name of its AMQP type (JSON integers are `long`, as the
//! management API makes them).

use amq_protocol::types::{AMQPValue, FieldTable};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::phash2::{Term, phash2};

/// The properties key of a binding with this routing key and these arguments.
pub fn properties_key(routing_key: &str, arguments: &FieldTable) -> String {
    if arguments.inner().is_empty() {
        if routing_key.is_empty() {
            return "~".to_owned();
        }
        return quote(routing_key);
    }
    format!("{}~{}", quote(routing_key), quote(&arguments_hash(arguments)))
}

/// `quote_plus` of the routing key, then `~` escaped, as RabbitMQ's `quote_binding` does.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Six URL-safe characters: the 32-bit `phash2` of the table, big-endian, base64url.
fn arguments_hash(arguments: &FieldTable) -> String {
    URL_SAFE_NO_PAD.encode(phash2(&table_term(arguments)).to_be_bytes())
}

/// The table as RabbitMQ's list of `{Name, Type, Value}`, sorted by name.
fn table_term(table: &FieldTable) -> Term {
    // FieldTable is ordered by name already, byte-wise as Erlang sorts binaries.
    Term::List(
        table
            .inner()
            .iter()
            .map(|(name, value)| {
                let (kind, term) = typed(value);
                Term::Tuple(vec![Term::Binary(name.as_str().as_bytes().to_vec()), Term::Atom(kind), term])
            })
            .collect(),
    )
}

/// RabbitMQ's type name for an AMQP field value, and the value as RabbitMQ holds it.
fn typed(value: &AMQPValue) -> (&'static str, Term) {
    match value {
        AMQPValue::Boolean(b) => ("bool", Term::Atom(if *b { "true" } else { "false" })),
        AMQPValue::ShortShortInt(i) => ("byte", Term::Int((*i).into())),
        AMQPValue::ShortShortUInt(i) => ("unsignedbyte", Term::Int((*i).into())),
        AMQPValue::ShortInt(i) => ("short", Term::Int((*i).into())),
        AMQPValue::ShortUInt(i) => ("unsignedshort", Term::Int((*i).into())),
        AMQPValue::LongInt(i) => ("signedint", Term::Int((*i).into())),
        AMQPValue::LongUInt(i) => ("unsignedint", Term::Int((*i).into())),
        AMQPValue::LongLongInt(i) => ("long", Term::Int(*i)),
        AMQPValue::Float(f) => ("float", Term::Float((*f).into())),
        AMQPValue::Double(f) => ("double", Term::Float(*f)),
        AMQPValue::DecimalValue(d) => {
            ("decimal", Term::Tuple(vec![Term::Int(d.scale.into()), Term::Int(d.value.into())]))
        }
        AMQPValue::ShortString(s) => ("longstr", Term::Binary(s.as_str().as_bytes().to_vec())),
        AMQPValue::LongString(s) => ("longstr", Term::Binary(s.as_bytes().to_vec())),
        AMQPValue::FieldArray(items) => (
            "array",
            Term::List(
                items
                    .as_slice()
                    .iter()
                    .map(|item| {
                        let (kind, term) = typed(item);
                        Term::Tuple(vec![Term::Atom(kind), term])
                    })
                    .collect(),
            ),
        ),
        AMQPValue::Timestamp(t) => ("timestamp", Term::Int(i64::try_from(*t).unwrap_or(i64::MAX))),
        AMQPValue::FieldTable(t) => ("table", table_term(t)),
        AMQPValue::ByteArray(b) => ("binary", Term::Binary(b.as_slice().to_vec())),
        AMQPValue::Void => ("void", Term::Atom("undefined")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: serde_json::Value) -> FieldTable {
        crate::arguments::table_from_json(value.as_object().expect("an object"))
    }

    /// Keys RabbitMQ 3.10 returned for bindings without arguments.
    #[test]
    fn routing_key_part_matches_rabbitmq() {
        let none = FieldTable::default();
        assert_eq!(properties_key("a.*", &none), "a.%2A");
        assert_eq!(properties_key("x~y%z", &none), "x%7Ey%25z");
        assert_eq!(properties_key("q1", &none), "q1");
        assert_eq!(properties_key("", &none), "~");
        assert_eq!(properties_key("a b#", &none), "a+b%23");
    }

    /// RabbitMQ 3.10 named the binding with key `b` and arguments `{"x-match":"all","k":1}` (set
    /// through the management API) `b~bis9TA`.
    #[test]
    fn argument_hash_matches_rabbitmq() {
        assert_eq!(properties_key("b", &args(json!({"x-match": "all", "k": 1}))), "b~bis9TA");
        assert_eq!(properties_key("b", &args(json!({"k": 1, "x-match": "all"}))), "b~bis9TA", "order-free");
        assert_ne!(properties_key("b", &args(json!({"k": 2, "x-match": "all"}))), "b~bis9TA");
        let empty_key = properties_key("", &args(json!({"k": 1, "x-match": "all"})));
        assert_eq!(empty_key, "~bis9TA", "an empty routing key quotes to nothing before the ~");
    }
}
