//! Request bodies: JSON objects, an empty body meaning `{}` (RabbitMQ accepts a
//! bare `PUT /api/vhosts/v`), with RabbitMQ's `not_json` for text that is not
//! JSON and a field-naming `bad_request` for JSON of the wrong shape.

use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use warren_definitions::Tags;

use super::ApiError;

/// The body as a JSON object.
pub(crate) fn object(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes).map_err(ApiError::NotJson)? {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::BadBody(serde::de::Error::custom(format!("expected a JSON object, got {other}")))),
    }
}

/// The body as `T`.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let map = object(bytes)?;
    serde_json::from_value(Value::Object(map)).map_err(ApiError::BadBody)
}

/// A `tags` field: a list of strings, a comma-separated string, or `null` for none.
pub(crate) fn tags(value: &Value) -> Result<Vec<String>, ApiError> {
    Tags::from_value(value).map(|tags| tags.to_vec()).ok_or_else(|| {
        ApiError::BadBody(serde::de::Error::custom("tags must be a list of strings or a comma-separated string"))
    })
}

/// The string fields `keys` of `map`, or RabbitMQ's `key_missing` list naming every absent one.
pub(crate) fn required_strings<const N: usize>(
    map: &Map<String, Value>,
    keys: [&'static str; N],
) -> Result<[String; N], ApiError> {
    let missing: Vec<&'static str> = keys.iter().copied().filter(|k| !map.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(ApiError::KeysMissing { keys: missing });
    }
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, key) in out.iter_mut().zip(keys) {
        *slot = match &map[key] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_an_empty_object_and_garbage_is_not_json() {
        assert!(object(&Bytes::from_static(b"")).expect("empty").is_empty());
        assert!(matches!(object(&Bytes::from_static(b"{\"durable\":tru")), Err(ApiError::NotJson(_))));
        assert!(matches!(object(&Bytes::from_static(b"[1]")), Err(ApiError::BadBody(_))));
    }

    #[test]
    fn missing_keys_are_all_named_like_rabbitmq() {
        let map = object(&Bytes::from_static(br#"{"configure":".*"}"#)).expect("object");
        let err = required_strings(&map, ["configure", "write", "read"]).expect_err("missing");
        assert_eq!(err.to_string(), "[{key_missing,write},{key_missing,read}]");
    }
}
