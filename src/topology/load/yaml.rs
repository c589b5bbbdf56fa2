//! The one module that parses and writes YAML.
//!
//! Two parsers, each for what it does well: `serde_yaml` deserializes into
//! the raw structs and positions its own errors (syntax, unknown keys, wrong
//! types); `yaml-rust2`'s event parser, which reports a position for every
//! node, builds the [`SourceMap`] that positions everything checked later
//! and finds duplicate keys, which serde merges without a word. Replacing
//! `serde_yaml` (archived upstream) means changing this file only.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::diagnostic::{Diagnostics, LoadError, Pos, did_you_mean};
use super::source::{Entry, Locator, NodePath, Seg, SourceMap, describe};

/// Deserializes `text`, turning a serde error into a diagnostic that names
/// the entity, its position, and the closest valid key or value.
pub fn from_str<T: DeserializeOwned>(text: &str, locator: &Locator) -> Result<T, LoadError> {
    serde_yaml::from_str(text).map_err(|error| {
        let mut diagnostics = Diagnostics::new(locator.file());
        let (pos, message) = explain(&error, text, locator);
        diagnostics.push(pos, message);
        diagnostics.into_error()
    })
}

/// Deserializes an already-parsed YAML value (e.g. a scenario's inline
/// topology). serde_yaml keeps no positions in a `Value`, so the message
/// names the entity but not the line.
pub fn from_value<T: DeserializeOwned>(value: serde_yaml::Value, locator: &Locator) -> Result<T, LoadError> {
    serde_yaml::from_value(value).map_err(|error| {
        let mut diagnostics = Diagnostics::new(locator.file());
        let (mut pos, mut message) = explain(&error, "", locator);
        // A `Value` has no positions, but an unknown key is usually unique
        // in the file: find it by name.
        let unknown = BACKTICKED.captures(&message).filter(|_| message.starts_with("unknown field "));
        if let Some(name) = unknown.and_then(|c| c.get(1)).map(|m| m.as_str().to_owned())
            && let [path] = locator.keys_named(&name).as_slice()
        {
            pos = locator.key(path);
            message = unknown_field(path, message.trim_start_matches("unknown field "));
        }
        diagnostics.push(pos, message);
        diagnostics.into_error()
    })
}

/// `text` parsed as YAML into a JSON value, or `None` when it does not parse.
pub fn to_json_value(text: &str) -> Option<serde_json::Value> {
    serde_yaml::from_str(text).ok()
}

/// Writes `value` as YAML.
pub fn to_string<T: Serialize>(value: &T) -> String {
    // Only warren's own raw structs come here: string-keyed maps, strings,
    // booleans, integers and JSON values, all of which YAML can represent.
    serde_yaml::to_string(value).expect("a topology always serializes to YAML")
}

/// Positions for the document `text` of `file`. A text that does not parse
/// yields no positions rather than an error: the deserializer has already
/// reported syntax errors with their own positions.
pub fn locator(file: impl Into<String>, text: &str) -> Locator {
    Locator::with_map(file, text, source_map(text).unwrap_or_default())
}

/// The position of every node of `text`, or the first syntax error.
pub fn source_map(text: &str) -> Result<SourceMap, (Pos, String)> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|error| (pos(*error.marker()), error.info().to_owned()))?;
    Ok(builder.map)
}

fn pos(mark: Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos { line: mark.line(), column: mark.col() + 1 }
}

#[derive(Default)]
struct Builder {
    map: SourceMap,
    stack: Vec<Frame>,
}

enum Frame {
    Map { path: NodePath, pending_key: Option<(String, Pos)>, keys: std::collections::HashMap<String, Pos> },
    Seq { path: NodePath, next: usize },
}

impl Builder {
    /// Records a node and returns its path.
    fn node(&mut self, at: Pos, scalar: Option<&str>, container: bool) -> NodePath {
        let Some(frame) = self.stack.last_mut() else {
            self.record(NodePath::root(), Entry { key: None, value: at, container });
            return NodePath::root();
        };
        match frame {
            Frame::Map { path, pending_key, keys } => match pending_key.take() {
                None => {
                    let key = scalar.unwrap_or("<complex key>").to_owned();
                    let first_child = keys.is_empty();
                    let parent = path.clone();
                    let key_path = parent.key(&key);
                    match keys.get(&key) {
                        Some(first) => self.map.duplicates.push(super::source::Duplicate {
                            path: key_path.clone(),
                            first: *first,
                            again: at,
                        }),
                        None => {
                            keys.insert(key.clone(), at);
                        }
                    }
                    *pending_key = Some((key, at));
                    if first_child {
                        self.starts_at(&parent, at);
                    }
                    key_path
                }
                Some((key, key_at)) => {
                    let node = path.key(&key);
                    self.record(node.clone(), Entry { key: Some(key_at), value: at, container });
                    node
                }
            },
            Frame::Seq { path, next } => {
                let node = path.index(*next);
                let first_child = *next == 0;
                let parent = path.clone();
                *next += 1;
                if first_child {
                    self.starts_at(&parent, at);
                }
                self.record(node.clone(), Entry { key: None, value: at, container });
                node
            }
        }
    }

    /// A block mapping's or sequence's start mark lies after its first
    /// child; its first child is where a reader sees it begin.
    fn starts_at(&mut self, container: &NodePath, child: Pos) {
        if let Some(entry) = self.map.entries.get_mut(container)
            && child < entry.value
        {
            entry.value = child;
        }
    }

    fn record(&mut self, path: NodePath, entry: Entry) {
        // With a duplicate key the first occurrence keeps its positions; the
        // duplicate itself is reported separately.
        self.map.entries.entry(path).or_insert(entry);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let at = pos(mark);
        match event {
            Event::Scalar(value, ..) => {
                self.node(at, Some(&value), false);
            }
            Event::Alias(_) => {
                self.node(at, None, false);
            }
            Event::MappingStart(..) => {
                let path = self.node(at, None, true);
                self.stack.push(Frame::Map { path, pending_key: None, keys: Default::default() });
            }
            Event::SequenceStart(..) => {
                let path = self.node(at, None, true);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

/// Where serde's own message starts, after the path prefix serde_yaml puts in front.
static MESSAGE_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(unknown field|missing field|duplicate field|invalid type|invalid value|invalid length|unknown variant|EOF while|recursion limit|repetition limit|unknown anchor|expected a mapping|expected a sequence|failed to parse|empty YAML tag)",
    )
    .expect("a valid regex")
});

/// `did not find expected key at line 3 column 5, while parsing a block mapping at line 1 column 1`
static SYNTAX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<problem>.*?)(?: at (?:line \d+ column \d+|position \d+))?(?:, (?P<context>.*?)(?: at line (?P<line>\d+) column (?P<column>\d+))?)?$",
    )
    .expect("a valid regex")
});

static BACKTICKED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`([^`]*)`").expect("a valid regex"));

/// Turns a serde_yaml error into a position and a message a RabbitMQ user
/// understands without knowing warren's internals.
fn explain(error: &serde_yaml::Error, source: &str, locator: &Locator) -> (Option<Pos>, String) {
    let text = error.to_string();
    let pos = error.location().map(|l| Pos { line: l.line(), column: l.column() });
    let Some(start) = MESSAGE_START.find(&text).map(|m| m.start()) else {
        let mut message = syntax_message(&text);
        if pos.is_some_and(|pos| char_at(source, pos) == Some('\t')) {
            message.push_str("; YAML does not allow tabs for indentation, use spaces");
        } else if pos.and_then(|pos| source.lines().nth(pos.line.saturating_sub(1))).is_some_and(|l| l.contains("${")) {
            // `{` and `}` delimit flow mappings, so an unquoted reference there breaks the line.
            message.push_str("; inside `{ }` or `[ ]`, quote a `${VAR}` reference: \"${VAR}\"");
        }
        return (pos, message);
    };
    let mut message = text[start..].to_owned();
    if let Some(Pos { line, column }) = pos {
        let suffix = format!(" at line {line} column {column}");
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    message = message
        .replace("unit value", "an empty value")
        .replace("unknown variant", "unknown value")
        .replace("expected a map", "expected a mapping (name: settings)");
    let missing = message.starts_with("missing field");
    let path = pos.and_then(|pos| locator.path_at(pos, missing));
    let Some(path) = path else {
        return (pos, message);
    };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return (pos, unknown_field(&path, rest));
    }
    if message.starts_with("duplicate field") {
        // serde points at the mapping; the source map knows both occurrences.
        let field = BACKTICKED.captures(&message).and_then(|c| c.get(1)).map_or("", |m| m.as_str());
        let duplicate = locator.duplicates().into_iter().find(|dup| {
            dup.path
                .0
                .split_last()
                .is_some_and(|(last, parent)| *last == Seg::Key(field.to_owned()) && path.0.starts_with(parent))
        });
        if let Some(dup) = duplicate {
            let Pos { line, column } = dup.first;
            return (
                Some(dup.again),
                format!(
                    "{} is given twice (first at line {line}, column {column}); YAML keeps only the last one",
                    describe(&dup.path)
                ),
            );
        }
        return (pos, format!("{} is given twice; YAML keeps only the last one", describe(&path)));
    }
    let hint = if message.starts_with("unknown value") { value_hint(&message) } else { String::new() };
    if missing {
        return (pos, format!("{} is {}{hint}", describe(&path), message.replacen("missing field", "missing", 1)));
    }
    if path.0.is_empty() {
        return (pos, format!("{message}{hint}"));
    }
    (pos, format!("{}: {message}{hint}", describe(&path)))
}

/// `unknown field `durabel` in queue `orders`, expected one of … (did you mean `durable`?)`
fn unknown_field(path: &NodePath, rest: &str) -> String {
    // The path ends at the unknown key itself; the entity is its parent.
    let mut parent = path.clone();
    let field = match parent.0.pop() {
        Some(Seg::Key(key)) => key,
        _ => String::new(),
    };
    let (_, expected) = rest.split_once(", ").unwrap_or((rest, ""));
    let candidates: Vec<&str> =
        BACKTICKED.captures_iter(expected).filter_map(|c| c.get(1)).map(|m| m.as_str()).collect();
    let hint = did_you_mean(&field, candidates.iter().copied());
    let context = if parent.0.is_empty() { "at the top level".to_owned() } else { format!("in {}", describe(&parent)) };
    let expected = if expected.is_empty() { String::new() } else { format!(", {expected}") };
    format!("unknown field `{field}` {context}{expected}{hint}")
}

/// ` (did you mean `absent`?)` for `unknown value `absnt`, expected `present` or `absent``.
fn value_hint(message: &str) -> String {
    let mut quoted = BACKTICKED.captures_iter(message).filter_map(|c| c.get(1)).map(|m| m.as_str());
    match quoted.next() {
        Some(given) => did_you_mean(given, quoted),
        None => String::new(),
    }
}

/// The character at a 1-based line and column.
fn char_at(source: &str, pos: Pos) -> Option<char> {
    source.lines().nth(pos.line.checked_sub(1)?)?.chars().nth(pos.column.checked_sub(1)?)
}

fn syntax_message(text: &str) -> String {
    if text.contains("more than one document") {
        return "a topology file holds one YAML document, but this one has several (separated by `---`)".to_owned();
    }
    let Some(caps) = SYNTAX.captures(text) else {
        return format!("YAML syntax error: {text}");
    };
    let problem = caps.name("problem").map_or(text, |m| m.as_str());
    match (caps.name("context"), caps.name("line"), caps.name("column")) {
        (Some(context), Some(line), Some(column)) => format!(
            "YAML syntax error: {problem} ({} that starts at line {}, column {})",
            context.as_str(),
            line.as_str(),
            column.as_str()
        ),
        (Some(context), _, _) => format!("YAML syntax error: {problem} ({})", context.as_str()),
        _ => format!("YAML syntax error: {problem}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_values_and_sequence_items_to_positions() {
        let text = "vhosts:\n  /:\n    queues:\n      q1: { durable: true }\n    bindings:\n      - exchange: e\n        queue: q1\n";
        let map = source_map(text).expect("parses");
        let q1 = NodePath::root().key("vhosts").key("/").key("queues").key("q1");
        let entry = map.get(&q1).expect("q1 is mapped");
        assert_eq!(entry.key, Some(Pos { line: 4, column: 7 }));
        assert_eq!(entry.value, Pos { line: 4, column: 11 });
        let binding = NodePath::root().key("vhosts").key("/").key("bindings").index(0);
        assert_eq!(map.get(&binding).map(|e| e.value), Some(Pos { line: 6, column: 9 }));
        assert_eq!(map.get(&binding.key("queue")).and_then(|e| e.key), Some(Pos { line: 7, column: 9 }));
    }

    #[test]
    fn finds_duplicate_keys() {
        let map = source_map("queues:\n  a: {}\n  b: {}\n  a: {}\n").expect("parses");
        let dup = &map.duplicates()[0];
        assert_eq!(dup.path, NodePath::root().key("queues").key("a"));
        assert_eq!((dup.first, dup.again), (Pos { line: 2, column: 3 }, Pos { line: 4, column: 3 }));
    }

    #[test]
    fn several_documents_are_named_as_the_problem() {
        let error = from_str::<crate::topology::load::raw::RawTopology>(
            "vhosts: {}\n---\nusers: {}\n",
            &Locator::without_positions("t.yaml"),
        )
        .expect_err("two documents");
        assert_eq!(
            error.to_string(),
            "t.yaml: a topology file holds one YAML document, but this one has several (separated by `---`)"
        );
    }

    #[test]
    fn rephrases_syntax_errors() {
        assert_eq!(
            syntax_message(
                "did not find expected key at line 3 column 5, while parsing a block mapping at line 1 column 1"
            ),
            "YAML syntax error: did not find expected key (while parsing a block mapping that starts at line 1, column 1)"
        );
    }
}
