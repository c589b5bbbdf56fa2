//! Argument tables and header values between JSON (definitions, the
//! management API, scenario files) and AMQP field tables.
//!
//! JSON to AMQP follows RabbitMQ's management API (`rabbit_mgmt_util`'s
//! `type_val`): an integer is a `long` (signed 64-bit), any other number a
//! `double`, a string a `longstr`, a list an `array`, an object a `table`.

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Number, Value};

/// A JSON object's entries as an AMQP field table.
pub fn table_from_json<'a>(entries: impl IntoIterator<Item = (&'a String, &'a Value)>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in entries {
        table.insert(ShortString::from(key.as_str()), value_from_json(value));
    }
    table
}

/// One JSON value as an AMQP value. An integer beyond the signed 64-bit
/// range, which RabbitMQ's `long` cannot carry either, becomes a `double`;
/// `null` is `void`.
pub fn value_from_json(value: &Value) -> AMQPValue {
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            // Every JSON number is an f64 (serde_json is built without arbitrary precision).
            None => AMQPValue::Double(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(items) => {
            AMQPValue::FieldArray(FieldArray::from(items.iter().map(value_from_json).collect::<Vec<_>>()))
        }
        Value::Object(map) => AMQPValue::FieldTable(table_from_json(map)),
    }
}

/// An AMQP field table as the JSON the management API shows.
pub fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table.inner().iter().map(|(k, v)| (k.as_str().to_owned(), value_to_json(v))).collect()
}

/// One AMQP value as JSON; byte arrays and long strings that are not UTF-8
/// are shown lossily, a non-finite float as `null`.
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_round_trip_keeps_numbers_strings_and_nesting() {
        let json = json!({"x-message-ttl": 1000, "x-dead-letter-exchange": "dlx", "nested": {"a": [true, 0.5]}});
        let Value::Object(map) = &json else { panic!("test input is an object") };
        assert_eq!(Value::Object(table_to_json(&table_from_json(map))), json);
    }

    /// RabbitMQ 3.10 keeps `1e3` as the double 1000.0 and `-9223372036854775808` as an integer
    /// (`PUT /api/queues/…` with those arguments, then `GET`).
    #[test]
    fn integers_are_longs_and_other_numbers_doubles_as_in_rabbitmq() {
        assert_eq!(value_from_json(&json!(5)), AMQPValue::LongLongInt(5));
        assert_eq!(value_from_json(&json!(i64::MIN)), AMQPValue::LongLongInt(i64::MIN));
        assert_eq!(value_from_json(&json!(1.5)), AMQPValue::Double(1.5));
        let exponent: Value = serde_json::from_str("1e3").expect("JSON");
        assert_eq!(value_from_json(&exponent), AMQPValue::Double(1000.0));
        assert_eq!(value_from_json(&json!(u64::MAX)), AMQPValue::Double(u64::MAX as f64));
        assert_eq!(value_from_json(&Value::Null), AMQPValue::Void);
        assert_eq!(value_from_json(&json!("s")), AMQPValue::LongString("s".into()));
    }
}
