//! Who set the pace: the broker, or warren itself.
//!
//! A fixed-rate producer group that fell behind its schedule, or sent late,
//! either waited on the broker (its window of unconfirmed publishes full:
//! confirms slow, the connection blocked, the socket not read) or was slow by
//! itself (its thread had no CPU). Only the second makes a run
//! *generator-limited*: the first is what the run should reveal about the
//! broker, with how long the producers waited.

use crate::result::BrokerWait;

/// Send-delay p99 beyond which a fixed-rate group counts as sending late.
pub const SEND_DELAY_BOUND_US: f64 = 5_000.0;

/// A fixed-rate group publishing less than this share of its schedule counts as behind.
pub const MIN_SCHEDULE_SHARE: f64 = 0.95;

/// A client thread busy (running or waiting for a CPU) for more than this
/// share of the measured window had no idle moment: it, not the broker, may
/// have set the rates.
pub const BUSY_THREAD_SHARE: f64 = 0.9;

/// What a fixed-rate producer group did in the measured window.
#[derive(Debug, Clone)]
pub struct GroupPace<'a> {
    /// Group name.
    pub name: &'a str,
    /// Its instances.
    pub instances: u32,
    /// Messages per second the schedule asked of all instances together.
    pub target_rate: f64,
    /// The measured window, seconds.
    pub window_s: f64,
    /// Messages it published in the window.
    pub published: u64,
    /// Send-delay p99, microseconds.
    pub send_delay_p99_us: f64,
    /// The p99 of the send delay left once waits on the broker are taken out.
    pub own_send_delay_p99_us: f64,
    /// Its waits on the broker, summed over instances.
    pub waited: BrokerWait,
}

/// Why a run's pace was not its schedule's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blame {
    /// Lateness that was warren's own: the run is generator-limited.
    pub generator: Vec<String>,
    /// Lateness the broker caused by holding producers back.
    pub broker: Vec<String>,
}

impl Blame {
    /// Judges one group; a group that kept its schedule adds nothing.
    pub fn judge(&mut self, group: &GroupPace) {
        let scheduled = group.target_rate * group.window_s;
        if scheduled < 1.0 {
            return;
        }
        let name = group.name;
        let published = group.published as f64;
        let waited_each = group.waited.total_s() / f64::from(group.instances.max(1));
        // While a producer waited on the broker its schedule went on without it: the messages
        // due in that time are the broker's to answer for.
        let excused = waited_each * group.target_rate;
        let behind = published < scheduled * MIN_SCHEDULE_SHARE;
        let behind_by_itself = behind && published + excused < scheduled * MIN_SCHEDULE_SHARE;
        let late = group.send_delay_p99_us > SEND_DELAY_BOUND_US;
        let late_by_itself = late && group.own_send_delay_p99_us > SEND_DELAY_BOUND_US;

        if behind_by_itself {
            let waits = if excused >= 1.0 {
                format!("; waiting on the broker explains only {excused:.0} of the missing")
            } else {
                String::new()
            };
            self.generator.push(format!(
                "producer group `{name}` published {published:.0} of {scheduled:.0} scheduled messages{waits}"
            ));
        }
        if late_by_itself {
            self.generator.push(if group.waited.total_s() > 0.0 {
                format!(
                    "producer group `{name}` sent late by itself: send-delay p99 {:.0}µs after its last wait on the broker \
                     ({:.0}µs in all) exceeds {SEND_DELAY_BOUND_US:.0}µs",
                    group.own_send_delay_p99_us, group.send_delay_p99_us
                )
            } else {
                format!(
                    "producer group `{name}` sent late: send-delay p99 {:.0}µs exceeds {SEND_DELAY_BOUND_US:.0}µs",
                    group.send_delay_p99_us
                )
            });
        }

        let mut fell_behind = Vec::new();
        if behind && !behind_by_itself {
            fell_behind.push(format!("published {published:.0} of {scheduled:.0} scheduled messages"));
        }
        if late && !late_by_itself {
            fell_behind.push(format!("sent late (send-delay p99 {:.0}µs)", group.send_delay_p99_us));
        }
        if !fell_behind.is_empty() {
            let each = if group.instances > 1 { " each, on average," } else { "" };
            let parts = group.waited.each(group.instances).parts().map(|p| format!(" ({p})")).unwrap_or_default();
            self.broker.push(format!(
                "producer group `{name}` {} because it waited on the broker: {waited_each:.2}s{each} of the {:.1}s window{parts}",
                fell_behind.join(" and "),
                group.window_s
            ));
        }
    }
}

/// Why the client itself may have set the pace, beside its producers' schedules.
pub fn busy_client(busiest_thread: Option<f64>) -> Option<String> {
    let share = busiest_thread.filter(|share| *share > BUSY_THREAD_SHARE)?;
    Some(format!(
        "a client thread (a connection's I/O thread, which also runs its actors) was running or waiting for a CPU \
         {:.0}% of the measured window: warren may have set the rates",
        share * 100.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One instance at 500 msgs/s over a 2 s window: 1000 scheduled.
    fn group(published: u64, send_p99_us: f64, own_p99_us: f64, waited: BrokerWait) -> GroupPace<'static> {
        GroupPace {
            name: "web",
            instances: 1,
            target_rate: 500.0,
            window_s: 2.0,
            published,
            send_delay_p99_us: send_p99_us,
            own_send_delay_p99_us: own_p99_us,
            waited,
        }
    }

    fn judged(group: &GroupPace) -> Blame {
        let mut blame = Blame::default();
        blame.judge(group);
        blame
    }

    #[test]
    fn a_group_on_schedule_is_nobodys_fault() {
        assert_eq!(judged(&group(1000, 300.0, 300.0, BrokerWait::default())), Blame::default());
        // Waiting on confirms without falling behind is no finding either.
        let waited = BrokerWait { confirm_window_s: 0.5, ..BrokerWait::default() };
        assert_eq!(judged(&group(990, 900.0, 100.0, waited)), Blame::default());
    }

    #[test]
    fn a_group_held_back_by_a_blocked_connection_is_the_brokers_pace() {
        // Blocked for 1.6 s of the 2 s window: 200 of 1000 published, every late message late
        // because of the block.
        let waited = BrokerWait { blocked_s: 1.58, confirm_window_s: 0.02, write_s: 0.0, ..BrokerWait::default() };
        let blame = judged(&group(200, 1_500_000.0, 80.0, waited));
        assert!(blame.generator.is_empty(), "{blame:?}");
        assert_eq!(
            blame.broker,
            vec![
                "producer group `web` published 200 of 1000 scheduled messages and sent late (send-delay p99 1500000µs) \
                 because it waited on the broker: 1.60s of the 2.0s window (connection blocked 1.58s, confirm window full 0.02s)"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn a_group_that_fell_behind_without_waiting_is_warrens_own() {
        let blame = judged(&group(600, 400_000.0, 400_000.0, BrokerWait::default()));
        assert!(blame.broker.is_empty(), "{blame:?}");
        assert_eq!(
            blame.generator,
            vec![
                "producer group `web` published 600 of 1000 scheduled messages".to_owned(),
                "producer group `web` sent late: send-delay p99 400000µs exceeds 5000µs".to_owned()
            ]
        );
    }

    #[test]
    fn waits_that_explain_only_part_of_the_shortfall_leave_the_rest_to_warren() {
        // 0.2 s waiting excuses 100 messages; 600 published leaves 250 short of 95% of 1000.
        let waited = BrokerWait { confirm_window_s: 0.2, ..BrokerWait::default() };
        let blame = judged(&group(600, 2_000.0, 2_000.0, waited));
        assert_eq!(
            blame.generator,
            vec![
                "producer group `web` published 600 of 1000 scheduled messages; waiting on the broker explains only 100 of the missing"
                    .to_owned()
            ]
        );
        assert!(blame.broker.is_empty());
        // Late after its waits too: its own lateness, whatever it waited.
        let blame = judged(&group(1000, 90_000.0, 20_000.0, waited));
        assert_eq!(
            blame.generator,
            vec![
                "producer group `web` sent late by itself: send-delay p99 20000µs after its last wait on the broker \
                 (90000µs in all) exceeds 5000µs"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn waits_are_shared_among_a_groups_instances() {
        // Four instances at 125 msgs/s each, 1.6 instance-seconds of waiting: 0.4 s each, 200 messages.
        let waited = BrokerWait { write_s: 1.6, ..BrokerWait::default() };
        let four = GroupPace { instances: 4, ..group(780, 1000.0, 1000.0, waited) };
        let blame = judged(&four);
        assert!(blame.generator.is_empty(), "{blame:?}");
        assert_eq!(
            blame.broker,
            vec![
                "producer group `web` published 780 of 1000 scheduled messages because it waited on the broker: \
                 0.40s each, on average, of the 2.0s window (writes waiting 0.40s)"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn a_client_thread_without_idle_time_flags_the_run() {
        let reason = busy_client(Some(0.97)).expect("flagged");
        assert!(reason.contains("97% of the measured window"), "{reason}");
        assert_eq!(busy_client(Some(0.6)), None, "a thread with idle time is no bottleneck");
        assert_eq!(busy_client(None), None, "no window, no verdict");
    }
}
