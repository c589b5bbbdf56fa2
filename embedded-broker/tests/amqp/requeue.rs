//! Where a requeued message goes, on every requeue path (reject, nack, recover, a closed channel or
//! connection, a cancelled consumer's channel), with priorities and with several consumers.
//!
//! RabbitMQ's classic queues put a requeued message back at its original place among the ready
//! messages of its priority, by publish order, whatever order the messages come back in; quorum
//! queues serve returned messages first, in the order they were returned. Every check reads the
//! queue back with `basic.get` on the channel that requeued (so RabbitMQ has handled the requeue
//! first) or after waiting for the ready count.

use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};

use crate::util::*;

/// A queue flavour and the priorities its six messages `m1`..`m6` are published with.
struct Flavour {
    name: &'static str,
    arguments: &'static [(&'static str, i64)],
    priorities: [Option<u8>; 6],
}

/// A plain classic queue, and a priority queue whose consumers and `basic.get` see the messages
/// as `m1 m2` (priority 5) then `m3`..`m6` (priority 1), so a level holds messages from both
/// halves of a delivery.
const CLASSIC: [Flavour; 2] = [
    Flavour { name: "classic", arguments: &[], priorities: [None; 6] },
    Flavour {
        name: "priority",
        arguments: &[("x-max-priority", 10)],
        priorities: [Some(5), Some(5), Some(1), Some(1), Some(1), Some(1)],
    },
];

fn table(pairs: &[(&str, i64)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), AMQPValue::LongLongInt(*v));
    }
    t
}

/// Declares `q` on a channel in confirm mode.
async fn declare_with(ch: &Channel, q: &str, arguments: FieldTable, durable: bool) {
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    ch.queue_declare(q.into(), QueueDeclareOptions { durable, ..Default::default() }, arguments)
        .await
        .expect("queue.declare");
}

/// `m1`..`m6` with `priorities`.
async fn publish_six(ch: &Channel, q: &str, priorities: [Option<u8>; 6]) {
    let names = ["m1", "m2", "m3", "m4", "m5", "m6"];
    let messages: Vec<(&str, Option<u8>)> = names.into_iter().zip(priorities).collect();
    publish_all(ch, q, &messages).await;
}

/// A connection, a channel in confirm mode and a fresh queue of the flavour holding `m1`..`m6`.
async fn six_in(t: &Target, flavour: &Flavour, prefix: &str) -> (Connection, Channel, String) {
    let (conn, ch) = t.channel().await;
    let q = unique(prefix);
    declare_with(&ch, &q, table(flavour.arguments), false).await;
    publish_six(&ch, &q, flavour.priorities).await;
    (conn, ch, q)
}

/// `basic.get` with manual acks until the queue is empty.
async fn get_all(ch: &Channel, q: &str) -> Vec<Delivery> {
    let mut out = Vec::new();
    while let Some(m) = timeout(ch.basic_get(q.into(), BasicGetOptions::default()), "basic.get").await.expect("get") {
        out.push(m.delivery);
    }
    out
}

/// Bodies in order, a `*` marking a redelivery.
fn bodies(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| format!("{}{}", String::from_utf8_lossy(&d.data), if d.redelivered { "*" } else { "" }))
        .collect()
}

/// The bodies of `first` again, each marked redelivered: publish order within each priority.
fn redelivered(first: &[Delivery]) -> Vec<String> {
    first.iter().map(|d| format!("{}*", String::from_utf8_lossy(&d.data))).collect()
}

async fn reject(d: &Delivery) {
    d.reject(BasicRejectOptions { requeue: true }).await.expect("basic.reject");
}

/// Waits for `n` deliveries of a consumer.
async fn take(consumer: &mut lapin::Consumer, n: usize) -> Vec<Delivery> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(next(consumer).await);
    }
    out
}

async fn bye(conn: Connection) {
    let _ = conn.close(200, "bye".into()).await;
}

/// kombu's `test_publish_requeue_consume`: consumed without acks, the consumer cancelled, each
/// message rejected with requeue in delivery order, then one more message of the highest priority.
#[tokio::test]
async fn priority_queue_puts_rejected_messages_back_in_publish_order_within_their_priority() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("requeue-kombu");
        declare_with(&ch, &q, table(&[("x-max-priority", 10)]), false).await;
        publish_all(&ch, &q, &[("first", Some(3)), ("second", Some(6)), ("third", Some(3))]).await;
        let mut consumer = consume(&ch, &q).await;
        let got = take(&mut consumer, 3).await;
        assert_eq!(bodies(&got), ["second", "first", "third"], "[{}] priority order", t.name);
        ch.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await.expect("basic.cancel");
        for d in &got {
            reject(d).await;
        }
        publish_all(&ch, &q, &[("fourth", Some(9))]).await;
        let mut consumer = consume(&ch, &q).await;
        let again = take(&mut consumer, 4).await;
        assert_eq!(
            bodies(&again),
            ["fourth", "second*", "first*", "third*"],
            "[{}] a requeued message returns to its place among the messages of its priority",
            t.name
        );
        delete(&ch, &q).await;
        bye(conn).await;
        t.stop().await;
    }
}

#[tokio::test]
async fn rejections_in_any_order_put_messages_back_in_publish_order() {
    for t in targets().await {
        for flavour in &CLASSIC {
            let (conn, ch, q) = six_in(&t, flavour, "requeue-reject").await;
            let first = get_all(&ch, &q).await;
            assert_eq!(first.len(), 6, "[{}] {} six messages", t.name, flavour.name);
            for i in [2, 0, 4, 1, 5, 3] {
                reject(&first[i]).await;
            }
            let again = get_all(&ch, &q).await;
            assert_eq!(bodies(&again), redelivered(&first), "[{}] {}: rejected 3,1,5,2,6,4", t.name, flavour.name);
            for i in (0..6).rev() {
                reject(&again[i]).await;
            }
            let third = get_all(&ch, &q).await;
            assert_eq!(bodies(&third), redelivered(&first), "[{}] {}: rejected 6..1", t.name, flavour.name);
            delete(&ch, &q).await;
            bye(conn).await;
        }
        t.stop().await;
    }
}

#[tokio::test]
async fn nack_multiple_and_recover_put_messages_back_in_publish_order() {
    for t in targets().await {
        for flavour in &CLASSIC {
            let (conn, ch, q) = six_in(&t, flavour, "requeue-nack").await;
            let first = get_all(&ch, &q).await;
            // The fifth alone, then the first four with one multiple nack, then the sixth.
            reject(&first[4]).await;
            first[3].nack(BasicNackOptions { multiple: true, requeue: true }).await.expect("basic.nack");
            reject(&first[5]).await;
            let again = get_all(&ch, &q).await;
            assert_eq!(bodies(&again), redelivered(&first), "[{}] {}: reject, nack multiple", t.name, flavour.name);
            // The fourth and second alone, then basic.recover for the other four.
            reject(&again[3]).await;
            reject(&again[1]).await;
            ch.basic_recover(BasicRecoverOptions { requeue: true }).await.expect("basic.recover");
            let third = get_all(&ch, &q).await;
            assert_eq!(bodies(&third), redelivered(&first), "[{}] {}: reject, recover", t.name, flavour.name);
            delete(&ch, &q).await;
            bye(conn).await;
        }
        t.stop().await;
    }
}

/// A closed channel's unacked messages and those rejected before go back together in publish
/// order; so do those of a consumer cancelled before its channel closed (cancelling alone requeues
/// nothing).
#[tokio::test]
async fn a_closed_channel_puts_its_unacked_messages_back_in_publish_order() {
    for t in targets().await {
        for flavour in &CLASSIC {
            let (conn, ch, q) = six_in(&t, flavour, "requeue-close").await;
            let cch = conn.create_channel().await.expect("channel");
            let mut consumer = consume(&cch, &q).await;
            let got = take(&mut consumer, 6).await;
            cch.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await.expect("basic.cancel");
            assert!(
                timeout(ch.basic_get(q.as_str().into(), BasicGetOptions::default()), "basic.get")
                    .await
                    .expect("get")
                    .is_none(),
                "[{}] {}: a cancelled consumer's messages stay unacked",
                t.name,
                flavour.name
            );
            reject(&got[3]).await;
            reject(&got[1]).await;
            cch.close(200, "bye".into()).await.expect("channel.close");
            wait_for_ready(&ch, &q, 6, "six messages back").await;
            let again = get_all(&ch, &q).await;
            assert_eq!(bodies(&again), redelivered(&got), "[{}] {}: reject 4, 2, close", t.name, flavour.name);
            delete(&ch, &q).await;
            bye(conn).await;
        }
        t.stop().await;
    }
}

/// Two consumers share the messages; the one holding the earlier messages leaves first, by closing
/// its channel and then by closing its connection.
#[tokio::test]
async fn several_consumers_leaving_put_messages_back_in_publish_order() {
    for t in targets().await {
        for flavour in &CLASSIC {
            for by_connection in [false, true] {
                let how = if by_connection { "connection" } else { "channel" };
                let (conn, ch, q) = six_in(&t, flavour, "requeue-consumers").await;
                let (conn1, ch1) = t.channel().await;
                let (conn2, ch2) = t.channel().await;
                let mut taken = Vec::new();
                for consumer_ch in [&ch1, &ch2] {
                    consumer_ch.basic_qos(3, BasicQosOptions::default()).await.expect("basic.qos");
                    let mut consumer = consume(consumer_ch, &q).await;
                    taken.extend(take(&mut consumer, 3).await);
                }
                if by_connection {
                    bye(conn1).await;
                    bye(conn2).await;
                } else {
                    ch1.close(200, "bye".into()).await.expect("channel.close");
                    ch2.close(200, "bye".into()).await.expect("channel.close");
                    bye(conn1).await;
                    bye(conn2).await;
                }
                wait_for_ready(&ch, &q, 6, "six messages back").await;
                let again = get_all(&ch, &q).await;
                assert_eq!(
                    bodies(&again),
                    redelivered(&taken),
                    "[{}] {}: first consumer's {how} closed, then the second's",
                    t.name,
                    flavour.name
                );
                delete(&ch, &q).await;
                bye(conn).await;
            }
        }
        t.stop().await;
    }
}

/// Two consumers share the messages, are cancelled, and hand theirs back while their channels stay
/// open: the later messages first (rejected one by one in reverse, or nacked together), then the
/// earlier ones (nacked with `multiple`, or `basic.recover`). Whatever the order of the returns,
/// the queue holds them in publish order (within their priority).
#[tokio::test]
async fn several_consumers_returning_by_reject_nack_and_recover_put_messages_back_in_publish_order() {
    for t in targets().await {
        for flavour in &CLASSIC {
            for variant in ["reject each, then nack multiple", "nack multiple, then recover"] {
                let (conn, ch, q) = six_in(&t, flavour, "requeue-returns").await;
                let (conn1, ch1) = t.channel().await;
                let (conn2, ch2) = t.channel().await;
                let mut held = Vec::new();
                for consumer_ch in [&ch1, &ch2] {
                    consumer_ch.basic_qos(3, BasicQosOptions::default()).await.expect("basic.qos");
                    let mut consumer = consume(consumer_ch, &q).await;
                    let got = take(&mut consumer, 3).await;
                    consumer_ch.basic_cancel(consumer.tag(), BasicCancelOptions::default()).await.expect("cancel");
                    held.push(got);
                }
                let (earlier, later) = (&held[0], &held[1]);
                if variant.starts_with("reject") {
                    for d in later.iter().rev() {
                        reject(d).await;
                    }
                    earlier[2].nack(BasicNackOptions { multiple: true, requeue: true }).await.expect("basic.nack");
                } else {
                    later[2].nack(BasicNackOptions { multiple: true, requeue: true }).await.expect("basic.nack");
                    ch1.basic_recover(BasicRecoverOptions { requeue: true }).await.expect("basic.recover");
                }
                wait_for_ready(&ch, &q, 6, "six messages back").await;
                let again = get_all(&ch, &q).await;
                let taken: Vec<String> = held.iter().flat_map(|h| redelivered(h)).collect();
                assert_eq!(bodies(&again), taken, "[{}] {}: {variant}", t.name, flavour.name);
                delete(&ch, &q).await;
                bye(conn1).await;
                bye(conn2).await;
                bye(conn).await;
            }
        }
        t.stop().await;
    }
}

/// `x-overflow: drop-head` applies to what a requeue brings back: the head goes, here the requeued
/// message itself, dead-lettered as `maxlen`.
#[tokio::test]
async fn a_requeue_past_max_length_drops_the_head() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("requeue-maxlen");
        let dlq = unique("requeue-maxlen-dl");
        declare(&ch, &dlq, FieldTable::default()).await;
        let mut arguments = table(&[("x-max-length", 2)]);
        arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        arguments.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(dlq.as_str().into()));
        declare_with(&ch, &q, arguments, false).await;
        publish_all(&ch, &q, &[("m1", None), ("m2", None)]).await;
        let m1 = timeout(ch.basic_get(q.as_str().into(), BasicGetOptions::default()), "basic.get")
            .await
            .expect("get")
            .expect("m1");
        publish_all(&ch, &q, &[("m3", None)]).await;
        reject(&m1.delivery).await;
        let left = get_all(&ch, &q).await;
        assert_eq!(bodies(&left), ["m2", "m3"], "[{}] the requeued head was dropped", t.name);
        wait_for_ready(&ch, &dlq, 1, "the dropped message dead-lettered").await;
        let dropped = get_all(&ch, &dlq).await;
        assert_eq!(bodies(&dropped), ["m1"], "[{}] dead-lettered", t.name);
        let headers = dropped[0].properties.headers().clone().unwrap_or_default();
        let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
            panic!("[{}] x-death missing: {headers:?}", t.name)
        };
        let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else { panic!("[{}] x-death", t.name) };
        assert_eq!(death.inner().get("reason"), Some(&AMQPValue::LongString("maxlen".into())), "[{}]", t.name);
        delete(&ch, &q).await;
        delete(&ch, &dlq).await;
        bye(conn).await;
        t.stop().await;
    }
}

/// A quorum queue serves returned messages before the others, in the order they were returned.
#[tokio::test]
async fn quorum_queue_serves_returned_messages_first_in_the_order_they_were_returned() {
    for t in targets().await {
        let (conn, ch) = t.channel().await;
        let q = unique("requeue-quorum");
        let mut arguments = FieldTable::default();
        arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        declare_with(&ch, &q, arguments, true).await;
        publish_six(&ch, &q, [None; 6]).await;
        wait_for_ready(&ch, &q, 6, "six messages queued").await;
        let first = get_all(&ch, &q).await;
        assert_eq!(bodies(&first), ["m1", "m2", "m3", "m4", "m5", "m6"], "[{}] FIFO", t.name);
        for i in [2, 0, 4] {
            reject(&first[i]).await;
        }
        publish_all(&ch, &q, &[("m7", None)]).await;
        wait_for_ready(&ch, &q, 4, "three returned and one new").await;
        let again = get_all(&ch, &q).await;
        assert_eq!(bodies(&again), ["m3*", "m1*", "m5*", "m7"], "[{}] returns first, as returned", t.name);
        for i in (0..4).rev() {
            reject(&again[i]).await;
        }
        wait_for_ready(&ch, &q, 4, "four returned").await;
        let third = get_all(&ch, &q).await;
        assert_eq!(bodies(&third), ["m7*", "m5*", "m1*", "m3*"], "[{}] returned backwards", t.name);
        delete(&ch, &q).await;
        bye(conn).await;
        t.stop().await;
    }
}
