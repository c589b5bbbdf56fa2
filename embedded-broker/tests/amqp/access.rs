//! Access control a logged-in client meets: topic permissions on publish and bind, and the order
//! of the checks on publish. Users are created through the management API (both brokers have it)
//! and deleted again, also when a check fails.

use std::future::Future;

use amq_protocol::protocol::BasicProperties as RawProperties;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::raw::publish_error_as;
use crate::util::*;

/// Configure, write and read patterns granting everything.
const ALL: [&str; 3] = [".*", ".*", ".*"];

/// Creates `user` (password `pw`) with `permissions` (configure, write, read) on `/` and the topic
/// permissions given as (exchange, write pattern, read pattern).
async fn create_user(name: &str, http: &str, user: &str, permissions: [&str; 3], topic: &[(&str, &str, &str)]) {
    let body = r#"{"password":"pw","tags":""}"#;
    let (status, text) = management(http, "PUT", &format!("/api/users/{user}"), Some(body)).await;
    assert_eq!(status, 201, "[{name}] create user: {text}");
    let [configure, write, read] = permissions;
    let permissions = serde_json::json!({"configure": configure, "write": write, "read": read}).to_string();
    let (status, text) = management(http, "PUT", &format!("/api/permissions/%2F/{user}"), Some(&permissions)).await;
    assert_eq!(status, 201, "[{name}] permissions: {text}");
    for (i, (exchange, write, read)) in topic.iter().enumerate() {
        let permission = serde_json::json!({"exchange": exchange, "write": write, "read": read}).to_string();
        let (status, text) =
            management(http, "PUT", &format!("/api/topic-permissions/%2F/{user}"), Some(&permission)).await;
        // RabbitMQ answers "created" only for the user's first topic permission in the vhost.
        let expected = if i == 0 { 201 } else { 204 };
        assert_eq!(status, expected, "[{name}] topic permission on {exchange}: {text}");
    }
}

/// Runs `checks` with a fresh user name on `t`, then deletes that user and the `exchanges` of `/`
/// through the management API whatever happened (404 for what was never created), and re-raises
/// a failed check.
async fn with_user<F, Fut>(t: &Target, prefix: &str, exchanges: &[&str], checks: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let user = unique(prefix);
    let outcome = tokio::spawn(checks(user.clone())).await;
    let _ = management(&t.http, "DELETE", &format!("/api/users/{user}"), None).await;
    for x in exchanges {
        let _ = management(&t.http, "DELETE", &format!("/api/exchanges/%2F/{x}"), None).await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Declares a fresh exclusive queue named after `prefix`: gone with the connection even when a
/// check fails.
async fn exclusive_queue(ch: &Channel, prefix: &str) -> String {
    let q = unique(prefix);
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .expect("queue.declare");
    q
}

/// RabbitMQ's refusal of a routing key by a topic permission, on publish and on bind alike.
fn topic_refusal(key: &str, exchange: &str, user: &str) -> String {
    format!("ACCESS_REFUSED - access to topic '{key}' in exchange '{exchange}' in vhost '/' refused for user '{user}'")
}

#[tokio::test]
async fn topic_permissions_limit_the_routing_keys_a_user_may_publish_with() {
    for t in targets_with_management().await {
        let (http, addr, name) = (t.http.clone(), t.addr.clone(), t.name);
        with_user(&t, "topic-user", &[], |user| {
            let url = t.url_with(&user, "pw", "%2f");
            async move {
                // `{username}` and `{vhost}` are expanded in the pattern before it is matched; the
                // braces are literal for RabbitMQ's PCRE when no variable matches.
                let topic = r"^allowed\..*|^{username}\.|^vhost-{vhost}$|^{other}$";
                create_user(name, &http, &user, ALL, &[("amq.topic", topic, ".*"), ("amq.direct", "^$", ".*")]).await;
                check_topic_publishes(name, &addr, &url, &user).await;
            }
        })
        .await;
        t.stop().await;
    }
}

async fn check_topic_publishes(name: &str, addr: &str, url: &str, user: &str) {
    let conn = timeout(Connection::connect(url, ConnectionProperties::default()), "connect").await.expect("login");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let q = exclusive_queue(&ch, "topic-perm").await;
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
        assert_eq!((code, text), (403, topic_refusal(key, "amq.topic", user)), "[{name}] '{key}'");
    }
    assert_eq!(ready(&ch, &q).await, Some(4), "[{name}] nothing refused was routed");
    delete(&ch, &q).await;
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn topic_read_permissions_limit_the_keys_a_user_may_bind_and_unbind_with() {
    for t in targets_with_management().await {
        let (http, name) = (t.http.clone(), t.name);
        let destination = unique("bind-destination");
        let exchanges = [destination.as_str()];
        with_user(&t, "bind-user", &exchanges, |user| {
            let url = t.url_with(&user, "pw", "%2f");
            let destination = destination.clone();
            async move {
                // Read patterns are checked on binding keys; write patterns play no part.
                let topic = [("amq.topic", "^$", r"^news\.|^{username}$"), ("amq.direct", "^$", "^$")];
                create_user(name, &http, &user, ALL, &topic).await;
                check_topic_binds(name, &url, &user, &destination).await;
            }
        })
        .await;
        t.stop().await;
    }
}

async fn check_topic_binds(name: &str, url: &str, user: &str, destination: &str) {
    let conn = timeout(Connection::connect(url, ConnectionProperties::default()), "connect").await.expect("login");
    let ch = conn.create_channel().await.expect("channel");
    let q = exclusive_queue(&ch, "topic-bind").await;
    ch.exchange_declare(
        destination.into(),
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.declare");
    let bind = |ch: Channel, source: &'static str, key: String| {
        let q = q.clone();
        async move {
            ch.queue_bind(
                q.as_str().into(),
                source.into(),
                key.as_str().into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
        }
    };
    let unbind = |ch: Channel, source: &'static str, key: String| {
        let q = q.clone();
        async move { ch.queue_unbind(q.as_str().into(), source.into(), key.as_str().into(), FieldTable::default()).await }
    };
    for key in ["news.#", user] {
        bind(ch.clone(), "amq.topic", key.to_owned()).await.unwrap_or_else(|e| panic!("[{name}] bind '{key}': {e}"));
        unbind(ch.clone(), "amq.topic", key.to_owned())
            .await
            .unwrap_or_else(|e| panic!("[{name}] unbind '{key}': {e}"));
    }
    // Topic permissions apply to topic exchanges only: amq.direct's "^$" is not checked.
    bind(ch.clone(), "amq.direct", "any".to_owned()).await.unwrap_or_else(|e| panic!("[{name}] direct: {e}"));
    let exchange_bind = |ch: Channel, key: &'static str| async move {
        ch.exchange_bind(destination.into(), "amq.topic".into(), key.into(), Default::default(), FieldTable::default())
            .await
    };
    let exchange_unbind = |ch: Channel, key: &'static str| async move {
        ch.exchange_unbind(
            destination.into(),
            "amq.topic".into(),
            key.into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
    };
    exchange_bind(ch.clone(), "news.x").await.unwrap_or_else(|e| panic!("[{name}] exchange.bind 'news.x': {e}"));

    // Each refusal closes its channel: every attempt gets a fresh one.
    let refused = |what: &str, result: lapin::Result<()>, key: &str| {
        let e = result.expect_err(&format!("[{name}] {what} '{key}' is refused"));
        assert_eq!((code(&e), text(&e)), (Some(403), topic_refusal(key, "amq.topic", user)), "[{name}] {what}");
    };
    for key in ["sport", "{username}", "news"] {
        let ch = conn.create_channel().await.expect("channel");
        refused("queue.bind", bind(ch, "amq.topic", key.to_owned()).await, key);
    }
    // Unbinding is checked too, before the missing binding would be a 404.
    let ch = conn.create_channel().await.expect("channel");
    refused("queue.unbind", unbind(ch, "amq.topic", "sport".to_owned()).await, "sport");
    let ch = conn.create_channel().await.expect("channel");
    refused("exchange.bind", exchange_bind(ch, "sport").await, "sport");
    let ch = conn.create_channel().await.expect("channel");
    refused("exchange.unbind", exchange_unbind(ch, "sport").await, "sport");
    // Permissions come before the queue lookup: a missing queue is refused, not a 404.
    let ch = conn.create_channel().await.expect("channel");
    let result = ch
        .queue_bind(
            unique("no-such-queue").as_str().into(),
            "amq.topic".into(),
            "sport".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await;
    refused("queue.bind to a missing queue", result, "sport");
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn publish_checks_permissions_and_the_exchange_before_user_id_and_expiration() {
    for t in targets_with_management().await {
        let (http, addr, name) = (t.http.clone(), t.addr.clone(), t.name);
        with_user(&t, "order-user", &[], |user| async move {
            let write = r"^amq\.(topic|direct|rabbitmq\.trace)$|^warren-test\.no-such-exchange$";
            create_user(name, &http, &user, [".*", write, ".*"], &[("amq.topic", "^allowed$", ".*")]).await;
            let wrong_user = RawProperties::default().with_user_id("someone-else".into());
            let bad_expiration = RawProperties::default().with_expiration("soon".into());
            let both = wrong_user.clone().with_expiration("soon".into());
            let write_refused =
                |x: &str| format!("ACCESS_REFUSED - access to exchange '{x}' in vhost '/' refused for user '{user}'");
            let user_id_refused = format!(
                "PRECONDITION_FAILED - user_id property set to 'someone-else' but authenticated user was '{user}'"
            );
            let cases = [
                // Write permission first.
                ("amq.fanout", "k", wrong_user.clone(), 403, write_refused("amq.fanout")),
                ("amq.fanout", "k", bad_expiration.clone(), 403, write_refused("amq.fanout")),
                // Then the exchange must exist and not be internal.
                (
                    "warren-test.no-such-exchange",
                    "k",
                    both.clone(),
                    404,
                    "NOT_FOUND - no exchange 'warren-test.no-such-exchange' in vhost '/'".to_owned(),
                ),
                (
                    "amq.rabbitmq.trace",
                    "k",
                    both.clone(),
                    403,
                    "ACCESS_REFUSED - cannot publish to internal exchange 'amq.rabbitmq.trace' in vhost '/'".to_owned(),
                ),
                // Then the topic permission.
                ("amq.topic", "forbidden", both.clone(), 403, topic_refusal("forbidden", "amq.topic", &user)),
                // Then user_id, before expiration.
                ("amq.topic", "allowed", both.clone(), 406, user_id_refused.clone()),
                ("amq.direct", "k", both, 406, user_id_refused),
                (
                    "amq.direct",
                    "k",
                    bad_expiration,
                    406,
                    "PRECONDITION_FAILED - invalid expiration 'soon': no_integer".to_owned(),
                ),
            ];
            for (exchange, key, properties, code, text) in cases {
                let got = publish_error_as(&addr, (&user, "pw"), exchange, key, properties).await;
                assert_eq!(got, (code, text), "[{name}] publish to '{exchange}' with '{key}'");
            }
        })
        .await;
        t.stop().await;
    }
}

#[tokio::test]
async fn binding_to_the_default_exchange_checks_write_permission_on_the_queue_first() {
    for t in targets_with_management().await {
        let (http, name) = (t.http.clone(), t.name);
        with_user(&t, "default-bind-user", &[], |user| {
            let url = t.url_with(&user, "pw", "%2f");
            async move {
                // May declare queues, may write nowhere.
                create_user(name, &http, &user, [".*", "^$", ".*"], &[]).await;
                let conn = timeout(Connection::connect(&url, ConnectionProperties::default()), "connect")
                    .await
                    .expect("login");
                let q = exclusive_queue(&conn.create_channel().await.expect("channel"), "default-bind").await;
                let refused = format!("ACCESS_REFUSED - access to queue '{q}' in vhost '/' refused for user '{user}'");
                let ch = conn.create_channel().await.expect("channel");
                let bind = ch
                    .queue_bind(q.as_str().into(), "".into(), "k".into(), Default::default(), FieldTable::default())
                    .await
                    .expect_err("binding to the default exchange is refused");
                assert_eq!((code(&bind), text(&bind)), (Some(403), refused.clone()), "[{name}] queue.bind");
                let ch = conn.create_channel().await.expect("channel");
                let unbind = ch
                    .queue_unbind(q.as_str().into(), "".into(), "k".into(), FieldTable::default())
                    .await
                    .expect_err("unbinding from the default exchange is refused");
                assert_eq!((code(&unbind), text(&unbind)), (Some(403), refused), "[{name}] queue.unbind");
                let _ = conn.close(200, "bye".into()).await;
            }
        })
        .await;
        t.stop().await;
    }
}

#[tokio::test]
async fn changed_and_removed_permissions_reach_channels_that_already_published() {
    for t in targets_with_management().await {
        let (http, name, embedded) = (t.http.clone(), t.name, t.broker.is_some());
        with_user(&t, "changed-user", &[], |user| {
            let url = t.url_with(&user, "pw", "%2f");
            async move {
                create_user(name, &http, &user, ALL, &[("amq.topic", ".*", ".*")]).await;
                let conn = timeout(Connection::connect(&url, ConnectionProperties::default()), "connect")
                    .await
                    .expect("login");
                let (direct, topic, removed) = (publisher(&conn).await, publisher(&conn).await, publisher(&conn).await);
                published(name, &direct, "amq.direct", "k").await;
                published(name, &topic, "amq.topic", "news").await;
                let last_published = epoch_millis_now();

                // Changed: the user may write to amq.topic only, and there only with "sport".
                let write = serde_json::json!({"configure": ".*", "write": r"^amq\.topic$", "read": ".*"}).to_string();
                let (status, text) =
                    management(&http, "PUT", &format!("/api/permissions/%2F/{user}"), Some(&write)).await;
                assert_eq!(status, 204, "[{name}] change permissions: {text}");
                let sport = r#"{"exchange":"amq.topic","write":"^sport$","read":".*"}"#;
                let (status, text) =
                    management(&http, "PUT", &format!("/api/topic-permissions/%2F/{user}"), Some(sport)).await;
                assert_eq!(status, 204, "[{name}] change topic permissions: {text}");
                // Allowed under the new rules, and cached by this channel under them.
                published(name, &removed, "amq.topic", "sport").await;
                let removed_published = epoch_millis_now();
                wait_until_rechecked(embedded, &http, &user, &[direct.id(), topic.id()], last_published).await;
                let write_refused = |x: &str| {
                    format!("ACCESS_REFUSED - access to exchange '{x}' in vhost '/' refused for user '{user}'")
                };
                assert_eq!(
                    refused(&direct, "amq.direct", "k").await,
                    (Some(403), write_refused("amq.direct")),
                    "[{name}]"
                );
                let topic_refused = topic_refusal("news", "amq.topic", &user);
                assert_eq!(refused(&topic, "amq.topic", "news").await, (Some(403), topic_refused), "[{name}]");

                // Removed: no permission in the vhost at all.
                let (status, text) = management(&http, "DELETE", &format!("/api/permissions/%2F/{user}"), None).await;
                assert_eq!(status, 204, "[{name}] remove permissions: {text}");
                wait_until_rechecked(embedded, &http, &user, &[removed.id()], removed_published).await;
                assert_eq!(
                    refused(&removed, "amq.topic", "sport").await,
                    (Some(403), write_refused("amq.topic")),
                    "[{name}]"
                );
                assert!(conn.status().connected(), "[{name}] refusals close channels, not the connection");
                let _ = conn.close(200, "bye".into()).await;
            }
        })
        .await;
        t.stop().await;
    }
}

/// A channel in confirm mode.
async fn publisher(conn: &Connection) -> Channel {
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    ch
}

/// Publishes on `ch` and checks the broker acks it.
async fn published(name: &str, ch: &Channel, exchange: &str, key: &str) {
    let confirm = ch
        .basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), b"x", BasicProperties::default())
        .await
        .expect("publish");
    let confirmation = timeout(confirm, "confirm").await.unwrap_or_else(|e| panic!("[{name}] '{exchange}': {e}"));
    assert!(confirmation.is_ack(), "[{name}] a publish to '{exchange}' with '{key}' is acked");
}

/// Publishes on `ch` and returns the code and text of the channel error that refuses it (the
/// pending confirm fails with them).
async fn refused(ch: &Channel, exchange: &str, key: &str) -> (Option<u16>, String) {
    let confirm = ch
        .basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), b"x", BasicProperties::default())
        .await
        .expect("publish");
    let e = timeout(confirm, "the refusal").await.expect_err("the publish is refused");
    (code(&e), text(&e))
}

/// Waits until a broker checks the permissions of `user`'s `channels` again, the channels having
/// last published before `since` (ms since the epoch). RabbitMQ keeps each channel's permission
/// checks cached until the channel hibernates, after about a second without work, and reports
/// that moment as the channel's `idle_since` in the management API (with its statistics, every
/// few seconds): once a channel has hibernated after its last publish, its next publish is
/// checked again. The embedded broker drops what its channels cached as soon as permissions
/// change: there the very next publish is refused, and nothing is waited for.
async fn wait_until_rechecked(embedded: bool, http: &str, user: &str, channels: &[u16], since: i64) {
    if embedded {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, body) = management(http, "GET", "/api/channels?columns=user,number,idle_since", None).await;
        let listed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let idle_after = |number: u16| {
            listed.as_array().into_iter().flatten().any(|c| {
                c["user"] == user
                    && c["number"] == number
                    && c["idle_since"].as_str().and_then(epoch_millis).is_some_and(|at| at > since)
            })
        };
        if channels.iter().all(|&n| idle_after(n)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "RabbitMQ's channels {channels:?} of {user} never went idle: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn epoch_millis_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after the epoch");
    i64::try_from(now.as_millis()).expect("a time in range")
}

/// Milliseconds since the epoch of a time as the management API shows it
/// (`2024-05-01T12:00:00.123+00:00`).
fn epoch_millis(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let split = time.find(['+', '-', 'Z'])?;
    let (clock, zone) = time.split_at(split);
    let mut hms = clock.splitn(3, ':');
    let (hour, minute) = (hms.next()?.parse::<i64>().ok()?, hms.next()?.parse::<i64>().ok()?);
    let seconds: f64 = hms.next()?.parse().ok()?;
    let offset_minutes = match zone.split_at(1) {
        ("Z", _) => 0,
        (sign, hm) => {
            let (h, m) = hm.split_once(':')?;
            let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
            if sign == "-" { -minutes } else { minutes }
        }
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let minutes = (days * 24 + hour) * 60 + minute - offset_minutes;
    Some(minutes * 60_000 + (seconds * 1000.0).round() as i64)
}
