//! The definitions JSON of `GET`/`POST /api/definitions[/{vhost}]`, in
//! RabbitMQ's shape. The same document is what the broker keeps in its data
//! directory, so an export from RabbitMQ, a file on disk and an API import all
//! travel one code path.
//!
//! Reading is lenient where RabbitMQ is (missing lists, tags as a list or a
//! comma-separated string, numbers as strings are left to the validators);
//! writing always produces the fields `rabbitmq_http_client` requires.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A whole definitions document; the vhost-scoped form leaves the cluster-wide lists empty and omits `vhost` fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Definitions {
    /// The broker version that wrote the file (RabbitMQ writes both spellings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    /// The broker version that wrote the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq_version: Option<String>,
    /// `RabbitMQ` from RabbitMQ, `warren-broker` from this broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// The product's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    /// Users with their password hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<UserDef>>,
    /// Virtual hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhosts: Option<Vec<VhostDef>>,
    /// Per-vhost permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<PermissionDef>>,
    /// Per-vhost, per-exchange topic permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_permissions: Option<Vec<TopicPermissionDef>>,
    /// Runtime parameters; operator policies travel here as component `operator_policy`.
    #[serde(default)]
    pub parameters: Vec<ParameterDef>,
    /// Cluster-wide parameters (RabbitMQ's cluster id and the like); exported for shape, ignored on import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_parameters: Option<Vec<Value>>,
    /// Policies.
    #[serde(default)]
    pub policies: Vec<PolicyDef>,
    /// Queues.
    #[serde(default)]
    pub queues: Vec<QueueDef>,
    /// Exchanges (never the default exchange nor `amq.*`).
    #[serde(default)]
    pub exchanges: Vec<ExchangeDef>,
    /// Bindings (never the default exchange's implicit ones).
    #[serde(default)]
    pub bindings: Vec<BindingDef>,
}

/// A user as definitions carry it.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserDef {
    /// User name.
    pub name: String,
    /// base64(salt ++ hash); empty for a user that cannot log in with a password.
    #[serde(default)]
    pub password_hash: String,
    /// A clear-text password, accepted on import instead of a hash; never written.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// RabbitMQ's module name of the hash function; when absent, the hash's length decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashing_algorithm: Option<String>,
    /// Tags (`administrator`, `management`, …).
    #[serde(deserialize_with = "tags", default)]
    pub tags: Vec<String>,
    /// Per-user limits; kept as given.
    #[serde(default = "empty_object")]
    pub limits: Value,
}

impl std::fmt::Debug for UserDef {
    /// Leaves out the password and its hash, so a logged document never reveals them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDef")
            .field("name", &self.name)
            .field("hashing_algorithm", &self.hashing_algorithm)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

/// A virtual host as definitions carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VhostDef {
    /// Virtual host name.
    pub name: String,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags.
    #[serde(default, deserialize_with = "optional_tags", skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// The queue type used when a declaration names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
    /// The same metadata nested, as newer RabbitMQ versions write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<VhostMetadata>,
}

/// Virtual host metadata, nested form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VhostMetadata {
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags.
    #[serde(default, deserialize_with = "optional_tags", skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Default queue type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
}

/// What a user may do in a virtual host: three regular expressions on resource names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionDef {
    /// The user.
    pub user: String,
    /// The virtual host.
    pub vhost: String,
    /// Declare and delete.
    pub configure: String,
    /// Publish to exchanges, bind to queues.
    pub write: String,
    /// Consume and bind from exchanges.
    pub read: String,
}

/// Topic permissions: routing-key patterns per topic exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicPermissionDef {
    /// The user.
    pub user: String,
    /// The virtual host.
    pub vhost: String,
    /// The topic exchange the patterns apply to.
    pub exchange: String,
    /// Routing keys the user may publish with.
    pub write: String,
    /// Routing keys the user may bind with.
    pub read: String,
}

/// A runtime parameter; only component `operator_policy` means something to this broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParameterDef {
    /// Virtual host (absent in vhost-scoped documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Which plugin the parameter belongs to.
    pub component: String,
    /// Its name.
    pub name: String,
    /// Its value; for operator policies a policy body.
    pub value: Value,
}

/// A policy: a definition applied to every matching queue or exchange of a vhost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyDef {
    /// Virtual host (absent in vhost-scoped documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Policy name.
    pub name: String,
    /// Regular expression on object names.
    pub pattern: String,
    /// `queues`, `classic_queues`, `quorum_queues`, `streams`, `exchanges` or `all`.
    #[serde(rename = "apply-to", default = "default_apply_to")]
    pub apply_to: String,
    /// Keys such as `message-ttl`, `max-length`, `dead-letter-exchange`, `expires`.
    #[serde(default)]
    pub definition: Map<String, Value>,
    /// Among matching policies the highest priority wins.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub priority: i64,
}

/// A queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueDef {
    /// Queue name.
    pub name: String,
    /// Virtual host (absent in vhost-scoped documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Survives a restart.
    #[serde(default)]
    pub durable: bool,
    /// Deleted after its last consumer goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// `x-` arguments.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// An exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeDef {
    /// Exchange name.
    pub name: String,
    /// Virtual host (absent in vhost-scoped documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// `direct`, `fanout`, `topic` or `headers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Survives a restart.
    #[serde(default)]
    pub durable: bool,
    /// Deleted after its last binding goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// Only other exchanges may publish to it.
    #[serde(default)]
    pub internal: bool,
    /// Arguments such as `alternate-exchange`.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// A binding from an exchange to a queue or to another exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BindingDef {
    /// Source exchange.
    pub source: String,
    /// Virtual host (absent in vhost-scoped documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Destination queue or exchange.
    pub destination: String,
    /// `queue` or `exchange`.
    pub destination_type: String,
    /// Routing key.
    #[serde(default)]
    pub routing_key: String,
    /// Binding arguments (headers exchanges match on them).
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

fn default_apply_to() -> String {
    "all".to_owned()
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Tags arrive as `["a","b"]` or as `"a,b"` (RabbitMQ accepts both; older exports use the string).
pub fn tags_from_value(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::String(s) => Some(s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()),
        Value::Array(items) => items.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

fn tags<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    tags_from_value(&value)
        .ok_or_else(|| serde::de::Error::custom("tags must be a list of strings or a comma-separated string"))
}

fn optional_tags<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    tags(deserializer).map(Some)
}

/// Priorities arrive as numbers or numeric strings.
fn lenient_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Number(n) => n.as_i64().ok_or_else(|| serde::de::Error::custom("priority must be an integer")),
        Value::String(s) => s.trim().parse().map_err(|_| serde::de::Error::custom("priority must be an integer")),
        Value::Null => Ok(0),
        _ => Err(serde::de::Error::custom("priority must be an integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rabbitmq_3_10_export_reads() {
        let text = r#"{"rabbit_version":"3.10.8","rabbitmq_version":"3.10.8","product_name":"RabbitMQ",
          "product_version":"3.10.8",
          "users":[{"name":"u","password_hash":"pn9nFSNvKQYLF7z2KSlEBPdL99NFW3al8M5FzMxVRwxYp1Ff",
                    "hashing_algorithm":"rabbit_password_hashing_sha256","tags":["management","foo"],"limits":{}}],
          "vhosts":[{"name":"v"},{"name":"/"}],
          "permissions":[{"user":"u","vhost":"v","configure":".*","write":"w","read":""}],
          "topic_permissions":[{"user":"u","vhost":"v","exchange":"amq.topic","write":"^a","read":".*"}],
          "parameters":[{"value":{"pattern":"^q","definition":{"max-length":100},"priority":0,"apply-to":"queues"},
                         "vhost":"v","component":"operator_policy","name":"op1"}],
          "global_parameters":[{"name":"internal_cluster_id","value":"x"}],
          "policies":[{"vhost":"v","name":"p1","pattern":"^q","apply-to":"queues",
                       "definition":{"max-length":10,"message-ttl":5000},"priority":3}],
          "queues":[{"name":"q1","vhost":"v","durable":true,"auto_delete":false,
                     "arguments":{"x-dead-letter-exchange":"dlx","x-message-ttl":1000}}],
          "exchanges":[{"name":"ex1","vhost":"v","type":"topic","durable":true,"auto_delete":false,"internal":false,
                        "arguments":{"alternate-exchange":"ae"}}],
          "bindings":[{"source":"ex1","vhost":"v","destination":"q1","destination_type":"queue","routing_key":"b",
                       "arguments":{"k":1,"x-match":"all"}}]}"#;
        let defs: Definitions = serde_json::from_str(text).expect("a RabbitMQ export parses");
        assert_eq!(defs.users.as_ref().map(|u| u[0].tags.clone()), Some(vec!["management".into(), "foo".into()]));
        assert_eq!(defs.policies[0].priority, 3);
        assert_eq!(defs.parameters[0].component, "operator_policy");
        assert_eq!(defs.bindings[0].arguments.get("k"), Some(&Value::from(1)));
    }

    #[test]
    fn tags_as_a_comma_separated_string_read_as_a_list() {
        let user: UserDef = serde_json::from_str(r#"{"name":"u","tags":"administrator, management"}"#).expect("parses");
        assert_eq!(user.tags, vec!["administrator".to_owned(), "management".to_owned()]);
        assert_eq!(user.hashing_algorithm, None, "decided by the hash when imported");
    }

    #[test]
    fn a_clear_text_password_is_never_written_back_nor_debug_printed() {
        let user: UserDef =
            serde_json::from_str(r#"{"name":"u","password":"hunter2","password_hash":"aGFzaA==","tags":[]}"#)
                .expect("parses");
        let text = serde_json::to_string(&user).expect("serialises");
        assert!(!text.contains("hunter2"), "{text}");
        let debug = format!("{user:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("aGFzaA=="), "{debug}");
    }
}
