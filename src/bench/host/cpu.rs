//! CPU time from procfs: the whole process's, and per thread for warren's
//! own client threads (the run's thread, lapin's I/O threads and the
//! stream-protocol actors' threads), which tell
//! whether warren itself set the pace.

use std::collections::BTreeMap;

use crate::bench::stream_link::STREAM_THREAD;

/// CPU time (user + system) this process has used, in seconds; `None` off Linux.
pub fn cpu_seconds() -> Option<f64> {
    stat_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The name lapin gives the I/O thread it starts for every connection.
const LAPIN_IO_THREAD: &str = "lapin-io-loop";

/// The name of the thread a bench run's own runtime runs on.
pub const RUNNER_THREAD: &str = "warren-bench";

/// CPU seconds (time on a CPU, per the scheduler) of this process's live
/// threads other than warren's client threads: with an in-process embedded
/// broker, the broker's (and the command's idle main thread's). `None` off Linux.
pub fn other_threads_cpu_seconds() -> Option<f64> {
    let mut total_ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else { continue };
        if matches!(name.trim_end(), LAPIN_IO_THREAD | RUNNER_THREAD | STREAM_THREAD) {
            continue;
        }
        // A thread that ended since the listing has nothing left to read.
        if let Some(time) = std::fs::read_to_string(path.join("schedstat")).ok().and_then(|s| schedstat(&s)) {
            total_ns += time.cpu_ns;
        }
    }
    Some(total_ns as f64 / 1e9)
}

/// What the scheduler says of one thread: time on a CPU, and time spent
/// runnable but waiting for one (`/proc/.../schedstat`, nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadTime {
    /// Time running.
    pub cpu_ns: u64,
    /// Time ready to run while another task held the CPU.
    pub waiting_ns: u64,
}

/// warren's client threads at one moment, by thread id: the calling thread
/// (the run's own, which connects and collects) and lapin's I/O threads (one
/// per connection, which also run that connection's actors). An embedded
/// broker in the same process runs on other threads and is not among them;
/// the I/O threads of another run in the same process would be.
#[derive(Debug, Clone, Default)]
pub struct ClientThreads(BTreeMap<u64, ThreadTime>);

impl ClientThreads {
    /// Reads procfs; `None` off Linux.
    pub fn sample() -> Option<ClientThreads> {
        let own = own_thread_id()?;
        let mut threads = BTreeMap::new();
        threads.insert(own, schedstat(&std::fs::read_to_string("/proc/thread-self/schedstat").ok()?)?);
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u64>().ok()) else { continue };
            let path = task.path();
            let is_io_thread = std::fs::read_to_string(path.join("comm"))
                .is_ok_and(|name| matches!(name.trim_end(), LAPIN_IO_THREAD | STREAM_THREAD));
            // A thread that ended since the listing has nothing left to read.
            if is_io_thread
                && let Some(time) = std::fs::read_to_string(path.join("schedstat")).ok().and_then(|s| schedstat(&s))
            {
                threads.insert(tid, time);
            }
        }
        Some(ClientThreads(threads))
    }

    /// Each thread's time since `earlier` (a thread started since counts from zero).
    fn since<'a>(&'a self, earlier: &'a ClientThreads) -> impl Iterator<Item = ThreadTime> + 'a {
        self.0.iter().map(|(tid, now)| {
            let then = earlier.0.get(tid).copied().unwrap_or_default();
            ThreadTime {
                cpu_ns: now.cpu_ns.saturating_sub(then.cpu_ns),
                waiting_ns: now.waiting_ns.saturating_sub(then.waiting_ns),
            }
        })
    }

    /// CPU seconds the client threads used since `earlier`.
    pub fn cpu_seconds_since(&self, earlier: &ClientThreads) -> f64 {
        self.since(earlier).map(|t| t.cpu_ns).sum::<u64>() as f64 / 1e9
    }

    /// The largest share of `window_s` that one client thread spent running
    /// or waiting to run since `earlier`: near 1, that thread had no idle
    /// moment, and it (or the CPUs it waited for) set the pace.
    pub fn busiest_share_since(&self, earlier: &ClientThreads, window_s: f64) -> f64 {
        if window_s <= 0.0 {
            return 0.0;
        }
        let busiest = self.since(earlier).map(|t| t.cpu_ns + t.waiting_ns).max().unwrap_or(0);
        busiest as f64 / 1e9 / window_s
    }
}

/// The calling thread's id, from procfs; `None` off Linux.
fn own_thread_id() -> Option<u64> {
    std::fs::read_link("/proc/thread-self").ok()?.file_name()?.to_str()?.parse().ok()
}

/// The first two fields of a `schedstat` line.
fn schedstat(line: &str) -> Option<ThreadTime> {
    let mut fields = line.split_whitespace().map(str::parse::<u64>);
    Some(ThreadTime { cpu_ns: fields.next()?.ok()?, waiting_ns: fields.next()?.ok()? })
}

/// utime + stime of a `/proc/.../stat` line, in seconds.
fn stat_seconds(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
    Some((utime + stime) as f64 / 100.0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_reads_past_a_command_name_with_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(stat_seconds(line), Some(3.0));
        assert_eq!(stat_seconds("4242 (truncated"), None);
    }

    #[test]
    fn a_schedstat_line_gives_running_and_waiting_time() {
        assert_eq!(schedstat("802050 1200 7\n"), Some(ThreadTime { cpu_ns: 802_050, waiting_ns: 1200 }));
        assert_eq!(schedstat("802050"), None);
    }

    #[test]
    fn client_threads_are_the_callers_and_lapins_io_threads_and_no_others() {
        // Threads alive while sampled: one named as lapin names its I/O threads, one as tokio
        // names the workers an embedded broker in the same process runs on.
        let spawn = |name: &str| {
            let (tid_tx, tid_rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let _ = tid_tx.send(own_thread_id());
                    let _ = done_rx.recv();
                })
                .expect("a thread");
            (tid_rx.recv().expect("the thread started").expect("its id"), done_tx, thread)
        };
        let (io, io_done, io_thread) = spawn(LAPIN_IO_THREAD);
        let (broker, broker_done, broker_thread) = spawn("tokio-runtime-worker");
        let sample = ClientThreads::sample().expect("procfs");
        for (done, thread) in [(io_done, io_thread), (broker_done, broker_thread)] {
            let _ = done.send(());
            thread.join().expect("the thread ends");
        }
        assert!(sample.0.contains_key(&io), "a lapin I/O thread is the client's");
        assert!(sample.0.contains_key(&own_thread_id().expect("own id")), "so is the run's own thread");
        assert!(!sample.0.contains_key(&broker), "a broker's thread is not: {:?}", sample.0.keys());
    }

    #[test]
    fn client_threads_count_lapin_io_threads() {
        let before = ClientThreads::sample().expect("procfs");
        // Burn a quarter of a second of CPU on a thread named as lapin names its I/O threads,
        // and keep the thread alive while measuring: an ended thread is no longer listed.
        let (burned_tx, burned_rx) = std::sync::mpsc::channel();
        let (measured_tx, measured_rx) = std::sync::mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let thread = std::thread::Builder::new()
            .name(LAPIN_IO_THREAD.into())
            .spawn(move || {
                let own = || std::fs::read_to_string("/proc/thread-self/schedstat").ok().and_then(|s| schedstat(&s));
                while own().is_some_and(|t| t.cpu_ns < 250_000_000) {
                    std::hint::black_box((0..10_000u64).sum::<u64>());
                }
                let _ = burned_tx.send(());
                let _ = measured_rx.recv();
            })
            .expect("a thread");
        burned_rx.recv().expect("the thread burned its CPU");
        let after = ClientThreads::sample().expect("procfs");
        let window = started.elapsed().as_secs_f64();
        let _ = measured_tx.send(());
        thread.join().expect("the thread ends");
        let cpu = after.cpu_seconds_since(&before);
        assert!(cpu >= 0.25, "an I/O thread's 0.25 s is counted: {cpu}");
        // The thread never slept: running or waiting, it filled its part of the window.
        let busiest = after.busiest_share_since(&before, window);
        assert!(busiest > 0.5, "the burning thread was busy: {busiest}");
    }
}
