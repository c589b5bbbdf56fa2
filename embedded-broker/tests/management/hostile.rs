//! Bodies of every wrong shape, sent to every write endpoint: each answer is a
//! RabbitMQ-shaped 4xx (or a success where the body means something), never a 5xx, and the
//! server keeps serving. Invalid queue arguments are always refused; their exact reasons are
//! compared with RabbitMQ's by the AMQP tests (`queues::queue_arguments_are_refused_…`).

use crate::util::Server;

/// The queue endpoint: every body below with an `arguments` object holds invalid arguments.
const QUEUE: &str = "/api/queues/%2F/hostile-q";

/// Write endpoints, with the entities they refer to created beforehand.
const ENDPOINTS: [(&str, &str); 14] = [
    ("PUT", "/api/vhosts/hostile"),
    ("PUT", "/api/users/hostile"),
    ("PUT", "/api/permissions/%2F/guest"),
    ("PUT", "/api/topic-permissions/%2F/guest"),
    ("PUT", "/api/exchanges/%2F/hostile-x"),
    ("PUT", QUEUE),
    ("POST", "/api/bindings/%2F/e/amq.direct/q/target"),
    ("PUT", "/api/policies/%2F/hostile"),
    ("PUT", "/api/operator-policies/%2F/hostile"),
    ("POST", "/api/definitions"),
    ("POST", "/api/definitions/%2F"),
    ("POST", "/api/exchanges/%2F/amq.default/publish"),
    ("POST", "/api/queues/%2F/target/get"),
    ("DELETE", "/api/queues/%2F/target/contents"),
];

const BODIES: [&str; 24] = [
    "",
    "null",
    "[]",
    "123",
    "\"text\"",
    "{",
    "{\"a\":1e400}",
    "{\"durable\":\"maybe\",\"auto_delete\":7}",
    "{\"type\":[\"direct\"]}",
    "{\"arguments\":[]}",
    "{\"arguments\":{\"x-message-ttl\":\"abc\",\"x-max-priority\":1000,\"x-queue-type\":7}}",
    "{\"arguments\":{\"x-expires\":0,\"x-overflow\":\"explode\"}}",
    "{\"tags\":5,\"password\":5}",
    "{\"password\":\"a\",\"password_hash\":\"b\"}",
    "{\"password_hash\":\"!!!\",\"hashing_algorithm\":\"md5\"}",
    "{\"configure\":\"(\",\"write\":\"[\",\"read\":\"*\"}",
    "{\"exchange\":5,\"write\":null,\"read\":{}}",
    "{\"pattern\":5,\"definition\":5,\"priority\":\"high\",\"apply-to\":\"everything\"}",
    "{\"routing_key\":{},\"arguments\":\"none\"}",
    "{\"users\":\"all\",\"queues\":{},\"bindings\":[1,2]}",
    "{\"queues\":[{\"name\":\"q\"}],\"exchanges\":[{\"name\":\"x\",\"vhost\":\"/\",\"type\":\"direct\"}]}",
    "{\"properties\":[1],\"routing_key\":1,\"payload\":2,\"payload_encoding\":\"rot13\"}",
    "{\"count\":-1,\"ackmode\":[],\"encoding\":5,\"truncate\":\"all\"}",
    "{\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
];

#[tokio::test]
async fn no_body_makes_the_api_fail_with_a_server_error() {
    let server = Server::start().await;
    assert_eq!(server.raw("PUT", "/api/queues/%2F/target", Some("{\"durable\":true}")).await.status, 201);
    for (method, path) in ENDPOINTS {
        for body in BODIES {
            let response = server.raw(method, path, Some(body)).await;
            assert!(response.status < 500, "{method} {path} with {body}: {} {}", response.status, response.body);
            if path == QUEUE && body.contains("\"arguments\":{") {
                assert_eq!(response.status, 400, "{method} {path} with {body}: {}", response.body);
            }
            if response.status >= 400 {
                let json = response.json();
                assert!(
                    json["error"].is_string() && json["reason"].is_string(),
                    "{method} {path} with {body}: {} is not a RabbitMQ error body",
                    response.body
                );
            }
        }
    }
    assert!(server.client().current_user().await.is_ok(), "the API still serves");
}

#[tokio::test]
async fn framework_rejections_are_rabbitmq_shaped_too() {
    let server = Server::start().await;
    let not_utf8 = server.raw("GET", "/api/queues/%FF/q", None).await;
    assert_eq!((not_utf8.status, not_utf8.error().as_str()), (400, "bad_request"), "{}", not_utf8.body);
    let (status, body) = oversized_put(server.addr).await;
    assert_eq!(status, 413, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(json["error"], "bad_request", "{body}");
    assert!(server.state.vhost("big").is_none());
}

/// PUTs a 21 MiB body while reading the answer: the server may answer 413 and close before the
/// body is all sent, so the write may fail and only the answer counts.
async fn oversized_put(addr: std::net::SocketAddr) -> (u16, String) {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = tokio::io::split(stream);
    let body = format!("{{\"description\":\"{}\"}}", "x".repeat(21 << 20));
    let token = base64::engine::general_purpose::STANDARD.encode("guest:guest");
    let head = format!(
        "PUT /api/vhosts/big HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Basic {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let write = tokio::spawn(async move {
        // Errors are expected once the server has answered and closed.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(body.as_bytes()).await;
    });
    let mut bytes = Vec::new();
    let _ = reader.read_to_end(&mut bytes).await;
    write.abort();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
