//! Access control a logged-in client meets: topic permissions on publish. Users are created
//! through the management API (both brokers have it) and deleted again, also when a check fails.

use amq_protocol::protocol::BasicProperties as RawProperties;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::raw::publish_error_as;
use crate::util::*;

/// Creates `user` (password `pw`) with full permissions on `/` and the topic permissions given as
/// (exchange, write pattern) pairs.
async fn create_user(name: &str, http: &str, user: &str, topic: &[(&str, &str)]) {
    let body = r#"{"password":"pw","tags":""}"#;
    let (status, text) = management(http, "PUT", &format!("/api/users/{user}"), Some(body)).await;
    assert_eq!(status, 201, "[{name}] create user: {text}");
    let all = r#"{"configure":".*","write":".*","read":".*"}"#;
    let (status, text) = management(http, "PUT", &format!("/api/permissions/%2F/{user}"), Some(all)).await;
    assert_eq!(status, 201, "[{name}] permissions: {text}");
    for (i, (exchange, write)) in topic.iter().enumerate() {
        let permission = serde_json::json!({"exchange": exchange, "write": write, "read": ".*"}).to_string();
        let (status, text) =
            management(http, "PUT", &format!("/api/topic-permissions/%2F/{user}"), Some(&permission)).await;
        // RabbitMQ answers "created" only for the user's first topic permission in the vhost.
        let expected = if i == 0 { 201 } else { 204 };
        assert_eq!(status, expected, "[{name}] topic permission on {exchange}: {text}");
    }
}

#[tokio::test]
async fn topic_permissions_limit_the_routing_keys_a_user_may_publish_with() {
    for t in targets().await {
        let user = unique("topic-user");
        let (http, addr, url, name) = (t.http.clone(), t.addr.clone(), t.url_with(&user, "pw", "%2f"), t.name);
        let checks = tokio::spawn({
            let user = user.clone();
            async move {
                // `{username}` and `{vhost}` are expanded in the pattern before it is matched; the
                // braces are literal for RabbitMQ's PCRE when no variable matches.
                let topic = r"^allowed\..*|^{username}\.|^vhost-{vhost}$|^{other}$";
                create_user(name, &http, &user, &[("amq.topic", topic), ("amq.direct", "^$")]).await;
                check_topic_publishes(name, &addr, &url, &user).await;
            }
        })
        .await;
        // Deleted whatever happened above (404 when its creation failed).
        let _ = management(&t.http, "DELETE", &format!("/api/users/{user}"), None).await;
        if let Err(e) = checks {
            std::panic::resume_unwind(e.into_panic());
        }
        t.stop().await;
    }
}

async fn check_topic_publishes(name: &str, addr: &str, url: &str, user: &str) {
    let conn = timeout(Connection::connect(url, ConnectionProperties::default()), "connect").await.expect("login");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let q = unique("topic-perm");
    // Exclusive: gone with the connection even when a check below fails.
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .expect("queue.declare");
    ch.queue_bind(
        q.as_str().into(),
        "amq.topic".into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    let allowed = ["allowed.news", &format!("{user}.news"), "vhost-/", "{other}"];
    for key in allowed {
        let confirm = ch
            .basic_publish(
                "amq.topic".into(),
                key.into(),
                BasicPublishOptions::default(),
                b"ok",
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        assert!(timeout(confirm, "confirm").await.expect("confirmed").is_ack(), "[{name}] '{key}' may be published");
    }
    // Topic permissions apply to topic exchanges only: amq.direct's "^$" is not checked.
    let confirm = ch
        .basic_publish(
            "amq.direct".into(),
            "any".into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    assert!(timeout(confirm, "confirm").await.expect("confirmed").is_ack(), "[{name}] direct exchanges are unchecked");
    wait_for_ready(&ch, &q, 4, "the allowed messages").await;
    for key in ["forbidden.news", "allowed", "{username}.news", "vhost-{vhost}"] {
        let (code, text) = publish_error_as(addr, (user, "pw"), "amq.topic", key, RawProperties::default()).await;
        assert_eq!(
            (code, text.as_str()),
            (
                403,
                format!(
                    "ACCESS_REFUSED - access to topic '{key}' in exchange 'amq.topic' in vhost '/' refused for user '{user}'"
                )
                .as_str()
            ),
            "[{name}] '{key}'"
        );
    }
    assert_eq!(ready(&ch, &q).await, Some(4), "[{name}] nothing refused was routed");
    delete(&ch, &q).await;
    let _ = conn.close(200, "bye".into()).await;
}
