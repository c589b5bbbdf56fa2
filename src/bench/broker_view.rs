//! The broker's own view of a run: its management API read once a second
//! while the run goes (queue depths, memory, connections, channels, its own
//! message rates), the same requests for RabbitMQ and the embedded broker.
//!
//! The sampler runs on the command's runtime, apart from the run's own
//! thread and its connections' I/O threads, and reads one sample at a time
//! with a short timeout: a slow or absent management API costs the run
//! nothing but the series. What it read is put on the run's clock at the end
//! ([`Sampler::finish`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::actors::Clock;
use super::host;
use crate::management::Management;
use crate::result::{BrokerSample, BrokerView, QueuePeak, QueueSample};

/// How often the broker is read.
const EVERY: Duration = Duration::from_secs(1);

/// The most samples one run keeps (a day at one a second); the run ends long before.
const MAX_SAMPLES: usize = 86_400;

/// Reads the broker until [`Sampler::finish`].
pub struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<Read>,
    source: String,
}

/// What the sampling task read.
#[derive(Debug, Default)]
struct Read {
    /// Each sample, with when its requests went out.
    samples: Vec<(Instant, BrokerSample)>,
    /// How many reads failed, and the first reason.
    failed: usize,
    first_failure: Option<String>,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sampler {
    /// Starts reading the queues of `vhost` and the broker's totals through
    /// `management`; `in_process` adds the CPU time of the embedded broker
    /// running in this process.
    pub fn start(management: Arc<Management>, vhost: String, in_process: bool) -> Sampler {
        let stop = CancellationToken::new();
        let source = crate::target::redact_url(management.url());
        let task = tokio::spawn(sample_until(management, vhost, in_process, stop.clone()));
        Sampler { stop, task, source }
    }

    /// Stops reading and puts what was read on the run's `clock`: the view
    /// (absent when nothing could be read) and a warning for the result when
    /// reads failed.
    pub async fn finish(mut self, clock: &Clock) -> (Option<BrokerView>, Option<String>) {
        self.stop.cancel();
        let read = (&mut self.task).await.unwrap_or_default();
        let warning = match &read.first_failure {
            None if read.samples.is_empty() => Some(
                "the broker's management API was not read before the run ended: the result has no broker series"
                    .to_owned(),
            ),
            None => None,
            Some(reason) if read.samples.is_empty() => {
                Some(format!("the broker's management API did not answer ({reason}): the result has no broker series"))
            }
            Some(reason) => Some(format!(
                "{} of {} reads of the broker's management API failed (first: {reason})",
                read.failed,
                read.failed + read.samples.len()
            )),
        };
        let start = clock.epoch + Duration::from_nanos(clock.start_ns);
        let samples: Vec<BrokerSample> = read
            .samples
            .into_iter()
            .map(|(at, sample)| BrokerSample { t: signed_seconds(at, start), ..sample })
            .collect();
        if samples.is_empty() {
            return (None, warning);
        }
        (Some(view(std::mem::take(&mut self.source), samples)), warning)
    }
}

/// `at - start` in seconds, negative when `at` came first.
fn signed_seconds(at: Instant, start: Instant) -> f64 {
    match at.checked_duration_since(start) {
        Some(after) => after.as_secs_f64(),
        None => -start.duration_since(at).as_secs_f64(),
    }
}

/// The peaks and totals of `samples`.
fn view(source: String, samples: Vec<BrokerSample>) -> BrokerView {
    let peak_queue = samples
        .iter()
        .flat_map(|s| &s.queues)
        .max_by_key(|q| q.ready + q.unacked)
        .map(|q| QueuePeak { name: q.name.clone(), messages: q.ready + q.unacked });
    let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_seconds).collect();
    BrokerView {
        source,
        peak_messages: samples.iter().map(BrokerSample::messages).max().unwrap_or(0),
        peak_queue,
        peak_memory_bytes: samples.iter().filter_map(|s| s.memory_bytes).max(),
        cpu_seconds: if cpu.is_empty() { None } else { Some(cpu.iter().sum()) },
        samples,
    }
}

async fn sample_until(management: Arc<Management>, vhost: String, in_process: bool, stop: CancellationToken) -> Read {
    let mut read = Read::default();
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut cpu_before = if in_process { host::cpu::other_threads_cpu_seconds() } else { None };
    while read.samples.len() + read.failed < MAX_SAMPLES {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let at = Instant::now();
        let sample = tokio::select! {
            _ = stop.cancelled() => break,
            sample = sample(&management, &vhost) => sample,
        };
        match sample {
            Ok(mut sample) => {
                if in_process {
                    let now = host::cpu::other_threads_cpu_seconds();
                    // Threads that ended take their time with them: never a negative second.
                    sample.cpu_seconds = now.zip(cpu_before).map(|(now, before)| (now - before).max(0.0));
                    cpu_before = now;
                }
                read.samples.push((at, sample));
            }
            Err(reason) => {
                read.failed += 1;
                read.first_failure.get_or_insert(reason);
            }
        }
    }
    read
}

/// One sample: the vhost's queues (needed), the overview and the nodes (whatever they hold).
async fn sample(management: &Management, vhost: &str) -> Result<BrokerSample, String> {
    let queues_path =
        format!("queues/{}", percent_encoding::utf8_percent_encode(vhost, percent_encoding::NON_ALPHANUMERIC));
    let (queues, overview, nodes) = tokio::join!(
        management.read_json(&queues_path),
        management.read_json("overview"),
        management.read_json("nodes")
    );
    let queues = queues.map_err(|e| e.to_string())?;
    let overview = overview.unwrap_or(Value::Null);
    let nodes = nodes.unwrap_or(Value::Null);
    Ok(BrokerSample {
        t: 0.0,
        queues: queue_samples(&queues),
        memory_bytes: memory(&nodes),
        connections: overview.pointer("/object_totals/connections").and_then(Value::as_u64),
        channels: overview.pointer("/object_totals/channels").and_then(Value::as_u64),
        publish_rate: overview.pointer("/message_stats/publish_details/rate").and_then(Value::as_f64),
        deliver_rate: overview.pointer("/message_stats/deliver_get_details/rate").and_then(Value::as_f64),
        cpu_seconds: None,
    })
}

/// `GET /api/queues/{vhost}`: each queue's ready and unacknowledged counts
/// (RabbitMQ leaves them out until its first statistics tick: zero then).
fn queue_samples(queues: &Value) -> Vec<QueueSample> {
    let count = |queue: &Value, key: &str| queue.get(key).and_then(Value::as_u64).unwrap_or(0);
    queues
        .as_array()
        .map(|queues| {
            queues
                .iter()
                .filter_map(|q| {
                    let name = q.get("name")?.as_str()?.to_owned();
                    Some(QueueSample {
                        name,
                        ready: count(q, "messages_ready"),
                        unacked: count(q, "messages_unacknowledged"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /api/nodes`: the memory every node reports using, added up.
fn memory(nodes: &Value) -> Option<u64> {
    let used: Vec<u64> = nodes.as_array()?.iter().filter_map(|n| n.get("mem_used").and_then(Value::as_u64)).collect();
    if used.is_empty() { None } else { Some(used.iter().sum()) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn queues_and_nodes_read_from_rabbitmqs_shapes_with_missing_figures_as_absent() {
        let queues = json!([
            { "name": "orders", "vhost": "v", "messages_ready": 7, "messages_unacknowledged": 3 },
            { "name": "fresh", "vhost": "v" },
            { "vhost": "v" }
        ]);
        assert_eq!(
            queue_samples(&queues),
            vec![
                QueueSample { name: "orders".into(), ready: 7, unacked: 3 },
                QueueSample { name: "fresh".into(), ready: 0, unacked: 0 },
            ]
        );
        let nodes = json!([{ "name": "a", "mem_used": 100 }, { "name": "b", "mem_used": 50 }, { "name": "c" }]);
        assert_eq!(memory(&nodes), Some(150));
        assert_eq!(memory(&json!([{ "name": "a" }])), None);
        assert_eq!(memory(&json!({ "error": "not_found" })), None);
    }

    #[test]
    fn the_view_keeps_the_deepest_moment_and_the_deepest_queue() {
        let sample = |t: f64, queues: &[(&str, u64, u64)], memory: Option<u64>| BrokerSample {
            t,
            queues: queues.iter().map(|(n, r, u)| QueueSample { name: (*n).into(), ready: *r, unacked: *u }).collect(),
            memory_bytes: memory,
            cpu_seconds: Some(0.25),
            ..BrokerSample::default()
        };
        let view = view(
            "http://127.0.0.1:15672".into(),
            vec![
                sample(0.1, &[("a", 10, 0), ("b", 0, 5)], Some(1000)),
                sample(1.1, &[("a", 2, 0), ("b", 30, 1)], None),
                sample(2.1, &[("a", 20, 0), ("b", 0, 0)], Some(3000)),
            ],
        );
        assert_eq!(view.peak_messages, 33, "the most queued at one moment, all queues together");
        assert_eq!(view.peak_queue, Some(QueuePeak { name: "b".into(), messages: 31 }));
        assert_eq!(view.peak_memory_bytes, Some(3000));
        assert_eq!(view.cpu_seconds, Some(0.75));
        assert_eq!(view.samples.len(), 3);
    }

    #[tokio::test]
    async fn a_management_api_that_does_not_answer_leaves_no_series_and_says_so() {
        // Nothing listens on a port just bound and released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let url = format!("http://127.0.0.1:{}", port.expect("a free port"));
        let endpoint = crate::target::Endpoint::parse(&url, Some(("guest", "guest"))).expect("an endpoint");
        let management = Arc::new(Management::new(&[endpoint]).expect("a client"));
        let sampler = Sampler::start(management, "/".into(), false);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = Instant::now();
        let clock = Clock { epoch: now, start_ns: 0, measure_start_ns: 0, measure_end_ns: 0, drain_end_ns: 0 };
        let (view, warning) = sampler.finish(&clock).await;
        assert_eq!(view, None);
        let warning = warning.expect("a warning for the result");
        assert!(
            warning.contains("management API") && warning.ends_with("the result has no broker series"),
            "{warning}"
        );
    }

    #[test]
    fn times_before_the_start_are_negative() {
        let start = Instant::now() + Duration::from_secs(5);
        assert!((signed_seconds(start + Duration::from_millis(1500), start) - 1.5).abs() < 1e-9);
        assert!((signed_seconds(start - Duration::from_millis(250), start) + 0.25).abs() < 1e-9);
    }
}
