//! Exchanges, bindings, and the matching rules of each exchange type.

use amq_protocol::types::{AMQPValue, FieldTable};

use super::args;

/// The exchange types this broker routes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// Exact routing-key match.
    Direct,
    /// Every bound destination.
    Fanout,
    /// Dotted-word patterns with `*` and `#`.
    Topic,
    /// Header-table match with `x-match`.
    Headers,
}

impl ExchangeKind {
    /// Parses a type name as clients send it; `None` for unknown types (RabbitMQ answers 503).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    /// The type name as RabbitMQ reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

/// An exchange's definition. Immutable once declared: RabbitMQ cannot change any of it in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// Its name; the empty name is the default exchange.
    pub name: String,
    /// Its type.
    pub kind: ExchangeKind,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last binding (as source) goes away.
    pub auto_delete: bool,
    /// Cannot be published to by clients.
    pub internal: bool,
    /// Arguments such as `alternate-exchange`.
    pub arguments: FieldTable,
}

impl Exchange {
    /// The alternate exchange named by the arguments, if any.
    pub fn alternate_exchange(&self) -> Option<String> {
        self.arguments.inner().get("alternate-exchange").and_then(args::as_str)
    }
}

/// What a binding points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    /// A queue.
    Queue,
    /// Another exchange (exchange-to-exchange binding).
    Exchange,
}

impl DestinationKind {
    /// As the management API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Queue => "queue",
            DestinationKind::Exchange => "exchange",
        }
    }
}

/// A binding; its identity is all of its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Source exchange ("" for the implicit default-exchange bindings, which are never stored).
    pub source: String,
    /// Destination queue or exchange.
    pub destination: String,
    /// Whether the destination is a queue or an exchange.
    pub destination_kind: DestinationKind,
    /// Routing key or topic pattern.
    pub routing_key: String,
    /// Arguments (headers-exchange match table).
    pub arguments: FieldTable,
}

impl Binding {
    /// Whether a message with this routing key and headers matches, for an exchange of `kind`.
    pub fn matches(&self, kind: ExchangeKind, routing_key: &str, headers: Option<&FieldTable>) -> bool {
        match kind {
            ExchangeKind::Direct => self.routing_key == routing_key,
            ExchangeKind::Fanout => true,
            ExchangeKind::Topic => topic_matches(&self.routing_key, routing_key),
            ExchangeKind::Headers => headers_match(&self.arguments, headers),
        }
    }
}

/// Topic matching as RabbitMQ does it: words split on `.`, `*` is exactly one word, `#` zero or
/// more words; empty words are words.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    match_words(&words(pattern), &words(key))
}

/// RabbitMQ splits the empty key into zero words (so `*` does not match it) and "a..b" into three.
fn words(s: &str) -> Vec<&str> {
    if s.is_empty() { Vec::new() } else { s.split('.').collect() }
}

fn match_words(pattern: &[&str], key: &[&str]) -> bool {
    // Iterative matcher with backtracking on the last '#', linear for typical patterns.
    let (mut p, mut k) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        if p < pattern.len() && pattern[p] == "#" {
            star = Some((p, k));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == "*" || pattern[p] == key[k]) {
            p += 1;
            k += 1;
        } else if let Some((sp, sk)) = star {
            p = sp + 1;
            k = sk + 1;
            star = Some((sp, sk + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == "#" {
        p += 1;
    }
    p == pattern.len()
}

/// Headers-exchange matching: `x-match` is `all` (default), `any`, `all-with-x` or `any-with-x`;
/// keys starting with `x-` are ignored unless the `-with-x` variant is used; a `void` binding value
/// only requires the header to be present.
pub fn headers_match(binding_args: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let mode = binding_args.inner().get("x-match").and_then(args::as_str).unwrap_or_else(|| "all".to_owned());
    let (any, with_x) = match mode.as_str() {
        "any" => (true, false),
        "any-with-x" => (true, true),
        "all-with-x" => (false, true),
        _ => (false, false),
    };
    let empty = FieldTable::default();
    let headers = headers.unwrap_or(&empty);
    let mut considered = 0usize;
    let mut matched = 0usize;
    for (key, expected) in binding_args.inner() {
        let key = key.as_str();
        if key == "x-match" || (!with_x && key.starts_with("x-")) {
            continue;
        }
        considered += 1;
        let ok = match headers.inner().get(key) {
            None => false,
            Some(actual) => matches!(expected, AMQPValue::Void) || args::equivalent(expected, actual),
        };
        if ok {
            matched += 1;
            if any {
                return true;
            }
        } else if !any {
            return false;
        }
    }
    if any { false } else { matched == considered }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_follow_rabbitmq() {
        assert!(topic_matches("a.*.c", "a.b.c"));
        assert!(!topic_matches("a.*.c", "a.c"));
        assert!(topic_matches("a.#", "a"));
        assert!(topic_matches("a.#", "a.b.c"));
        assert!(topic_matches("#", ""));
        assert!(topic_matches("#", "a.b"));
        assert!(topic_matches("", ""));
        assert!(!topic_matches("*", ""));
        assert!(topic_matches("*", "a"));
        assert!(topic_matches("a..b", "a..b"));
        assert!(topic_matches("a.*.b", "a..b"));
        assert!(topic_matches("#.b.#", "x.y.b"));
        assert!(!topic_matches("#.b", "b.c"));
        assert!(topic_matches("*.#", "a.b"));
        assert!(!topic_matches("*.*", "a"));
    }

    #[test]
    fn headers_any_and_all() {
        let mut binding = FieldTable::default();
        binding.insert("x-match".into(), AMQPValue::LongString("any".into()));
        binding.insert("a".into(), AMQPValue::LongString("1".into()));
        binding.insert("b".into(), AMQPValue::LongString("2".into()));
        let mut headers = FieldTable::default();
        headers.insert("a".into(), AMQPValue::LongString("1".into()));
        assert!(headers_match(&binding, Some(&headers)));
        binding.insert("x-match".into(), AMQPValue::LongString("all".into()));
        assert!(!headers_match(&binding, Some(&headers)));
        headers.insert("b".into(), AMQPValue::ShortString("2".into()));
        assert!(headers_match(&binding, Some(&headers)));
    }
}
