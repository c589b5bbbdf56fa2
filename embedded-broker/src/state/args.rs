//! Argument tables: conversion between AMQP field tables and the management API's JSON, and
//! RabbitMQ's rules for comparing them on redeclaration.

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Number, Value};

/// Converts a JSON object (as the management API receives it) to an AMQP field table.
/// Integers become signed 64-bit values, as RabbitMQ's JSON decoder makes them.
pub fn table_from_json(map: &Map<String, Value>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in map {
        table.insert(ShortString::from(key.as_str()), value_from_json(value));
    }
    table
}

/// Converts one JSON value to an AMQP value.
pub fn value_from_json(value: &Value) -> AMQPValue {
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(items) => {
            AMQPValue::FieldArray(FieldArray::from(items.iter().map(value_from_json).collect::<Vec<_>>()))
        }
        Value::Object(map) => AMQPValue::FieldTable(table_from_json(map)),
    }
}

/// Converts an AMQP field table to the JSON the management API shows.
pub fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table.inner().iter().map(|(k, v)| (k.as_str().to_owned(), value_to_json(v))).collect()
}

/// Converts one AMQP value to JSON; byte arrays and long strings that are not UTF-8 are shown lossily.
pub fn value_to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(i) => Value::from(*i),
        AMQPValue::ShortShortUInt(i) => Value::from(*i),
        AMQPValue::ShortInt(i) => Value::from(*i),
        AMQPValue::ShortUInt(i) => Value::from(*i),
        AMQPValue::LongInt(i) => Value::from(*i),
        AMQPValue::LongUInt(i) => Value::from(*i),
        AMQPValue::LongLongInt(i) => Value::from(*i),
        AMQPValue::Float(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        AMQPValue::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        AMQPValue::DecimalValue(d) => {
            Number::from_f64(f64::from(d.value) / 10f64.powi(i32::from(d.scale))).map_or(Value::Null, Value::Number)
        }
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_to_json).collect()),
        AMQPValue::Timestamp(t) => Value::from(*t),
        AMQPValue::FieldTable(t) => Value::Object(table_to_json(t)),
        AMQPValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into_owned()),
        AMQPValue::Void => Value::Null,
    }
}

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
    fn json_round_trip_keeps_numbers_strings_and_nesting() {
        let json = serde_json::json!({"x-message-ttl": 1000, "x-dead-letter-exchange": "dlx", "nested": {"a": [true]}});
        let Value::Object(map) = &json else { panic!("test input is an object") };
        assert_eq!(Value::Object(table_to_json(&table_from_json(map))), json);
    }

    #[test]
    fn missing_argument_is_reported_as_none() {
        let mut new = FieldTable::default();
        new.insert("x-message-ttl".into(), AMQPValue::LongInt(2000));
        let err = compare_key(&FieldTable::default(), &new, "x-message-ttl").expect_err("differs");
        assert_eq!(err, "received the value '2000' of type 'signedint' but current is none");
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
