//! Where the broker will route each producer's messages, predicted from the
//! topology, so loss is counted per queue: a message routed to two consumed
//! queues is expected twice, one routed nowhere is expected nowhere.

use std::collections::{BTreeMap, BTreeSet};

use crate::bench::actors::producer::ProducerReport;
use crate::bench::scenario::Scenario;
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

/// Where each producer group's routing keys lead: `[group][key index]` is
/// the set of queues, or `None` when warren cannot predict it.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    by_group: Vec<Vec<Option<BTreeSet<String>>>>,
    consumed: BTreeSet<String>,
    /// Per stream, how many consumers read it: each reads every message.
    stream_readers: BTreeMap<String, u64>,
}

impl Routes {
    /// Predicts every group's routes through the vhost.
    pub fn compute(scenario: &Scenario, vhost: &Vhost) -> Routes {
        let by_group = scenario
            .producers
            .iter()
            .map(|group| {
                group
                    .routing_keys
                    .iter()
                    .map(|key| route(vhost, &group.exchange, key, &group.properties.headers))
                    .collect()
            })
            .collect();
        let consumed = scenario.consumers.iter().map(|c| c.queue.clone()).collect();
        let mut stream_readers = BTreeMap::new();
        for group in scenario.consumers.iter().filter(|c| c.stream) {
            *stream_readers.entry(group.queue.clone()).or_insert(0) += u64::from(group.instances);
        }
        Routes { by_group, consumed, stream_readers }
    }

    /// Warnings for routes that could not be predicted (loss is not counted for them).
    pub fn warnings(&self, scenario: &Scenario) -> Vec<String> {
        let mut warnings = Vec::new();
        for (group, keys) in scenario.producers.iter().zip(&self.by_group) {
            if keys.iter().any(Option::is_none) {
                warnings.push(format!(
                    "producer group `{}`: routing through exchange `{}` cannot be predicted; its messages are not counted for loss",
                    group.name, group.exchange
                ));
            }
        }
        warnings
    }

    /// Whether key `key` of group `group` reaches `queue`.
    pub fn reaches(&self, group: usize, key: usize, queue: &str) -> bool {
        self.by_group
            .get(group)
            .and_then(|keys| keys.get(key))
            .and_then(Option::as_ref)
            .is_some_and(|queues| queues.contains(queue))
    }

    /// How many routing keys group `group` cycles through (at least one).
    pub fn keys(&self, group: usize) -> usize {
        self.by_group.get(group).map_or(1, |k| k.len().max(1))
    }

    /// Deliveries queue `queue` should see from `report`'s messages with sequence numbers in `from..to`.
    pub fn expected(&self, report: &ProducerReport, queue: &str, from: u32, to: u32) -> u64 {
        let keys = self.keys(report.group);
        (0..keys).filter(|k| self.reaches(report.group, *k, queue)).map(|k| count_mod(from, to, keys, k)).sum()
    }

    /// First deliveries each consumed queue should see, given what producers published.
    pub fn expected_all(&self, reports: &[ProducerReport]) -> BTreeMap<String, u64> {
        self.consumed
            .iter()
            .map(|queue| {
                let readers = self.stream_readers.get(queue).copied().unwrap_or(1);
                (queue.clone(), readers * reports.iter().map(|r| self.expected(r, queue, 0, r.published)).sum::<u64>())
            })
            .collect()
    }
}

/// How many `seq` in `from..to` have `seq % modulus == residue`.
fn count_mod(from: u32, to: u32, modulus: usize, residue: usize) -> u64 {
    let below = |n: u32| {
        let n = u64::from(n);
        let m = modulus as u64;
        n / m + u64::from(n % m > residue as u64)
    };
    below(to).saturating_sub(below(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residues_are_counted_exactly() {
        for modulus in 1..5usize {
            for from in 0..12u32 {
                for to in from..20u32 {
                    for residue in 0..modulus {
                        let brute = (from..to).filter(|s| *s as usize % modulus == residue).count() as u64;
                        assert_eq!(
                            count_mod(from, to, modulus, residue),
                            brute,
                            "{from}..{to} mod {modulus} = {residue}"
                        );
                    }
                }
            }
        }
    }

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
