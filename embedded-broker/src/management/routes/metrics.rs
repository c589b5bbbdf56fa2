//! Prometheus text under the names of RabbitMQ's `rabbitmq_prometheus` plugin, so dashboards
//! built for RabbitMQ read the embedded broker: `GET /metrics` aggregates queues, connections
//! and channels as the plugin does by default; `GET /metrics/per-object` labels queue metrics
//! with `vhost` and `queue`, as the plugin's per-object endpoint does. Like the plugin's port
//! (15692), these need no login.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::overview::NODE;
use crate::COMPATIBLE_RABBITMQ_VERSION;
use crate::management::Api;
use crate::management::live::Snapshot;

/// Metric types.
const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

/// The plugin's content type for the text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

pub(crate) async fn aggregated(State(api): State<Api>) -> Response {
    text(&api, false).await
}

pub(crate) async fn per_object(State(api): State<Api>) -> Response {
    text(&api, true).await
}

async fn text(api: &Api, per_object: bool) -> Response {
    let snapshot = Snapshot::take(&api.state).await;
    let mut out = Metrics::default();
    let state = &api.state;

    out.gauge(
        "rabbitmq_identity_info",
        "RabbitMQ node & cluster identity info",
        &[(format!("rabbitmq_node=\"{NODE}\",rabbitmq_cluster=\"{NODE}\"").as_str(), 1)],
    );
    out.gauge("rabbitmq_build_info", "RabbitMQ & Erlang/OTP version info", &[(
        format!(
            "rabbitmq_version=\"{COMPATIBLE_RABBITMQ_VERSION}\",prometheus_plugin_version=\"{COMPATIBLE_RABBITMQ_VERSION}\",\
             product_name=\"{}\",product_version=\"{}\"",
            crate::PRODUCT_NAME,
            env!("CARGO_PKG_VERSION")
        )
        .as_str(),
        1,
    )]);
    let (mut received, mut sent) = (0, 0);
    for report in snapshot.connections.iter().filter_map(|seen| seen.report.as_ref()) {
        received += report.io.recv_oct;
        sent += report.io.send_oct;
    }
    let churn = &snapshot.churn;
    let node: [(&str, &str, &str, Option<u64>); 16] = [
        (GAUGE, "rabbitmq_process_resident_memory_bytes", "Memory used in bytes", Some(state.memory_used() as u64)),
        (
            GAUGE,
            "rabbitmq_resident_memory_limit_bytes",
            "Memory high watermark in bytes",
            Some(state.memory_limit() as u64),
        ),
        (
            GAUGE,
            "rabbitmq_alarms_memory_used_watermark",
            "is 1 if VM memory watermark alarm is in effect",
            Some(u64::from(state.memory_alarm())),
        ),
        (
            GAUGE,
            "rabbitmq_alarms_free_disk_space_watermark",
            "is 1 if free disk space watermark alarm is in effect",
            Some(u64::from(state.disk_alarm())),
        ),
        (GAUGE, "rabbitmq_disk_space_available_bytes", "Disk space available in bytes", state.disk_free()),
        (
            GAUGE,
            "rabbitmq_disk_space_available_limit_bytes",
            "Free disk space low watermark in bytes",
            Some(state.disk_free_limit()),
        ),
        (GAUGE, "rabbitmq_erlang_uptime_seconds", "Node uptime", Some(api.started.elapsed().as_secs())),
        (GAUGE, "rabbitmq_connections", "Connections currently open", Some(snapshot.connections.len() as u64)),
        (
            COUNTER,
            "rabbitmq_connections_opened_total",
            "Total number of connections opened",
            Some(churn.connections_opened),
        ),
        (
            COUNTER,
            "rabbitmq_connections_closed_total",
            "Total number of connections closed or terminated",
            Some(churn.connections_closed),
        ),
        (GAUGE, "rabbitmq_channels", "Channels currently open", Some(snapshot.channel_count() as u64)),
        (COUNTER, "rabbitmq_channels_opened_total", "Total number of channels opened", Some(churn.channels_opened)),
        (COUNTER, "rabbitmq_channels_closed_total", "Total number of channels closed", Some(churn.channels_closed)),
        (
            COUNTER,
            "rabbitmq_connection_incoming_bytes_total",
            "Total number of bytes received on a connection",
            Some(received),
        ),
        (COUNTER, "rabbitmq_connection_outgoing_bytes_total", "Total number of bytes sent on a connection", Some(sent)),
        (GAUGE, "rabbitmq_queues", "Queues available", Some(state.queues(None).len() as u64)),
    ];
    for (kind, name, help, value) in node {
        if let Some(value) = value {
            out.family(name, help, kind, &[("", value)]);
        }
    }

    let queues = state.queues(None);
    let rows: Vec<(String, crate::state::queue::QueueCounts, u64)> = queues
        .iter()
        .map(|q| {
            let labels = format!("vhost=\"{}\",queue=\"{}\"", escape(&q.vhost), escape(&q.name));
            (labels, q.counts(), snapshot.queue(q).publish)
        })
        .collect();
    out.gauge(
        "rabbitmq_consumers",
        "Consumers currently connected",
        &[("", rows.iter().map(|(_, c, _)| c.consumers as u64).sum())],
    );
    let queue_metric = |out: &mut Metrics, name: &str, help: &str, counter: bool, value: &dyn Fn(usize) -> u64| {
        let samples: Vec<(&str, u64)> = if per_object {
            rows.iter().enumerate().map(|(i, (labels, _, _))| (labels.as_str(), value(i))).collect()
        } else {
            vec![("", (0..rows.len()).map(value).sum())]
        };
        if counter {
            out.counter(name, help, &samples);
        } else {
            out.gauge(name, help, &samples);
        }
    };
    queue_metric(
        &mut out,
        "rabbitmq_queue_messages",
        "Sum of ready and unacknowledged messages - total queue depth",
        false,
        &|i| rows[i].1.messages as u64,
    );
    queue_metric(
        &mut out,
        "rabbitmq_queue_messages_ready",
        "Messages ready to be delivered to consumers",
        false,
        &|i| rows[i].1.ready as u64,
    );
    queue_metric(
        &mut out,
        "rabbitmq_queue_messages_unacked",
        "Messages delivered to consumers but not yet acknowledged",
        false,
        &|i| rows[i].1.unacked as u64,
    );
    queue_metric(&mut out, "rabbitmq_queue_messages_ready_bytes", "Size in bytes of ready messages", false, &|i| {
        rows[i].1.ready_bytes as u64
    });
    queue_metric(&mut out, "rabbitmq_queue_consumers", "Consumers on a queue", false, &|i| rows[i].1.consumers as u64);
    queue_metric(
        &mut out,
        "rabbitmq_queue_messages_published_total",
        "Total number of messages published to queues",
        true,
        &|i| rows[i].2,
    );

    let t = &snapshot.totals;
    let global: [(&str, &str, u64); 13] = [
        ("received", "Total number of messages received from publishers", t.publish),
        (
            "routed",
            "Total number of messages routed to queues or streams",
            t.publish.saturating_sub(t.return_unroutable + t.drop_unroutable),
        ),
        (
            "unroutable_dropped",
            "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
            t.drop_unroutable,
        ),
        (
            "unroutable_returned",
            "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
            t.return_unroutable,
        ),
        ("confirmed", "Total number of messages confirmed to publishers", t.confirm),
        ("delivered", "Total number of messages delivered to consumers", t.deliver_get()),
        (
            "delivered_consume_manual_ack",
            "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
            t.deliver,
        ),
        (
            "delivered_consume_auto_ack",
            "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
            t.deliver_no_ack,
        ),
        (
            "delivered_get_manual_ack",
            "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
            t.get,
        ),
        (
            "delivered_get_auto_ack",
            "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
            t.get_no_ack,
        ),
        ("get_empty", "Total number of times basic.get operations fetched no message", t.get_empty),
        ("redelivered", "Total number of messages redelivered to consumers", t.redeliver),
        ("acknowledged", "Total number of messages acknowledged by consumers", t.ack),
    ];
    for (name, help, value) in global {
        out.counter(&format!("rabbitmq_global_messages_{name}_total"), help, &[("protocol=\"amqp091\"", value)]);
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], out.text).into_response()
}

/// The text being written.
#[derive(Default)]
struct Metrics {
    text: String,
}

impl Metrics {
    fn gauge(&mut self, name: &str, help: &str, samples: &[(&str, u64)]) {
        self.family(name, help, "gauge", samples);
    }

    fn counter(&mut self, name: &str, help: &str, samples: &[(&str, u64)]) {
        self.family(name, help, "counter", samples);
    }

    fn family(&mut self, name: &str, help: &str, kind: &str, samples: &[(&str, u64)]) {
        let _ = writeln!(self.text, "# TYPE {name} {kind}\n# HELP {name} {help}");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(self.text, "{name} {value}");
            } else {
                let _ = writeln!(self.text, "{name}{{{labels}}} {value}");
            }
        }
    }
}

/// A label value as the text format writes it: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_type_help_and_escaped_labels() {
        let mut m = Metrics::default();
        let labels = format!("queue=\"{}\"", escape("a\"b\\c\nd"));
        m.gauge("rabbitmq_queue_messages", "depth", &[(labels.as_str(), 3), ("", 4)]);
        assert_eq!(
            m.text,
            "# TYPE rabbitmq_queue_messages gauge\n# HELP rabbitmq_queue_messages depth\n\
             rabbitmq_queue_messages{queue=\"a\\\"b\\\\c\\nd\"} 3\nrabbitmq_queue_messages 4\n"
        );
    }
}
