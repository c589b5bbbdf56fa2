//! What `lapin_floor` and `raw_floor` share: their arguments, and how a phase
//! is timed (the whole process's CPU, every thread included).

use std::time::Instant;

use anyhow::{Context, bail};

/// The allocator warren's binary uses, so the floors compare like with like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `TARGET [MESSAGES [PREFETCH [ACK_EVERY]]]`.
pub struct Args {
    /// The broker, in the form the example takes.
    pub target: String,
    /// Messages to move.
    pub messages: u64,
    /// The consumer's prefetch.
    pub prefetch: u16,
    /// One multiple ack every this many deliveries.
    pub ack_every: u64,
}

/// Reads the command line; `default_target` when no broker is named.
pub fn args(default_target: &str) -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| default_target.to_owned());
    let mut number = |default: u64| -> anyhow::Result<u64> {
        args.next().map_or(Ok(default), |a| a.parse().with_context(|| format!("`{a}` is not a count")))
    };
    let (messages, prefetch, ack_every) = (number(500_000)?, number(100)?, number(50)?);
    if ack_every == 0 || ack_every > prefetch || prefetch > u64::from(u16::MAX) {
        bail!("want 0 < ack-every <= prefetch <= 65535");
    }
    Ok(Args { target, messages, prefetch: u16::try_from(prefetch)?, ack_every })
}

/// A phase being timed.
pub struct Phase {
    cpu: f64,
    wall: Instant,
}

impl Phase {
    /// Starts the clocks.
    pub fn start() -> anyhow::Result<Phase> {
        Ok(Phase { cpu: cpu_seconds()?, wall: Instant::now() })
    }

    /// Prints msgs/s and CPU-s per million for `messages` moved since the start.
    pub fn report(self, what: &str, messages: u64) -> anyhow::Result<()> {
        let cpu = cpu_seconds()? - self.cpu;
        let wall = self.wall.elapsed().as_secs_f64();
        println!(
            "{what}: {messages} messages, {:.0} msgs/s, {cpu:.2} CPU-s, {:.1} CPU-s per million",
            messages as f64 / wall,
            cpu / messages as f64 * 1e6
        );
        Ok(())
    }
}

fn cpu_seconds() -> anyhow::Result<f64> {
    warren::bench::host::cpu::cpu_seconds().context("reading the process's CPU time from procfs (Linux only)")
}
