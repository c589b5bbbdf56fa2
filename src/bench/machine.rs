//! Facts about where a run happened, for the result file: the machine, the
//! client's own CPU time, the git revision.

use std::path::Path;
use std::process::Command;

use crate::bench::result::MachineInfo;

/// The machine warren runs on.
pub fn machine() -> MachineInfo {
    MachineInfo {
        os: std::env::consts::OS.to_owned(),
        arch: std::env::consts::ARCH.to_owned(),
        cores: std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        memory_bytes: memory_bytes(),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()),
    }
}

fn memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time (user + system) this process has used, in seconds; `None` off Linux.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
    Some((utime + stime) as f64 / 100.0)
}

/// `git rev-parse HEAD` in `dir`, when it is inside a repository.
pub fn git_revision(dir: &Path) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!revision.is_empty()).then_some(revision)
}

/// Product name and version from the management API's overview, when it answers.
pub async fn broker_product(endpoint: &crate::management::Endpoint) -> (Option<String>, Option<String>) {
    crate::management::client::install_crypto_provider();
    let request = async {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().ok()?;
        let response = client
            .get(format!("{}/overview", endpoint.api_url()))
            .basic_auth(&endpoint.username, Some(&endpoint.password))
            .send()
            .await
            .ok()?;
        let text = response.error_for_status().ok()?.text().await.ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()
    };
    let Some(overview) = request.await else { return (None, None) };
    let field = |key: &str| overview.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    (field("product_name"), field("product_version").or_else(|| field("rabbitmq_version")))
}
