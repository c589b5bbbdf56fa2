//! kombu with its py-amqp transport, end to end against the embedded broker: declare an exchange
//! and a bound queue, publish five JSON messages with a `Producer`, consume them with a `Consumer`
//! through `drain_events`, acknowledging each. Then two of kombu's own integration checks that once
//! failed against the embedded broker, run against it and RabbitMQ alike.

use std::time::Duration;

const SCRIPT: &str = r#"
import socket, sys, time
from kombu import Connection, Consumer, Exchange, Producer, Queue
exchange = Exchange("kombu-exchange", type="direct", durable=False)
queue = Queue("kombu-queue", exchange=exchange, routing_key="kombu-key", durable=False)
received = []
def on_message(body, message):
    assert message.content_type == "application/json", message.content_type
    received.append(body["n"])
    message.ack()
with Connection(sys.argv[1], transport="pyamqp", connect_timeout=5) as conn:
    channel = conn.channel()
    queue(channel).declare()
    producer = Producer(channel, exchange=exchange, routing_key="kombu-key", serializer="json")
    for n in range(5):
        producer.publish({"n": n, "text": "message %d" % n})
    with Consumer(conn, queues=[queue], callbacks=[on_message], accept=["json"]):
        deadline = time.monotonic() + 10
        while len(received) < 5 and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=1)
            except socket.timeout:
                pass
    _, left, _ = queue(channel).queue_declare(passive=True)
    print("RECEIVED", ",".join(str(n) for n in received))
    print("LEFT", left)
"#;

#[tokio::test]
async fn kombu_producer_and_consumer_work_against_the_embedded_broker() {
    let Some(path) = crate::python::pip_install("kombu", "kombu>=5.3,<6", "kombu").await else { return };
    let broker = warren_broker::Broker::start(warren_broker::BrokerConfig::default()).await.expect("broker");
    // kombu reads the vhost from the path: "//" is "/".
    let url = format!("amqp://guest:guest@{}//", broker.amqp_addr());
    // The script bounds its own waits; this bounds the whole run.
    let args = ["-c".as_ref(), SCRIPT.as_ref(), url.as_ref()];
    let out = crate::python::run(&args, &path, &[], Duration::from_secs(60)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kombu script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("RECEIVED 0,1,2,3,4\n"), "all five messages, in order: {stdout}");
    assert!(stdout.contains("LEFT 0"), "queue drained: {stdout}");
    broker.shutdown().await;
}

/// Two of kombu's own integration checks (`t/integration/test_py_amqp.py`), against both brokers:
/// `test_publish_requeue_consume` (messages of a priority queue consumed, the consumer cancelled,
/// each requeued in turn, then one more of the highest priority: it comes first and the others in
/// their original order), and deleting a queue from the channel that consumes it, which must not
/// raise `ConsumerCancelled` (RabbitMQ sends that consumer's `basic.cancel` after `delete-ok`, and
/// py-amqp drops it while closing the channel).
const FIDELITY: &str = r#"
import socket, sys, time
from amqp.exceptions import ConsumerCancelled
from kombu import Connection, Consumer, Producer, Queue
url, prefix = sys.argv[1], sys.argv[2]

def drain(conn, want, received):
    deadline = time.monotonic() + 10
    while len(received) < want and time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=1)
        except socket.timeout:
            pass

with Connection(url, transport="pyamqp", connect_timeout=5) as conn:
    channel = conn.channel()
    queue = Queue(prefix + ".priority", routing_key=prefix + ".priority", max_priority=10, durable=False)
    received, bodies = [], []
    def on_message(body, message):
        received.append(message)
        bodies.append(body["msg"])
    producer = Producer(channel)
    def publish(msg, priority):
        producer.publish({"msg": msg}, exchange=queue.exchange, routing_key=queue.routing_key,
                         declare=[queue], serializer="json", priority=priority)
    for msg, priority in [("first", 3), ("second", 6), ("third", 3)]:
        publish(msg, priority)
    consumer = Consumer(channel, [queue], callbacks=[on_message], accept=["json"])
    with consumer:
        drain(conn, 3, received)
    print("CONSUMED", ",".join(bodies))
    for message in received:
        message.requeue()
    del received[:], bodies[:]
    publish("fourth", 9)
    with consumer:
        drain(conn, 4, received)
    print("REQUEUED", ",".join(bodies))
    for message in received:
        message.ack()
    queue(channel).delete()

    doomed = Queue(prefix + ".delete", routing_key=prefix + ".delete", durable=False)
    bound = doomed(channel)
    bound.declare()
    Consumer(channel, [doomed], callbacks=[on_message], accept=["json"]).consume()
    try:
        bound.delete()
        print("DELETE ok")
    except ConsumerCancelled as e:
        print("DELETE raised ConsumerCancelled", e)
        bound.delete()
"#;

#[tokio::test]
async fn kombu_priority_requeue_and_delete_while_consuming_behave_as_on_rabbitmq() {
    let Some(path) = crate::python::pip_install("kombu", "kombu>=5.3,<6", "kombu").await else { return };
    for t in crate::util::targets().await {
        // kombu reads the vhost from the path: "//" is "/".
        let url = format!("amqp://guest:guest@{}//", t.addr);
        let prefix = crate::util::unique("kombu-fidelity");
        let args = ["-c".as_ref(), FIDELITY.as_ref(), url.as_ref(), prefix.as_ref()];
        let out = crate::python::run(&args, &path, &[], Duration::from_secs(60)).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "[{}] kombu script failed:\n{stdout}\n{stderr}", t.name);
        assert!(stdout.contains("CONSUMED second,first,third\n"), "[{}] priority order: {stdout}", t.name);
        assert!(
            stdout.contains("REQUEUED fourth,second,first,third\n"),
            "[{}] requeued messages back in their places: {stdout}",
            t.name
        );
        assert!(stdout.contains("DELETE ok\n"), "[{}] no ConsumerCancelled from queue.delete: {stdout}", t.name);
        t.stop().await;
    }
}
