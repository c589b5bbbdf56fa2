//! Sleeping until a fixed-rate producer's next intended send time, to the
//! microsecond rather than the millisecond.
//!
//! tokio's timer ticks once a millisecond and rounds every sleep up to its
//! next tick, so a producer woken by it sends each message up to a
//! millisecond late. That lateness is the generator's own, yet it would show
//! as send delay and inside the coordinated-omission-corrected end-to-end
//! latency, where it can dwarf a broker's sub-millisecond figures. On Linux a
//! timerfd registered with tokio's reactor wakes the task when the time comes;
//! elsewhere, or when no timerfd can be made, tokio's timer serves.

use tokio::time::Instant;

/// One producer's wake-up timer.
pub struct Pacer {
    #[cfg(target_os = "linux")]
    timer: Option<tokio::io::unix::AsyncFd<timerfd::TimerFd>>,
    /// The deadline the timer is armed for and has not yet been seen to pass: a producer woken
    /// by confirms waits again for the same send time without re-arming (one syscall fewer).
    #[cfg(target_os = "linux")]
    armed: Option<Instant>,
}

impl Pacer {
    /// A timer for one task; call from inside the tokio runtime.
    pub fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            // `AsyncFd::new` is deprecated for types whose raw fd might not be owned; a `TimerFd`
            // owns its descriptor (an `OwnedFd`) for its whole life, which is what the unsafe
            // replacement would have us promise, and this crate forbids unsafe code.
            #[allow(deprecated)]
            let timer = timerfd::TimerFd::new_custom(timerfd::ClockId::Monotonic, true, true)
                .and_then(tokio::io::unix::AsyncFd::new)
                .ok();
            Self { timer, armed: None }
        }
        #[cfg(not(target_os = "linux"))]
        Self {}
    }

    /// Returns at `deadline` (at once when it has passed).
    pub async fn sleep_until(&mut self, deadline: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(timer) = self.timer.as_mut() {
            let now = Instant::now();
            if deadline <= now {
                return;
            }
            if self.armed != Some(deadline) {
                // A one-shot timer relative to now; a zero duration would disarm it, hence the
                // check above. Re-arming also discards an expiration nobody read.
                timer.get_mut().set_state(timerfd::TimerState::Oneshot(deadline - now), timerfd::SetTimeFlags::Default);
                self.armed = Some(deadline);
            }
            loop {
                let Ok(mut ready) = timer.readable_mut().await else { break };
                // A read of 0 means the readiness was stale (an earlier arming): wait again.
                if let Ok(Ok(expirations)) = ready.try_io(|fd| Ok(fd.get_ref().read())) {
                    if expirations > 0 || Instant::now() >= deadline {
                        self.armed = None;
                        return;
                    }
                    ready.clear_ready();
                }
            }
        }
        tokio::time::sleep_until(deadline).await;
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Fails instead of hanging when a sleep never wakes; generous, as it bounds a hang, not a speed.
    async fn bounded(sleep: impl std::future::Future<Output = ()>) {
        tokio::time::timeout(Duration::from_secs(30), sleep).await.expect("the sleep woke");
    }

    #[tokio::test]
    async fn sleeps_until_the_deadline_and_not_before() {
        let mut pacer = Pacer::new();
        for wait in [Duration::from_micros(300), Duration::from_millis(2), Duration::ZERO] {
            let deadline = Instant::now() + wait;
            bounded(pacer.sleep_until(deadline)).await;
            assert!(Instant::now() >= deadline, "woke before the deadline ({wait:?})");
        }
    }

    #[tokio::test]
    async fn a_sleep_dropped_midway_and_resumed_for_the_same_deadline_still_wakes() {
        use futures::FutureExt;
        let mut pacer = Pacer::new();
        let deadline = Instant::now() + Duration::from_millis(20);
        // One poll arms the timer, then the sleep is dropped, as a producer's select drops it when a
        // confirm comes first. (Should the deadline pass before that poll, it returns at once: the
        // checks below hold all the same.)
        let _ = pacer.sleep_until(deadline).now_or_never();
        bounded(pacer.sleep_until(deadline)).await;
        assert!(Instant::now() >= deadline, "woke before the deadline");
        // Once passed, the same deadline returns at once and a later one waits again.
        assert_eq!(pacer.sleep_until(deadline).now_or_never(), Some(()), "a passed deadline does not wait");
        let later = Instant::now() + Duration::from_micros(500);
        bounded(pacer.sleep_until(later)).await;
        assert!(Instant::now() >= later, "woke before the later deadline");
    }

    #[tokio::test]
    async fn a_sleep_dropped_midway_leaves_the_next_one_working() {
        let mut pacer = Pacer::new();
        let far = Instant::now() + Duration::from_secs(3600);
        assert!(tokio::time::timeout(Duration::from_millis(5), pacer.sleep_until(far)).await.is_err());
        let deadline = Instant::now() + Duration::from_micros(500);
        bounded(pacer.sleep_until(deadline)).await;
        assert!(Instant::now() >= deadline);
    }
}
