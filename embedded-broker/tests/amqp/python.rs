//! Python client libraries for the end-to-end client tests, installed with pip into the target
//! directory once and reused.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Installs `requirement` with pip into `<target tmpdir>/<dir>`, unless `dir/<module>` is already
/// there, and returns the directory for `PYTHONPATH`. `None` (after a loud skip note) only when
/// Python 3 is missing or pip cannot reach the package registry, and then a failure instead with
/// `WARREN_REQUIRE_PYPI=1`; any other pip failure fails the test.
pub async fn pip_install(dir: &str, requirement: &str, module: &str) -> Option<PathBuf> {
    let what = warren_testkit::current_test();
    let (dir, requirement, module) = (dir.to_owned(), requirement.to_owned(), module.to_owned());
    tokio::task::spawn_blocking(move || install(&what, &dir, &requirement, &module)).await.expect("install task")
}

fn install(what: &str, dir: &str, requirement: &str, module: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    if dir.join(module).is_dir() {
        return Some(dir);
    }
    let out = match Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
        .arg(&dir)
        .arg(requirement)
        .output()
    {
        Ok(out) => out,
        Err(error) => {
            warren_testkit::missing(warren_testkit::Need::PyPi, what, &format!("python3 does not run ({error})"));
            return None;
        }
    };
    if out.status.success() {
        return Some(dir);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named pip") {
        warren_testkit::missing(
            warren_testkit::Need::PyPi,
            what,
            "python3 has no pip (Debian: apt-get install python3-pip)",
        );
        return None;
    }
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
    let why = format!("pip could not install {requirement} (registry unreachable):\n{stderr}");
    warren_testkit::missing(warren_testkit::Need::PyPi, what, &why);
    None
}

/// Runs `python3 ARGS` with `pythonpath` and `env`, in a process group of its own, and returns its
/// output. Bounded: past `limit` the whole group (a script's own children too, such as a celery
/// worker) is killed and the test fails.
pub async fn run(args: &[&OsStr], pythonpath: &Path, env: &[(&str, &str)], limit: Duration) -> Output {
    let mut command = tokio::process::Command::new("python3");
    command.args(args).env("PYTHONPATH", pythonpath).envs(env.iter().copied());
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let group = child.id().expect("the script's pid");
    let Ok(out) = tokio::time::timeout(limit, child.wait_with_output()).await else {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status();
        panic!("the Python script did not finish within {limit:?} (killed)");
    };
    out.expect("python3 output")
}
