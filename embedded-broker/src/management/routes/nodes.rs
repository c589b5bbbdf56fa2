//! `/api/nodes` and `/api/nodes/{name}`: the one node, with RabbitMQ's memory, file descriptor,
//! disk and alarm fields. `mem_used` is what the memory alarm compares with `mem_limit` (the
//! bytes held by queued messages), as RabbitMQ's alarm compares its `mem_used`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::overview::NODE;
use crate::management::live::Snapshot;
use crate::management::{Api, ApiError};

pub(crate) async fn list(State(api): State<Api>) -> Json<Value> {
    Json(json!([node(&api).await]))
}

pub(crate) async fn show(State(api): State<Api>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    if name != NODE {
        return Err(ApiError::ObjectNotFound);
    }
    Ok(Json(node(&api).await))
}

async fn node(api: &Api) -> Value {
    let state = &api.state;
    let snapshot = Snapshot::take(state).await;
    let churn = snapshot.churn;
    let fds = FileDescriptors::read();
    let mut node = json!({
        "name": NODE,
        "type": "disc",
        "running": true,
        "os_pid": std::process::id().to_string(),
        "uptime": api.started.elapsed().as_millis() as u64,
        "processors": std::thread::available_parallelism().map_or(1, usize::from),
        "run_queue": 0,
        "rates_mode": "basic",
        "mem_limit": state.memory_limit(),
        "mem_alarm": state.memory_alarm(),
        "mem_calculation_strategy": "allocated",
        "disk_free_limit": state.disk_free_limit(),
        "disk_free_alarm": state.disk_alarm(),
        "fd_total": fds.total,
        "sockets_total": fds.total,
        "proc_used": snapshot.connections.len(),
        "proc_total": 1_048_576,
        "partitions": [],
        "enabled_plugins": ["rabbitmq_management"],
        "auth_mechanisms": [
            { "name": "PLAIN", "description": "SASL PLAIN authentication mechanism", "enabled": true },
            { "name": "AMQPLAIN", "description": "QPid AMQPLAIN mechanism", "enabled": true },
        ],
        "being_drained": false,
    });
    let mut counters = vec![
        ("mem_used", state.memory_used() as u64),
        ("fd_used", fds.used),
        ("sockets_used", snapshot.connections.len() as u64),
        ("connection_created", churn.connections_opened),
        ("connection_closed", churn.connections_closed),
        ("channel_created", churn.channels_opened),
        ("channel_closed", churn.channels_closed),
    ];
    if let Some(free) = state.disk_free() {
        counters.push(("disk_free", free));
    }
    if let Value::Object(map) = &mut node {
        map.extend(api.rates.counters("node", &counters));
    }
    node
}

/// The process's open file descriptors and their limit (Linux's `/proc`; zero elsewhere).
struct FileDescriptors {
    used: u64,
    total: u64,
}

impl FileDescriptors {
    fn read() -> FileDescriptors {
        let used = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64);
        let total =
            std::fs::read_to_string("/proc/self/limits").ok().and_then(|text| soft_open_files(&text)).unwrap_or(0);
        FileDescriptors { used, total }
    }
}

/// The soft limit in `/proc/self/limits`' `Max open files` line.
fn soft_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_files_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max cpu time              unlimited            unlimited            seconds\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(soft_open_files(text), Some(1024));
        assert_eq!(soft_open_files("nothing"), None);
    }
}
