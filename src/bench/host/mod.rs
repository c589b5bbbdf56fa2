//! Facts about the host a run happens on: the machine and the git revision
//! (for the result file), the CPU time of warren's own threads ([`cpu`]),
//! and the process limits a run with many connections needs ([`limits`]).

pub mod cpu;
pub mod limits;

use std::path::Path;
use std::process::Command;

use crate::result::MachineInfo;

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

/// `git rev-parse HEAD` in `dir`, when it is inside a repository.
pub fn git_revision(dir: &Path) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let revision = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!revision.is_empty()).then_some(revision)
}
