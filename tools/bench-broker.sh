#!/usr/bin/env bash
# The embedded broker beside RabbitMQ, with the same client and the same shape:
# RabbitMQ PerfTest with 1 producer, 1 consumer, 16-byte transient messages,
# prefetch 100 and a multiple ack every 50 (`-x 1 -y 1 -s 16 -q 100 -A 50`).
# Every run moves the same fixed number of messages; the runs alternate
# between the two brokers, and each broker's CPU time is read from /proc
# before and after, so the figures are CPU-seconds per million messages and
# delivered msgs/s (PerfTest's "receiving rate avg").
#
#   PERFTEST=/path/to/perftest tools/bench-broker.sh [RUNS] [MESSAGES]
#
# PERFTEST is PerfTest's launcher (the `bin/runjava com.rabbitmq.perf.PerfTest`
# of a PerfTest release, or any script that runs that class). RabbitMQ is
# RABBITMQ_URL (default amqp://guest:guest@127.0.0.1:5672) and its process is
# RABBITMQ_PID (default: the oldest beam.smp); it must run on this machine.
# The embedded broker is `warren broker` on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
messages=${2:-500000}
perftest=${PERFTEST:?set PERFTEST to a PerfTest launcher}
rabbit_url=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672}
rabbit_pid=${RABBITMQ_PID:-$(pgrep -o beam.smp)}
ticks=$(getconf CLK_TCK)
# A bound on each run, so a stuck client never hangs the benchmark.
bound=${RUN_BOUND_SECONDS:-300}

cargo build -q --release --bin warren
log=$(mktemp)
target/release/warren broker --amqp 127.0.0.1:0 --http 127.0.0.1:0 >"$log" 2>&1 &
embedded_pid=$!
trap 'kill "$embedded_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do
    grep -q 'AMQP on' "$log" && break
    sleep 0.1
done
embedded_addr=$(sed -n 's/.*AMQP on \([^,]*\),.*/\1/p' "$log")
[ -n "$embedded_addr" ] || { cat "$log"; echo "the embedded broker did not start" >&2; exit 1; }
embedded_url=amqp://guest:guest@$embedded_addr

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_one NAME URL PID: one PerfTest run; prints "NAME msgs/s cpu-s-per-million"
run_one() {
    local name=$1 url=$2 pid=$3 before after output rate
    before=$(cpu_ticks "$pid")
    output=$("$perftest" -h "$url" -x 1 -y 1 -s 16 -q 100 -A 50 -C "$messages" -D "$messages" -z "$bound" 2>&1)
    after=$(cpu_ticks "$pid")
    rate=$(sed -n 's/.*receiving rate avg: \([0-9.]*\) msg\/s.*/\1/p' <<<"$output")
    [ -n "$rate" ] || { echo "$output" >&2; echo "PerfTest printed no receiving rate" >&2; exit 1; }
    echo "$name $rate $(echo "scale=2; ($after - $before) / $ticks * 1000000 / $messages" | bc)"
}

results=$(mktemp)
trap 'kill "$embedded_pid" 2>/dev/null || true; rm -f "$log" "$results"' EXIT
printf '%-9s %12s %18s\n' broker 'msgs/s' 'CPU-s per million'
for i in $(seq "$runs"); do
    for side in rabbitmq embedded; do
        if [ "$side" = rabbitmq ]; then
            line=$(run_one rabbitmq "$rabbit_url" "$rabbit_pid")
        else
            line=$(run_one embedded "$embedded_url" "$embedded_pid")
        fi
        echo "$line" >>"$results"
        read -r name rate cpu <<<"$line"
        printf '%-9s %12s %18s   (run %s)\n' "$name" "$rate" "$cpu" "$i"
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
for side in rabbitmq embedded; do
    rate=$(awk -v s="$side" '$1 == s {print $2}' "$results" | median)
    cpu=$(awk -v s="$side" '$1 == s {print $3}' "$results" | median)
    printf '%-9s %12s %18s   (median of %s runs, %s messages each)\n' "$side" "$rate" "$cpu" "$runs" "$messages"
done
rabbit_rate=$(awk '$1 == "rabbitmq" {print $2}' "$results" | median)
embedded_rate=$(awk '$1 == "embedded" {print $2}' "$results" | median)
rabbit_cpu=$(awk '$1 == "rabbitmq" {print $3}' "$results" | median)
embedded_cpu=$(awk '$1 == "embedded" {print $3}' "$results" | median)
echo "embedded/rabbitmq: msgs/s $(echo "scale=2; $embedded_rate / $rabbit_rate" | bc)x," \
    "CPU per message $(echo "scale=3; $embedded_cpu / $rabbit_cpu" | bc)x"
