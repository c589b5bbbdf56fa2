//! User and vhost tags, as RabbitMQ reads them: a list, or (3.9/3.10 in
//! places, and hand-written documents) one comma-separated string.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Tags as a document gives them; [`Tags::to_vec`] reads them as RabbitMQ does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Tags {
    /// `["a", "b"]`
    List(Vec<String>),
    /// `"a,b"`
    Joined(String),
}

impl Default for Tags {
    fn default() -> Self {
        Tags::List(Vec::new())
    }
}

impl Tags {
    /// Tags from a JSON value: a list of strings, a comma-separated string,
    /// or `null` for none; `None` for anything else.
    pub fn from_value(value: &Value) -> Option<Tags> {
        match value {
            Value::Null => Some(Tags::default()),
            Value::String(joined) => Some(Tags::Joined(joined.clone())),
            Value::Array(items) => {
                items.iter().map(|item| item.as_str().map(str::to_owned)).collect::<Option<_>>().map(Tags::List)
            }
            _ => None,
        }
    }

    /// The tags as RabbitMQ's `tag_list_from` reads them: each list item
    /// trimmed (a comma inside an item is part of the tag); a string split at
    /// commas, each part trimmed, empty parts dropped.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Tags::List(list) => list.iter().map(|tag| tag.trim().to_owned()).collect(),
            Tags::Joined(joined) => {
                joined.split(',').map(str::trim).filter(|tag| !tag.is_empty()).map(str::to_owned).collect()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Tags::from_value(&value)
            .ok_or_else(|| serde::de::Error::custom("tags must be a list of strings or a comma-separated string"))
    }
}

/// For a vhost's `tags` (`deserialize_with`, beside `default`): `null` is no
/// tags, as RabbitMQ's vhost import reads it, where a user's `null` is left to
/// the reader like a missing field.
pub(crate) fn null_is_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Tags>, D::Error> {
    Tags::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: Value) -> Vec<String> {
        serde_json::from_value::<Tags>(value).expect("tags").to_vec()
    }

    /// What RabbitMQ 3.10 stored for users imported with these tags
    /// (`POST /api/definitions`, then `GET /api/users/{name}`).
    #[test]
    fn tags_read_as_rabbitmq_reads_them() {
        assert_eq!(read(json!("administrator, management")), ["administrator", "management"]);
        assert_eq!(read(json!(" a, b,,c ")), ["a", "b", "c"]);
        assert_eq!(read(json!(["a,b", " c ", ""])), ["a,b", "c", ""]);
        assert_eq!(read(json!([])), Vec::<String>::new());
    }

    #[test]
    fn anything_but_strings_is_refused_with_a_clear_message() {
        let err = serde_json::from_value::<Tags>(json!([1])).expect_err("not strings");
        assert_eq!(err.to_string(), "tags must be a list of strings or a comma-separated string");
        assert!(Tags::from_value(&json!({"a": 1})).is_none());
        assert_eq!(Tags::from_value(&Value::Null), Some(Tags::List(Vec::new())));
    }
}
