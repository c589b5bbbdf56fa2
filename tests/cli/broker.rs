//! `warren broker`: the embedded broker as a server process, as a user runs it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::{repo_root, run};

/// A running `warren broker` and the addresses it printed.
pub(crate) struct Server {
    child: Child,
    pub(crate) amqp: String,
    http: String,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Server {
    pub(crate) fn start(data_dir: &std::path::Path) -> Server {
        Server::start_with(Command::new(env!("CARGO_BIN_EXE_warren")), data_dir, &[])
    }

    /// `warren broker` on `data_dir` with `extra` arguments, run by `command`: the program itself,
    /// or a wrapper that the program and its arguments are appended to.
    pub(crate) fn start_with(mut command: Command, data_dir: &std::path::Path, extra: &[&str]) -> Server {
        if command.get_program() != env!("CARGO_BIN_EXE_warren") {
            command.arg(env!("CARGO_BIN_EXE_warren"));
        }
        let mut child = command
            .args(["broker", "--amqp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("NO_COLOR", "1")
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("warren broker starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("its stderr"));
        // "warren broker: AMQP on 127.0.0.1:P, management HTTP on http://127.0.0.1:H"
        let mut line = String::new();
        while !line.contains("AMQP on ") {
            line.clear();
            let read = stderr.read_line(&mut line).expect("reading its stderr");
            assert!(read > 0, "warren broker exited before saying where it listens");
        }
        let amqp = line.split("AMQP on ").nth(1).and_then(|r| r.split(',').next()).expect("the AMQP address");
        let http = line.split("HTTP on ").nth(1).map(str::trim).expect("the HTTP address");
        Server { amqp: amqp.to_owned(), http: http.to_owned(), child, stderr }
    }

    fn target(&self) -> [String; 4] {
        ["--broker".into(), format!("amqp://guest:guest@{}/%2f", self.amqp), "--management".into(), self.http.clone()]
    }

    /// Sends `signal` and returns the exit code and what the broker wrote after.
    pub(crate) fn stop_with(mut self, signal: &str) -> (i32, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-s", signal, &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -s {signal} {pid}");
        let status = self.child.wait().expect("warren broker exits");
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stderr, &mut rest);
        (status.code().unwrap_or(-1), rest)
    }
}

impl Server {
    /// `kill -9`: the process dies wherever it is, as in a crash.
    pub(crate) fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("warren broker dies");
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed by SIGKILL");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn warren_broker_serves_apply_stops_cleanly_on_sigterm_and_sigint_and_keeps_definitions() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("data");
    let topology = dir.path().join("t.yaml");
    std::fs::write(
        &topology,
        "vhosts: { /: { exchanges: { x: { type: topic, durable: true } }, queues: { q: { durable: true } },\n\
         bindings: [ { exchange: x, queue: q, routing_key: \"a.#\" } ] } }\n",
    )
    .expect("writing the topology");
    let topology = topology.display().to_string();

    let server = Server::start(&data);
    let target = server.target();
    let applied = run([&["apply", &topology, "--yes"][..], &target.each_ref().map(String::as_str)].concat());
    assert_eq!(applied.code, 0, "apply through `warren broker`: {}{}", applied.stdout, applied.stderr);
    let (code, said) = server.stop_with("TERM");
    assert_eq!(code, 0, "SIGTERM is a clean stop: {said}");
    assert!(said.contains("shutting down"), "it says it stops: {said}");

    // The durable definitions are back after a restart on the same directory.
    let server = Server::start(&data);
    let target = server.target();
    let plan = run([&["plan", &topology][..], &target.each_ref().map(String::as_str)].concat());
    assert_eq!(plan.code, 0, "in sync after a restart: {}{}", plan.stdout, plan.stderr);
    let (code, said) = server.stop_with("INT");
    assert_eq!(code, 0, "Ctrl-C is a clean stop: {said}");
}
