//! JSON errors for the same mistakes, against the embedded broker and (when it
//! answers) RabbitMQ: each case states RabbitMQ 3.10's answer, and both brokers
//! must give it.

use crate::util::{Response, Server, rabbitmq, unique_name};

/// What to compare of an answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Status, `error` and `reason` exactly.
    Exactly(u16, &'static str, &'static str),
    /// Status and `error`; the reason's wording is the broker's own.
    Kind(u16, &'static str),
}

/// One request; `{v}` in the path or body is the test's vhost.
struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    expect: Expect,
}

const SETUP: [(&str, &str, Option<&str>); 5] = [
    ("PUT", "/api/vhosts/{v}", None),
    ("PUT", "/api/queues/{v}/q1", Some(r#"{"durable":true}"#)),
    ("PUT", "/api/exchanges/{v}/ex1", Some(r#"{"type":"topic","durable":true}"#)),
    ("POST", "/api/bindings/{v}/e/ex1/q/q1", Some(r#"{"routing_key":"a.*"}"#)),
    ("PUT", "/api/queues/{v}/q2", Some(r#"{"durable":true,"arguments":{"x-max-length":5}}"#)),
];

const CASES: [Case; 15] = [
    Case {
        what: "unknown vhost",
        method: "GET",
        path: "/api/vhosts/{v}-missing",
        body: None,
        expect: Expect::Exactly(404, "Object Not Found", "Not Found"),
    },
    Case {
        what: "unknown queue",
        method: "GET",
        path: "/api/queues/{v}/missing",
        body: None,
        expect: Expect::Exactly(404, "Object Not Found", "Not Found"),
    },
    Case {
        what: "unknown path",
        method: "GET",
        path: "/api/no-such-endpoint",
        body: None,
        expect: Expect::Exactly(404, "Object Not Found", "Not Found"),
    },
    Case {
        what: "body that is not JSON",
        method: "PUT",
        path: "/api/queues/{v}/q3",
        body: Some(r#"{"durable":tru"#),
        expect: Expect::Exactly(400, "bad_request", "not_json"),
    },
    Case {
        what: "queue redeclared with another durability",
        method: "PUT",
        path: "/api/queues/{v}/q1",
        body: Some(r#"{"durable":false}"#),
        expect: Expect::Exactly(
            400,
            "bad_request",
            "inequivalent arg 'durable' for queue 'q1' in vhost '{v}': received 'false' but current is 'true'",
        ),
    },
    Case {
        what: "queue redeclared with another length limit",
        method: "PUT",
        path: "/api/queues/{v}/q2",
        body: Some(r#"{"durable":true,"arguments":{"x-max-length":6}}"#),
        expect: Expect::Kind(400, "bad_request"),
    },
    Case {
        what: "exchange redeclared with another type",
        method: "PUT",
        path: "/api/exchanges/{v}/ex1",
        body: Some(r#"{"type":"direct","durable":true}"#),
        expect: Expect::Exactly(
            400,
            "bad_request",
            "inequivalent arg 'type' for exchange 'ex1' in vhost '{v}': received 'direct' but current is 'topic'",
        ),
    },
    Case {
        what: "unknown exchange type",
        method: "PUT",
        path: "/api/exchanges/{v}/ex2",
        body: Some(r#"{"type":"nosuch"}"#),
        // RabbitMQ says "unknown" or "invalid" exchange type depending on whether the name already
        // exists as an Erlang atom, which depends on the node's history.
        expect: Expect::Kind(400, "bad_request"),
    },
    Case {
        what: "reserved exchange name",
        method: "PUT",
        path: "/api/exchanges/{v}/amq.mine",
        body: Some(r#"{"type":"direct"}"#),
        expect: Expect::Exactly(401, "not_authorised", "Access refused."),
    },
    Case {
        what: "deleting a predeclared exchange",
        method: "DELETE",
        path: "/api/exchanges/{v}/amq.direct",
        body: None,
        expect: Expect::Exactly(401, "not_authorised", "Access refused."),
    },
    Case {
        what: "permissions without write and read",
        method: "PUT",
        path: "/api/permissions/{v}/guest",
        body: Some(r#"{"configure":".*"}"#),
        expect: Expect::Exactly(400, "bad_request", "[{key_missing,write},{key_missing,read}]"),
    },
    Case {
        what: "permissions for an unknown user",
        method: "PUT",
        path: "/api/permissions/{v}/{v}-nobody",
        body: Some(r#"{"configure":".*","write":".*","read":".*"}"#),
        expect: Expect::Exactly(400, "bad_request", "vhost_or_user_not_found"),
    },
    Case {
        what: "binding to a missing queue",
        method: "POST",
        path: "/api/bindings/{v}/e/ex1/q/nosuch",
        body: Some("{}"),
        expect: Expect::Exactly(404, "not_found", "no queue 'nosuch' in vhost '{v}'"),
    },
    Case {
        what: "deleting a bound exchange if unused",
        method: "DELETE",
        path: "/api/exchanges/{v}/ex1?if-unused=true",
        body: None,
        expect: Expect::Exactly(400, "bad_request", "exchange 'ex1' in vhost '{v}' in use"),
    },
    Case {
        what: "queue in a missing vhost",
        method: "PUT",
        path: "/api/queues/{v}-missing/q",
        body: Some(r#"{"durable":true}"#),
        expect: Expect::Exactly(404, "not_found", "vhost_not_found"),
    },
];

/// Runs the setup and every case through `send`, checking each answer.
async fn check<F, Fut>(broker: &str, vhost: &str, send: F)
where
    F: Fn(String, String, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let fill = |text: &str| text.replace("{v}", vhost);
    for (method, path, body) in SETUP {
        let response = send(method.to_owned(), fill(path), body.map(fill)).await;
        assert!(response.status < 300, "{broker}: setup {method} {path}: {} {}", response.status, response.body);
    }
    for case in CASES {
        let response = send(case.method.to_owned(), fill(case.path), case.body.map(fill)).await;
        let got = (response.status, response.error(), response.reason());
        match case.expect {
            Expect::Exactly(status, error, reason) => {
                assert_eq!(got, (status, error.to_owned(), fill(reason)), "{broker}: {}", case.what);
            }
            Expect::Kind(status, error) => {
                assert_eq!((got.0, got.1), (status, error.to_owned()), "{broker}: {}: {}", case.what, got.2);
            }
        }
    }
}

#[tokio::test]
async fn errors_have_rabbitmqs_status_and_json_shape() {
    let vhost = unique_name("warren-mgmt-errors");
    let server = Server::start().await;
    check("embedded", &vhost, |method, path, body| {
        let server = &server;
        async move { server.raw(&method, &path, body.as_deref()).await }
    })
    .await;

    let Some(rabbit) = rabbitmq().await else { return };
    let rabbit = &rabbit;
    let outcome = tokio::spawn({
        let vhost = vhost.clone();
        let rabbit = crate::util::RabbitMq {
            addr: rabbit.addr,
            amqp_url: rabbit.amqp_url.clone(),
            user: rabbit.user.clone(),
            password: rabbit.password.clone(),
        };
        async move {
            check("RabbitMQ", &vhost, |method, path, body| {
                let rabbit = &rabbit;
                async move { rabbit.raw(&method, &path, body.as_deref()).await }
            })
            .await;
        }
    })
    .await;
    let cleanup = rabbit.raw("DELETE", &format!("/api/vhosts/{vhost}"), None).await;
    assert_eq!(cleanup.status, 204, "clean up the RabbitMQ vhost");
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}
