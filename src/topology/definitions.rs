//! RabbitMQ's definitions JSON (`rabbitmqctl export_definitions`,
//! `GET /api/definitions`; the document is [`warren_definitions::Definitions`])
//! converted to and from the model.
//!
//! Reading is lenient where RabbitMQ versions differ (tags as a list or a
//! comma string, vhost metadata present or not, per-vhost exports without
//! `vhost` fields); writing produces what `POST /api/definitions` imports.
//! A document read from a file is also checked field by field
//! ([`super::definitions_fields`]): the document type skips what it does not
//! know, because a broker's responses carry more than its exports.

use serde_json::Value;
use warren_definitions::password::HashingAlgorithm;
use warren_definitions::{
    BindingDef, Definitions, ExchangeDef, ParameterDef, PermissionDef, PolicyBody, PolicyDef, QueueDef, Tags,
    TopicPermissionDef, UserDef, VhostDef, parse_priority,
};

use super::model::{
    ApplyTo, Arguments, Binding, DestinationType, Exchange, ExchangeType, Password, Permission, Policy, Queue,
    QueueType, State, TopicPermission, Topology, User, Vhost,
};
use super::normalise::{Side, normalise};

/// The vhost assumed for entities of a per-vhost export, which carry no `vhost` field.
pub const DEFAULT_VHOST: &str = "/";

/// An entry's vhost, `/` when it names none.
fn vhost_of(vhost: &Option<String>) -> &str {
    vhost.as_deref().unwrap_or(DEFAULT_VHOST)
}

/// A model's arguments (sorted) as a document's JSON object.
fn object(arguments: &Arguments) -> serde_json::Map<String, Value> {
    arguments.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A document's JSON object as a model's arguments.
fn arguments(object: &serde_json::Map<String, Value>) -> Arguments {
    object.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A definitions document that does not map onto the model.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionsError {
    /// Not JSON of the definitions shape.
    #[error("not a RabbitMQ definitions document (line {line}, column {column}): {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde found wrong.
        message: String,
    },
    /// An exchange type that is neither built in nor an `x-` plugin type.
    #[error("exchange {name:?} in vhost {vhost:?} has unknown type {kind:?}")]
    ExchangeType {
        /// Vhost.
        vhost: String,
        /// Exchange.
        name: String,
        /// The type found.
        kind: String,
    },
    /// A binding whose destination type is neither `queue` nor `exchange`.
    #[error("binding from {source_name:?} to {destination:?} in vhost {vhost:?} has unknown destination type {kind:?}")]
    DestinationType {
        /// Vhost.
        vhost: String,
        /// Source exchange.
        source_name: String,
        /// Destination.
        destination: String,
        /// The type found.
        kind: String,
    },
    /// A policy with an unknown `apply-to` or a non-integer priority.
    #[error("policy {name:?} in vhost {vhost:?}: {problem}")]
    Policy {
        /// Vhost.
        vhost: String,
        /// Policy.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A user whose hashing algorithm is not one RabbitMQ ships.
    #[error("user {name:?} has unknown hashing algorithm {algorithm:?}")]
    HashingAlgorithm {
        /// User.
        name: String,
        /// The algorithm found.
        algorithm: String,
    },
    /// A user with both `password` and `password_hash`, as RabbitMQ refuses too.
    #[error("user {name:?} has both `password` and `password_hash`; give one of them")]
    PasswordAndHash {
        /// User.
        name: String,
    },
    /// A user with an empty `password`, which no login can use.
    #[error("user {name:?} has an empty `password` (to create a user without a password, leave `password` out)")]
    EmptyPassword {
        /// User.
        name: String,
    },
    /// A queue `type` that is not a queue type, or that its `x-queue-type` argument contradicts.
    #[error("queue {name:?} in vhost {vhost:?}: {problem}")]
    Queue {
        /// Vhost.
        vhost: String,
        /// Queue.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A vhost default queue type that is not classic, quorum or stream.
    #[error("vhost {vhost:?} has unknown default queue type {kind:?}")]
    QueueType {
        /// Vhost.
        vhost: String,
        /// The type found.
        kind: String,
    },
}

/// Parses a definitions document from a file into a normalised [`Topology`].
pub fn parse_definitions(text: &str) -> Result<Topology, DefinitionsError> {
    let definitions: Definitions = serde_json::from_str(text).map_err(|e| DefinitionsError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    to_topology(&definitions, Side::File)
}

/// Converts parsed definitions, from a file or read from a broker (`side`),
/// into a normalised [`Topology`].
pub fn to_topology(definitions: &Definitions, side: Side) -> Result<Topology, DefinitionsError> {
    let mut topology = Topology::default();
    for vhost in definitions.vhosts.iter().flatten() {
        topology.vhosts.insert(vhost.name.clone(), vhost_from_def(vhost)?);
    }
    // Per-vhost exports name no vhosts; every entity's vhost exists in the model.
    for q in &definitions.queues {
        let queue = Queue {
            state: State::Present,
            // RabbitMQ's import has no default; a hand-written entry without it is durable.
            durable: q.durable.unwrap_or(true),
            auto_delete: q.auto_delete,
            arguments: queue_arguments(q)?,
        };
        vhost_mut(&mut topology, vhost_of(&q.vhost)).queues.insert(q.name.clone(), queue);
    }
    for x in &definitions.exchanges {
        let kind = ExchangeType::parse(&x.kind).ok_or_else(|| DefinitionsError::ExchangeType {
            vhost: vhost_of(&x.vhost).to_owned(),
            name: x.name.clone(),
            kind: x.kind.clone(),
        })?;
        vhost_mut(&mut topology, vhost_of(&x.vhost)).exchanges.insert(
            x.name.clone(),
            Exchange {
                state: State::Present,
                kind,
                // As for queues: durable unless the entry says otherwise.
                durable: x.durable.unwrap_or(true),
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: arguments(&x.arguments),
            },
        );
    }
    for b in &definitions.bindings {
        let destination_type = match b.destination_type.as_str() {
            "queue" => DestinationType::Queue,
            "exchange" => DestinationType::Exchange,
            other => {
                return Err(DefinitionsError::DestinationType {
                    vhost: vhost_of(&b.vhost).to_owned(),
                    source_name: b.source.clone(),
                    destination: b.destination.clone(),
                    kind: other.to_owned(),
                });
            }
        };
        vhost_mut(&mut topology, vhost_of(&b.vhost)).bindings.push(Binding {
            state: State::Present,
            source: b.source.clone(),
            destination: b.destination.clone(),
            destination_type,
            routing_key: b.routing_key.clone(),
            arguments: arguments(&b.arguments),
        });
    }
    for p in &definitions.policies {
        let vhost = vhost_of(&p.vhost);
        vhost_mut(&mut topology, vhost).policies.insert(p.name.clone(), policy_from_def(vhost, &p.name, &p.body())?);
    }
    for param in definitions.parameters.iter().filter(|p| p.component == "operator_policy") {
        let vhost = vhost_of(&param.vhost);
        let body: PolicyBody = serde_json::from_value(param.value.clone()).map_err(|e| DefinitionsError::Policy {
            vhost: vhost.to_owned(),
            name: param.name.clone(),
            problem: format!("operator policy value: {e}"),
        })?;
        vhost_mut(&mut topology, vhost)
            .operator_policies
            .insert(param.name.clone(), policy_from_def(vhost, &param.name, &body)?);
    }

    for u in definitions.users.iter().flatten() {
        topology.users.insert(u.name.clone(), user_from_def(u)?);
    }
    // Permissions may name a user the document does not define (as RabbitMQ's
    // import allows when the user exists): such an entry only grants, and the
    // plan checks that the broker has the user.
    for p in definitions.permissions.iter().flatten() {
        grantee(&mut topology, &p.user).permissions.insert(
            vhost_of(&p.vhost).to_owned(),
            Permission { configure: p.configure.clone(), write: p.write.clone(), read: p.read.clone() },
        );
    }
    for p in definitions.topic_permissions.iter().flatten() {
        grantee(&mut topology, &p.user)
            .topic_permissions
            .entry(vhost_of(&p.vhost).to_owned())
            .or_default()
            .insert(p.exchange.clone(), TopicPermission { write: p.write.clone(), read: p.read.clone() });
    }
    normalise(&mut topology, side);
    Ok(topology)
}

/// The user a permission names: its entry, or a new one that only grants.
fn grantee<'a>(topology: &'a mut Topology, user: &str) -> &'a mut User {
    topology.users.entry(user.to_owned()).or_insert_with(|| User::granting(State::Present))
}

fn vhost_mut<'a>(topology: &'a mut Topology, name: &str) -> &'a mut Vhost {
    topology.vhosts.entry(name.to_owned()).or_default()
}

/// Reads a vhost entry, whichever RabbitMQ version wrote it.
pub fn vhost_from_def(def: &VhostDef) -> Result<Vhost, DefinitionsError> {
    let description = def.description().map(str::to_owned);
    let tags = def.tags().map(Tags::to_vec).unwrap_or_default();
    let default_queue_type = match def.default_queue_type() {
        None | Some("") => None,
        Some(kind) => Some(
            QueueType::parse(kind)
                .ok_or_else(|| DefinitionsError::QueueType { vhost: def.name.clone(), kind: kind.to_owned() })?,
        ),
    };
    Ok(Vhost { description, tags, default_queue_type, ..Vhost::default() })
}

fn policy_from_def(vhost: &str, name: &str, def: &PolicyBody) -> Result<Policy, DefinitionsError> {
    let problem =
        |problem: String| DefinitionsError::Policy { vhost: vhost.to_owned(), name: name.to_owned(), problem };
    let apply_to =
        ApplyTo::parse(&def.apply_to).ok_or_else(|| problem(format!("unknown apply-to {:?}", def.apply_to)))?;
    let priority = parse_priority(&def.priority).ok_or_else(|| {
        let shown = match &def.priority {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        problem(format!("priority {shown} is not an integer"))
    })?;
    Ok(Policy {
        state: State::Present,
        pattern: def.pattern.clone(),
        apply_to,
        priority,
        definition: arguments(&def.definition),
    })
}

/// A queue's arguments, with its `type` (from `rabbitmqctl export_definitions`)
/// as `x-queue-type` when the arguments do not say.
fn queue_arguments(q: &QueueDef) -> Result<Arguments, DefinitionsError> {
    let mut arguments = arguments(&q.arguments);
    let Some(kind) = &q.kind else { return Ok(arguments) };
    let problem = |problem: String| DefinitionsError::Queue {
        vhost: vhost_of(&q.vhost).to_owned(),
        name: q.name.clone(),
        problem,
    };
    if QueueType::parse(kind).is_none() {
        return Err(problem(format!("unknown type {kind:?}, expected \"classic\", \"quorum\" or \"stream\"")));
    }
    match arguments.get("x-queue-type") {
        None => {
            arguments.insert("x-queue-type".to_owned(), Value::from(kind.as_str()));
        }
        Some(Value::String(declared)) if declared == kind => {}
        Some(declared) => {
            return Err(problem(format!("`type` {kind:?} contradicts argument `x-queue-type` {declared}")));
        }
    }
    Ok(arguments)
}

fn user_from_def(def: &UserDef) -> Result<User, DefinitionsError> {
    let name = || def.name.clone();
    let password = if let Some(clear) = &def.password {
        if !def.password_hash.is_empty() {
            return Err(DefinitionsError::PasswordAndHash { name: name() });
        }
        if clear.is_empty() {
            return Err(DefinitionsError::EmptyPassword { name: name() });
        }
        Password::Clear(clear.clone())
    } else if def.password_hash.is_empty() {
        Password::None
    } else {
        // Without a declared algorithm RabbitMQ's import takes its default, SHA-256.
        let algorithm = match def.hashing_algorithm.as_deref() {
            None => HashingAlgorithm::default(),
            Some(name) => HashingAlgorithm::parse(name).ok_or_else(|| DefinitionsError::HashingAlgorithm {
                name: def.name.clone(),
                algorithm: name.to_owned(),
            })?,
        };
        Password::Hash { hash: def.password_hash.clone(), algorithm }
    };
    Ok(User { password, tags: def.tags.as_ref().map(Tags::to_vec), ..User::granting(State::Present) })
}

/// The import entry of an exchange.
pub fn exchange_def(vhost: &str, name: &str, x: &Exchange) -> ExchangeDef {
    ExchangeDef {
        name: name.to_owned(),
        vhost: Some(vhost.to_owned()),
        kind: x.kind.as_str().to_owned(),
        durable: Some(x.durable),
        auto_delete: x.auto_delete,
        internal: x.internal,
        arguments: object(&x.arguments),
    }
}

/// The import entry of a queue.
pub fn queue_def(vhost: &str, name: &str, q: &Queue) -> QueueDef {
    QueueDef {
        name: name.to_owned(),
        vhost: Some(vhost.to_owned()),
        durable: Some(q.durable),
        auto_delete: q.auto_delete,
        arguments: object(&q.arguments),
        kind: None,
    }
}

/// The import entry of a binding.
/// A vhost's metadata as definitions carry it (top-level fields).
pub fn vhost_def(name: &str, v: &Vhost) -> VhostDef {
    VhostDef {
        name: name.to_owned(),
        description: v.description.clone(),
        tags: Some(Tags::List(v.tags.clone())),
        default_queue_type: v.default_queue_type.map(|t| t.as_str().to_owned()),
        metadata: None,
    }
}

/// A binding as definitions carry it.
pub fn binding_def(vhost: &str, b: &Binding) -> BindingDef {
    BindingDef {
        source: b.source.clone(),
        vhost: Some(vhost.to_owned()),
        destination: b.destination.clone(),
        destination_type: b.destination_type.as_str().to_owned(),
        routing_key: b.routing_key.clone(),
        arguments: object(&b.arguments),
    }
}

/// The import entry of a policy.
pub fn policy_def(vhost: &str, name: &str, p: &Policy) -> PolicyDef {
    PolicyDef {
        vhost: Some(vhost.to_owned()),
        name: name.to_owned(),
        pattern: p.pattern.clone(),
        apply_to: p.apply_to.as_str().to_owned(),
        definition: object(&p.definition),
        priority: Value::from(p.priority),
    }
}

/// The import entry of an operator policy (a runtime parameter).
pub fn operator_policy_def(vhost: &str, name: &str, p: &Policy) -> ParameterDef {
    ParameterDef {
        vhost: Some(vhost.to_owned()),
        component: "operator_policy".to_owned(),
        name: name.to_owned(),
        value: Value::Object(policy_def(vhost, name, p).body().to_map()),
    }
}

/// The import entry of a permission.
pub fn permission_def(user: &str, vhost: &str, p: &Permission) -> PermissionDef {
    PermissionDef {
        user: user.to_owned(),
        vhost: Some(vhost.to_owned()),
        configure: p.configure.clone(),
        write: p.write.clone(),
        read: p.read.clone(),
    }
}

/// The import entry of a topic permission.
pub fn topic_permission_def(user: &str, vhost: &str, exchange: &str, p: &TopicPermission) -> TopicPermissionDef {
    TopicPermissionDef {
        user: user.to_owned(),
        vhost: Some(vhost.to_owned()),
        exchange: exchange.to_owned(),
        write: p.write.clone(),
        read: p.read.clone(),
    }
}

/// A cluster-wide list of a document, left out when empty.
fn listed<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

/// The whole present part of a topology as one definitions document
/// (users carry their hash when declared with one, no password otherwise;
/// a user entry that only grants gives its permissions only). Lists of
/// users, vhosts and permissions are left out when empty.
pub fn from_topology(topology: &Topology) -> Definitions {
    let mut d = Definitions::default();
    let (mut users, mut vhosts, mut permissions, mut topic_permissions) = (vec![], vec![], vec![], vec![]);
    for (name, user) in topology.users.iter().filter(|(_, u)| u.state == State::Present) {
        for (vhost, p) in &user.permissions {
            permissions.push(permission_def(name, vhost, p));
        }
        for (vhost, by_exchange) in &user.topic_permissions {
            for (exchange, p) in by_exchange {
                topic_permissions.push(topic_permission_def(name, vhost, exchange, p));
            }
        }
        if user.only_grants() {
            continue;
        }
        let (password_hash, hashing_algorithm) = match user.password.to_stored() {
            Some((hash, algorithm)) => (hash, Some(algorithm.as_str().to_owned())),
            None => (String::new(), None),
        };
        users.push(UserDef {
            name: name.clone(),
            password_hash,
            password: None,
            hashing_algorithm,
            tags: Some(Tags::List(user.tags.clone().unwrap_or_default())),
            limits: None,
        });
    }
    for (vname, v) in topology.vhosts.iter().filter(|(_, v)| v.state == State::Present) {
        vhosts.push(vhost_def(vname, v));
        let present = |s: State| s == State::Present;
        for (n, x) in v.exchanges.iter().filter(|(_, x)| present(x.state)) {
            d.exchanges.push(exchange_def(vname, n, x));
        }
        for (n, q) in v.queues.iter().filter(|(_, q)| present(q.state)) {
            d.queues.push(queue_def(vname, n, q));
        }
        for b in v.bindings.iter().filter(|b| present(b.state)) {
            d.bindings.push(binding_def(vname, b));
        }
        for (n, p) in v.policies.iter().filter(|(_, p)| present(p.state)) {
            d.policies.push(policy_def(vname, n, p));
        }
        for (n, p) in v.operator_policies.iter().filter(|(_, p)| present(p.state)) {
            d.parameters.push(operator_policy_def(vname, n, p));
        }
    }
    d.users = listed(users);
    d.vhosts = listed(vhosts);
    d.permissions = listed(permissions);
    d.topic_permissions = listed(topic_permissions);
    d
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Trimmed from `GET /api/definitions` of RabbitMQ 3.10.8.
    const RABBITMQ_3_10: &str = r#"{"rabbit_version":"3.10.8","users":[{"name":"u1","password_hash":"pn9nFSNvKQYLF7z2KSlEBPdL99NFW3al8M5FzMxVRwxYp1Ff","hashing_algorithm":"rabbit_password_hashing_sha256","tags":["management","foo"],"limits":{}}],
    "vhosts":[{"name":"v1"},{"name":"/"}],
    "permissions":[{"user":"u1","vhost":"v1","configure":".*","write":"w","read":""}],
    "topic_permissions":[{"user":"u1","vhost":"v1","exchange":"amq.topic","write":"^a","read":".*"}],
    "parameters":[{"value":{"pattern":"^q","definition":{"max-length":100},"priority":0,"apply-to":"queues"},"vhost":"v1","component":"operator_policy","name":"op1"}],
    "global_parameters":[{"name":"internal_cluster_id","value":"x"}],
    "policies":[{"vhost":"v1","name":"p1","pattern":"^q","apply-to":"queues","definition":{"max-length":10,"message-ttl":5000},"priority":3}],
    "queues":[{"name":"q2","vhost":"v1","durable":true,"auto_delete":false,"arguments":{"x-queue-type":"quorum"}},{"name":"q1","vhost":"v1","durable":true,"auto_delete":false,"arguments":{"x-queue-type":"classic","x-message-ttl":1000}}],
    "exchanges":[{"name":"ex2","vhost":"v1","type":"headers","durable":false,"auto_delete":true,"internal":true,"arguments":{}},{"name":"ex1","vhost":"v1","type":"topic","durable":true,"auto_delete":false,"internal":false,"arguments":{"alternate-exchange":"ae"}}],
    "bindings":[{"source":"ex1","vhost":"v1","destination":"q1","destination_type":"queue","routing_key":"a.*","arguments":{}},{"source":"ex1","vhost":"v1","destination":"ex2","destination_type":"exchange","routing_key":"x","arguments":{"x-match":"all"}}]}"#;

    #[test]
    fn a_rabbitmq_3_10_export_maps_onto_the_model() {
        let t = parse_definitions(RABBITMQ_3_10).expect("parses");
        let v1 = &t.vhosts["v1"];
        assert_eq!(v1.queues["q2"].arguments["x-queue-type"], json!("quorum"));
        assert_eq!(v1.queues["q1"].arguments["x-queue-type"], json!("classic"), "spelled out, so kept");
        let from_broker = serde_json::from_str(RABBITMQ_3_10).expect("parses");
        let broker = to_topology(&from_broker, Side::Broker).expect("maps");
        let q1 = &broker.vhosts["v1"].queues["q1"];
        assert!(!q1.arguments.contains_key("x-queue-type"), "a broker's vhost without a default makes classic queues");
        assert_eq!(v1.exchanges["ex1"].kind, ExchangeType::Topic);
        assert!(v1.exchanges["ex2"].internal);
        assert_eq!(v1.bindings.len(), 2);
        assert_eq!(v1.policies["p1"].priority, 3);
        assert_eq!(v1.operator_policies["op1"].definition["max-length"], json!(100));
        let u1 = &t.users["u1"];
        assert_eq!(u1.tags.as_deref(), Some(&["foo".to_owned(), "management".to_owned()][..]));
        assert_eq!(u1.permissions["v1"].write, "w");
        assert_eq!(u1.topic_permissions["v1"]["amq.topic"].write, "^a");
        assert!(matches!(u1.password, Password::Hash { algorithm: HashingAlgorithm::Sha256, .. }));
        assert!(t.vhosts.contains_key("/"));
    }

    #[test]
    fn export_then_import_document_round_trips() {
        let t = parse_definitions(RABBITMQ_3_10).expect("parses");
        let text = serde_json::to_string(&from_topology(&t)).expect("serialises");
        assert_eq!(parse_definitions(&text).expect("parses again"), t);
    }

    #[test]
    fn comma_string_tags_and_per_vhost_exports_are_accepted() {
        let t = parse_definitions(
            r#"{"users":[{"name":"a","password_hash":"","tags":"monitoring,administrator"}],
                "queues":[{"name":"q","durable":true,"auto_delete":false,"arguments":{}}]}"#,
        )
        .expect("parses");
        assert_eq!(t.users["a"].tags.as_deref(), Some(&["administrator".to_owned(), "monitoring".to_owned()][..]));
        assert_eq!(t.users["a"].password, Password::None);
        assert!(t.vhosts[DEFAULT_VHOST].queues.contains_key("q"));
    }

    #[test]
    fn errors_name_the_entity() {
        let err = parse_definitions(r#"{"exchanges":[{"name":"x","vhost":"v","type":"bogus"}]}"#).expect_err("fails");
        assert_eq!(err.to_string(), r#"exchange "x" in vhost "v" has unknown type "bogus""#);
        let err = parse_definitions("{\n  \"queues\": 3}").expect_err("fails");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn permissions_for_a_user_the_document_does_not_define_only_grant() {
        let t = parse_definitions(
            r#"{"permissions":[{"user":"guest","vhost":"/","configure":"","write":".*","read":""}],
                "topic_permissions":[{"user":"guest","vhost":"/","exchange":"amq.topic","write":"^a","read":""}]}"#,
        )
        .expect("parses");
        let guest = &t.users["guest"];
        assert!(guest.only_grants(), "{guest:?}");
        assert_eq!(guest.permissions["/"].write, ".*");
        assert_eq!(guest.topic_permissions["/"]["amq.topic"].write, "^a");
        // Written back, the document still grants without defining the user.
        let written = serde_json::to_value(from_topology(&t)).expect("serialises");
        assert_eq!(written["users"], serde_json::Value::Null, "{written}");
        assert_eq!(parse_definitions(&written.to_string()).expect("parses again"), t);
    }

    #[test]
    fn a_hand_written_user_without_tags_keeps_its_tags() {
        let t = parse_definitions(r#"{"users":[{"name":"u","password":"pw"},{"name":"v"}]}"#).expect("parses");
        assert_eq!(t.users["u"].tags, None);
        assert!(!t.users["u"].only_grants(), "a password defines the user");
        assert!(t.users["v"].only_grants(), "neither password nor tags: the user must exist");
    }

    #[test]
    fn a_plain_password_is_read_as_one_and_never_written_or_shown() {
        let t = parse_definitions(r#"{"users":[{"name":"u","password":"hunter2","tags":""}]}"#).expect("parses");
        assert_eq!(t.users["u"].password, Password::Clear("hunter2".into()));
        assert!(!format!("{t:?}").contains("hunter2"));
        let written = serde_json::to_string(&from_topology(&t)).expect("serialises");
        assert!(!written.contains("hunter2") && written.contains("password_hash"), "{written}");

        let both = parse_definitions(r#"{"users":[{"name":"u","password":"x","password_hash":"aGFzaA==","tags":""}]}"#);
        assert_eq!(
            both.expect_err("both").to_string(),
            "user \"u\" has both `password` and `password_hash`; give one of them"
        );
        let empty = parse_definitions(r#"{"users":[{"name":"u","password":"","tags":""}]}"#);
        assert!(empty.expect_err("empty").to_string().contains("has an empty `password`"));
    }

    /// RabbitMQ's import has no policy without a name; a document naming none is refused where
    /// it used to make a policy called "".
    #[test]
    fn a_policy_without_a_name_is_refused() {
        let err =
            parse_definitions("{\"policies\": [\n  {\"vhost\": \"v\", \"pattern\": \"^q\", \"definition\": {}}]}")
                .expect_err("no name");
        assert!(err.to_string().contains("missing field `name`") && err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn tags_of_the_wrong_type_are_named_as_such() {
        let err = parse_definitions(r#"{"users":[{"name":"u","tags":[1]}]}"#).expect_err("not strings");
        assert!(err.to_string().contains("tags must be a list of strings or a comma-separated string"), "{err}");
    }

    #[test]
    fn a_queue_type_beside_the_arguments_is_the_queue_type() {
        let t = parse_definitions(
            r#"{"vhosts":[{"name":"v","metadata":{"default_queue_type":"quorum"}}],
                "queues":[{"name":"c","vhost":"v","durable":true,"auto_delete":false,"arguments":{},"type":"classic"},
                          {"name":"q","vhost":"v","durable":true,"auto_delete":false,"arguments":{},"type":"quorum"}]}"#,
        )
        .expect("parses");
        let queues = &t.vhosts["v"].queues;
        assert_eq!(queues["c"].arguments["x-queue-type"], json!("classic"), "not the vhost's default");
        assert!(queues["q"].arguments.is_empty(), "the vhost's default, normalised away");
        let contradiction = parse_definitions(
            r#"{"queues":[{"name":"q","vhost":"v","arguments":{"x-queue-type":"quorum"},"type":"classic"}]}"#,
        );
        assert_eq!(
            contradiction.expect_err("contradicts").to_string(),
            "queue \"q\" in vhost \"v\": `type` \"classic\" contradicts argument `x-queue-type` \"quorum\""
        );
    }
}
