//! Against a 3-node RabbitMQ cluster (`tools/rabbitmq-cluster up`; required in
//! CI with `WARREN_REQUIRE_CLUSTER=1`): topologies that clusters use, through
//! a list of nodes whose first one is down.

use crate::util::{run, unique_name};

/// Quorum queues, a stream, and policies for both, with every argument a
/// cluster topology names.
fn cluster_topology(vhost: &str) -> String {
    format!(
        r#"vhosts:
  {vhost:?}:
    exchanges:
      orders: {{ type: topic, durable: true }}
      dlx: {{ type: fanout, durable: true }}
    queues:
      orders.quorum:
        durable: true
        arguments:
          x-queue-type: quorum
          x-quorum-initial-group-size: 3
          x-delivery-limit: 5
          x-dead-letter-exchange: dlx
          x-dead-letter-strategy: at-least-once
          x-overflow: reject-publish
          x-max-in-memory-length: 1000
          x-max-in-memory-bytes: 1000000
          x-queue-leader-locator: balanced
      orders.stream:
        durable: true
        arguments:
          x-queue-type: stream
          x-max-length-bytes: 100000000
          x-max-age: 1D
          x-stream-max-segment-size-bytes: 10000000
          x-initial-cluster-size: 3
      dead: {{ durable: true }}
    bindings:
      - {{ exchange: orders, queue: orders.quorum, routing_key: "order.#" }}
      - {{ exchange: orders, queue: orders.stream, routing_key: "order.#" }}
      - {{ exchange: dlx, queue: dead }}
    policies:
      quorum-limits: {{ pattern: "^qq\\.", apply_to: queues, definition: {{ delivery-limit: 10, queue-leader-locator: client-local, max-in-memory-length: 10 }} }}
      stream-age: {{ pattern: "^s\\.", apply_to: queues, definition: {{ max-age: 2h, stream-max-segment-size-bytes: 5000000 }} }}
"#
    )
}

#[test]
fn apply_plan_and_export_go_through_a_node_list_whose_first_node_is_down() {
    // No node may be killed under it by another test.
    let _held = crate::cluster_bench::Held::take();
    let Some(cluster) = warren_testkit::cluster(&warren_testkit::current_test()) else { return };
    let dir = tempfile::tempdir().expect("a temp dir");
    let vhost = unique_name("cluster");
    let topology = dir.path().join("cluster.yaml");
    std::fs::write(&topology, cluster_topology(&vhost)).expect("writing the topology");
    let topology = topology.display().to_string();
    // A node that is down (nothing listens there), then the cluster's nodes.
    let amqp =
        ["amqp://guest:guest@127.0.0.1:1/%2f".to_owned()].iter().chain(&cluster.amqp).cloned().collect::<Vec<_>>();
    let management = ["http://127.0.0.1:1".to_owned()].iter().chain(&cluster.management).cloned().collect::<Vec<_>>();
    let (amqp, management) = (amqp.join(","), management.join(","));
    let target = ["--broker", amqp.as_str(), "--management", management.as_str()];

    let apply = run([&["apply", topology.as_str(), "--yes"][..], &target].concat());
    assert_eq!(apply.code, 0, "applied:\n{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stderr.contains("http://127.0.0.1:1 does not answer"), "says it moved on:\n{}", apply.stderr);

    let plan = run([&["plan", topology.as_str()][..], &target].concat());
    assert_eq!(plan.code, 0, "no false diff on any cluster argument:\n{}\n{}", plan.stdout, plan.stderr);

    let exported = dir.path().join("export.yaml").display().to_string();
    let export = run([&["export", "--vhost", vhost.as_str(), "-o", exported.as_str()][..], &target].concat());
    assert_eq!(export.code, 0, "exported:\n{}", export.stderr);
    let text = std::fs::read_to_string(&exported).expect("the export exists");
    for entity in ["orders.quorum", "orders.stream", "x-quorum-initial-group-size", "stream-age"] {
        assert!(text.contains(entity), "the export holds {entity}:\n{text}");
    }
    let round_trip = run([&["plan", "--prune", exported.as_str()][..], &target].concat());
    assert_eq!(round_trip.code, 0, "the export plans nothing:\n{}\n{}", round_trip.stdout, round_trip.stderr);

    let absent = dir.path().join("absent.yaml");
    std::fs::write(&absent, format!("vhosts:\n  {vhost:?}: {{ state: absent }}\n")).expect("writing");
    let cleanup = run([&["apply", absent.to_str().expect("a UTF-8 path"), "--yes"][..], &target].concat());
    assert_eq!(cleanup.code, 0, "the vhost goes:\n{}", cleanup.stderr);
}
