//! The definitions document of `GET`/`POST /api/definitions[/{vhost}]` and
//! `rabbitmqctl export_definitions`, in RabbitMQ's shape.
//!
//! One type serves every reader and writer: RabbitMQ's exports, a broker's
//! data directory, a hand-written file, an API import. Reading is lenient
//! where RabbitMQ is (missing lists, tags as a list or a comma-separated
//! string, per-vhost exports without `vhost` fields, numbers as strings are
//! left to the readers) and skips fields it does not know, because a
//! broker's responses carry more than its exports; a reader that must refuse
//! unknown fields checks the raw JSON itself. Where RabbitMQ's import has no
//! default (a queue's `durable`, an entity's `vhost`), the field is an
//! `Option` and each reader decides.
//!
//! Writing produces what RabbitMQ exports: the per-vhost lists always, the
//! cluster-wide ones (users, vhosts, permissions) when the document has them,
//! and never a clear-text password.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::tags::{self, Tags};

/// A whole definitions document; the vhost-scoped form has no cluster-wide
/// lists and no `vhost` fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Definitions {
    /// The broker version that wrote the document (RabbitMQ writes both spellings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    /// The broker version that wrote the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq_version: Option<String>,
    /// `RabbitMQ` from RabbitMQ, `warren-broker` from the embedded broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// The product's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    /// Users with their password hashes; `None` when the document has no `users` list.
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
    /// Cluster-wide parameters (the cluster's name and id, and the like).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_parameters: Option<Vec<Value>>,
    /// Policies.
    #[serde(default)]
    pub policies: Vec<PolicyDef>,
    /// Queues.
    #[serde(default)]
    pub queues: Vec<QueueDef>,
    /// Exchanges (exports leave out the default exchange and `amq.*`).
    #[serde(default)]
    pub exchanges: Vec<ExchangeDef>,
    /// Bindings (exports leave out the default exchange's implicit ones).
    #[serde(default)]
    pub bindings: Vec<BindingDef>,
}

/// A user.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserDef {
    /// User name.
    pub name: String,
    /// base64(salt ++ digest) ([`crate::password`]); empty for a user without a password.
    #[serde(default)]
    pub password_hash: String,
    /// A clear-text password, as hand-written documents give it (the importer
    /// hashes it); read, never written.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// RabbitMQ's module name of the hash function (`rabbit_password_hashing_sha256`);
    /// what its absence means is the reader's choice ([`crate::password::resolve`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashing_algorithm: Option<String>,
    /// Tags (`administrator`, `management`, …); exports always give them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// Per-user limits, as exports write them (`{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Value>,
}

impl std::fmt::Debug for UserDef {
    /// Leaves out the password and its hash, so a logged document reveals neither.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDef")
            .field("name", &self.name)
            .field("hashing_algorithm", &self.hashing_algorithm)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

/// A virtual host. RabbitMQ 3.10 exports only the name; `GET /api/vhosts`
/// adds the rest at the top level, 3.11+ and `rabbitmqctl` nest it in `metadata`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VhostDef {
    /// Virtual host name.
    pub name: String,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags; `null` is none.
    #[serde(default, deserialize_with = "tags::null_is_empty", skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// The queue type of declarations that name none; RabbitMQ writes `undefined` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
    /// The same metadata nested, as newer RabbitMQ versions write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<VhostMetadata>,
}

impl VhostDef {
    /// The description, from the top level or else from `metadata`.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref().or_else(|| self.metadata.as_ref()?.description.as_deref())
    }

    /// The tags, from the top level or else from `metadata`.
    pub fn tags(&self) -> Option<&Tags> {
        self.tags.as_ref().or_else(|| self.metadata.as_ref()?.tags.as_ref())
    }

    /// The default queue type, from the top level or else from `metadata`;
    /// RabbitMQ's `undefined` is none.
    pub fn default_queue_type(&self) -> Option<&str> {
        self.default_queue_type
            .as_deref()
            .or_else(|| self.metadata.as_ref()?.default_queue_type.as_deref())
            .filter(|kind| *kind != "undefined")
    }
}

/// Virtual host metadata, nested form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VhostMetadata {
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags; `null` is none.
    #[serde(default, deserialize_with = "tags::null_is_empty", skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// Default queue type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
}

/// What a user may do in a virtual host: three regular expressions on resource names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionDef {
    /// The user.
    pub user: String,
    /// The virtual host (RabbitMQ always writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Declare and delete.
    pub configure: String,
    /// Publish to exchanges, bind to queues.
    pub write: String,
    /// Consume and bind from exchanges.
    pub read: String,
}

/// Topic permissions: routing-key patterns on one topic exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicPermissionDef {
    /// The user.
    pub user: String,
    /// The virtual host (RabbitMQ always writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// The topic exchange the patterns apply to.
    pub exchange: String,
    /// Routing keys the user may publish with.
    pub write: String,
    /// Routing keys the user may bind with.
    pub read: String,
}

/// A runtime parameter; operator policies are component `operator_policy`
/// with a [`PolicyBody`] as their value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParameterDef {
    /// Virtual host (absent in vhost-scoped documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Which plugin the parameter belongs to.
    pub component: String,
    /// Its name.
    pub name: String,
    /// Its value, component-specific.
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
    /// `all`, `queues`, `classic_queues`, `quorum_queues`, `streams` or `exchanges`.
    #[serde(rename = "apply-to", default = "default_apply_to")]
    pub apply_to: String,
    /// Keys such as `message-ttl`, `max-length`, `dead-letter-exchange`.
    #[serde(default)]
    pub definition: Map<String, Value>,
    /// Among matching policies the highest priority wins; a number or a
    /// numeric string ([`parse_priority`]).
    #[serde(default)]
    pub priority: Value,
}

impl PolicyDef {
    /// What the policy sets, without its vhost and name.
    pub fn body(&self) -> PolicyBody {
        PolicyBody {
            pattern: self.pattern.clone(),
            definition: self.definition.clone(),
            priority: self.priority.clone(),
            apply_to: self.apply_to.clone(),
        }
    }
}

/// A policy without its vhost and name: the `value` of an operator policy
/// parameter, and the body of `PUT /api/policies/{vhost}/{name}`. Fields in
/// the order RabbitMQ exports them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyBody {
    /// Regular expression on object names.
    pub pattern: String,
    /// The keys the policy sets.
    #[serde(default)]
    pub definition: Map<String, Value>,
    /// Priority, as in [`PolicyDef::priority`].
    #[serde(default)]
    pub priority: Value,
    /// What the policy applies to, as in [`PolicyDef::apply_to`].
    #[serde(rename = "apply-to", default = "default_apply_to")]
    pub apply_to: String,
}

impl PolicyBody {
    /// The body as a JSON object, in RabbitMQ's field order: an operator
    /// policy's `value`, or a `PUT /api/policies` body.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("pattern".to_owned(), Value::String(self.pattern.clone()));
        map.insert("definition".to_owned(), Value::Object(self.definition.clone()));
        map.insert("priority".to_owned(), self.priority.clone());
        map.insert("apply-to".to_owned(), Value::String(self.apply_to.clone()));
        map
    }
}

/// A policy priority as RabbitMQ reads it: an integer, a numeric string, or
/// nothing (0); `None` for anything else.
pub fn parse_priority(value: &Value) -> Option<i64> {
    match value {
        Value::Null => Some(0),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueDef {
    /// Queue name.
    pub name: String,
    /// Virtual host (absent in vhost-scoped documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Survives a restart. RabbitMQ's import has no default for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable: Option<bool>,
    /// Deleted after its last consumer goes.
    #[serde(default)]
    pub auto_delete: bool,
    /// `x-` arguments.
    #[serde(default)]
    pub arguments: Map<String, Value>,
    /// The queue's type, as `rabbitmqctl export_definitions` writes it beside the arguments.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// An exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExchangeDef {
    /// Exchange name.
    pub name: String,
    /// Virtual host (absent in vhost-scoped documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// `direct`, `fanout`, `topic`, `headers` or a plugin's `x-` type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Survives a restart. RabbitMQ's import has no default for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable: Option<bool>,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Trimmed from `GET /api/definitions` of RabbitMQ 3.10.8.
    const RABBITMQ_3_10: &str = r#"{"rabbit_version":"3.10.8","rabbitmq_version":"3.10.8","product_name":"RabbitMQ",
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

    #[test]
    fn a_rabbitmq_3_10_export_reads_and_writes_back_the_same() {
        let defs: Definitions = serde_json::from_str(RABBITMQ_3_10).expect("a RabbitMQ export parses");
        let users = defs.users.as_deref().expect("users");
        assert_eq!(users[0].tags.as_ref().map(Tags::to_vec), Some(vec!["management".into(), "foo".into()]));
        assert_eq!(parse_priority(&defs.policies[0].priority), Some(3));
        assert_eq!(defs.parameters[0].component, "operator_policy");
        assert_eq!(defs.bindings[0].arguments.get("k"), Some(&Value::from(1)));
        assert_eq!(defs.queues[0].durable, Some(true));
        let written = serde_json::to_value(&defs).expect("serialises");
        let read: Value = serde_json::from_str(RABBITMQ_3_10).expect("JSON");
        assert_eq!(written, read, "nothing of a RabbitMQ export is lost or added");
    }

    #[test]
    fn a_vhost_scoped_document_has_no_vhosts_and_writes_every_per_vhost_list() {
        let defs: Definitions =
            serde_json::from_str(r#"{"queues":[{"name":"q","durable":true,"auto_delete":false,"arguments":{}}]}"#)
                .expect("parses");
        assert_eq!(defs.queues[0].vhost, None);
        assert!(defs.users.is_none() && defs.permissions.is_none());
        let written = serde_json::to_value(&defs).expect("serialises");
        assert_eq!(
            written,
            json!({"parameters": [], "policies": [], "exchanges": [], "bindings": [],
                   "queues": [{"name": "q", "durable": true, "auto_delete": false, "arguments": {}}]})
        );
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

    #[test]
    fn vhost_metadata_is_read_from_either_place() {
        let nested: VhostDef = serde_json::from_str(
            r#"{"name":"v","metadata":{"description":"d","tags":"a,b","default_queue_type":"quorum"}}"#,
        )
        .expect("parses");
        assert_eq!(nested.description(), Some("d"));
        assert_eq!(nested.tags().map(Tags::to_vec), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(nested.default_queue_type(), Some("quorum"));
        let top: VhostDef = serde_json::from_str(
            r#"{"name":"v","description":"top","default_queue_type":"undefined","metadata":{"description":"d"}}"#,
        )
        .expect("parses");
        assert_eq!(top.description(), Some("top"), "the top level wins");
        assert_eq!(top.default_queue_type(), None, "RabbitMQ's `undefined` is none");
    }

    #[test]
    fn null_tags_are_none_for_a_vhost_and_left_to_the_reader_for_a_user() {
        let vhost: VhostDef = serde_json::from_str(r#"{"name":"v","tags":null}"#).expect("parses");
        assert_eq!(vhost.tags, Some(Tags::List(Vec::new())), "RabbitMQ 3.10 creates such a vhost without tags");
        let user: UserDef = serde_json::from_str(r#"{"name":"u","tags":null}"#).expect("parses");
        assert_eq!(user.tags, None);
    }

    #[test]
    fn priorities_are_integers_numeric_strings_or_nothing() {
        assert_eq!(parse_priority(&json!(3)), Some(3));
        assert_eq!(parse_priority(&json!(" -2 ")), Some(-2));
        assert_eq!(parse_priority(&Value::Null), Some(0));
        assert_eq!(parse_priority(&json!(1.5)), None);
        assert_eq!(parse_priority(&json!("high")), None);
        assert_eq!(parse_priority(&json!([1])), None);
    }

    #[test]
    fn an_operator_policy_value_is_a_policy_body() {
        let defs: Definitions = serde_json::from_str(RABBITMQ_3_10).expect("parses");
        let body: PolicyBody = serde_json::from_value(defs.parameters[0].value.clone()).expect("a policy body");
        assert_eq!((body.pattern.as_str(), body.apply_to.as_str()), ("^q", "queues"));
        assert_eq!(serde_json::to_value(&body).expect("serialises"), defs.parameters[0].value);
        assert_eq!(Value::Object(body.to_map()), defs.parameters[0].value);
        assert_eq!(defs.policies[0].body().definition["message-ttl"], json!(5000));
    }
}
