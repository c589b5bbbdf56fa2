//! `GET`/`POST /api/definitions[/{vhost}]`: exports parse into the client's
//! types, exports import into a fresh broker unchanged, RabbitMQ's exports
//! import, and a bad document changes nothing.

use rabbitmq_http_client::commons::{ExchangeType, PolicyTarget};
use rabbitmq_http_client::requests::{ExchangeParams, PolicyParams, QueueParams, VirtualHostParams};
use serde_json::{Value, json};

use crate::util::{Api, Server, rabbitmq, unique_name};

/// vhost `shop` with an exchange, two queues, bindings, a policy, an operator policy and a user.
async fn populate(api: &Api) {
    api.create_vhost(&VirtualHostParams {
        name: "shop",
        description: Some("the shop"),
        tags: Some(vec!["eu"]),
        default_queue_type: None,
        tracing: false,
    })
    .await
    .expect("vhost");
    let args = json!({"alternate-exchange": "unrouted"}).as_object().cloned();
    api.declare_exchange("shop", &ExchangeParams::new("orders", ExchangeType::Topic, true, false, args))
        .await
        .expect("exchange");
    api.declare_exchange("shop", &ExchangeParams::new("audit", ExchangeType::Fanout, true, false, None))
        .await
        .expect("exchange");
    let dlx = json!({"x-dead-letter-exchange": "dlx", "x-message-ttl": 5000}).as_object().cloned();
    api.declare_queue("shop", &QueueParams::new_durable_classic_queue("inventory", dlx)).await.expect("queue");
    api.declare_queue("shop", &QueueParams::new_quorum_queue("risk", None)).await.expect("queue");
    api.bind_queue("shop", "inventory", "orders", Some("order.*"), None).await.expect("bind");
    let match_args = json!({"x-match": "any", "region": "eu"}).as_object().cloned();
    api.bind_queue("shop", "risk", "orders", Some("#"), match_args).await.expect("bind");
    api.bind_exchange("shop", "audit", "orders", Some("#"), None).await.expect("bind e2e");
    let policy = PolicyParams {
        vhost: "shop",
        name: "ttl",
        pattern: "^inv",
        apply_to: PolicyTarget::Queues,
        priority: 2,
        definition: json!({"message-ttl": 1000}).as_object().cloned().unwrap_or_default(),
    };
    api.declare_policy(&policy).await.expect("policy");
    api.declare_operator_policy(&PolicyParams {
        name: "cap",
        definition: json!({"max-length": 9}).as_object().cloned().unwrap_or_default(),
        ..policy
    })
    .await
    .expect("operator policy");
    let hash = rabbitmq_http_client::password_hashing::base64_encoded_salted_password_hash_sha256(&[1, 2, 3, 4], "pw");
    api.create_user(&rabbitmq_http_client::requests::UserParams {
        name: "jack",
        password_hash: &hash,
        tags: "management",
    })
    .await
    .expect("user");
    api.grant_full_permissions("jack", "shop").await.expect("permissions");
}

#[tokio::test]
async fn the_export_parses_into_the_clients_types_and_leaves_out_what_rabbitmq_does() {
    let server = Server::start().await;
    let api = server.client();
    populate(&api).await;
    let all = api.export_cluster_wide_definitions_as_data().await.expect("cluster-wide export parses");
    assert!(
        all.exchanges.iter().all(|x| !x.name.is_empty() && !x.name.starts_with("amq.")),
        "no predeclared exchanges"
    );
    assert_eq!(all.exchanges.len(), 2);
    assert_eq!(all.queues.len(), 2);
    assert_eq!(all.bindings.len(), 3, "no implicit default-exchange bindings");
    assert_eq!(all.policies.len(), 1);
    assert_eq!(all.parameters.len(), 1, "the operator policy travels as a runtime parameter");
    let jack = all.users.iter().find(|u| u.name == "jack").expect("jack exported");
    assert!(jack.password_hash.is_some());
    assert_eq!(all.permissions.iter().filter(|p| p.user == "jack").count(), 1);

    let shop = api.export_vhost_definitions_as_data("shop").await.expect("vhost export parses");
    assert_eq!((shop.queues.len(), shop.exchanges.len(), shop.bindings.len()), (2, 2, 3));
    let text = api.export_vhost_definitions_as_string("shop").await.expect("vhost export");
    assert!(!text.contains("\"vhost\""), "a vhost export names no vhost: {text}");
}

#[tokio::test]
async fn an_export_imports_into_a_fresh_broker_unchanged() {
    let source = Server::start().await;
    populate(&source.client()).await;
    let exported: Value =
        serde_json::from_str(&source.client().export_cluster_wide_definitions_as_string().await.expect("export"))
            .expect("JSON");

    let target = Server::start().await;
    target.client().import_cluster_wide_definitions(exported.clone()).await.expect("import");
    let again: Value =
        serde_json::from_str(&target.client().export_cluster_wide_definitions_as_string().await.expect("export"))
            .expect("JSON");
    assert_eq!(again, exported);
    assert!(target.client_as("jack", "pw").current_user().await.is_ok(), "the imported hash logs in");
    assert_eq!(
        target.state.queue("shop", "inventory").expect("imported queue").settings().policy.as_deref(),
        Some("ttl"),
        "imported policies apply to imported queues"
    );
    // Importing the same document again changes nothing.
    target.client().import_cluster_wide_definitions(exported.clone()).await.expect("second import");
    let third: Value =
        serde_json::from_str(&target.client().export_cluster_wide_definitions_as_string().await.expect("export"))
            .expect("JSON");
    assert_eq!(third, exported);
}

#[tokio::test]
async fn a_vhost_export_imports_into_another_vhost() {
    let server = Server::start().await;
    let api = server.client();
    populate(&api).await;
    let shop: Value =
        serde_json::from_str(&api.export_vhost_definitions_as_string("shop").await.expect("export")).expect("JSON");
    api.create_vhost(&VirtualHostParams::named("shop-copy")).await.expect("vhost");
    api.import_vhost_definitions("shop-copy", shop.clone()).await.expect("import into another vhost");
    let copy: Value = serde_json::from_str(&api.export_vhost_definitions_as_string("shop-copy").await.expect("export"))
        .expect("JSON");
    assert_eq!(copy, shop);
}

#[tokio::test]
async fn a_bad_document_changes_nothing() {
    let server = Server::start().await;
    let before = server.client().export_cluster_wide_definitions_as_string().await.expect("export");
    let dangling = json!({
        "vhosts": [{"name": "new"}],
        "exchanges": [{"name": "x", "vhost": "new", "type": "direct", "durable": true}],
        "bindings": [{"source": "x", "vhost": "new", "destination": "missing", "destination_type": "queue", "routing_key": ""}],
    });
    let response = server.raw("POST", "/api/definitions", Some(&dangling.to_string())).await;
    assert_eq!((response.status, response.reason().as_str()), (404, "no queue 'missing' in vhost 'new'"));
    let bad_type = json!({"exchanges": [{"name": "x", "vhost": "/", "type": "nosuch"}]});
    let response = server.raw("POST", "/api/definitions", Some(&bad_type.to_string())).await;
    assert_eq!((response.status, response.reason().as_str()), (400, "unknown exchange type 'nosuch'"));
    let bad_hash = json!({"users": [{"name": "u", "password_hash": "not base64!", "tags": ""}]});
    assert_eq!(server.raw("POST", "/api/definitions", Some(&bad_hash.to_string())).await.status, 400);
    let not_json = server.raw("POST", "/api/definitions", Some("{\"users\": [")).await;
    assert_eq!((not_json.status, not_json.reason().as_str()), (400, "not_json"));
    let after = server.client().export_cluster_wide_definitions_as_string().await.expect("export");
    assert_eq!(after, before);
}

/// A vhost populated on RabbitMQ, exported by RabbitMQ, imports into the embedded broker, and the
/// embedded broker exports the same queues, exchanges, bindings and policies.
#[tokio::test]
async fn a_rabbitmq_export_imports_and_exports_the_same() {
    let Some(rabbit) = rabbitmq().await else { return };
    let vhost = unique_name("warren-mgmt-defs");
    let api = rabbit.client();
    api.create_vhost(&VirtualHostParams::named(&vhost)).await.expect("vhost on RabbitMQ");
    let result = async {
        let args = json!({"alternate-exchange": "ae"}).as_object().cloned();
        api.declare_exchange(&vhost, &ExchangeParams::new("ex", ExchangeType::Topic, true, false, args)).await?;
        let qargs = json!({"x-message-ttl": 1000, "x-dead-letter-exchange": "dlx"}).as_object().cloned();
        api.declare_queue(&vhost, &QueueParams::new_durable_classic_queue("q1", qargs)).await?;
        api.declare_queue(&vhost, &QueueParams::new_quorum_queue("q2", None)).await?;
        api.bind_queue(&vhost, "q1", "ex", Some("a.*"), None).await?;
        api.bind_queue(&vhost, "q2", "ex", Some("b"), json!({"k": 1}).as_object().cloned()).await?;
        let policy = PolicyParams {
            vhost: &vhost,
            name: "p1",
            pattern: "^q",
            apply_to: PolicyTarget::Queues,
            priority: 3,
            definition: json!({"max-length": 10}).as_object().cloned().unwrap_or_default(),
        };
        api.declare_policy(&policy).await?;
        api.export_vhost_definitions_as_string(&vhost).await
    }
    .await;
    api.delete_vhost(&vhost, true).await.expect("clean up the RabbitMQ vhost");
    let from_rabbitmq: Value = serde_json::from_str(&result.expect("populate and export on RabbitMQ")).expect("JSON");

    let server = Server::start().await;
    let ours = server.client();
    ours.create_vhost(&VirtualHostParams::named("copy")).await.expect("vhost");
    ours.import_vhost_definitions("copy", from_rabbitmq.clone()).await.expect("RabbitMQ's export imports");
    let from_us: Value =
        serde_json::from_str(&ours.export_vhost_definitions_as_string("copy").await.expect("export")).expect("JSON");
    for key in ["queues", "exchanges", "bindings", "policies"] {
        assert_eq!(sorted(&from_us[key]), sorted(&from_rabbitmq[key]), "{key} differ");
    }
}

/// A list in a canonical order with sorted keys and without `vhost` fields (RabbitMQ names its
/// vhost in a vhost export's policies, and the vhosts differ here), so equal contents compare equal.
fn sorted(list: &Value) -> Vec<String> {
    let mut items: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let mut item = item.clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("vhost");
            }
            canonical(&item)
        })
        .collect();
    items.sort();
    items
}

fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{k:?}:{}", canonical(v))).collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The shape of `warren`'s import benchmark (2,000 exchanges, 5,000 queues, 10,000 bindings) in
/// one document of several MiB: larger than a default HTTP body limit, smaller than RabbitMQ's.
#[tokio::test]
async fn a_large_definitions_import_is_accepted_whole() {
    let server = Server::start().await;
    let exchanges: Vec<Value> = (0..2000)
        .map(|i| json!({"name": format!("exchange-{i:05}"), "vhost": "/", "type": "topic", "durable": true}))
        .collect();
    let queues: Vec<Value> = (0..5000)
        .map(|i| json!({"name": format!("queue-{i:05}"), "vhost": "/", "durable": true, "arguments": {"x-message-ttl": 60000}}))
        .collect();
    let bindings: Vec<Value> = (0..10000)
        .map(|i| {
            json!({
                "source": format!("exchange-{:05}", i % 2000),
                "vhost": "/",
                "destination": format!("queue-{:05}", i % 5000),
                "destination_type": "queue",
                "routing_key": format!("orders.region-{}.customer-segment-{}.event-{i}.#", i % 7, i % 13),
                "arguments": {},
            })
        })
        .collect();
    let document = json!({"exchanges": exchanges, "queues": queues, "bindings": bindings});
    assert!(document.to_string().len() > 2 << 20, "the document is larger than 2 MiB");
    server.client().import_cluster_wide_definitions(document).await.expect("import");
    let exported = server.client().export_cluster_wide_definitions_as_data().await.expect("export");
    assert_eq!((exported.exchanges.len(), exported.queues.len(), exported.bindings.len()), (2000, 5000, 10000));
}

/// Regression: a binding from a predeclared exchange (`amq.direct`) in a vhost that the same
/// document creates was refused as binding from a missing exchange.
#[tokio::test]
async fn a_binding_from_amq_direct_in_a_vhost_the_document_creates_imports() {
    let server = Server::start().await;
    let document = json!({
        "vhosts": [{"name": "fresh"}],
        "queues": [{"name": "q", "vhost": "fresh", "durable": true}],
        "bindings": [{"source": "amq.direct", "vhost": "fresh", "destination": "q", "destination_type": "queue",
                      "routing_key": "k", "arguments": {}}],
    });
    server.client().import_cluster_wide_definitions(document).await.expect("import");
    let bindings = server.client().list_queue_bindings("fresh", "q").await.expect("bindings");
    assert!(bindings.iter().any(|b| b.source == "amq.direct" && b.routing_key == "k"), "{bindings:?}");
}

/// What a hand-written document with clear-text passwords does to one broker at `addr`: the
/// status of the import, whether the user then logs in with the password, and the answer to a
/// user with both `password` and `password_hash` (status, reason, whether that user exists).
async fn plain_passwords_on(addr: std::net::SocketAddr, admin: (&str, &str), user: &str) -> Vec<String> {
    let as_admin = |method: &'static str, path: String, body: Option<String>| async move {
        crate::util::raw(addr, method, &path, Some(admin), body.as_deref()).await
    };
    let plain = json!({"users": [{"name": user, "password": "plain-pw", "tags": "monitoring"}]});
    let imported = as_admin("POST", "/api/definitions".into(), Some(plain.to_string())).await;
    let login = crate::util::raw(addr, "GET", "/api/whoami", Some((user, "plain-pw")), None).await;
    let wrong = crate::util::raw(addr, "GET", "/api/whoami", Some((user, "other")), None).await;

    let both_user = format!("{user}-both");
    let hash = rabbitmq_http_client::password_hashing::base64_encoded_salted_password_hash_sha256(&[1, 2, 3, 4], "pw");
    let both = json!({"users": [{"name": both_user, "password": "pw", "password_hash": hash, "tags": ""}]});
    let refused = as_admin("POST", "/api/definitions".into(), Some(both.to_string())).await;
    let created = as_admin("GET", format!("/api/users/{both_user}"), None).await;

    for name in [user, both_user.as_str()] {
        as_admin("DELETE", format!("/api/users/{name}"), None).await;
    }
    vec![
        format!("import {}", imported.status),
        format!("login {} ({})", login.status, login.json()["name"]),
        format!("wrong password {}", wrong.status),
        format!("both {} {}", refused.status, refused.reason()),
        format!("both created {}", created.status),
    ]
}

/// Regression: a document whose user has a plain `password` (as hand-written documents do)
/// creates a user that logs in with it, on the embedded broker as on RabbitMQ, and one that
/// gives both `password` and `password_hash` is refused without creating the user.
#[tokio::test]
async fn a_plain_password_in_an_import_is_hashed_and_logs_in() {
    let server = Server::start().await;
    let user = unique_name("warren-mgmt-plain");
    let ours = plain_passwords_on(server.addr, ("guest", "guest"), &user).await;
    assert_eq!(
        ours,
        [
            "import 204".to_owned(),
            format!("login 200 (\"{user}\")"),
            "wrong password 401".to_owned(),
            "both 400 both_password_and_password_hash_are_provided".to_owned(),
            "both created 404".to_owned(),
        ]
    );
    let Some(rabbit) = rabbitmq().await else { return };
    let theirs = plain_passwords_on(rabbit.addr, (&rabbit.user, &rabbit.password), &user).await;
    assert_eq!(ours, theirs, "the embedded broker answers as RabbitMQ does");
}

/// How one broker at `addr` reads tags given as a list with blanks and a comma: in an import
/// (a user and a vhost) and in `PUT /api/users` and `PUT /api/vhosts`, each read back.
async fn list_tags_on(addr: std::net::SocketAddr, admin: (&str, &str), name: &str) -> Vec<String> {
    let as_admin = |method: &'static str, path: String, body: Option<String>| async move {
        crate::util::raw(addr, method, &path, Some(admin), body.as_deref()).await
    };
    let tags = json!([" management ", "a,b"]);
    let (imported_user, put_user) = (format!("{name}-imported"), format!("{name}-put"));
    let (imported_vhost, put_vhost) = (format!("{name}-imported-v"), format!("{name}-put-v"));
    let document = json!({"users": [{"name": imported_user, "password": "pw", "tags": tags}],
                          "vhosts": [{"name": imported_vhost, "tags": tags}]});
    let mut seen =
        vec![as_admin("POST", "/api/definitions".into(), Some(document.to_string())).await.status.to_string()];
    let body = json!({"password": "pw", "tags": tags}).to_string();
    seen.push(as_admin("PUT", format!("/api/users/{put_user}"), Some(body)).await.status.to_string());
    seen.push(
        as_admin("PUT", format!("/api/vhosts/{put_vhost}"), Some(json!({"tags": tags}).to_string()))
            .await
            .status
            .to_string(),
    );
    for user in [&imported_user, &put_user] {
        seen.push(as_admin("GET", format!("/api/users/{user}"), None).await.json()["tags"].to_string());
        as_admin("DELETE", format!("/api/users/{user}"), None).await;
    }
    for vhost in [&imported_vhost, &put_vhost] {
        seen.push(as_admin("GET", format!("/api/vhosts/{vhost}"), None).await.json()["tags"].to_string());
        as_admin("DELETE", format!("/api/vhosts/{vhost}"), None).await;
    }
    seen
}

/// Tags given as a list are trimmed one by one and never split at commas (RabbitMQ's
/// `tag_list_from`), whether imported or set through the API, on both brokers.
#[tokio::test]
async fn tags_in_a_list_are_trimmed_and_never_split() {
    let server = Server::start().await;
    let name = unique_name("warren-mgmt-tags");
    let ours = list_tags_on(server.addr, ("guest", "guest"), &name).await;
    let read_back = r#"["management","a,b"]"#.to_owned();
    assert_eq!(
        ours,
        [
            "204".to_owned(),
            "201".to_owned(),
            "201".to_owned(),
            read_back.clone(),
            read_back.clone(),
            read_back.clone(),
            read_back
        ]
    );
    let Some(rabbit) = rabbitmq().await else { return };
    let theirs = list_tags_on(rabbit.addr, (&rabbit.user, &rabbit.password), &name).await;
    assert_eq!(ours, theirs, "the embedded broker reads tags as RabbitMQ does");
}

/// A policy in an import is validated as `PUT /api/policies` validates its body: a priority
/// that is not an integer is RabbitMQ's 400 "Validation failed" either way, and nothing changes.
#[tokio::test]
async fn a_policy_in_an_import_is_validated_as_a_policy_put() {
    let server = Server::start().await;
    let before = server.client().export_cluster_wide_definitions_as_string().await.expect("export");
    let body = json!({"pattern": "^q", "definition": {"max-length": 1}, "priority": "high"});
    let put = server.raw("PUT", "/api/policies/%2F/p", Some(&body.to_string())).await;
    let mut entry = body.clone();
    entry["vhost"] = json!("/");
    entry["name"] = json!("p");
    let imported = server.raw("POST", "/api/definitions", Some(&json!({"policies": [entry]}).to_string())).await;
    assert_eq!((imported.status, imported.reason()), (put.status, put.reason()));
    assert_eq!(
        (put.status, put.reason().as_str()),
        (400, "Validation failed\n\npriority must be an integer, got \"high\"\n")
    );
    let after = server.client().export_cluster_wide_definitions_as_string().await.expect("export");
    assert_eq!(after, before);
}
