//! The topology file as written: serde structs that mirror the YAML.
//!
//! Strings here are as the author typed them, `${VAR}` not yet substituted,
//! so error positions can still be found by path; the next stage (`convert`)
//! turns them into the validated model. Every struct denies
//! unknown keys: a typo must be an error, never a silently ignored setting.
//! The doc comments become the descriptions of `warren schema topology`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declare arguments, binding arguments or a policy definition: any JSON value per key.
pub type RawArguments = BTreeMap<String, serde_json::Value>;

/// A warren topology: the vhosts and users a broker should hold. Every string
/// may use `${VAR}` or `${VAR:-default}` (environment variables); `$${` is a literal `${`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a topology (a mapping with `vhosts` and/or `users`)")]
#[schemars(title = "warren topology")]
pub struct RawTopology {
    /// Virtual hosts by name, each with its exchanges, queues, bindings and policies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vhosts: BTreeMap<String, RawVhost>,
    /// Users by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, RawUser>,
}

/// Whether an entity should exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawState {
    /// Created if missing, kept if there (the default).
    #[default]
    Present,
    /// Removed if there. The only way warren deletes a vhost or a user.
    Absent,
}

impl RawState {
    fn is_present(&self) -> bool {
        *self == RawState::Present
    }
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// A virtual host. Declaring it makes warren manage its exchanges, queues,
/// bindings and policies (`--prune` removes the undeclared ones, except names
/// matching `unmanaged`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a vhost (a mapping; `{}` for an empty one)")]
pub struct RawVhost {
    /// `absent` deletes the vhost and everything in it.
    #[serde(default, skip_serializing_if = "RawState::is_present")]
    pub state: RawState,
    /// Free text shown in the management UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Vhost tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Queue type for queues declared without `x-queue-type`: `classic`, `quorum` or `stream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
    /// Exchanges by name. Names starting with `amq.` are reserved by the broker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exchanges: BTreeMap<String, RawExchange>,
    /// Queues by name. Names starting with `amq.` are reserved by the broker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queues: BTreeMap<String, RawQueue>,
    /// Bindings from an exchange to a queue or to another exchange.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<RawBinding>,
    /// Policies by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, RawPolicy>,
    /// Operator policies by name (limits that apply on top of user policies).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operator_policies: BTreeMap<String, RawPolicy>,
    /// Regular expressions of exchange, queue and policy names that this file
    /// does not manage: `--prune` leaves them alone, and bindings and
    /// dead-letter settings may refer to them without declaring them. warren
    /// matches these itself: no look-around or backreferences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<String>,
}

/// An exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "an exchange (a mapping with at least `type`)")]
pub struct RawExchange {
    /// `absent` deletes it.
    #[serde(default, skip_serializing_if = "RawState::is_present")]
    pub state: RawState,
    /// `direct`, `fanout`, `topic`, `headers`, or a plugin type starting with
    /// `x-` (e.g. `x-delayed-message`). Required unless `state: absent`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Survives a broker restart (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub durable: bool,
    /// Deleted when its last binding is removed (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_delete: bool,
    /// Clients cannot publish to it directly, only other exchanges (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    /// Declare arguments, e.g. `alternate-exchange`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: RawArguments,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a queue (a mapping; `{}` for all defaults)")]
pub struct RawQueue {
    /// `absent` deletes it (refused while it holds messages, unless `--allow-data-loss`).
    #[serde(default, skip_serializing_if = "RawState::is_present")]
    pub state: RawState,
    /// Survives a broker restart (default true; quorum queues and streams must be durable).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub durable: bool,
    /// Deleted when its last consumer goes (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_delete: bool,
    /// Declare arguments: `x-queue-type` (`classic`, `quorum`, `stream`),
    /// `x-message-ttl`, `x-expires`, `x-max-length`, `x-max-length-bytes`,
    /// `x-dead-letter-exchange`, `x-dead-letter-routing-key`, `x-delivery-limit`, …
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: RawArguments,
}

impl Default for RawQueue {
    fn default() -> Self {
        RawQueue { state: RawState::Present, durable: true, auto_delete: false, arguments: RawArguments::new() }
    }
}

/// A binding: messages published to `exchange` that match `routing_key`
/// (or, for a headers exchange, `arguments`) go to `queue` or `to_exchange`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a binding (a mapping with `exchange` and `queue` or `to_exchange`)")]
pub struct RawBinding {
    /// `absent` removes it.
    #[serde(default, skip_serializing_if = "RawState::is_present")]
    pub state: RawState,
    /// The source exchange: declared in this vhost, an `amq.*` exchange, or
    /// one matching `unmanaged`.
    pub exchange: String,
    /// The destination queue (give this or `to_exchange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The destination exchange, for an exchange-to-exchange binding (give this or `queue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_exchange: Option<String>,
    /// The binding key (default empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub routing_key: String,
    /// Binding arguments, e.g. `x-match: all` and header values for a headers exchange.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: RawArguments,
}

/// A policy or operator policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a policy (a mapping with `pattern` and `definition`)")]
pub struct RawPolicy {
    /// `absent` removes it.
    #[serde(default, skip_serializing_if = "RawState::is_present")]
    pub state: RawState,
    /// Regular expression matched against exchange and queue names, e.g.
    /// `^orders\.`. Required unless `state: absent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// `all` (default), `exchanges`, `queues`, `classic_queues`, `quorum_queues` or `streams`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_to: Option<String>,
    /// When several policies match, the highest priority wins (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i64,
    /// The settings it applies, e.g. `message-ttl: 60000`, `dead-letter-exchange: dlx`.
    #[serde(default)]
    pub definition: RawArguments,
}

/// A user. An entry with `password`, `password_hash` or `tags` defines the
/// user: warren creates it when the broker lacks it. An entry with none of
/// them (only `permissions` and `topic_permissions`) grants permissions to a
/// user that must already exist (`guest`, one created by hand or by another
/// file) and leaves its password and tags as they are; a plan fails when the
/// broker has no such user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a user (a mapping)")]
pub struct RawUser {
    /// `absent` deletes the user.
    #[serde(default, skip_serializing_if = "RawState::is_present")]
    pub state: RawState,
    /// Clear-text password, normally `${SOME_VARIABLE}`; compared against the
    /// broker's salted hash and never printed. Give this or `password_hash`, not both;
    /// leave both out to keep whatever password the user has (a new user is
    /// then created without one, and can only log in through other mechanisms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A RabbitMQ password hash (base64 of salt and digest), as in a
    /// definitions export. Give this or `password`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// The algorithm of `password_hash`: `rabbit_password_hashing_sha256`
    /// (default) or `rabbit_password_hashing_sha512`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashing_algorithm: Option<String>,
    /// Tags, e.g. `administrator`, `monitoring`, `management`. Left out, the
    /// user's tags are left as they are (a new user gets none); `[]` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Permissions by vhost; the vhost must be declared in this file (or be `/`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub permissions: BTreeMap<String, RawPermission>,
    /// Topic permissions by vhost, then by exchange.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topic_permissions: BTreeMap<String, BTreeMap<String, RawTopicPermission>>,
}

/// A user's permissions in one vhost: three regular expressions of resource names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "permissions (a mapping with `configure`, `write` and `read`)")]
pub struct RawPermission {
    /// Resources the user may declare and delete (`.*` all, `""` none).
    pub configure: String,
    /// Resources the user may publish to or bind from.
    pub write: String,
    /// Resources the user may consume from or bind to.
    pub read: String,
}

/// A user's topic permissions on one exchange: regular expressions of routing keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "topic permissions (a mapping with `write` and `read`)")]
pub struct RawTopicPermission {
    /// Routing keys the user may publish with.
    pub write: String,
    /// Routing keys the user may bind with.
    pub read: String,
}
