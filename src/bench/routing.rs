//! Where the broker will route each producer's messages, predicted from the
//! topology, so loss is counted per queue: a message routed to two consumed
//! queues is expected twice, one routed nowhere is expected nowhere.

use std::collections::BTreeSet;

use crate::topology::model::{Binding, DestinationType, ExchangeType, Vhost};

/// The queues a message reaches, or `None` when an exchange on the way has
/// a type whose routing warren cannot predict (a plugin type).
pub fn route(
    vhost: &Vhost,
    exchange: &str,
    routing_key: &str,
    headers: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Option<BTreeSet<String>> {
    let mut queues = BTreeSet::new();
    let mut visited = BTreeSet::new();
    if exchange.is_empty() {
        queues.insert(routing_key.to_owned());
        return Some(queues);
    }
    walk(vhost, exchange, routing_key, headers, &mut queues, &mut visited)?;
    Some(queues)
}

fn walk(
    vhost: &Vhost,
    exchange: &str,
    routing_key: &str,
    headers: &std::collections::BTreeMap<String, serde_json::Value>,
    queues: &mut BTreeSet<String>,
    visited: &mut BTreeSet<String>,
) -> Option<()> {
    if !visited.insert(exchange.to_owned()) {
        return Some(());
    }
    let kind = match vhost.exchanges.get(exchange) {
        Some(declared) => declared.kind.clone(),
        None if exchange.starts_with("amq.") => builtin_kind(exchange)?,
        // An exchange the topology does not know routes nothing warren can predict.
        None => return None,
    };
    let mut matched = false;
    for binding in vhost.bindings.iter().filter(|b| b.source == exchange) {
        if !matches_binding(&kind, binding, routing_key, headers)? {
            continue;
        }
        matched = true;
        match binding.destination_type {
            DestinationType::Queue => {
                queues.insert(binding.destination.clone());
            }
            DestinationType::Exchange => walk(vhost, &binding.destination, routing_key, headers, queues, visited)?,
        }
    }
    let alternate = vhost.exchanges.get(exchange).and_then(|e| e.arguments.get("alternate-exchange"));
    if !matched && let Some(alternate) = alternate.and_then(|a| a.as_str()) {
        walk(vhost, alternate, routing_key, headers, queues, visited)?;
    }
    Some(())
}

fn builtin_kind(exchange: &str) -> Option<ExchangeType> {
    Some(match exchange {
        "amq.direct" => ExchangeType::Direct,
        "amq.fanout" => ExchangeType::Fanout,
        "amq.topic" => ExchangeType::Topic,
        "amq.headers" | "amq.match" => ExchangeType::Headers,
        _ => return None,
    })
}

fn matches_binding(
    kind: &ExchangeType,
    binding: &Binding,
    routing_key: &str,
    headers: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Option<bool> {
    Some(match kind {
        ExchangeType::Direct => binding.routing_key == routing_key,
        ExchangeType::Fanout => true,
        ExchangeType::Topic => topic_matches(&binding.routing_key, routing_key),
        ExchangeType::Headers => headers_match(&binding.arguments, headers),
        ExchangeType::Plugin(_) => return None,
    })
}

/// AMQP topic matching: `*` is one word, `#` zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = if key.is_empty() { Vec::new() } else { key.split('.').collect() };
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|skip| go(rest, &k[skip..])),
            Some((&"*", rest)) => !k.is_empty() && go(rest, &k[1..]),
            Some((word, rest)) => k.first() == Some(word) && go(rest, &k[1..]),
        }
    }
    let pattern = if pattern == [""] { Vec::new() } else { pattern };
    go(&pattern, &key)
}

fn headers_match(
    arguments: &crate::topology::model::Arguments,
    headers: &std::collections::BTreeMap<String, serde_json::Value>,
) -> bool {
    let any = arguments.get("x-match").and_then(|v| v.as_str()).is_some_and(|m| m.starts_with("any"));
    let mut wanted = arguments.iter().filter(|(k, _)| !k.starts_with("x-")).peekable();
    if wanted.peek().is_none() {
        return true;
    }
    let mut hits = wanted.map(|(k, v)| headers.get(k).is_some_and(|h| h == v || v.is_null()));
    if any { hits.any(|h| h) } else { hits.all(|h| h) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns() {
        assert!(topic_matches("order.*", "order.created"));
        assert!(!topic_matches("order.*", "order.created.eu"));
        assert!(topic_matches("order.#", "order"));
        assert!(topic_matches("#", "a.b.c"));
        assert!(topic_matches("*.b.#", "a.b"));
        assert!(!topic_matches("order.created", "order.paid"));
    }
}
