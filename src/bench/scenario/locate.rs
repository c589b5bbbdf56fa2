//! Finds the line and column of a node in a YAML document, given its path.
//!
//! serde_yaml 0.9 exposes positions only on the errors it raises while
//! deserialising, so the locator deserialises the document with a seed that
//! walks down the path and raises an error on purpose at the target node:
//! the error carries that node's position. Used for errors found after
//! parsing (cross-field and cross-file checks) so they name a line and
//! column like parse errors do.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl From<&str> for Segment {
    fn from(key: &str) -> Self {
        Segment::Key(key.to_owned())
    }
}

impl From<usize> for Segment {
    fn from(index: usize) -> Self {
        Segment::Index(index)
    }
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

const MARKER: &str = "warren-locate-target";

/// The position of the node at `path`, or of its deepest existing ancestor
/// when the path ends early; `None` when the document does not parse.
pub fn locate(text: &str, path: &[Segment]) -> Option<Position> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let error = match (Seek { path }).deserialize(deserializer) {
        Ok(()) => return None,
        Err(error) => error,
    };
    let location = error.location()?;
    error.to_string().contains(MARKER).then_some(Position { line: location.line(), column: location.column() })
}

struct Seek<'p> {
    path: &'p [Segment],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(wanted), rest)) = self.path.split_first() else { return Err(de::Error::custom(MARKER)) };
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            if key.as_str() == Some(wanted.as_str()) {
                return map.next_value_seed(Seek { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(MARKER))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(wanted), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(MARKER));
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(MARKER));
            }
        }
        match seq.next_element_seed(Seek { path: rest })? {
            Some(()) => Ok(()),
            None => Err(de::Error::custom(MARKER)),
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(MARKER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: x\nproducers:\n  - name: a\n    rate: 5\n  - name: b\n    message:\n      size: 8\n";

    #[test]
    fn finds_nested_scalars_and_items() {
        let at = |path: &[Segment]| locate(DOC, path);
        assert_eq!(at(&["name".into()]), Some(Position { line: 1, column: 7 }));
        assert_eq!(at(&["producers".into(), 0.into(), "rate".into()]), Some(Position { line: 4, column: 11 }));
        assert_eq!(
            at(&["producers".into(), 1.into(), "message".into(), "size".into()]),
            Some(Position { line: 7, column: 13 })
        );
    }

    #[test]
    fn missing_key_points_at_the_parent() {
        let at = locate(DOC, &["producers".into(), 1.into(), "rate".into()]);
        assert_eq!(at.map(|p| p.line), Some(5), "{at:?}");
    }
}
