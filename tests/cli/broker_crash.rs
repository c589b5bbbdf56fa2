//! `kill -9` of a real `warren broker` process while a publisher with confirms and a consumer run:
//! after a restart on the same data directory every confirmed persistent message is there exactly
//! once, in order, acknowledged ones never come back, transient ones are gone.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::broker::Server;

const DEADLINE: Duration = Duration::from_secs(30);
/// The consumer's prefetch: at most this many deliveries are unacknowledged at once.
const PREFETCH: u16 = 20;

async fn channel(amqp: &str) -> (Connection, Channel) {
    let url = format!("amqp://guest:guest@{amqp}/%2f");
    let conn = tokio::time::timeout(DEADLINE, Connection::connect(&url, ConnectionProperties::default()))
        .await
        .expect("connect in time")
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    (conn, ch)
}

async fn declare(ch: &Channel, name: &str) -> u32 {
    ch.queue_declare(name.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await
        .expect("queue.declare")
        .message_count()
}

/// What the clients saw before the kill.
#[derive(Default)]
struct Seen {
    confirmed: BTreeSet<u64>,
    /// Acks sent: the broker may have handled them before it died, or not.
    ack_sent: BTreeSet<u64>,
    /// Acks the broker answered a later request after: handled for sure.
    acked: BTreeSet<u64>,
    delivered: BTreeSet<u64>,
}

fn number(data: &[u8]) -> u64 {
    String::from_utf8_lossy(data).parse().expect("a message number")
}

/// Publishes numbered persistent messages (every fourth to a second queue, transient) with a
/// window of confirms, while a consumer acknowledges what it gets up to `ack_until`, until
/// `kill_after` are confirmed; then kills the broker with the clients still running.
async fn run_until_killed(server: Server, kill_after: usize, ack_until: u64) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (_pconn, publisher) = channel(&server.amqp).await;
    publisher.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
    declare(&publisher, "crash").await;
    declare(&publisher, "crash.transient").await;
    let (_cconn, consumer) = channel(&server.amqp).await;
    consumer.basic_qos(PREFETCH, BasicQosOptions::default()).await.expect("qos");
    let mut deliveries = consumer
        .basic_consume("crash".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    let consuming = {
        let seen = Arc::clone(&seen);
        let consumer = consumer.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = deliveries.next().await {
                let n = number(&d.data);
                seen.lock().expect("seen").delivered.insert(n);
                if n < ack_until {
                    seen.lock().expect("seen").ack_sent.insert(n);
                }
                if n < ack_until && d.ack(BasicAckOptions::default()).await.is_ok() {
                    // A round trip on the channel: the broker handled the ack before answering.
                    if consumer.basic_qos(PREFETCH, BasicQosOptions::default()).await.is_ok() {
                        seen.lock().expect("seen").acked.insert(n);
                    }
                }
            }
        })
    };
    let publishing = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut window = std::collections::VecDeque::new();
            for n in 0u64.. {
                let persistent = n % 4 != 3;
                let (queue, mode) = if persistent { ("crash", 2) } else { ("crash.transient", 1) };
                let props = BasicProperties::default().with_delivery_mode(mode);
                let Ok(confirm) = publisher
                    .basic_publish(
                        "".into(),
                        queue.into(),
                        BasicPublishOptions::default(),
                        n.to_string().as_bytes(),
                        props,
                    )
                    .await
                else {
                    return;
                };
                window.push_back((n, persistent, confirm));
                while window.len() > 200 {
                    let Some((n, persistent, confirm)) = window.pop_front() else { break };
                    match confirm.await {
                        Ok(c) if c.is_ack() => {
                            if persistent {
                                seen.lock().expect("seen").confirmed.insert(n);
                            }
                        }
                        _ => return,
                    }
                }
            }
        })
    };
    let start = std::time::Instant::now();
    while seen.lock().expect("seen").confirmed.len() < kill_after {
        assert!(start.elapsed() < DEADLINE, "publishing stalled before the kill");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill9();
    // The clients see the connection go; whatever they were waiting on when it went (a confirm,
    // a delivery) is not theirs to finish, so after the deadline they are stopped either way.
    for task in [publishing, consuming] {
        let abort = task.abort_handle();
        if tokio::time::timeout(DEADLINE, task).await.is_err() {
            abort.abort();
        }
    }
    std::mem::take(&mut *seen.lock().expect("seen"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_persistent_messages_survive_kill_9_at_random_points() {
    for run in 0..3u64 {
        let dir = tempfile::tempdir().expect("a data directory");
        let kill_after = 100 + (rand::random::<u64>() % 3000) as usize;
        let ack_until = 50 + run * 200;
        let seen = run_until_killed(Server::start(dir.path()), kill_after, ack_until).await;

        let server = Server::start(dir.path());
        let (_conn, ch) = channel(&server.amqp).await;
        assert_eq!(declare(&ch, "crash.transient").await, 0, "run {run}: transient messages do not survive");
        let mut back = Vec::new();
        while let Some(m) = ch.basic_get("crash".into(), BasicGetOptions { no_ack: true }).await.expect("basic.get") {
            back.push((number(&m.delivery.data), m.delivery.redelivered));
        }
        let numbers: Vec<u64> = back.iter().map(|(n, _)| *n).collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "run {run}: in order, each once: {numbers:?}");
        let present: BTreeSet<u64> = numbers.iter().copied().collect();
        let lost: Vec<&u64> =
            seen.confirmed.iter().filter(|n| !seen.ack_sent.contains(n) && !present.contains(n)).collect();
        assert!(lost.is_empty(), "run {run}: confirmed messages lost after kill -9 at {kill_after}: {lost:?}");
        let returned: Vec<&u64> = seen.acked.iter().filter(|n| present.contains(n)).collect();
        assert!(returned.is_empty(), "run {run}: acknowledged messages came back: {returned:?}");
        // `redelivered` means "may have been delivered before": the broker marks a message when it
        // hands it to the consumer's connection, so the deliveries on their way when the broker died
        // come back marked though the client never read them. Those are unacknowledged deliveries,
        // so there are at most a prefetch window of them; any more would be marks never earned.
        let unseen: Vec<u64> = back
            .iter()
            .filter(|(n, redelivered)| *redelivered && !seen.delivered.contains(n))
            .map(|(n, _)| *n)
            .collect();
        assert!(
            unseen.len() <= usize::from(PREFETCH),
            "run {run}: more came back redelivered without having reached the consumer than its prefetch \
             of {PREFETCH} allows: {unseen:?}"
        );
        assert!(numbers.iter().all(|n| n % 4 != 3), "run {run}: only persistent messages");
        server.kill9();
    }
}
