//! RabbitMQ's own management CLI, `rabbitmqadmin` (Debian ships it with `rabbitmq-server`),
//! against the embedded broker: list, show, declare, delete, publish, get and close connection.

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use serde_json::Value;
use warren_testkit::Need;

use crate::util::Server;

/// The CLI, or `None` after a loud skip note (a failure with `WARREN_REQUIRE_RABBITMQ=1`).
fn rabbitmqadmin() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("rabbitmqadmin"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        warren_testkit::missing(
            Need::RabbitMq,
            &warren_testkit::current_test(),
            "no `rabbitmqadmin` on PATH (Debian: apt-get install rabbitmq-server)",
        );
    }
    found
}

/// Runs the CLI against `server` with `args`; returns its standard output, failing on an error.
async fn run(cli: &std::path::Path, server: &Server, args: &[&str]) -> String {
    let port = server.addr.port().to_string();
    let mut command = tokio::process::Command::new(cli);
    command.args(["-H", "127.0.0.1", "-P", &port, "-u", "guest", "-p", "guest"]).args(args);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("rabbitmqadmin answers in time")
        .expect("rabbitmqadmin runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rabbitmqadmin {args:?} failed: {stdout}{stderr}");
    stdout
}

/// Runs the CLI with `-f raw_json` and parses what it prints.
async fn json(cli: &std::path::Path, server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["-f", "raw_json"];
    all.extend_from_slice(args);
    let text = run(cli, server, &all).await;
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("rabbitmqadmin {args:?} printed no JSON ({e}): {text}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().into_iter().flatten().filter_map(|i| i["name"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn rabbitmqadmin_lists_declares_publishes_gets_and_closes() {
    let Some(cli) = rabbitmqadmin() else { return };
    let server = Server::start().await;
    let cli = cli.as_path();

    run(cli, &server, &["declare", "queue", "name=inbox", "durable=false"]).await;
    run(cli, &server, &["declare", "exchange", "name=events", "type=fanout"]).await;
    run(cli, &server, &["declare", "binding", "source=events", "destination=inbox"]).await;
    let published = run(cli, &server, &["publish", "exchange=events", "routing_key=any", "payload=hello"]).await;
    assert!(published.contains("Message published") && !published.contains("NOT routed"), "{published}");

    let queues = json(cli, &server, &["list", "queues"]).await;
    assert_eq!((names(&queues), queues[0]["messages"].as_u64()), (vec!["inbox".to_owned()], Some(1)), "{queues}");
    // The table format asks for its columns (`?columns=name,messages`).
    let table = run(cli, &server, &["-f", "tsv", "list", "queues"]).await;
    assert_eq!(table.trim(), "name\tmessages\ninbox\t1");
    let exchanges = json(cli, &server, &["list", "exchanges", "name", "type"]).await;
    assert!(exchanges.as_array().into_iter().flatten().any(|x| x["name"] == "events" && x["type"] == "fanout"));
    let bindings = json(cli, &server, &["list", "bindings"]).await;
    assert!(bindings.as_array().into_iter().flatten().any(|b| b["source"] == "events" && b["destination"] == "inbox"));
    let got = json(cli, &server, &["get", "queue=inbox", "ackmode=ack_requeue_false"]).await;
    assert_eq!(got[0]["payload"], "hello", "{got}");

    let overview = json(cli, &server, &["show", "overview"]).await;
    assert_eq!(overview[0]["object_totals"]["queues"], 1, "{overview}");
    let nodes = json(cli, &server, &["list", "nodes"]).await;
    assert!(nodes[0]["mem_used"].is_u64(), "{nodes}");

    let properties = ConnectionProperties::default().with_connection_name("cli-watched".into());
    let connection = Connection::connect(&server.amqp_url(), properties).await.expect("connect");
    let _channel = connection.create_channel().await.expect("channel");
    let connections = json(cli, &server, &["list", "connections"]).await;
    let name = names(&connections).pop().expect("the connection is listed");
    assert_eq!(connections[0]["user"], "guest");
    assert_eq!(connections[0]["channels"], 1);
    let channels = json(cli, &server, &["list", "channels"]).await;
    assert_eq!(names(&channels), vec![format!("{name} (1)")]);
    assert_eq!(json(cli, &server, &["list", "consumers"]).await, serde_json::json!([]));
    let closed = run(cli, &server, &["close", "connection", &format!("name={name}")]).await;
    assert!(closed.contains("closed"), "{closed}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while connection.status().connected() {
        assert!(tokio::time::Instant::now() < deadline, "the connection is still open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    run(cli, &server, &["delete", "exchange", "name=events"]).await;
    run(cli, &server, &["delete", "queue", "name=inbox"]).await;
    assert_eq!(json(cli, &server, &["list", "queues"]).await, serde_json::json!([]));
    server.stop().await;
}
