//! Exchange types, exchange-to-exchange bindings, alternate and internal exchanges, declare rules.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};

use crate::util::*;

/// Declares a durable exchange of `kind` with no arguments.
async fn declare_exchange(ch: &Channel, name: &str, kind: ExchangeKind) {
    ch.exchange_declare(name.into(), kind, ExchangeDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap_or_else(|e| panic!("declaring exchange {name}: {e}"));
}

/// Declares an exclusive server-named queue bound to `exchange` with each key; returns its name.
async fn bound_queue(ch: &Channel, exchange: &str, keys: &[&str], args: FieldTable) -> String {
    let q = ch
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default())
        .await
        .expect("declare");
    for key in keys {
        ch.queue_bind(q.name().clone(), exchange.into(), (*key).into(), QueueBindOptions::default(), args.clone())
            .await
            .expect("bind");
    }
    q.name().as_str().to_owned()
}

/// Publishes with confirms (so routing is done when it returns) and then drains the queue with
/// basic.get, returning the bodies received.
async fn publish_confirmed(ch: &Channel, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
    let confirm = ch
        .basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props)
        .await
        .expect("publish");
    timeout(confirm, "confirm").await.expect("confirmed");
}

async fn drain(ch: &Channel, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(m) = ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.expect("get") {
        out.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
    }
    out
}

#[tokio::test]
async fn topic_exchange_matches_star_hash_empty_words_and_empty_key() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let x = unique("topic");
        declare_exchange(&ch, &x, ExchangeKind::Topic).await;
        let star = bound_queue(&ch, &x, &["a.*.c"], FieldTable::default()).await;
        let hash = bound_queue(&ch, &x, &["a.#"], FieldTable::default()).await;
        let all = bound_queue(&ch, &x, &["#"], FieldTable::default()).await;
        let empty = bound_queue(&ch, &x, &[""], FieldTable::default()).await;
        let one = bound_queue(&ch, &x, &["*"], FieldTable::default()).await;
        for key in ["a.b.c", "a", "a..c", "", "x", "a.b.c.d"] {
            publish_confirmed(&ch, &x, key, key.as_bytes(), BasicProperties::default()).await;
        }
        assert_eq!(drain(&ch, &star).await, ["a.b.c", "a..c"], "[{}] a.*.c", t.name);
        assert_eq!(drain(&ch, &hash).await, ["a.b.c", "a", "a..c", "a.b.c.d"], "[{}] a.#", t.name);
        assert_eq!(drain(&ch, &all).await, ["a.b.c", "a", "a..c", "", "x", "a.b.c.d"], "[{}] #", t.name);
        assert_eq!(drain(&ch, &empty).await, [""], "[{}] empty binding key", t.name);
        assert_eq!(drain(&ch, &one).await, ["a", "x"], "[{}] *", t.name);
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await.expect("delete");
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn headers_exchange_all_any_and_with_x_variants() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let x = unique("headers");
        declare_exchange(&ch, &x, ExchangeKind::Headers).await;
        let table = |mode: &str, pairs: &[(&str, &str)]| {
            let mut t = FieldTable::default();
            t.insert("x-match".into(), AMQPValue::LongString(mode.into()));
            for (k, v) in pairs {
                t.insert((*k).into(), AMQPValue::LongString((*v).into()));
            }
            t
        };
        let all = bound_queue(&ch, &x, &[""], table("all", &[("a", "1"), ("b", "2")])).await;
        let any = bound_queue(&ch, &x, &[""], table("any", &[("a", "1"), ("b", "2")])).await;
        let any_x = bound_queue(&ch, &x, &[""], table("any-with-x", &[("x-tag", "t")])).await;
        let any_plain = bound_queue(&ch, &x, &[""], table("any", &[("x-tag", "t")])).await;
        let send = |pairs: &'static [(&'static str, &'static str)], body: &'static str| {
            let ch = ch.clone();
            let x = x.clone();
            async move {
                let mut h = FieldTable::default();
                for (k, v) in pairs {
                    h.insert((*k).into(), AMQPValue::LongString((*v).into()));
                }
                publish_confirmed(&ch, &x, "", body.as_bytes(), BasicProperties::default().with_headers(h)).await;
            }
        };
        send(&[("a", "1"), ("b", "2")], "both").await;
        send(&[("a", "1")], "only-a").await;
        send(&[("x-tag", "t")], "x-tag").await;
        assert_eq!(drain(&ch, &all).await, ["both"], "[{}] x-match all", t.name);
        assert_eq!(drain(&ch, &any).await, ["both", "only-a"], "[{}] x-match any", t.name);
        assert_eq!(drain(&ch, &any_x).await, ["x-tag"], "[{}] any-with-x considers x- headers", t.name);
        assert!(drain(&ch, &any_plain).await.is_empty(), "[{}] plain any ignores x- headers", t.name);
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await.expect("delete");
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn fanout_exchange_to_exchange_binding_and_alternate_exchange() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        let fan = unique("fanout");
        let direct = unique("direct");
        let ae = unique("ae");
        declare_exchange(&ch, &fan, ExchangeKind::Fanout).await;
        let mut args = FieldTable::default();
        args.insert("alternate-exchange".into(), AMQPValue::LongString(fan.as_str().into()));
        ch.exchange_declare(ae.as_str().into(), ExchangeKind::Direct, ExchangeDeclareOptions::default(), args)
            .await
            .expect("declare with alternate-exchange");
        declare_exchange(&ch, &direct, ExchangeKind::Direct).await;
        ch.exchange_bind(
            fan.as_str().into(),
            direct.as_str().into(),
            "k".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange.bind");
        let q1 = bound_queue(&ch, &fan, &["ignored"], FieldTable::default()).await;
        let q2 = bound_queue(&ch, &fan, &[""], FieldTable::default()).await;
        let routed = bound_queue(&ch, &ae, &["known"], FieldTable::default()).await;
        publish_confirmed(&ch, &direct, "k", b"via-e2e", BasicProperties::default()).await;
        publish_confirmed(&ch, &direct, "other", b"dropped", BasicProperties::default()).await;
        publish_confirmed(&ch, &ae, "known", b"routed", BasicProperties::default()).await;
        publish_confirmed(&ch, &ae, "unknown", b"to-ae", BasicProperties::default()).await;
        assert_eq!(drain(&ch, &q1).await, ["via-e2e", "to-ae"], "[{}] fanout queue 1", t.name);
        assert_eq!(drain(&ch, &q2).await, ["via-e2e", "to-ae"], "[{}] fanout queue 2", t.name);
        assert_eq!(drain(&ch, &routed).await, ["routed"], "[{}] routed normally", t.name);
        ch.exchange_unbind(
            fan.as_str().into(),
            direct.as_str().into(),
            "k".into(),
            ExchangeUnbindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange.unbind");
        publish_confirmed(&ch, &direct, "k", b"after-unbind", BasicProperties::default()).await;
        assert!(drain(&ch, &q1).await.is_empty(), "[{}] unbound", t.name);
        for x in [&fan, &direct, &ae] {
            ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await.expect("delete");
        }
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn declare_rules_inequivalent_406_reserved_403_passive_404_internal_403() {
    for t in targets().await {
        let conn = t.connect().await;
        let ch = conn.create_channel().await.expect("channel");
        let x = unique("decl");
        declare_exchange(&ch, &x, ExchangeKind::Direct).await;
        // Redeclaring the same is fine; amq.* predeclared exchanges can be redeclared durable.
        declare_exchange(&ch, &x, ExchangeKind::Direct).await;
        ch.exchange_declare(
            "amq.topic".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("amq.topic is durable");
        let err = ch
            .exchange_declare(
                x.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect_err("type differs");
        assert_eq!(code(&err), Some(406), "[{}] inequivalent type: {err}", t.name);
        assert!(text(&err).contains("inequivalent arg 'type'"), "[{}] {}", t.name, text(&err));

        let ch = conn.create_channel().await.expect("the connection survives a channel error");
        let err = ch
            .exchange_declare(
                unique("amq.mine").replacen("warren-test.", "amq.", 1).as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect_err("reserved prefix");
        assert_eq!(code(&err), Some(403), "[{}] amq. prefix: {err}", t.name);

        let ch = conn.create_channel().await.expect("channel");
        let err = ch
            .exchange_declare(
                unique("missing").as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect_err("passive on missing");
        assert_eq!(code(&err), Some(404), "[{}] passive: {err}", t.name);

        let (code_, text_) = crate::raw::publish_error(&t.addr, "amq.rabbitmq.trace", "k", Default::default()).await;
        assert_eq!(code_, 403, "[{}] internal exchange: {text_}", t.name);
        let (code_, text_) = crate::raw::publish_error(&t.addr, &unique("nope"), "k", Default::default()).await;
        assert_eq!(code_, 404, "[{}] publish to a missing exchange: {text_}", t.name);
        assert!(text_.starts_with("NOT_FOUND - no exchange"), "[{}] {text_}", t.name);
        let ch = conn.create_channel().await.expect("channel");
        let q = bound_queue(&ch, &x, &["k"], FieldTable::default()).await;
        let err = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions { if_unused: true, ..Default::default() })
            .await
            .expect_err("in use");
        assert_eq!(code(&err), Some(406), "[{}] delete if-unused: {err}", t.name);
        let ch = conn.create_channel().await.expect("channel");
        ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await.expect("delete queue");
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await.expect("delete");
        let _ = conn.close(200, "bye".into()).await;
        t.stop().await;
    }
}
