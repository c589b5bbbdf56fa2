//! Result files built in code, for the unit tests of the gate and the reports.

use crate::result::histogram::{self, Latency, Percentiles};
use crate::result::{
    BrokerInfo, BrokerPace, BrokerWait, ConsumerGroupResult, DrainInfo, GateResult, GeneratorInfo, Histograms,
    LatencySummary, MachineInfo, ProducerGroupResult, RunResult, RunStatus, ScenarioInfo, SecondResult, Summary,
};

/// A histogram holding `samples` (nanoseconds).
pub fn histogram_of(samples: &[u64]) -> Latency {
    let mut h = histogram::new_latency();
    for sample in samples {
        histogram::record(&mut h, *sample);
    }
    h
}

/// A completed run of scenario `name`: one producer and one consumer group,
/// `messages` messages over ten measured seconds, the given end-to-end and
/// confirm samples (nanoseconds), and one time-series entry per second.
pub fn result(name: &str, messages: u64, e2e_ns: &[u64], confirm_ns: &[u64]) -> RunResult {
    let e2e = histogram_of(e2e_ns);
    let confirm = histogram_of(confirm_ns);
    let rate = messages as f64 / 10.0;
    let seconds: Vec<SecondResult> = (0..10u64)
        .map(|t| {
            // Each second gets its slice of the samples, so per-second histograms add up to the whole.
            let slice: Vec<u64> =
                e2e_ns.iter().enumerate().filter(|(i, _)| *i as u64 % 10 == t).map(|(_, v)| *v).collect();
            let h = histogram_of(&slice);
            SecondResult {
                t,
                phase: "measure".into(),
                published: messages / 10,
                confirmed: messages / 10,
                nacked: 0,
                returned: 0,
                delivered: messages / 10,
                acked: messages / 10,
                redelivered: 0,
                errors: 0,
                p50_us: (!h.is_empty()).then(|| h.value_at_quantile(0.5) as f64 / 1000.0),
                p99_us: (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0),
                e2e_histogram: (!h.is_empty()).then(|| histogram::encode(&h)),
            }
        })
        .collect();
    let summary = Summary {
        published: messages,
        consumed: messages,
        expected: messages,
        confirmed: messages,
        publish_rate: rate,
        consume_rate: rate,
        publish_bytes_rate: rate * 16.0,
        consume_bytes_rate: rate * 16.0,
        latency: LatencySummary {
            e2e: Percentiles::of(&e2e),
            e2e_actual: Percentiles::of(&e2e),
            send_delay: Percentiles::default(),
            confirm: Percentiles::of(&confirm),
        },
        ..Summary::default()
    };
    RunResult {
        schema_version: crate::result::SCHEMA_VERSION,
        warren_version: "test".into(),
        status: RunStatus::Completed,
        error: None,
        started_at: "2026-01-01T00:00:00Z".into(),
        scenario: ScenarioInfo {
            name: name.into(),
            file: format!("scenarios/{name}.yaml"),
            duration_s: 10.0,
            measured_s: Some(10.0),
            warmup_s: 0.0,
            drain_s: 5.0,
            rate_scale: None,
            vhost: "/".into(),
            document: serde_json::json!({ "name": name }),
        },
        broker: BrokerInfo { url: "embedded".into(), embedded: true, product: Some("warren".into()), version: None },
        machine: MachineInfo {
            os: "linux".into(),
            arch: "x86_64".into(),
            cores: 2,
            memory_bytes: None,
            hostname: None,
        },
        git_revision: None,
        generator: GeneratorInfo {
            limited: false,
            reasons: vec![],
            cpu_seconds: Some(1.0),
            cpu_seconds_per_million: None,
            window_cpu_seconds: None,
            window_messages: None,
            window_cpu_seconds_per_million: None,
            busiest_thread_share: None,
        },
        broker_pace: BrokerPace::default(),
        summary,
        drain: DrainInfo { seconds: 0.1, delivered: 0, complete: true },
        producers: vec![ProducerGroupResult {
            name: "producer".into(),
            instances: 1,
            published: messages,
            confirmed: messages,
            nacked: 0,
            returned: 0,
            resent: 0,
            publish_rate: rate,
            publish_bytes_rate: rate * 16.0,
            target_rate: None,
            send_delay: Percentiles::default(),
            confirm: Percentiles::of(&confirm),
            send_delay_histogram: histogram::encode(&histogram::new_latency()),
            confirm_histogram: histogram::encode(&confirm),
            broker_wait: BrokerWait::default(),
            own_send_delay: Percentiles::default(),
            own_send_delay_histogram: histogram::encode(&histogram::new_latency()),
        }],
        consumers: vec![ConsumerGroupResult {
            name: "consumer".into(),
            queue: "q".into(),
            instances: 1,
            consumed: messages,
            expected: messages,
            lost: 0,
            confirmed_lost: 0,
            duplicated: 0,
            reordered: 0,
            redelivered: 0,
            rejected: 0,
            consume_rate: rate,
            consume_bytes_rate: rate * 16.0,
            e2e: Percentiles::of(&e2e),
            e2e_actual: Percentiles::of(&e2e),
            e2e_histogram: histogram::encode(&e2e),
            e2e_actual_histogram: histogram::encode(&e2e),
        }],
        gates: vec![GateResult { name: "max_lost".into(), threshold: 0.0, actual: 0.0, passed: true }],
        outages: Vec::new(),
        time_series: seconds,
        histograms: Histograms {
            unit: "ns".into(),
            encoding: "hdrhistogram-v2-deflate-base64".into(),
            e2e: histogram::encode(&e2e),
            e2e_actual: histogram::encode(&e2e),
            send_delay: histogram::encode(&histogram::new_latency()),
            confirm: histogram::encode(&confirm),
        },
        warnings: vec![],
        repeat: None,
        shard: None,
        merged: None,
        broker_view: None,
    }
}

/// `count` samples spread evenly from `from_us` to `to_us` microseconds, in nanoseconds.
pub fn spread_us(count: u64, from_us: u64, to_us: u64) -> Vec<u64> {
    (0..count).map(|i| (from_us + (to_us - from_us) * i / count.max(1)) * 1000).collect()
}
