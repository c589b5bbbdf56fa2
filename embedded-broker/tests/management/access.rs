//! Overview, whoami, vhosts, users, permissions and topic permissions, and who may use the API.

use rabbitmq_http_client::password_hashing;
use rabbitmq_http_client::requests::{Permissions, TopicPermissions, UserParams, VirtualHostParams};

use crate::util::{Server, rabbitmq, raw, unique_name};

#[tokio::test]
async fn overview_says_what_answers_and_whoami_names_the_login() {
    let server = Server::start().await;
    let api = server.client();
    let overview = api.overview().await.expect("overview deserialises into the client's type");
    assert_eq!(overview.product_name, "warren-broker");
    assert!(!overview.rabbitmq_version.is_empty(), "clients branch on rabbitmq_version");
    assert_eq!(overview.object_totals.exchanges, 7, "the predeclared exchanges of /");
    let me = api.current_user().await.expect("whoami");
    assert_eq!(me.name, "guest");
    assert!(me.tags.contains("administrator"));
}

#[tokio::test]
async fn vhosts_are_created_updated_listed_and_deleted() {
    let server = Server::start().await;
    let api = server.client();
    let params = VirtualHostParams {
        name: "orders",
        description: Some("order service"),
        tags: Some(vec!["prod", "eu"]),
        default_queue_type: None,
        tracing: false,
    };
    api.create_vhost(&params).await.expect("create vhost");
    let vhost = api.get_vhost("orders").await.expect("get vhost");
    assert_eq!(vhost.description.as_deref(), Some("order service"));
    assert_eq!(vhost.tags.map(|t| t.0), Some(vec!["prod".to_owned(), "eu".to_owned()]));
    // As in RabbitMQ, the user who creates a vhost may use it.
    let granted = api.get_permissions("orders", "guest").await.expect("guest's permissions on the new vhost");
    assert_eq!((granted.configure.as_str(), granted.write.as_str(), granted.read.as_str()), (".*", ".*", ".*"));

    api.update_vhost(&VirtualHostParams { description: Some("orders v2"), tags: None, ..params })
        .await
        .expect("update vhost");
    let vhost = api.get_vhost("orders").await.expect("get vhost");
    assert_eq!(vhost.description.as_deref(), Some("orders v2"));
    assert_eq!(vhost.tags.map(|t| t.0), Some(vec![]), "a PUT replaces the metadata, as in RabbitMQ");

    let names: Vec<String> = api.list_vhosts().await.expect("list").into_iter().map(|v| v.name).collect();
    assert_eq!(names, vec!["/".to_owned(), "orders".to_owned()]);
    api.delete_vhost("orders", false).await.expect("delete vhost");
    assert!(api.get_vhost("orders").await.is_err_and(|e| e.is_not_found()));
    assert!(api.delete_vhost("orders", false).await.is_err(), "deleting it twice is a 404");
    assert!(api.delete_vhost("orders", true).await.is_ok(), "unless asked to be idempotent");
}

#[tokio::test]
async fn users_keep_rabbitmq_hashes_and_can_log_in() {
    let server = Server::start().await;
    let api = server.client();
    let salt = password_hashing::salt();
    let hash = password_hashing::base64_encoded_salted_password_hash_sha256(&salt, "s3cret");
    api.create_user(&UserParams { name: "jack", password_hash: &hash, tags: "administrator,management" })
        .await
        .expect("create user");
    let jack = api.get_user("jack").await.expect("get user");
    assert_eq!(jack.password_hash.map(|h| h.to_string()), Some(hash.clone()), "the hash is stored as given");
    assert_eq!(jack.tags.0, vec!["administrator".to_owned(), "management".to_owned()]);
    let me = server.client_as("jack", "s3cret").current_user().await.expect("jack logs in with the password");
    assert_eq!(me.name, "jack");

    // A clear-text password (what `rabbitmqctl add_user` and the UI send) is hashed by the broker.
    let response = server.raw("PUT", "/api/users/jill", Some(r#"{"password":"pw","tags":["management"]}"#)).await;
    assert_eq!(response.status, 201, "{}", response.body);
    assert!(server.client_as("jill", "pw").current_user().await.is_ok());
    assert!(server.client_as("jill", "PW").current_user().await.is_err_and(|e| e.is_unauthorized()));

    // Tags change without touching the password when no password is sent.
    let response = server.raw("PUT", "/api/users/jill", Some(r#"{"tags":"monitoring"}"#)).await;
    assert_eq!(response.status, 204, "{}", response.body);
    assert!(server.client_as("jill", "pw").current_user().await.is_ok(), "the password survived a tags change");

    let names: Vec<String> = api.list_users().await.expect("list").into_iter().map(|u| u.name).collect();
    assert_eq!(names, vec!["guest".to_owned(), "jack".to_owned(), "jill".to_owned()]);
    api.delete_user("jack", false).await.expect("delete");
    assert!(api.get_user("jack").await.is_err_and(|e| e.is_not_found()));
    assert!(server.client_as("jack", "s3cret").current_user().await.is_err_and(|e| e.is_unauthorized()));
}

#[tokio::test]
async fn a_sha512_hash_from_another_broker_logs_in() {
    let server = Server::start().await;
    let salt = password_hashing::salt();
    let hash = password_hashing::base64_encoded_salted_password_hash_sha512(&salt, "pw512");
    let body = serde_json::json!({
        "password_hash": hash,
        "hashing_algorithm": "rabbit_password_hashing_sha512",
        "tags": "administrator",
    });
    let response = server.raw("PUT", "/api/users/sha", Some(&body.to_string())).await;
    assert_eq!(response.status, 201, "{}", response.body);
    assert!(server.client_as("sha", "pw512").current_user().await.is_ok());
    let user = server.client().get_user("sha").await.expect("get user");
    assert_eq!(user.password_hash.map(|h| h.to_string()), Some(hash));

    // rabbitmq_http_client's UserParams carries no algorithm: the hash's length tells SHA-512.
    let other = password_hashing::base64_encoded_salted_password_hash_sha512(&password_hashing::salt(), "other");
    server
        .client()
        .create_user(&UserParams { name: "sha2", password_hash: &other, tags: "management" })
        .await
        .expect("create user");
    assert!(server.client_as("sha2", "other").current_user().await.is_ok());
    let stored = server.client().get_user("sha2").await.expect("get user");
    assert_eq!(stored.password_hash.map(|h| h.to_string()), Some(other));
}

#[tokio::test]
async fn permissions_and_topic_permissions_round_trip() {
    let server = Server::start().await;
    let api = server.client();
    let hash = password_hashing::base64_encoded_salted_password_hash_sha256(&password_hashing::salt(), "x");
    api.create_user(&UserParams { name: "app", password_hash: &hash, tags: "" }).await.expect("user");
    api.declare_permissions(&Permissions { user: "app", vhost: "/", configure: "^app\\.", write: ".*", read: "" })
        .await
        .expect("declare permissions");
    let p = api.get_permissions("/", "app").await.expect("get permissions");
    assert_eq!((p.configure.as_str(), p.write.as_str(), p.read.as_str()), ("^app\\.", ".*", ""));
    assert_eq!(api.list_permissions_in("/").await.expect("in vhost").len(), 2, "guest and app");
    assert_eq!(api.list_permissions_of("app").await.expect("of user").len(), 1);

    api.declare_topic_permissions(&TopicPermissions {
        user: "app",
        vhost: "/",
        exchange: "amq.topic",
        write: "^orders\\.",
        read: ".*",
    })
    .await
    .expect("topic permissions");
    let tp = api.get_topic_permissions_of("/", "app").await.expect("get topic permissions");
    assert_eq!((tp.exchange.as_str(), tp.write.as_str()), ("amq.topic", "^orders\\."));
    assert_eq!(api.list_topic_permissions().await.expect("list").len(), 1);

    api.clear_topic_permissions("/", "app", false).await.expect("clear topic permissions");
    assert!(api.list_topic_permissions_in("/").await.expect("list").is_empty());
    api.clear_permissions("/", "app", false).await.expect("clear permissions");
    assert!(api.get_permissions("/", "app").await.is_err_and(|e| e.is_not_found()));
    assert!(api.clear_permissions("/", "app", false).await.is_err(), "a second clear is a 404");
}

#[tokio::test]
async fn wrong_credentials_and_missing_tags_are_refused_like_rabbitmq() {
    let server = Server::start().await;
    let wrong = raw(server.addr, "GET", "/api/overview", Some(("guest", "nope")), None).await;
    assert_eq!(wrong.status, 401);
    assert_eq!((wrong.error().as_str(), wrong.reason().as_str()), ("not_authorized", "Login failed"));
    assert_eq!(wrong.header("www-authenticate"), Some("Basic realm=\"RabbitMQ Management\""));
    let anonymous = raw(server.addr, "GET", "/api/vhosts", None, None).await;
    assert_eq!(anonymous.status, 401);
    let unknown_user = raw(server.addr, "GET", "/api/vhosts", Some(("nobody", "guest")), None).await;
    assert_eq!(unknown_user.status, 401);

    for (user, tags) in [("watcher", "management"), ("plain", "")] {
        let body = serde_json::json!({ "password": "pw", "tags": tags }).to_string();
        assert_eq!(server.raw("PUT", &format!("/api/users/{user}"), Some(&body)).await.status, 201);
    }
    // A management user may ask who it is, but not read or change definitions.
    let me = raw(server.addr, "GET", "/api/whoami", Some(("watcher", "pw")), None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["name"], "watcher");
    let refused = raw(server.addr, "GET", "/api/users", Some(("watcher", "pw")), None).await;
    assert_eq!(refused.status, 401);
    assert_eq!((refused.error().as_str(), refused.reason().as_str()), ("not_authorised", "Not administrator user"));
    let put = raw(server.addr, "PUT", "/api/vhosts/sneaky", Some(("watcher", "pw")), Some("{}")).await;
    assert_eq!(put.status, 401);
    assert!(server.state.vhost("sneaky").is_none(), "a refused request changes nothing");
    // A user without any management tag may not use the API at all.
    let none = raw(server.addr, "GET", "/api/whoami", Some(("plain", "pw")), None).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.reason(), "Not management user");
}

/// A `monitoring` user reads connections, channels, consumers and nodes of every vhost, and
/// nothing that reveals or changes definitions; the same answers as RabbitMQ's.
#[tokio::test]
async fn a_monitoring_user_reads_connections_and_nodes_but_not_users() {
    let server = Server::start().await;
    let rabbit = rabbitmq().await;
    let user = unique_name("watcher");
    let body = r#"{"password":"pw","tags":"monitoring"}"#;
    let mut sides = vec![(server.addr, ("guest".to_owned(), "guest".to_owned()))];
    sides.extend(rabbit.as_ref().map(|r| (r.addr, (r.user.clone(), r.password.clone()))));
    for (addr, (admin, password)) in sides {
        let created = raw(addr, "PUT", &format!("/api/users/{user}"), Some((&admin, &password)), Some(body)).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let statuses: Vec<(&str, u16)> = {
            let mut out = Vec::new();
            for path in ["/api/connections", "/api/channels", "/api/consumers", "/api/nodes", "/api/users"] {
                out.push((path, raw(addr, "GET", path, Some((&user, "pw")), None).await.status));
            }
            out
        };
        let expected = [
            ("/api/connections", 200),
            ("/api/channels", 200),
            ("/api/consumers", 200),
            ("/api/nodes", 200),
            ("/api/users", 401),
        ];
        assert_eq!(statuses, expected, "at {addr}");
        raw(addr, "DELETE", &format!("/api/users/{user}"), Some((&admin, &password)), None).await;
    }
    server.stop().await;
}
