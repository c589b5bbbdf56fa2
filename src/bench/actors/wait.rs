//! Time a producer spends waiting on the broker, and on what.
//!
//! A producer is *held* when a message is due (at once, for one without a
//! rate) but its window of unconfirmed publishes is full: it cannot publish
//! until the broker confirms some. Each stretch between two wake-ups of a
//! held producer is split three ways:
//!
//! - **blocked**: the broker had blocked the connection (`connection.blocked`,
//!   [`BlockedTime`](crate::bench::link::BlockedTime)); lapin writes nothing then;
//! - **writes**: publishes handed to lapin were not yet written to the socket,
//!   because the broker was not reading it (TCP back-pressure);
//! - **confirms**: everything was written; the broker had not confirmed yet.
//!
//! A producer whose connection dropped waits on the broker too, from the loss
//! until it is connected again (**reconnecting**): the messages due meanwhile
//! go out late, and that lateness is the broker's.
//!
//! Only time inside the measured window counts. The meter also remembers when
//! the producer was last held, so a message's delay can be split into the
//! part the broker caused and the part that is the producer's own.

use std::time::Duration;

/// Time waited on the broker in the measured window, in nanoseconds, by what held the producer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waited {
    /// Everything written, the window full of publishes the broker had not confirmed.
    pub confirms_ns: u64,
    /// The connection blocked by the broker.
    pub blocked_ns: u64,
    /// Publishes waiting to be written: the broker was not reading the socket.
    pub writes_ns: u64,
    /// The connection lost, until the producer was connected again.
    pub reconnecting_ns: u64,
}

impl Waited {
    /// Adds `other` in.
    pub fn add(&mut self, other: &Waited) {
        self.confirms_ns += other.confirms_ns;
        self.blocked_ns += other.blocked_ns;
        self.writes_ns += other.writes_ns;
        self.reconnecting_ns += other.reconnecting_ns;
    }

    /// All of it.
    pub fn total_ns(&self) -> u64 {
        self.confirms_ns + self.blocked_ns + self.writes_ns + self.reconnecting_ns
    }
}

/// How far a producer's publishes had got at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Publishes handed to lapin so far.
    pub handed: u64,
    /// Of those, the ones lapin has written to the socket.
    pub written: u64,
    /// When the last write completed, nanoseconds since the run's epoch (0: none yet).
    pub last_write_ns: u64,
    /// The connection's blocked time so far.
    pub blocked: Duration,
}

/// A stretch of holding that has begun and not yet been accounted.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    start_ns: u64,
    /// When a message was first due in it: holding before that cost nothing.
    due_ns: u64,
    at_start: Progress,
}

/// One producer's account of its waits on the broker.
#[derive(Debug)]
pub struct WaitMeter {
    measure_start_ns: u64,
    measure_end_ns: u64,
    open: Option<Stretch>,
    waited: Waited,
    released_ns: u64,
}

impl WaitMeter {
    /// A meter counting inside the measured window `[measure_start_ns, measure_end_ns)`.
    pub fn new(measure_start_ns: u64, measure_end_ns: u64) -> Self {
        Self { measure_start_ns, measure_end_ns, open: None, waited: Waited::default(), released_ns: 0 }
    }

    /// True between [`hold`](Self::hold) and [`release`](Self::release).
    pub fn holding(&self) -> bool {
        self.open.is_some()
    }

    /// The producer waits for its window at `now_ns`, with its next message due at
    /// `due_ns`. Called at every wake-up while it waits; each call accounts the
    /// stretch since the previous one.
    pub fn hold(&mut self, now_ns: u64, due_ns: u64, progress: Progress) {
        self.release(now_ns, progress);
        self.open = Some(Stretch { start_ns: now_ns, due_ns: due_ns.max(now_ns), at_start: progress });
    }

    /// The window has room again, or the producer stops: accounts the stretch in progress.
    pub fn release(&mut self, now_ns: u64, progress: Progress) {
        let Some(stretch) = self.open.take() else { return };
        if now_ns > stretch.due_ns {
            self.released_ns = now_ns;
        }
        let from = stretch.due_ns.max(self.measure_start_ns);
        let to = now_ns.min(self.measure_end_ns);
        if to <= from {
            return;
        }
        let held = to - from;
        let blocked = progress.blocked.saturating_sub(stretch.at_start.blocked);
        let blocked = u64::try_from(blocked.as_nanos()).unwrap_or(u64::MAX).min(held);
        // Writes were outstanding until the last one completed, or all along when a publish
        // handed over before the stretch began is still unwritten at its end.
        let writes_end = if progress.written < stretch.at_start.handed {
            now_ns
        } else {
            progress.last_write_ns.clamp(stretch.start_ns, now_ns)
        };
        // lapin writes nothing while blocked, so blocked time is part of the writing time.
        let writes = (writes_end.clamp(from, to) - from).saturating_sub(blocked);
        self.waited.blocked_ns += blocked;
        self.waited.writes_ns += writes;
        self.waited.confirms_ns += held - blocked - writes;
    }

    /// The producer had no connection from `lost_ns` to `back_ns`: a wait on
    /// the broker (inside the measured window), after which it was released.
    pub fn reconnected(&mut self, lost_ns: u64, back_ns: u64) {
        self.open = None;
        self.released_ns = self.released_ns.max(back_ns);
        let (from, to) = (lost_ns.max(self.measure_start_ns), back_ns.min(self.measure_end_ns));
        if to > from {
            self.waited.reconnecting_ns += to - from;
        }
    }

    /// When the producer was last held (0: never): a message due before then
    /// waited on the broker until then.
    pub fn released_ns(&self) -> u64 {
        self.released_ns
    }

    /// The time waited so far.
    pub fn waited(&self) -> Waited {
        self.waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn progress(handed: u64, written: u64, last_write_ms: u64, blocked_ms: u64) -> Progress {
        Progress { handed, written, last_write_ns: last_write_ms * MS, blocked: Duration::from_millis(blocked_ms) }
    }

    #[test]
    fn a_full_window_of_written_publishes_waits_on_confirms() {
        let mut meter = WaitMeter::new(0, 10_000 * MS);
        // Four publishes handed at 100 ms, written at once; the confirms come at 300 ms.
        meter.hold(100 * MS, 100 * MS, progress(4, 0, 0, 0));
        assert!(meter.holding());
        meter.release(300 * MS, progress(4, 4, 100, 0));
        assert!(!meter.holding());
        assert_eq!(meter.waited(), Waited { confirms_ns: 200 * MS, ..Waited::default() });
        assert_eq!(meter.released_ns(), 300 * MS);
    }

    #[test]
    fn unwritten_publishes_wait_on_writes_and_a_blocked_connection_on_the_block() {
        let mut meter = WaitMeter::new(0, 10_000 * MS);
        // Not written until 700 ms (the broker did not read), confirmed at 750 ms.
        meter.hold(100 * MS, 100 * MS, progress(4, 0, 0, 0));
        meter.release(750 * MS, progress(4, 4, 700, 0));
        assert_eq!(meter.waited(), Waited { confirms_ns: 50 * MS, writes_ns: 600 * MS, ..Waited::default() });

        // Blocked for 1 s of a stretch in which nothing was written at all.
        let mut meter = WaitMeter::new(0, 10_000 * MS);
        meter.hold(1000 * MS, 1000 * MS, progress(8, 4, 900, 0));
        meter.hold(1500 * MS, 1000 * MS, progress(8, 4, 900, 400));
        meter.release(2200 * MS, progress(8, 4, 900, 1000));
        assert_eq!(meter.waited(), Waited { blocked_ns: 1000 * MS, writes_ns: 200 * MS, ..Waited::default() });
    }

    #[test]
    fn only_time_with_a_message_due_inside_the_measured_window_counts() {
        let mut meter = WaitMeter::new(1000 * MS, 2000 * MS);
        // Waiting from 900 ms, the next message due at 1200 ms, released at 1300 ms: 100 ms held.
        meter.hold(900 * MS, 1200 * MS, progress(4, 4, 900, 0));
        meter.release(1300 * MS, progress(4, 4, 900, 0));
        assert_eq!(meter.waited().total_ns(), 100 * MS);
        // Released before the message was due: not held at all, and no release recorded.
        meter.hold(1400 * MS, 1600 * MS, progress(8, 8, 1400, 0));
        meter.release(1500 * MS, progress(8, 8, 1400, 0));
        assert_eq!(meter.waited().total_ns(), 100 * MS);
        assert_eq!(meter.released_ns(), 1300 * MS);
        // Held across the window's end: counted up to the end.
        meter.hold(1900 * MS, 1900 * MS, progress(12, 12, 1900, 0));
        meter.release(2500 * MS, progress(12, 12, 1900, 0));
        assert_eq!(meter.waited().total_ns(), 200 * MS);
    }

    #[test]
    fn time_without_a_connection_is_a_wait_that_ends_with_the_reconnection() {
        let mut meter = WaitMeter::new(1000 * MS, 2000 * MS);
        meter.hold(1100 * MS, 1100 * MS, progress(4, 4, 1100, 0));
        // The connection drops at 1200 ms with the window full; connected again at 1500 ms.
        meter.reconnected(1200 * MS, 1500 * MS);
        assert!(!meter.holding(), "the stretch in progress went with the connection");
        assert_eq!(meter.waited().reconnecting_ns, 300 * MS);
        assert_eq!(meter.released_ns(), 1500 * MS, "a message due meanwhile was late because of it");
        // Across the window's end: counted up to the end.
        meter.reconnected(1900 * MS, 2600 * MS);
        assert_eq!(meter.waited().reconnecting_ns, 400 * MS);
    }
}
