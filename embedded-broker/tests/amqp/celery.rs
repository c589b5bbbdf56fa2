//! Celery end to end against the embedded broker: a worker subprocess (solo pool) consumes tasks
//! from the `celery` queue and sends results back over AMQP (`rpc://`, a reply queue per client);
//! the client checks five results, a task sent after four ETA tasks the worker holds, and a
//! task's exception, pings the worker through the pidbox fanout exchange and shuts it down with a
//! broadcast `shutdown` control command.

use std::time::Duration;

/// Written to `celery_e2e.py`: imported by the worker (`-A celery_e2e`), run as the client.
const SCRIPT: &str = r#"
import os, subprocess, sys
from celery import Celery

app = Celery("celery_e2e", broker=os.environ["CELERY_E2E_BROKER"], backend="rpc://")
app.conf.update(
    broker_connection_retry_on_startup=False,
    broker_connection_max_retries=0,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)

@app.task
def add(x, y):
    return x + y

@app.task
def fail():
    raise ValueError("expected failure")

def main():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.abspath(__file__)), env["PYTHONPATH"]])
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_e2e", "worker", "-n", "celery-e2e@localhost",
         "--pool=solo", "--concurrency=1", "--without-heartbeat", "--without-mingle", "--without-gossip",
         "-l", "warning"],
        env=env,
    )
    try:
        results = [add.delay(n, n * 10) for n in range(5)]
        print("RESULTS", ",".join(str(r.get(timeout=20)) for r in results), flush=True)
        # The worker holds ETA tasks unacknowledged and raises its prefetch for each (basic.qos
        # with global on RabbitMQ 3.x): four of them fill the default prefetch of 4, so the next
        # task only arrives if the raised prefetch reaches the running consumer.
        held = [add.apply_async((n, n), countdown=600) for n in range(4)]
        print("PAST ETA TASKS", add.delay(7, 8).get(timeout=20), flush=True)
        try:
            fail.delay().get(timeout=20)
        except ValueError as e:
            print("FAILURE", e, flush=True)
        # A broadcast on the celery.pidbox fanout exchange, answered through reply.celery.pidbox.
        print("PING", app.control.ping(destination=["celery-e2e@localhost"], timeout=10, limit=1), flush=True)
        # A signal can leave the worker in its poll for seconds; a control message wakes it at once.
        app.control.shutdown(destination=["celery-e2e@localhost"])
        print("WORKER EXIT", worker.wait(timeout=20), flush=True)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

if __name__ == "__main__":
    main()
"#;

#[tokio::test]
async fn celery_worker_runs_tasks_with_rpc_results_against_the_embedded_broker() {
    let Some(path) = crate::python::pip_install("celery", "celery>=5.3,<6", "celery").await else { return };
    let broker = warren_broker::Broker::start(warren_broker::BrokerConfig::default()).await.expect("broker");
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("celery_e2e.py");
    std::fs::write(&script, SCRIPT).expect("write the celery script");
    // kombu reads the vhost from the path: "//" is "/".
    let url = format!("amqp://guest:guest@{}//", broker.amqp_addr());
    // The worker is the script's child: the limit kills both.
    let out =
        crate::python::run(&[script.as_os_str()], &path, &[("CELERY_E2E_BROKER", &url)], Duration::from_secs(90)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "celery script failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("RESULTS 0,11,22,33,44\n"), "five results, in order:\n{stdout}\n{stderr}");
    assert!(stdout.contains("PAST ETA TASKS 15\n"), "a task past four held ETA tasks:\n{stdout}\n{stderr}");
    assert!(stdout.contains("FAILURE expected failure\n"), "the task's exception:\n{stdout}\n{stderr}");
    assert!(stdout.contains("PING [{'celery-e2e@localhost': {'ok': 'pong'}}]\n"), "a pong:\n{stdout}\n{stderr}");
    assert!(stdout.contains("WORKER EXIT 0\n"), "a clean worker exit:\n{stdout}\n{stderr}");
    broker.shutdown().await;
}
