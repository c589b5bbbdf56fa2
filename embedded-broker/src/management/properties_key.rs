//! A binding's `properties_key`: the last path segment that names one binding
//! among those between the same source and destination, in
//! `DELETE /api/bindings/{vhost}/e/{source}/q/{destination}/{props}`.
//!
//! RabbitMQ builds it from the routing key, quoted like a form value with `~`
//! escaped, plus `~` and a hash of the arguments when there are any. The
//! routing-key part matches RabbitMQ exactly. RabbitMQ's argument hash is
//! Erlang's `phash2` of its internal argument table, which has no meaning outside
//! the Erlang VM; ours is a hash of the canonical JSON of the arguments. Clients
//! read the key from `GET …/bindings` and send it back, so only its stability
//! matters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The properties key of a binding with this routing key and these arguments.
pub fn properties_key(routing_key: &str, arguments: &Map<String, Value>) -> String {
    if arguments.is_empty() {
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

/// Six URL-safe characters from the arguments, independent of key order.
fn arguments_hash(arguments: &Map<String, Value>) -> String {
    let canonical = canonical_json(&Value::Object(arguments.clone()));
    let digest = Sha256::digest(canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..4])
}

/// JSON text with object keys sorted at every level, so equal tables hash equally.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// Keys RabbitMQ 3.10 returned for bindings without arguments.
    #[test]
    fn routing_key_part_matches_rabbitmq() {
        assert_eq!(properties_key("a.*", &Map::new()), "a.%2A");
        assert_eq!(properties_key("x~y%z", &Map::new()), "x%7Ey%25z");
        assert_eq!(properties_key("q1", &Map::new()), "q1");
        assert_eq!(properties_key("", &Map::new()), "~");
        assert_eq!(properties_key("a b#", &Map::new()), "a+b%23");
    }

    #[test]
    fn arguments_add_a_stable_order_independent_hash() {
        let a = properties_key("b", &args(json!({"x-match": "all", "k": 1})));
        let b = properties_key("b", &args(json!({"k": 1, "x-match": "all"})));
        let c = properties_key("b", &args(json!({"k": 2, "x-match": "all"})));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let (rk, hash) = a.split_once('~').expect("a ~ separates the parts");
        assert_eq!(rk, "b");
        assert_eq!(hash.len(), 6);
        assert!(hash.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
