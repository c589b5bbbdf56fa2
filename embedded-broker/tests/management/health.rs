//! Health checks: resource alarms, virtual hosts, the aliveness test.

use rabbitmq_http_client::requests::QueueParams;
use serde_json::json;

use crate::util::{Server, raw};

#[tokio::test]
async fn a_healthy_broker_passes_every_check() {
    let server = Server::start().await;
    let api = server.client();
    api.health_check_cluster_wide_alarms().await.expect("no alarms");
    api.health_check_local_alarms().await.expect("no local alarms");
    api.health_check_if_node_is_quorum_critical().await.expect("not quorum-critical");
    let alive = server.raw("GET", "/api/aliveness-test/%2F", None).await;
    assert_eq!((alive.status, alive.json()), (200, json!({"status": "ok"})));
    let again = server.raw("GET", "/api/aliveness-test/%2F", None).await;
    assert_eq!(again.status, 200, "the test queue is reused");
    assert_eq!(server.raw("GET", "/api/aliveness-test/nosuch", None).await.status, 404);
    assert_eq!(server.raw("GET", "/api/health/checks/virtual-hosts", None).await.status, 200);

    // Monitoring tools log in with a management user, not an administrator.
    let body = json!({"password": "pw", "tags": "management"}).to_string();
    assert_eq!(server.raw("PUT", "/api/users/probe", Some(&body)).await.status, 201);
    let probe = raw(server.addr, "GET", "/api/health/checks/alarms", Some(("probe", "pw")), None).await;
    assert_eq!(probe.status, 200);
}

#[tokio::test]
async fn the_memory_alarm_fails_the_alarm_checks_until_memory_falls() {
    let server = Server::with_memory_limit(64 * 1024).await;
    let api = server.client();
    api.declare_queue("/", &QueueParams::new_durable_classic_queue("big", None)).await.expect("queue");
    let payload = "x".repeat(128 * 1024);
    let routed = api.publish_message("/", "amq.default", "big", &payload, Default::default()).await.expect("publish");
    assert!(routed.routed);
    let failed = server.raw("GET", "/api/health/checks/alarms", None).await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.json()["alarms"][0]["resource"], "memory");
    let err = api.health_check_local_alarms().await.expect_err("the client sees the failure");
    assert!(format!("{err:?}").contains("503"), "{err:?}");
    api.purge_queue("/", "big").await.expect("purge");
    api.health_check_cluster_wide_alarms().await.expect("the alarm clears once memory falls");
}
