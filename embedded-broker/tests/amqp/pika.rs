//! The classic pika tutorial, end to end, against the embedded broker: declare `exchange1` and
//! `queue1`, bind `info`, publish a persistent message, consume with prefetch 1 and manual ack.

use std::time::Duration;

const TUTORIAL: &str = r#"
import sys, pika
params = pika.URLParameters(sys.argv[1])
connection = pika.BlockingConnection(params)
channel = connection.channel()
channel.exchange_declare(exchange="exchange1", exchange_type="direct", durable=True)
channel.queue_declare(queue="queue1", durable=True)
channel.queue_bind(exchange="exchange1", queue="queue1", routing_key="info")
channel.confirm_delivery()
for i in range(3):
    channel.basic_publish(
        exchange="exchange1",
        routing_key="info",
        body=("user registered %d" % i).encode(),
        properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, content_type="text/plain"),
    )
channel.basic_qos(prefetch_count=1)
received = []
def on_message(ch, method, properties, body):
    assert properties.delivery_mode == 2, properties
    assert properties.content_type == "text/plain", properties
    received.append(body.decode())
    ch.basic_ack(delivery_tag=method.delivery_tag)
    if len(received) == 3:
        ch.stop_consuming()
channel.basic_consume(queue="queue1", on_message_callback=on_message)
connection.call_later(10, channel.stop_consuming)
channel.start_consuming()
print("RECEIVED", "|".join(received))
ok = channel.queue_declare(queue="queue1", durable=True, passive=True)
print("LEFT", ok.method.message_count)
connection.close()
"#;

#[tokio::test]
async fn pika_tutorial_runs_end_to_end_against_the_embedded_broker() {
    let Some(path) = crate::python::pip_install("pika", "pika>=1.3,<2", "pika").await else { return };
    let broker = warren_broker::Broker::start(warren_broker::BrokerConfig::default()).await.expect("broker");
    let url = format!("amqp://guest:guest@{}/%2F", broker.amqp_addr());
    let args = ["-c".as_ref(), TUTORIAL.as_ref(), url.as_ref()];
    let out = crate::python::run(&args, &path, &[], Duration::from_secs(60)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pika tutorial failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("RECEIVED user registered 0|user registered 1|user registered 2"),
        "all three messages in order: {stdout}"
    );
    assert!(stdout.contains("LEFT 0"), "queue drained: {stdout}");
    broker.shutdown().await;
}
