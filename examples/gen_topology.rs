//! Writes the benchmark topology: one vhost, 2,000 exchanges, 5,000 queues
//! and 10,000 bindings, as a warren topology file and as the equivalent
//! RabbitMQ definitions document (for `rabbitmqctl import_definitions`).
//!
//! ```sh
//! cargo run --release --example gen_topology -- OUT_DIR VHOST [EXCHANGES QUEUES BINDINGS]
//! ```
//!
//! Writes `OUT_DIR/VHOST.yaml` and `OUT_DIR/VHOST.json`. `tools/bench-topology.sh`
//! runs the whole comparison.

use std::path::PathBuf;
use std::process::ExitCode;

use warren::topology::definitions::from_topology;
use warren::topology::model::{Binding, DestinationType, Exchange, ExchangeType, Queue, State, Topology, Vhost};
use warren::topology::write::to_yaml;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(vhost)) = (args.first(), args.get(1)) else {
        eprintln!("usage: gen_topology OUT_DIR VHOST [EXCHANGES QUEUES BINDINGS]");
        return ExitCode::FAILURE;
    };
    let count = |i: usize, default: usize| -> Result<usize, String> {
        args.get(i).map_or(Ok(default), |s| s.parse().map_err(|_| format!("{s:?} is not a count")))
    };
    let counts = (|| Ok::<_, String>((count(2, 2_000)?, count(3, 5_000)?, count(4, 10_000)?)))();
    let (exchanges, queues, bindings) = match counts {
        Ok(c) => c,
        Err(message) => {
            eprintln!("gen_topology: {message}");
            return ExitCode::FAILURE;
        }
    };
    if exchanges == 0 || queues == 0 {
        eprintln!("gen_topology: needs at least one exchange and one queue");
        return ExitCode::FAILURE;
    }

    let mut v = Vhost::default();
    for i in 0..exchanges {
        let kind = if i % 2 == 0 { ExchangeType::Topic } else { ExchangeType::Direct };
        v.exchanges.insert(format!("bench.x{i:05}"), Exchange { kind, ..Exchange::default() });
    }
    for i in 0..queues {
        let mut queue = Queue::default();
        // A few argument shapes, as real topologies have.
        match i % 4 {
            1 => {
                queue.arguments.insert("x-message-ttl".into(), (60_000 + i as i64).into());
            }
            2 => {
                queue.arguments.insert("x-max-length".into(), 10_000.into());
            }
            3 => {
                queue.arguments.insert("x-dead-letter-exchange".into(), "bench.x00000".into());
            }
            _ => {}
        }
        v.queues.insert(format!("bench.q{i:05}"), queue);
    }
    for i in 0..bindings {
        v.bindings.push(Binding {
            state: State::Present,
            source: format!("bench.x{:05}", i % exchanges),
            destination: format!("bench.q{:05}", i % queues),
            destination_type: DestinationType::Queue,
            routing_key: format!("key.{i}"),
            arguments: Default::default(),
        });
    }
    let mut topology = Topology::default();
    topology.vhosts.insert(vhost.clone(), v);

    let dir = PathBuf::from(dir);
    let yaml = dir.join(format!("{vhost}.yaml"));
    let json = dir.join(format!("{vhost}.json"));
    let definitions = match serde_json::to_string(&from_topology(&topology)) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("gen_topology: {error}");
            return ExitCode::FAILURE;
        }
    };
    for (path, text) in [(&yaml, to_yaml(&topology)), (&json, definitions)] {
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("gen_topology: writing {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("{}\n{}", yaml.display(), json.display());
    ExitCode::SUCCESS
}
