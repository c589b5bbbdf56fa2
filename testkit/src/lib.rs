//! What warren's tests need from the machine they run on, found in one place.
//!
//! A test that needs something outside the project (RabbitMQ, its management
//! plugin, Chromium, the Python package registry) asks here. When it is there
//! the test gets it; when it is not, the test is skipped **loudly** (a line on
//! the real standard error, which the test harness does not capture, so it
//! shows even when the test passes) — unless the matching `WARREN_REQUIRE_*`
//! flag is set, as CI sets them, and then the test fails.
//!
//! | flag | what it requires |
//! |---|---|
//! | `WARREN_REQUIRE_RABBITMQ=1` | RabbitMQ at `WARREN_RABBITMQ_URL` and its management API on port 15672 |
//! | `WARREN_REQUIRE_CHROMIUM=1` | a `chromium` binary for the browser tests |
//! | `WARREN_REQUIRE_PYPI=1` | the Python client libraries installable with pip |
//! | `WARREN_REQUIRE_CLUSTER=1` | the 3-node RabbitMQ cluster of `tools/rabbitmq-cluster up` |
//! | `WARREN_REQUIRE_RESTARTABLE=1` | the standalone RabbitMQ node the restart tests stop and start (`tools/rabbitmq-cluster solo up`) |
//! | `WARREN_REQUIRE_SMALL_DISK=1` | `unshare` able to mount a small tmpfs in a mount namespace of the test's own (the full-disk test) |

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// The RabbitMQ the tests use when `WARREN_RABBITMQ_URL` is unset.
pub const DEFAULT_RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// RabbitMQ's AMQP port and its management API.
    RabbitMq,
    /// A Chromium binary.
    Chromium,
    /// pip reaching the Python package registry.
    PyPi,
    /// A RabbitMQ cluster (`tools/rabbitmq-cluster up`).
    Cluster,
    /// The standalone RabbitMQ node of `tools/rabbitmq-cluster solo`, which tests may restart
    /// (the machine's own node is never restarted: others test against it).
    RestartableRabbitMq,
    /// A small file system of the test's own: `unshare --map-root-user --mount` and a tmpfs.
    SmallDisk,
}

impl Need {
    /// The environment variable that turns a missing need into a failure.
    pub fn flag(self) -> &'static str {
        match self {
            Need::RabbitMq => "WARREN_REQUIRE_RABBITMQ",
            Need::Chromium => "WARREN_REQUIRE_CHROMIUM",
            Need::PyPi => "WARREN_REQUIRE_PYPI",
            Need::Cluster => "WARREN_REQUIRE_CLUSTER",
            Need::RestartableRabbitMq => "WARREN_REQUIRE_RESTARTABLE",
            Need::SmallDisk => "WARREN_REQUIRE_SMALL_DISK",
        }
    }

    /// Whether the flag is set (`1`).
    pub fn required(self) -> bool {
        std::env::var(self.flag()).is_ok_and(|v| v == "1")
    }
}

/// Reports that `need` is missing for `what` (a test, or the part of one that
/// needs it): a failure (panic) when its flag is set, otherwise a loud note on
/// the process's real standard error.
pub fn missing(need: Need, what: &str, why: &str) {
    // Straight to the file descriptor: the test harness captures `eprintln!`
    // of passing tests, and a skip must be seen.
    report_missing(need, need.required(), what, why, &mut std::io::stderr().lock());
}

fn report_missing(need: Need, required: bool, what: &str, why: &str, out: &mut dyn std::io::Write) {
    let flag = need.flag();
    if required {
        panic!("{flag}=1, but {why}; {what} cannot run");
    }
    let _ = writeln!(out, "\nSKIPPED: {what}: {why} (set {flag}=1 to make this a failure)");
}

/// RabbitMQ as the tests reach it.
#[derive(Debug, Clone)]
pub struct RabbitMq {
    /// AMQP URL with credentials and vhost.
    pub amqp_url: String,
    /// Host of the AMQP URL.
    pub host: String,
    /// AMQP port.
    pub amqp_port: u16,
    /// User of the AMQP URL (the management API uses the same).
    pub user: String,
    /// Its password.
    pub password: String,
    /// The management API's address (same host, port 15672).
    pub management: SocketAddr,
}

impl RabbitMq {
    /// `host:port` of the AMQP listener.
    pub fn amqp_addr(&self) -> String {
        format!("{}:{}", self.host, self.amqp_port)
    }

    /// `http://host:15672`.
    pub fn management_url(&self) -> String {
        format!("http://{}", self.management)
    }
}

/// The AMQP URL the tests use for RabbitMQ (`WARREN_RABBITMQ_URL`, or the default).
pub fn rabbitmq_url() -> String {
    std::env::var("WARREN_RABBITMQ_URL").unwrap_or_else(|_| DEFAULT_RABBITMQ_URL.to_owned())
}

/// Where RabbitMQ is, from the URL alone (nothing is probed).
fn rabbitmq_endpoints(url: &str) -> Option<(String, u16, String, String)> {
    let rest = url.split_once("://").map(|(_, r)| r)?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (credentials, host_port) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (host_port, 5672),
    };
    let user = if user.is_empty() { "guest" } else { user };
    let password = if credentials.is_empty() { "guest" } else { password };
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    Some((host.to_owned(), port, user.to_owned(), password.to_owned()))
}

fn answers(addr: &str) -> Option<SocketAddr> {
    let addr = addr.to_socket_addrs().ok()?.next()?;
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok().map(|_| addr)
}

/// RabbitMQ with its management API, or `None` after [`missing`] said which
/// of the two does not answer (`what` names the test or the part of it that
/// would have run against RabbitMQ).
pub fn rabbitmq(what: &str) -> Option<RabbitMq> {
    let rabbit = rabbitmq_amqp(what)?;
    if answers(&rabbit.management.to_string()).is_none() {
        let why = format!(
            "RabbitMQ answers at {} but its management API does not on {} \
             (`rabbitmq-plugins enable rabbitmq_management`); checked against the embedded broker only",
            rabbit.amqp_addr(),
            rabbit.management
        );
        missing(Need::RabbitMq, what, &why);
        return None;
    }
    Some(rabbit)
}

/// RabbitMQ's AMQP listener, for tests that need nothing else of it, or
/// `None` after [`missing`].
pub fn rabbitmq_amqp(what: &str) -> Option<RabbitMq> {
    let url = rabbitmq_url();
    let Some((host, amqp_port, user, password)) = rabbitmq_endpoints(&url) else {
        panic!("WARREN_RABBITMQ_URL is not an amqp:// URL: {url}");
    };
    let Some(management) = format!("{host}:15672").to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        panic!("the host of WARREN_RABBITMQ_URL does not resolve: {host}");
    };
    if answers(&format!("{host}:{amqp_port}")).is_none() {
        let why = format!("RabbitMQ does not answer at {host}:{amqp_port}; checked against the embedded broker only");
        missing(Need::RabbitMq, what, &why);
        return None;
    }
    Some(RabbitMq { amqp_url: url, host, amqp_port, user, password, management })
}

/// The name of the running test (libtest names each test's thread after it),
/// for skip notes.
pub fn current_test() -> String {
    std::thread::current().name().unwrap_or("a test").to_owned()
}

/// The nodes of the test cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Each node's AMQP URL (guest, vhost `/`).
    pub amqp: Vec<String>,
    /// Each node's management API, `http://host:port`.
    pub management: Vec<String>,
}

/// The RabbitMQ cluster `tools/rabbitmq-cluster up` starts (or the one named by
/// `WARREN_CLUSTER_AMQP` and `WARREN_CLUSTER_MANAGEMENT`, comma-separated),
/// when every node answers; `None` after [`missing`] otherwise.
pub fn cluster(what: &str) -> Option<Cluster> {
    let list = |var: &str, default: &str| -> Vec<String> {
        let text = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    };
    let amqp = list(
        "WARREN_CLUSTER_AMQP",
        "amqp://guest:guest@127.0.0.1:5681/%2f,amqp://guest:guest@127.0.0.1:5682/%2f,amqp://guest:guest@127.0.0.1:5683/%2f",
    );
    let management =
        list("WARREN_CLUSTER_MANAGEMENT", "http://127.0.0.1:15681,http://127.0.0.1:15682,http://127.0.0.1:15683");
    let addresses = amqp
        .iter()
        .filter_map(|url| rabbitmq_endpoints(url).map(|(host, port, ..)| format!("{host}:{port}")))
        .chain(management.iter().map(|url| url.trim_start_matches("http://").trim_end_matches('/').to_owned()));
    let silent: Vec<String> = addresses.filter(|addr| answers(addr).is_none()).collect();
    if !silent.is_empty() || amqp.is_empty() {
        let why = format!("the test cluster does not answer at {} (tools/rabbitmq-cluster up)", silent.join(", "));
        missing(Need::Cluster, what, &why);
        return None;
    }
    Some(Cluster { amqp, management })
}

/// The standalone RabbitMQ node of `tools/rabbitmq-cluster solo`: a node of its own (name
/// `warren-solo@localhost`, data directory, ports) that a test may restart. Held by one test at
/// a time, across processes too (`/tmp/warren-solo.lock`, until this is dropped): two test runs on
/// one machine would otherwise restart it under each other.
#[derive(Debug, Clone)]
pub struct RestartableRabbitMq {
    /// AMQP URL with credentials and vhost.
    pub amqp_url: String,
    script: PathBuf,
    _lock: std::sync::Arc<std::fs::File>,
}

/// Where the solo node listens for AMQP.
pub const RESTARTABLE_RABBITMQ_ADDR: &str = "127.0.0.1:5690";

impl RestartableRabbitMq {
    /// `rabbitmqctl stop_app` then `start_app` on the node, waiting until it answers again: every
    /// connection is closed and the queues are recovered from disk, as after an operator's restart.
    pub fn restart(&self) {
        self.script(&["solo", "restart"]);
    }

    /// `kill -9` of the node's Erlang VM, then a start, waiting until it answers again.
    pub fn kill9_and_start(&self) {
        self.script(&["solo", "kill"]);
        self.script(&["solo", "start"]);
    }

    fn script(&self, args: &[&str]) {
        let status = std::process::Command::new(&self.script)
            .args(args)
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.script.display()));
        assert!(status.success(), "{} {} failed: {status}", self.script.display(), args.join(" "));
    }
}

/// The restartable RabbitMQ node, or `None` after [`missing`].
pub fn restartable_rabbitmq(what: &str) -> Option<RestartableRabbitMq> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/rabbitmq-cluster");
    // The lock first: another run may be restarting the node until it lets go.
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/warren-solo.lock")
        .expect("opening the solo node's lock file");
    lock.lock().expect("taking the solo node's lock");
    if answers(RESTARTABLE_RABBITMQ_ADDR).is_none() {
        let why = format!(
            "the restartable RabbitMQ node does not answer at {RESTARTABLE_RABBITMQ_ADDR} \
             (`tools/rabbitmq-cluster solo up` starts it); checked against the embedded broker only"
        );
        missing(Need::RestartableRabbitMq, what, &why);
        return None;
    }
    Some(RestartableRabbitMq {
        amqp_url: format!("amqp://guest:guest@{RESTARTABLE_RABBITMQ_ADDR}/%2f"),
        script,
        _lock: std::sync::Arc::new(lock),
    })
}

/// A command that runs a program with a tmpfs of `size` (as `mount -o size=` takes it) mounted
/// on `dir`, in a mount namespace of its own (nothing outside sees the mount, and it goes with the
/// program), or `None` after [`missing`] when this machine cannot. Append the program and its
/// arguments to the command.
pub fn on_small_disk(what: &str, dir: &std::path::Path, size: &str) -> Option<std::process::Command> {
    let command = || {
        let mut c = std::process::Command::new("unshare");
        c.args([
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            r#"mount -t tmpfs -o "size=$1" tmpfs "$2" && shift 2 && exec "$@""#,
            "sh",
            size,
        ])
        .arg(dir);
        c
    };
    let probe = command().arg("true").output();
    match probe {
        Ok(out) if out.status.success() => Some(command()),
        Ok(out) => {
            let why = format!(
                "`unshare --map-root-user --mount` cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            missing(Need::SmallDisk, what, &why);
            None
        }
        Err(error) => {
            missing(Need::SmallDisk, what, &format!("cannot run `unshare` (util-linux): {error}"));
            None
        }
    }
}

/// The Chromium binary, or `None` after [`missing`].
pub fn chromium(what: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        missing(Need::Chromium, what, "no `chromium` on PATH (Debian: apt-get install chromium)");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_the_url_with_rabbitmq_defaults() {
        assert_eq!(
            rabbitmq_endpoints("amqp://guest:guest@127.0.0.1:5672/%2f"),
            Some(("127.0.0.1".into(), 5672, "guest".into(), "guest".into()))
        );
        assert_eq!(
            rabbitmq_endpoints("amqp://bob:s3:cret@rabbit.local/vh"),
            Some(("rabbit.local".into(), 5672, "bob".into(), "s3:cret".into()))
        );
        assert_eq!(
            rabbitmq_endpoints("amqp://localhost:5673"),
            Some(("localhost".into(), 5673, "guest".into(), "guest".into()))
        );
        assert_eq!(rabbitmq_endpoints("127.0.0.1:5672"), None);
    }

    #[test]
    #[should_panic(expected = "WARREN_REQUIRE_CHROMIUM=1, but no browser; the report test cannot run")]
    fn a_missing_need_fails_when_its_flag_is_set() {
        report_missing(Need::Chromium, true, "the report test", "no browser", &mut Vec::new());
    }

    #[test]
    fn a_missing_need_is_a_loud_skip_without_its_flag() {
        let mut out = Vec::new();
        report_missing(Need::PyPi, false, "the pika test", "pip cannot reach PyPI", &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\nSKIPPED: the pika test: pip cannot reach PyPI (set WARREN_REQUIRE_PYPI=1 to make this a failure)\n"
        );
    }
}
