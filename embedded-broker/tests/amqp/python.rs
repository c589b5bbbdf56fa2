//! Python client libraries for the end-to-end client tests, installed with pip into the target
//! directory once and reused.

use std::path::PathBuf;
use std::process::Command;

/// Installs `requirement` with pip into `<target tmpdir>/<dir>`, unless `dir/<module>` is already
/// there, and returns the directory for `PYTHONPATH`. `None` (with a loud note) only when pip
/// cannot reach the package registry; any other pip failure fails the test.
pub async fn pip_install(dir: &str, requirement: &str, module: &str) -> Option<PathBuf> {
    let (dir, requirement, module) = (dir.to_owned(), requirement.to_owned(), module.to_owned());
    tokio::task::spawn_blocking(move || install(&dir, &requirement, &module)).await.expect("install task")
}

fn install(dir: &str, requirement: &str, module: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    if dir.join(module).is_dir() {
        return Some(dir);
    }
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
        .arg(&dir)
        .arg(requirement)
        .output()
        .expect("python3 runs (the Python client tests need Python 3 with pip)");
    if out.status.success() {
        return Some(dir);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let offline = [
        "Could not find a version",
        "Failed to establish",
        "Network is unreachable",
        "Name or service not known",
        "Temporary failure",
    ]
    .iter()
    .any(|s| stderr.contains(s));
    assert!(offline, "pip failed for another reason than the registry being unreachable:\n{stderr}");
    eprintln!("SKIPPED LOUDLY: could not install {requirement} (registry unreachable):\n{stderr}");
    None
}
