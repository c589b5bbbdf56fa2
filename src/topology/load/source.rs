//! Where each node of a topology file is: paths such as
//! `vhosts / bindings [2] exchange` mapped to line and column, so checks that
//! run after deserialization still point at the right place.
//!
//! serde gives positions only for the errors it raises itself; this map,
//! built by a second, position-keeping parse (in `yaml.rs`),
//! gives them for everything else, including duplicate keys, which serde
//! silently merges.

use std::collections::HashMap;
use std::fmt;

use super::diagnostic::Pos;

/// One step of a path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key, as written in the file (before `${VAR}` substitution).
    Key(String),
    /// A sequence index, from 0.
    Index(usize),
}

/// A path from the document root to a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NodePath(pub Vec<Seg>);

impl NodePath {
    /// The document root.
    pub fn root() -> NodePath {
        NodePath(Vec::new())
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> NodePath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        NodePath(segs)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> NodePath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        NodePath(segs)
    }

    /// The path with `${VAR}` substituted in its keys, for messages that
    /// name entities as the broker will see them (a key whose variable is
    /// unset stays as written).
    pub fn resolved(&self, env: &dyn super::env::Env) -> NodePath {
        NodePath(
            self.0
                .iter()
                .map(|seg| match seg {
                    Seg::Key(key) => Seg::Key(super::env::substitute(key, env).unwrap_or_else(|_| key.clone())),
                    index => index.clone(),
                })
                .collect(),
        )
    }

    /// The path with `prefix` in front.
    fn under(&self, prefix: &NodePath) -> NodePath {
        let mut segs = prefix.0.clone();
        segs.extend(self.0.iter().cloned());
        NodePath(segs)
    }

    /// The path relative to `prefix`, when it lies under it.
    fn strip(&self, prefix: &NodePath) -> Option<NodePath> {
        self.0.starts_with(&prefix.0).then(|| NodePath(self.0[prefix.0.len()..].to_vec()))
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => write!(f, "{key}")?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where one node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The position of its key, for a mapping value.
    pub key: Option<Pos>,
    /// The position of the value itself.
    pub value: Pos,
    /// Whether the value is a mapping or a sequence.
    pub container: bool,
}

/// A key that occurs twice in one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The path of the key (shared by both occurrences).
    pub path: NodePath,
    /// Where it first occurs.
    pub first: Pos,
    /// Where it occurs again.
    pub again: Pos,
}

/// Positions of every node of one document.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    pub(super) entries: HashMap<NodePath, Entry>,
    pub(super) duplicates: Vec<Duplicate>,
}

impl SourceMap {
    /// The entry at `path`.
    pub fn get(&self, path: &NodePath) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Keys that occur twice in one mapping, in file order.
    pub fn duplicates(&self) -> &[Duplicate] {
        &self.duplicates
    }

    /// The path of the node at `pos`: the deepest one, or with `shallowest`
    /// the outermost (a mapping starts where its first key does).
    pub fn path_at(&self, pos: Pos, shallowest: bool) -> Option<NodePath> {
        let candidates =
            self.entries.iter().filter(|(_, entry)| entry.key == Some(pos) || entry.value == pos).map(|(path, _)| path);
        if shallowest {
            candidates.min_by_key(|path| path.0.len()).cloned()
        } else {
            candidates.max_by_key(|path| path.0.len()).cloned()
        }
    }
}

/// Finds positions for a topology inside one file: the whole document, or a
/// mapping nested in it (a scenario's inline `topology:`).
#[derive(Debug, Clone)]
pub struct Locator {
    file: String,
    map: SourceMap,
    prefix: NodePath,
    /// The document, to find positions inside a scalar.
    text: std::sync::Arc<str>,
}

impl Locator {
    /// Positions for the document `text` of `file`, found in `map` (made by
    /// [`super::yaml::locator`], which builds the map from the text).
    pub fn with_map(file: impl Into<String>, text: &str, map: SourceMap) -> Locator {
        Locator { file: file.into(), map, prefix: NodePath::root(), text: text.into() }
    }

    /// A locator that knows the file but no positions (e.g. for a topology
    /// built in memory); diagnostics then name the file only.
    pub fn without_positions(file: impl Into<String>) -> Locator {
        Locator { file: file.into(), map: SourceMap::default(), prefix: NodePath::root(), text: "".into() }
    }

    /// The same file, with paths taken relative to the node at `prefix`
    /// (e.g. `NodePath::root().key("topology")` for a scenario's inline topology).
    pub fn within(&self, prefix: NodePath) -> Locator {
        Locator {
            file: self.file.clone(),
            map: self.map.clone(),
            prefix: prefix.under(&self.prefix),
            text: self.text.clone(),
        }
    }

    /// The file name used in diagnostics.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The position of the key of the node at `path` (or of the node itself
    /// when it has no key, like a sequence item).
    pub fn key(&self, path: &NodePath) -> Option<Pos> {
        self.map.get(&path.under(&self.prefix)).map(|entry| entry.key.unwrap_or(entry.value))
    }

    /// The position of the value at `path`.
    pub fn value(&self, path: &NodePath) -> Option<Pos> {
        self.map.get(&path.under(&self.prefix)).map(|entry| entry.value)
    }

    /// Duplicate keys under this locator's prefix, with paths relative to it.
    pub fn duplicates(&self) -> Vec<Duplicate> {
        self.map
            .duplicates()
            .iter()
            .filter_map(|dup| Some(Duplicate { path: dup.path.strip(&self.prefix)?, ..dup.clone() }))
            .collect()
    }

    /// The position of byte `offset` of the scalar `value` that starts at
    /// `start`, when the file spells it out on one line (plain or quoted,
    /// without escapes before `offset`); otherwise `start` itself.
    pub fn inside_scalar(&self, start: Pos, value: &str, offset: usize) -> Pos {
        let Some(before) = value.get(..offset) else { return start };
        let Some(line) = self.text.lines().nth(start.line.saturating_sub(1)) else { return start };
        let Some(from) = line.char_indices().nth(start.column.saturating_sub(1)).map(|(i, _)| i) else {
            return start;
        };
        let rest = &line[from..];
        let quote = usize::from(rest.starts_with('"') || rest.starts_with('\''));
        if rest[quote..].starts_with(before) {
            Pos { line: start.line, column: start.column + quote + before.chars().count() }
        } else {
            start
        }
    }

    /// Paths (relative to this locator's prefix) of every mapping key named `key`.
    pub fn keys_named(&self, key: &str) -> Vec<NodePath> {
        self.map
            .entries
            .keys()
            .filter(|path| matches!(path.0.last(), Some(Seg::Key(k)) if k == key))
            .filter_map(|path| path.strip(&self.prefix))
            .collect()
    }

    /// The path (relative to this locator's prefix) of the node at `pos`.
    pub fn path_at(&self, pos: Pos, shallowest: bool) -> Option<NodePath> {
        self.map.path_at(pos, shallowest)?.strip(&self.prefix)
    }
}

/// Names the entity a path points into, for messages: `queue `orders``,
/// `` `durable` of queue `orders` ``, `binding #3 of vhost `/``.
pub fn describe(path: &NodePath) -> String {
    let (entity, rest) = entity(path);
    let field = rest
        .iter()
        .map(|seg| match seg {
            Seg::Key(key) => key.clone(),
            Seg::Index(index) => format!("#{}", index + 1),
        })
        .collect::<Vec<_>>();
    match (entity, field.as_slice()) {
        (None, []) => "the top level".to_owned(),
        (None, _) => format!("`{}`", field.join(".")),
        (Some(entity), []) => entity,
        (Some(entity), [section, key]) if section == "arguments" => format!("argument `{key}` of {entity}"),
        (Some(entity), [section, key]) if section == "definition" => format!("`{key}` in the definition of {entity}"),
        (Some(entity), [section, item]) if item.starts_with('#') => format!("`{section}` item {item} of {entity}"),
        (Some(entity), _) => format!("`{}` of {entity}", field.join(".")),
    }
}

/// The entity a path points into, and the rest of the path below it.
pub fn entity(path: &NodePath) -> (Option<String>, &[Seg]) {
    use Seg::{Index, Key};
    let in_vhost = |vhost: &str| if vhost == "/" { String::new() } else { format!(" in vhost `{vhost}`") };
    match path.0.as_slice() {
        [Key(top), Key(v), Key(kind), Key(name), rest @ ..] if top == "vhosts" => {
            let what = match kind.as_str() {
                "exchanges" => "exchange",
                "queues" => "queue",
                "policies" => "policy",
                "operator_policies" => "operator policy",
                _ => return (Some(format!("vhost `{v}`")), &path.0[2..]),
            };
            (Some(format!("{what} `{name}`{}", in_vhost(v))), rest)
        }
        [Key(top), Key(v), Key(kind), Index(i), rest @ ..] if top == "vhosts" => match kind.as_str() {
            "bindings" => (Some(format!("binding #{} of vhost `{v}`", i + 1)), rest),
            "unmanaged" => (Some(format!("`unmanaged` pattern #{} of vhost `{v}`", i + 1)), rest),
            _ => (Some(format!("vhost `{v}`")), &path.0[2..]),
        },
        [Key(top), Key(v), rest @ ..] if top == "vhosts" => (Some(format!("vhost `{v}`")), rest),
        [Key(top), Key(u), Key(kind), Key(v), Key(x), rest @ ..] if top == "users" && kind == "topic_permissions" => {
            (Some(format!("topic permissions of user `{u}` on exchange `{x}`{}", in_vhost(v))), rest)
        }
        [Key(top), Key(u), Key(kind), Key(v), rest @ ..] if top == "users" && kind == "permissions" => {
            (Some(format!("permissions of user `{u}` on vhost `{v}`")), rest)
        }
        [Key(top), Key(u), rest @ ..] if top == "users" => (Some(format!("user `{u}`")), rest),
        _ => (None, &path.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> NodePath {
        NodePath(
            text.split('|')
                .map(|s| match s.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key(s.to_owned()),
                })
                .collect(),
        )
    }

    #[test]
    fn describes_entities_and_their_fields() {
        assert_eq!(describe(&path("vhosts|/|queues|orders")), "queue `orders`");
        assert_eq!(describe(&path("vhosts|prod|queues|orders|durable")), "`durable` of queue `orders` in vhost `prod`");
        assert_eq!(
            describe(&path("vhosts|/|queues|orders|arguments|x-message-ttl")),
            "argument `x-message-ttl` of queue `orders`"
        );
        assert_eq!(describe(&path("vhosts|/|bindings|2|exchange")), "`exchange` of binding #3 of vhost `/`");
        assert_eq!(
            describe(&path("users|jack|permissions|/|read")),
            "`read` of permissions of user `jack` on vhost `/`"
        );
        assert_eq!(describe(&path("vhosts|/")), "vhost `/`");
        assert_eq!(describe(&NodePath::root()), "the top level");
    }
}
