//! One slice of a scenario, for load generated from several machines: shard
//! K of N runs the K-th of N equal parts of every group's instances (rates
//! stay per instance), starting at a wall-clock time all shards share.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::bench::scenario::Scenario;

/// Why a scenario cannot be split as asked.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A group too small to give every shard an instance.
    #[error(
        "shard {shard}: {kind} group `{group}` has {instances} instance(s), fewer than the {} shards; give every group at least as many instances as shards",
        shard.count
    )]
    TooFewInstances {
        /// The shard asked for.
        shard: Shard,
        /// `producer` or `consumer`.
        kind: &'static str,
        /// The group.
        group: String,
        /// Its instances.
        instances: u32,
    },
}

/// The K-th (from 1) of N slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, from 1.
    pub index: u32,
    /// How many slices.
    pub count: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `K/N` with `1 <= K <= N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text.split_once('/').ok_or_else(|| format!("`{text}` is not K/N (e.g. 2/4)"))?;
        let number = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("`{text}` is not K/N (e.g. 2/4)"));
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard `{text}`: K must be between 1 and N"));
        }
        Ok(Shard { index, count })
    }

    /// How many of `instances` this shard runs: the first `instances % N`
    /// shards take one more, so the slices add up to the whole group.
    pub fn slice(self, instances: u32) -> u32 {
        let base = instances / self.count;
        base + u32::from(self.index - 1 < instances % self.count)
    }

    /// Shrinks every group of `scenario` to this shard's slice. A message
    /// limit stays per instance, so it needs no change; the throughput gate
    /// shrinks with the shard's share of producers (`report merge` adds the
    /// shares back up), the latency and count gates hold for every shard.
    ///
    /// A group with fewer instances than shards is refused: the shard without
    /// its consumers would count every message as lost, the one without its
    /// producers would measure nothing.
    pub fn apply(self, scenario: &mut Scenario) -> Result<(), ShardError> {
        let groups = scenario.producers.iter().map(|g| ("producer", &g.name, g.instances));
        let groups = groups.chain(scenario.consumers.iter().map(|g| ("consumer", &g.name, g.instances)));
        for (kind, name, instances) in groups {
            if self.slice(instances) == 0 {
                return Err(ShardError::TooFewInstances { shard: self, kind, group: name.clone(), instances });
            }
        }
        let total: u32 = scenario.producers.iter().map(|g| g.instances).sum();
        let mine: u32 = scenario.producers.iter().map(|g| self.slice(g.instances)).sum();
        if let Some(min) = scenario.gates.throughput_min.as_mut()
            && total > 0
        {
            *min *= f64::from(mine) / f64::from(total);
        }
        for group in &mut scenario.producers {
            group.instances = self.slice(group.instances);
        }
        for group in &mut scenario.consumers {
            group.instances = self.slice(group.instances);
        }
        Ok(())
    }

    /// The vhost a shard runs in when none is given: messages carry a
    /// process-local clock and producer ids, so shards must not share queues.
    pub fn default_vhost(self) -> String {
        format!("warren-shard-{}-of-{}", self.index, self.count)
    }
}

/// The vhost a bench run uses: a shard on a real broker gets a vhost of its
/// own unless `--vhost` names one; the embedded broker is private to the
/// process, so shards there need none.
pub fn vhost(shard: Option<Shard>, vhost: Option<&str>, broker: Option<&str>) -> Option<String> {
    let embedded = broker.is_none_or(|b| b == "embedded");
    match (shard, vhost) {
        (_, Some(vhost)) => Some(vhost.to_owned()),
        (Some(shard), None) if !embedded => Some(shard.default_vhost()),
        _ => None,
    }
}

/// The result's record of a shard.
pub fn info(shard: Option<Shard>) -> Option<crate::result::ShardInfo> {
    shard.map(|s| crate::result::ShardInfo { index: s.index, count: s.count })
}

/// The run's warnings, plus one when producers started later than `--start-at`.
pub fn with_lateness(mut warnings: Vec<String>, late: Option<Duration>) -> Vec<String> {
    if let Some(late) = late {
        warnings.push(format!(
            "producers started {:.3}s after --start-at: shards of this run did not begin together",
            late.as_secs_f64()
        ));
    }
    warnings
}

/// Parses `--start-at`: RFC 3339 (`2026-01-01T12:00:00Z`) or Unix seconds.
pub fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    if let Ok(seconds) = text.trim().parse::<f64>() {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(format!("`{text}` is not a time"));
        }
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds));
    }
    humantime::parse_rfc3339_weak(text.trim())
        .map_err(|error| format!("`{text}` is neither RFC 3339 (2026-01-01T12:00:00Z) nor Unix seconds: {error}"))
}

/// Waits until `at`. Returns how late the start is when `at` had already
/// passed, so the result can say so instead of pretending shards were aligned.
pub async fn wait_until(at: SystemTime) -> Option<Duration> {
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
        Err(passed) => Some(passed.duration()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_add_up_to_the_group_and_differ_by_at_most_one() {
        for count in 1..7u32 {
            for instances in 0..20u32 {
                let slices: Vec<u32> = (1..=count).map(|index| Shard { index, count }.slice(instances)).collect();
                assert_eq!(slices.iter().sum::<u32>(), instances, "{instances} over {count}: {slices:?}");
                let (min, max) = (slices.iter().min().copied(), slices.iter().max().copied());
                assert!(max.unwrap_or(0) - min.unwrap_or(0) <= 1, "{slices:?}");
            }
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(Shard::parse("0/4").is_err());
        assert!(Shard::parse("5/4").is_err());
        assert!(Shard::parse("2").is_err());
        assert!(Shard::parse("a/b").is_err());
    }

    #[test]
    fn shards_on_a_real_broker_get_a_vhost_of_their_own() {
        let shard = Some(Shard { index: 2, count: 3 });
        assert_eq!(vhost(shard, None, Some("amqp://h")), Some("warren-shard-2-of-3".to_owned()));
        assert_eq!(vhost(shard, Some("mine"), Some("amqp://h")), Some("mine".to_owned()));
        assert_eq!(vhost(shard, None, None), None, "the embedded broker is private to the process");
        assert_eq!(vhost(None, None, Some("amqp://h")), None);
    }

    #[test]
    fn start_at_reads_rfc3339_and_unix_seconds() {
        let rfc = parse_start_at("2026-01-01T00:00:00Z").expect("RFC 3339");
        let unix = parse_start_at("1767225600").expect("Unix seconds");
        assert_eq!(rfc, unix);
        assert!(parse_start_at("tomorrow").is_err());
    }
}
