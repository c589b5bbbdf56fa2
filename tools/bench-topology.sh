#!/usr/bin/env bash
# Benchmark of `warren apply` against `rabbitmqctl import_definitions` on the
# same broker, with the same generated content (1 vhost, 2,000 exchanges,
# 5,000 queues, 10,000 bindings) in two fresh vhosts, plus a no-change `plan`.
#
#   tools/bench-topology.sh            # RabbitMQ on 127.0.0.1, guest/guest
#   WARREN_BROKER=amqp://u:p@host:5672/%2f tools/bench-topology.sh
#
# Needs rabbitmqctl on this machine, talking to the same node.
set -euo pipefail
cd "$(dirname "$0")/.."

broker=${WARREN_BROKER:-amqp://guest:guest@127.0.0.1:5672/%2f}
out=$(mktemp -d)
# rabbitmqctl reads the file as the rabbitmq user.
chmod 755 "$out"
run=$$
ours=warren-bench-apply-$run
theirs=warren-bench-import-$run

cleanup() {
    rabbitmqctl -q delete_vhost "$ours" >/dev/null 2>&1 || true
    rabbitmqctl -q delete_vhost "$theirs" >/dev/null 2>&1 || true
    rm -rf "$out"
}
trap cleanup EXIT

cargo build -q --release --bin warren --example gen_topology
bin=${CARGO_TARGET_DIR:-target}/release
warren=$bin/warren
"$bin/examples/gen_topology" "$out" "$ours" >/dev/null
"$bin/examples/gen_topology" "$out" "$theirs" >/dev/null
chmod 644 "$out"/*

seconds() { # seconds COMMAND... : wall time of COMMAND in seconds, its output discarded
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

import=$(seconds rabbitmqctl -q import_definitions "$out/$theirs.json")
apply=$(seconds "$warren" --broker "$broker" --quiet apply --yes "$out/$ours.yaml")
set +e
plan=$(seconds "$warren" --broker "$broker" plan "$out/$ours.yaml")
set -e
"$warren" --broker "$broker" plan "$out/$ours.yaml" >/dev/null && in_sync=yes || in_sync=no

printf 'rabbitmqctl import_definitions: %6.2f s\n' "$import"
printf 'warren apply (first):           %6.2f s  (%.2fx)\n' "$apply" "$(echo "$apply / $import" | bc -l)"
printf 'warren plan (no change):        %6.2f s  (in sync: %s)\n' "$plan" "$in_sync"
