//! kombu with its py-amqp transport, end to end against the embedded broker: declare an exchange
//! and a bound queue, publish five JSON messages with a `Producer`, consume them with a `Consumer`
//! through `drain_events`, acknowledging each.

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
