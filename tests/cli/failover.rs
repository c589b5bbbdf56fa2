//! One broker named by several management URLs (a cluster's nodes): a node
//! that does not answer is left for the next, and a write cut off in flight is
//! never repeated blindly: the state is read again through the next node and
//! what is left is applied from there.

use crate::sandbox::sandboxes;
use crate::util::{ReadsOnlyProxy, management_request, run};

#[test]
fn apply_goes_on_past_a_silent_node_and_replans_after_an_interrupted_write() {
    for sandbox in sandboxes("failover") {
        let topology = sandbox.write(
            "failover.yaml",
            &format!(
                "vhosts:\n  {:?}:\n    exchanges: {{ events: {{ type: topic, durable: true }} }}\n    \
                 queues: {{ audit: {{ durable: true }} }}\n    \
                 bindings: [ {{ exchange: events, queue: audit, routing_key: \"#\" }} ]\n",
                sandbox.vhost
            ),
        );
        let topology = topology.display().to_string();
        let real = sandbox.rabbit.management_url.clone();
        // Nothing listens on port 1: refused at once, nothing sent.
        let silent = "http://127.0.0.1:1".to_owned();
        let reads_only = ReadsOnlyProxy::start(&real);
        let list = [silent, reads_only.url(), real].join(",");
        let target = ["--broker", sandbox.rabbit.amqp_url.as_str(), "--management", list.as_str()];

        let apply = run([&["apply", topology.as_str(), "--yes"][..], &target].concat());
        let on = sandbox.name;
        assert_eq!(apply.code, 0, "{on}: applied through the list:\n{}\n{}", apply.stdout, apply.stderr);
        assert!(
            apply.stderr.contains("http://127.0.0.1:1 does not answer"),
            "{on}: says it moved on:\n{}",
            apply.stderr
        );
        assert!(reads_only.dropped() >= 1, "{on}: a write went to the node that drops writes");
        assert!(
            apply.stderr.contains("was interrupted") && apply.stderr.contains("reading the broker's state again"),
            "{on}: the cut write is re-planned, not repeated:\n{}",
            apply.stderr
        );

        let plan = run([&["plan", topology.as_str()][..], &target].concat());
        assert_eq!(plan.code, 0, "{on}: a second plan is empty:\n{}\n{}", plan.stdout, plan.stderr);
        let state = sandbox.state();
        let vhost = &state.vhosts[&sandbox.vhost];
        assert!(vhost.queues.contains_key("audit") && vhost.exchanges.contains_key("events"), "{on}: {vhost:?}");
        assert_eq!(vhost.bindings.len(), 1, "{on}: the binding, once: {:?}", vhost.bindings);
    }
}

#[test]
fn bench_sets_up_and_cleans_up_past_a_silent_node_and_an_interrupted_write() {
    for sandbox in sandboxes("failover-bench") {
        let scenario = sandbox.write(
            "failover-bench.yaml",
            "name: failover-bench\ntopology:\n  vhosts:\n    /:\n      \
             exchanges: { events: { type: topic, durable: true } }\n      \
             queues: { audit: { durable: true } }\n      \
             bindings: [ { exchange: events, queue: audit, routing_key: \"#\" } ]\n\
             duration: 1s\nwarmup: 0s\nmessages: 100\n\
             producers: [ { name: p, exchange: events, routing_key: a.b } ]\n\
             consumers: [ { name: c, queue: audit } ]\n",
        );
        let scenario = scenario.display().to_string();
        let real = sandbox.rabbit.management_url.clone();
        let reads_only = ReadsOnlyProxy::start(&real);
        let list = ["http://127.0.0.1:1".to_owned(), reads_only.url(), real].join(",");
        let target = ["--broker", sandbox.rabbit.amqp_url.as_str(), "--management", list.as_str()];
        // The run's own vhost: created by the setup, deleted by the cleanup, both cut off once.
        let vhost = format!("{}-run", sandbox.vhost);
        let bench = run([&["bench", scenario.as_str(), "--vhost", vhost.as_str()][..], &target].concat());
        let on = sandbox.name;
        assert_eq!(
            bench.code, 0,
            "{on}: set up, ran and cleaned up through the list:\n{}\n{}",
            bench.stdout, bench.stderr
        );
        assert!(reads_only.dropped() >= 2, "{on}: the setup's and the cleanup's first writes were cut off");
        let encoded = vhost.replace('/', "%2F");
        let (status, _) =
            management_request(&sandbox.rabbit, reqwest::Method::GET, &format!("/api/vhosts/{encoded}"), None);
        assert_eq!(status, 404, "{on}: the run's vhost is gone");
    }
}
