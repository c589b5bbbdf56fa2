//! A test's own corner of a broker (a vhost and users, removed on drop),
//! on the embedded broker and on RabbitMQ when it answers, with the checks
//! the topology tests share: the broker's state, logging in, publishing.

use std::path::{Path, PathBuf};

use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Consumer};
use warren::management::Management;
use warren::target::Endpoint;
use warren::topology::definitions;
use warren::topology::model::Topology;
use warren::topology::normalise::Side;

use crate::util::{
    EmbeddedBroker, Output, RabbitMq, embedded_broker, management_request, publish_confirmed, rabbitmq, repo_path,
    run_with_env, unique_name,
};

/// One test's corner of a broker: a vhost and users, deleted on drop.
pub struct Sandbox {
    pub rabbit: RabbitMq,
    pub vhost: String,
    pub users: Vec<String>,
    pub dir: tempfile::TempDir,
    pub runtime: tokio::runtime::Runtime,
    /// Which broker, for assertion messages.
    pub name: &'static str,
    /// Declared last so it stops after the sandbox has cleaned up.
    _embedded: Option<EmbeddedBroker>,
}

/// A sandbox on a fresh embedded broker, and one on RabbitMQ when it answers.
pub fn sandboxes(prefix: &str) -> Vec<Sandbox> {
    let embedded = embedded_broker();
    let mut out = vec![Sandbox::on(embedded.target.clone(), "embedded", prefix, Some(embedded))];
    if let Some(rabbit) = rabbitmq() {
        out.push(Sandbox::on(rabbit, "RabbitMQ", prefix, None));
    }
    out
}

impl Sandbox {
    pub fn on(rabbit: RabbitMq, name: &'static str, prefix: &str, embedded: Option<EmbeddedBroker>) -> Sandbox {
        Sandbox {
            rabbit,
            vhost: unique_name(prefix),
            users: Vec::new(),
            dir: tempfile::tempdir().expect("a temporary directory"),
            runtime: tokio::runtime::Runtime::new().expect("a tokio runtime"),
            name,
            _embedded: embedded,
        }
    }

    /// Creates user `name` by hand (`PUT /api/users`), as an operator would
    /// before a file names it.
    pub fn create_user(&self, name: &str, password: &str, tags: &str) {
        let body = serde_json::json!({ "password": password, "tags": tags });
        let (status, text) =
            management_request(&self.rabbit, reqwest::Method::PUT, &format!("/api/users/{name}"), Some(body));
        assert!((200..300).contains(&status), "{}: creating user {name}: {status} {text}", self.name);
    }

    /// A user name unique to this test, deleted with the sandbox.
    pub fn user(&mut self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.users.push(name.clone());
        name
    }

    pub fn management(&self) -> Management {
        let endpoint = Endpoint::parse(&self.rabbit.management_url, Some((&self.rabbit.user, &self.rabbit.password)))
            .expect("the management URL parses");
        Management::new(std::slice::from_ref(&endpoint)).expect("a management client")
    }

    /// The example at `relative` with vhost `/` renamed to this sandbox's
    /// vhost and user `jack` to `jack`, written into the sandbox's directory.
    pub fn example(&self, relative: &str, jack: &str) -> PathBuf {
        let text = std::fs::read_to_string(repo_path(relative)).expect("the example exists");
        self.write(relative.rsplit('/').next().unwrap_or("topology.yaml"), &self.localise(&text, jack))
    }

    pub fn localise(&self, text: &str, jack: &str) -> String {
        text.lines()
            .map(|line| {
                let trimmed = line.trim_start();
                let indent = &line[..line.len() - trimmed.len()];
                if let Some(rest) = trimmed.strip_prefix("/:") {
                    format!("{indent}{:?}:{rest}", self.vhost)
                } else if let Some(rest) = trimmed.strip_prefix("jack:") {
                    format!("{indent}{jack}:{rest}")
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("writing the topology");
        path
    }

    pub fn warren(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all =
            vec!["--broker", self.rabbit.amqp_url.as_str(), "--management", self.rabbit.management_url.as_str()];
        all.extend_from_slice(args);
        run_with_env(all, env)
    }

    /// The broker's definitions of this sandbox's vhost and users, normalised.
    pub fn state(&self) -> Topology {
        let m = self.management();
        let mut defs = self.runtime.block_on(m.definitions()).expect("reading definitions");
        // RabbitMQ 3.10's definitions name vhosts only; their metadata is in /api/vhosts.
        let mut vhosts = self.runtime.block_on(m.vhosts()).expect("listing vhosts");
        vhosts.retain(|v| v.name == self.vhost);
        defs.vhosts = Some(vhosts);
        let ours = |vhost: &Option<String>| vhost.as_ref() == Some(&self.vhost);
        defs.queues.retain(|q| ours(&q.vhost));
        defs.exchanges.retain(|x| ours(&x.vhost));
        defs.bindings.retain(|b| ours(&b.vhost));
        defs.policies.retain(|p| ours(&p.vhost));
        defs.parameters.retain(|p| ours(&p.vhost));
        defs.users.get_or_insert_default().retain(|u| self.users.contains(&u.name));
        defs.permissions.get_or_insert_default().retain(|p| self.users.contains(&p.user));
        defs.topic_permissions.get_or_insert_default().retain(|p| self.users.contains(&p.user));
        definitions::to_topology(&defs, Side::Broker).expect("the definitions map onto the model")
    }

    pub fn amqp_url(&self, user: &str, password: &str) -> String {
        let vhost: String = url::form_urlencoded::byte_serialize(self.vhost.as_bytes()).collect();
        let parsed = url::Url::parse(&self.rabbit.amqp_url).expect("a URL");
        let host = parsed.host_str().unwrap_or("127.0.0.1");
        let port = parsed.port().unwrap_or(5672);
        format!("amqp://{user}:{password}@{host}:{port}/{vhost}")
    }

    pub fn connect(&self, user: &str, password: &str) -> lapin::Result<Connection> {
        let url = self.amqp_url(user, password);
        self.runtime.block_on(Connection::connect(&url, ConnectionProperties::default()))
    }

    /// Publishes `count` persistent messages with publisher confirms.
    pub fn publish(&self, exchange: &str, routing_key: &str, count: usize) {
        publish_confirmed(&self.amqp_url(&self.rabbit.user, &self.rabbit.password), exchange, routing_key, count);
    }

    /// A consumer on `queue` (it acknowledges nothing), with its connection;
    /// it stays until both are dropped (dropping the consumer cancels it).
    pub fn consume(&self, queue: &str) -> (Connection, Consumer) {
        let connection = self.connect(&self.rabbit.user, &self.rabbit.password).expect("connecting as admin");
        let consumer = self.runtime.block_on(async {
            let channel = connection.create_channel().await.expect("a channel");
            channel
                .basic_consume(
                    queue.into(),
                    "warren-test".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("consuming")
        });
        (connection, consumer)
    }

    /// Ready messages in `queue`, asked with a passive declare.
    pub fn message_count(&self, queue: &str) -> u32 {
        let connection = self.connect(&self.rabbit.user, &self.rabbit.password).expect("connecting as admin");
        self.runtime.block_on(async {
            let channel = connection.create_channel().await.expect("a channel");
            let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            let q =
                channel.queue_declare(queue.into(), options, FieldTable::default()).await.expect("the queue exists");
            let _ = connection.close(200, "OK".into()).await;
            q.message_count()
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let m = self.management();
        let _ = self.runtime.block_on(m.delete_vhost(&self.vhost));
        for user in &self.users {
            let _ = self.runtime.block_on(m.delete_user(user));
        }
    }
}

impl Sandbox {
    pub fn assert_code(&self, output: &Output, code: i32, what: &str) {
        let broker = self.name;
        assert_eq!(output.code, code, "{what} ({broker}):\nstdout:\n{}\nstderr:\n{}", output.stdout, output.stderr);
    }
}

/// The path as a `&str`, for command lines.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
