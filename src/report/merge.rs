//! Merging the results of shards (`bench --shard K/N`) into one result, exactly:
//! histograms are added (never percentiles averaged), counters and rates
//! summed, per-second series summed second by second with each second's
//! percentiles re-read from its merged histogram.

use std::collections::BTreeMap;

use crate::result::histogram::{self, DecodeError, Latency, Percentiles};
use crate::result::{
    BrokerWait, ConsumerGroupResult, GateResult, MergeInfo, ProducerGroupResult, RunResult, RunStatus, SecondResult,
    Summary, per_million,
};

/// Why results could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no result files to merge")]
    Empty,
    /// Different scenarios.
    #[error("{file} ran scenario `{found}` but {first} ran `{expected}`: only shards of one scenario merge")]
    Scenario {
        /// The first file.
        first: String,
        /// The first file's scenario.
        expected: String,
        /// The file that differs.
        file: String,
        /// Its scenario.
        found: String,
    },
    /// The same shard twice, or shards of different splits.
    #[error("{file} is shard {found} but the other files are shards of {count}, or that shard is already merged")]
    Shard {
        /// The file.
        file: String,
        /// Its shard.
        found: String,
        /// The split the first file belongs to.
        count: u32,
    },
    /// A group in one file and not another.
    #[error("{file}: {what} group `{group}` is not in the first file")]
    Group {
        /// The file.
        file: String,
        /// `producer` or `consumer`.
        what: &'static str,
        /// The group.
        group: String,
    },
    /// A histogram that does not decode.
    #[error("{file}: the {which} histogram cannot be read")]
    Histogram {
        /// The file.
        file: String,
        /// Which histogram.
        which: String,
        /// Why.
        #[source]
        source: DecodeError,
    },
}

fn decode(file: &str, which: &str, text: &str) -> Result<Latency, MergeError> {
    if text.is_empty() {
        return Ok(histogram::new_latency());
    }
    histogram::decode(text).map_err(|source| MergeError::Histogram {
        file: file.to_owned(),
        which: which.to_owned(),
        source,
    })
}

/// Adds the histogram `text` into `into`.
fn add(into: &mut Latency, file: &str, which: &str, text: &str) -> Result<(), MergeError> {
    histogram::merge(into, &decode(file, which, text)?);
    Ok(())
}

fn check(files: &[(String, RunResult)]) -> Result<(), MergeError> {
    let (first_file, first) = files.first().ok_or(MergeError::Empty)?;
    let mut shards_seen = Vec::new();
    for (file, result) in files {
        if result.scenario.name != first.scenario.name {
            return Err(MergeError::Scenario {
                first: first_file.clone(),
                expected: first.scenario.name.clone(),
                file: file.clone(),
                found: result.scenario.name.clone(),
            });
        }
        if let Some(shard) = result.shard {
            let count = first.shard.map_or(shard.count, |s| s.count);
            if shard.count != count || shards_seen.contains(&shard.index) {
                return Err(MergeError::Shard {
                    file: file.clone(),
                    found: format!("{}/{}", shard.index, shard.count),
                    count,
                });
            }
            shards_seen.push(shard.index);
        }
        for group in &result.producers {
            if !first.producers.iter().any(|g| g.name == group.name) {
                return Err(MergeError::Group { file: file.clone(), what: "producer", group: group.name.clone() });
            }
        }
        for group in &result.consumers {
            if !first.consumers.iter().any(|g| g.name == group.name) {
                return Err(MergeError::Group { file: file.clone(), what: "consumer", group: group.name.clone() });
            }
        }
    }
    Ok(())
}

/// Merges `files` (name, result) into one result.
pub fn merge(files: &[(String, RunResult)]) -> Result<RunResult, MergeError> {
    check(files)?;
    let (_, first) = files.first().ok_or(MergeError::Empty)?;
    let mut merged = first.clone();

    // Whole-run histograms.
    let mut totals: [Latency; 4] = std::array::from_fn(|_| histogram::new_latency());
    for (file, result) in files {
        let h = &result.histograms;
        for (into, (which, text)) in totals.iter_mut().zip([
            ("e2e", &h.e2e),
            ("e2e_actual", &h.e2e_actual),
            ("send_delay", &h.send_delay),
            ("confirm", &h.confirm),
        ]) {
            add(into, file, which, text)?;
        }
    }
    let [e2e, e2e_actual, send_delay, confirm] = &totals;

    merged.producers = merge_producers(files)?;
    merged.consumers = merge_consumers(files)?;
    merged.summary = merge_summary(files);
    merged.summary.latency.e2e = Percentiles::of(e2e);
    merged.summary.latency.e2e_actual = Percentiles::of(e2e_actual);
    merged.summary.latency.send_delay = Percentiles::of(send_delay);
    merged.summary.latency.confirm = Percentiles::of(confirm);
    merged.histograms.e2e = histogram::encode(e2e);
    merged.histograms.e2e_actual = histogram::encode(e2e_actual);
    merged.histograms.send_delay = histogram::encode(send_delay);
    merged.histograms.confirm = histogram::encode(confirm);
    merged.time_series = merge_series(files)?;
    // Shards that began together share their clock, so their outages line up.
    merged.outages = files.iter().flat_map(|(_, r)| r.outages.iter().cloned()).collect();
    merged.outages.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));

    merged.status = files.iter().map(|(_, r)| r.status).max_by_key(|s| severity(*s)).unwrap_or(RunStatus::Completed);
    merged.error = files
        .iter()
        .filter_map(|(file, r)| r.error.as_ref().map(|e| format!("{file}: {e}")))
        .reduce(|a, b| format!("{a}; {b}"));
    merged.started_at = files.iter().map(|(_, r)| r.started_at.clone()).min().unwrap_or_default();
    merged.drain.seconds = files.iter().map(|(_, r)| r.drain.seconds).fold(0.0, f64::max);
    merged.drain.delivered = files.iter().map(|(_, r)| r.drain.delivered).sum();
    merged.drain.complete = files.iter().all(|(_, r)| r.drain.complete);
    merged.generator.limited = files.iter().any(|(_, r)| r.generator.limited);
    merged.generator.reasons = files
        .iter()
        .flat_map(|(file, r)| r.generator.reasons.iter().map(move |reason| format!("{file}: {reason}")))
        .collect();
    merged.broker_pace.paced = files.iter().any(|(_, r)| r.broker_pace.paced);
    merged.broker_pace.reasons = files
        .iter()
        .flat_map(|(file, r)| r.broker_pace.reasons.iter().map(move |reason| format!("{file}: {reason}")))
        .collect();
    merged.broker_pace.waited = BrokerWait::default();
    for (_, r) in files {
        merged.broker_pace.waited.add(&r.broker_pace.waited);
    }
    merged.generator.cpu_seconds = files.iter().map(|(_, r)| r.generator.cpu_seconds).sum();
    merged.generator.cpu_seconds_per_million = per_million(merged.generator.cpu_seconds, merged.summary.consumed);
    merged.generator.window_cpu_seconds = files.iter().map(|(_, r)| r.generator.window_cpu_seconds).sum();
    merged.generator.window_messages = files.iter().map(|(_, r)| r.generator.window_messages).sum();
    merged.generator.window_cpu_seconds_per_million =
        per_million(merged.generator.window_cpu_seconds, merged.generator.window_messages.unwrap_or(0));
    merged.generator.busiest_thread_share =
        files.iter().filter_map(|(_, r)| r.generator.busiest_thread_share).reduce(f64::max);
    merged.gates = rejudge(&first.gates, &merged.summary);
    // A shard's throughput gate is its share of the scenario's: the shares add back up.
    if files.iter().all(|(_, r)| r.shard.is_some()) {
        for gate in merged.gates.iter_mut().filter(|g| g.name == "throughput_min") {
            gate.threshold = files
                .iter()
                .flat_map(|(_, r)| r.gates.iter().filter(|g| g.name == "throughput_min").map(|g| g.threshold))
                .sum();
            gate.passed = gate.actual >= gate.threshold;
        }
    }
    let mut warnings = Vec::new();
    for (file, result) in files {
        for warning in &result.warnings {
            let line = format!("{file}: {warning}");
            if !warnings.contains(&line) {
                warnings.push(line);
            }
        }
    }
    let mut hosts: Vec<String> = Vec::new();
    for (_, result) in files {
        let host = result.machine.hostname.clone().unwrap_or_else(|| "unknown host".to_owned());
        let entry = format!("{host} ({} cores)", result.machine.cores);
        if !hosts.contains(&entry) {
            hosts.push(entry);
        }
    }
    if hosts.len() > 1 {
        warnings.push(format!(
            "the shards ran on {} machines: {}; `machine` describes the first",
            hosts.len(),
            hosts.join(", ")
        ));
    }
    merged.warnings = warnings;
    merged.repeat = None;
    merged.shard = None;
    merged.merged = Some(MergeInfo {
        files: files.iter().map(|(file, _)| file.clone()).collect(),
        shards: files.iter().filter_map(|(_, r)| r.shard).collect(),
    });
    Ok(merged)
}

fn severity(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => 0,
        RunStatus::Interrupted => 1,
        RunStatus::Failed => 2,
    }
}

fn merge_summary(files: &[(String, RunResult)]) -> Summary {
    let mut s = Summary::default();
    for (_, r) in files {
        let t = &r.summary;
        s.published += t.published;
        s.consumed += t.consumed;
        s.expected += t.expected;
        s.lost += t.lost;
        s.confirmed_lost += t.confirmed_lost;
        s.resent += t.resent;
        s.duplicated += t.duplicated;
        s.reordered += t.reordered;
        s.redelivered += t.redelivered;
        s.rejected += t.rejected;
        s.confirmed += t.confirmed;
        s.nacked += t.nacked;
        s.returned += t.returned;
        s.unconfirmed += t.unconfirmed;
        s.errors += t.errors;
        // Shards run side by side over the same window: their rates add.
        s.publish_rate += t.publish_rate;
        s.consume_rate += t.consume_rate;
        s.publish_bytes_rate += t.publish_bytes_rate;
        s.consume_bytes_rate += t.consume_bytes_rate;
    }
    s
}

fn merge_producers(files: &[(String, RunResult)]) -> Result<Vec<ProducerGroupResult>, MergeError> {
    let (_, first) = files.first().ok_or(MergeError::Empty)?;
    let mut out = Vec::new();
    for template in &first.producers {
        let mut group = template.clone();
        let (mut send_delay, mut own_send_delay, mut confirm) =
            (histogram::new_latency(), histogram::new_latency(), histogram::new_latency());
        let mut broker_wait = BrokerWait::default();
        let (mut instances, mut published, mut confirmed, mut nacked, mut returned, mut resent) = (0, 0, 0, 0, 0, 0);
        let (mut rate, mut bytes, mut target) = (0.0, 0.0, None::<f64>);
        for (file, result) in files {
            for g in result.producers.iter().filter(|g| g.name == template.name) {
                instances += g.instances;
                published += g.published;
                confirmed += g.confirmed;
                nacked += g.nacked;
                returned += g.returned;
                resent += g.resent;
                rate += g.publish_rate;
                bytes += g.publish_bytes_rate;
                if let Some(t) = g.target_rate {
                    target = Some(target.unwrap_or(0.0) + t);
                }
                let which = format!("producer group `{}` send-delay", g.name);
                add(&mut send_delay, file, &which, &g.send_delay_histogram)?;
                let which = format!("producer group `{}` confirm", g.name);
                add(&mut confirm, file, &which, &g.confirm_histogram)?;
                // Results from before the own send delay existed carry none.
                if !g.own_send_delay_histogram.is_empty() {
                    let which = format!("producer group `{}` own send-delay", g.name);
                    add(&mut own_send_delay, file, &which, &g.own_send_delay_histogram)?;
                }
                broker_wait.add(&g.broker_wait);
            }
        }
        group.instances = instances;
        group.published = published;
        group.confirmed = confirmed;
        group.nacked = nacked;
        group.returned = returned;
        group.resent = resent;
        group.publish_rate = rate;
        group.publish_bytes_rate = bytes;
        group.target_rate = target;
        group.send_delay = Percentiles::of(&send_delay);
        group.confirm = Percentiles::of(&confirm);
        group.send_delay_histogram = histogram::encode(&send_delay);
        group.confirm_histogram = histogram::encode(&confirm);
        group.broker_wait = broker_wait;
        group.own_send_delay = Percentiles::of(&own_send_delay);
        group.own_send_delay_histogram = histogram::encode(&own_send_delay);
        out.push(group);
    }
    Ok(out)
}

fn merge_consumers(files: &[(String, RunResult)]) -> Result<Vec<ConsumerGroupResult>, MergeError> {
    let (_, first) = files.first().ok_or(MergeError::Empty)?;
    let mut out = Vec::new();
    for template in &first.consumers {
        let mut group = template.clone();
        let (mut e2e, mut e2e_actual) = (histogram::new_latency(), histogram::new_latency());
        let mut sums = [0u64; 9];
        let (mut rate, mut bytes) = (0.0, 0.0);
        for (file, result) in files {
            for g in result.consumers.iter().filter(|g| g.name == template.name) {
                for (sum, value) in sums.iter_mut().zip([
                    u64::from(g.instances),
                    g.consumed,
                    g.expected,
                    g.lost,
                    g.duplicated,
                    g.reordered,
                    g.redelivered,
                    g.rejected,
                    g.confirmed_lost,
                ]) {
                    *sum += value;
                }
                rate += g.consume_rate;
                bytes += g.consume_bytes_rate;
                add(&mut e2e, file, &format!("consumer group `{}` e2e", g.name), &g.e2e_histogram)?;
                add(
                    &mut e2e_actual,
                    file,
                    &format!("consumer group `{}` e2e_actual", g.name),
                    &g.e2e_actual_histogram,
                )?;
            }
        }
        let [instances, consumed, expected, lost, duplicated, reordered, redelivered, rejected, confirmed_lost] = sums;
        group.instances = u32::try_from(instances).unwrap_or(u32::MAX);
        group.consumed = consumed;
        group.expected = expected;
        group.lost = lost;
        group.confirmed_lost = confirmed_lost;
        group.duplicated = duplicated;
        group.reordered = reordered;
        group.redelivered = redelivered;
        group.rejected = rejected;
        group.consume_rate = rate;
        group.consume_bytes_rate = bytes;
        group.e2e = Percentiles::of(&e2e);
        group.e2e_actual = Percentiles::of(&e2e_actual);
        group.e2e_histogram = histogram::encode(&e2e);
        group.e2e_actual_histogram = histogram::encode(&e2e_actual);
        out.push(group);
    }
    Ok(out)
}

/// Sums the seconds of every file. Shards that began together (`--start-at`)
/// share their second numbers; a second's percentiles come from the merged
/// histogram of that second, or stay unknown when a file lacks it.
fn merge_series(files: &[(String, RunResult)]) -> Result<Vec<SecondResult>, MergeError> {
    let mut seconds: BTreeMap<u64, (SecondResult, Option<Latency>, bool)> = BTreeMap::new();
    for (file, result) in files {
        for second in &result.time_series {
            let slot = seconds.entry(second.t).or_insert_with(|| {
                let mut empty = second.clone();
                for counter in [
                    &mut empty.published,
                    &mut empty.confirmed,
                    &mut empty.nacked,
                    &mut empty.returned,
                    &mut empty.delivered,
                    &mut empty.acked,
                    &mut empty.redelivered,
                    &mut empty.errors,
                ] {
                    *counter = 0;
                }
                (empty, None, true)
            });
            let s = &mut slot.0;
            s.published += second.published;
            s.confirmed += second.confirmed;
            s.nacked += second.nacked;
            s.returned += second.returned;
            s.delivered += second.delivered;
            s.acked += second.acked;
            s.redelivered += second.redelivered;
            s.errors += second.errors;
            match (&second.e2e_histogram, second.p50_us) {
                (Some(text), _) => {
                    let into = slot.1.get_or_insert_with(histogram::new_latency);
                    add(into, file, &format!("second {} e2e", second.t), text)?;
                }
                // Recorded latencies without their histogram: this second cannot be merged exactly.
                (None, Some(_)) => slot.2 = false,
                (None, None) => {}
            }
        }
    }
    Ok(seconds
        .into_values()
        .map(|(mut second, latency, exact)| {
            let latency = latency.filter(|h| exact && !h.is_empty());
            second.p50_us = latency.as_ref().map(|h| h.value_at_quantile(0.5) as f64 / 1000.0);
            second.p99_us = latency.as_ref().map(|h| h.value_at_quantile(0.99) as f64 / 1000.0);
            second.e2e_histogram = latency.as_ref().map(histogram::encode);
            second
        })
        .collect())
}

/// Judges the first file's gates again on the merged figures.
fn rejudge(gates: &[GateResult], summary: &Summary) -> Vec<GateResult> {
    gates
        .iter()
        .map(|gate| {
            let (actual, at_least) = match gate.name.as_str() {
                "throughput_min" => (summary.consume_rate, true),
                "latency_p50_max" => (summary.latency.e2e.p50_us, false),
                "latency_p99_max" => (summary.latency.e2e.p99_us, false),
                "latency_p999_max" => (summary.latency.e2e.p999_us, false),
                "max_lost" => (summary.lost as f64, false),
                "max_confirmed_lost" => (summary.confirmed_lost as f64, false),
                "max_duplicated" => (summary.duplicated as f64, false),
                "max_returned" => (summary.returned as f64, false),
                "max_errors" => (summary.errors as f64, false),
                // A gate this version does not know keeps the first file's verdict.
                _ => return gate.clone(),
            };
            let passed = if at_least { actual >= gate.threshold } else { actual <= gate.threshold };
            GateResult { name: gate.name.clone(), threshold: gate.threshold, actual, passed }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ShardInfo;
    use crate::result::sample::{histogram_of, result, spread_us};

    #[test]
    fn merged_counts_add_up_and_percentiles_equal_one_histogram_fed_every_sample() {
        let (a_e2e, b_e2e) = (spread_us(5000, 100, 900), spread_us(300, 5_000, 90_000));
        let (a_conf, b_conf) = (spread_us(5000, 50, 400), spread_us(300, 1000, 3000));
        let mut a = result("s", 5000, &a_e2e, &a_conf);
        let mut b = result("s", 300, &b_e2e, &b_conf);
        a.shard = Some(ShardInfo { index: 1, count: 2 });
        b.shard = Some(ShardInfo { index: 2, count: 2 });
        let merged = merge(&[("a.json".into(), a), ("b.json".into(), b)]).expect("merges");

        assert_eq!(merged.summary.published, 5300);
        assert_eq!(merged.summary.consumed, 5300);
        assert!((merged.summary.consume_rate - 530.0).abs() < 1e-9);
        assert_eq!(merged.consumers[0].consumed, 5300);
        assert_eq!(merged.consumers[0].instances, 2);

        let all_e2e: Vec<u64> = a_e2e.iter().chain(&b_e2e).copied().collect();
        let all_conf: Vec<u64> = a_conf.iter().chain(&b_conf).copied().collect();
        assert_eq!(merged.summary.latency.e2e, Percentiles::of(&histogram_of(&all_e2e)));
        assert_eq!(merged.summary.latency.confirm, Percentiles::of(&histogram_of(&all_conf)));
        assert_eq!(merged.consumers[0].e2e, Percentiles::of(&histogram_of(&all_e2e)));
        let decoded = histogram::decode(&merged.histograms.e2e).expect("decodes");
        assert_eq!(decoded.len(), 5300);

        // Second 3 holds every tenth sample of both shards.
        let second: Vec<u64> = all_e2e
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i < 5000 && i % 10 == 3) || (*i >= 5000 && (i - 5000) % 10 == 3))
            .map(|(_, v)| *v)
            .collect();
        let s3 = merged.time_series.iter().find(|s| s.t == 3).expect("second 3");
        assert_eq!(s3.delivered, 500 + 30);
        assert_eq!(s3.p99_us, Some(histogram_of(&second).value_at_quantile(0.99) as f64 / 1000.0));
        let info = merged.merged.expect("merge info");
        assert_eq!(info.files, vec!["a.json", "b.json"]);
        assert!(merged.shard.is_none());
    }

    #[test]
    fn gates_are_judged_again_on_the_merged_figures() {
        let mut a = result("s", 100, &[1000], &[]);
        let mut b = result("s", 100, &[1000], &[]);
        a.gates.push(GateResult { name: "throughput_min".into(), threshold: 15.0, actual: 10.0, passed: false });
        b.gates = a.gates.clone();
        b.summary.lost = 2;
        let merged = merge(&[("a".into(), a), ("b".into(), b)]).expect("merges");
        let verdict = |name: &str| merged.gates.iter().find(|g| g.name == name).map(|g| (g.actual, g.passed));
        assert_eq!(verdict("throughput_min"), Some((20.0, true)), "10 + 10 msgs/s meets 15");
        assert_eq!(verdict("max_lost"), Some((2.0, false)));
    }

    #[test]
    fn waits_on_the_broker_add_up_and_each_shards_reasons_are_kept() {
        let mut a = result("s", 100, &[1000], &[]);
        let mut b = result("s", 100, &[1000], &[]);
        let (own_a, own_b) = (spread_us(100, 10, 90), spread_us(100, 500, 9000));
        a.producers[0].own_send_delay_histogram = histogram::encode(&histogram_of(&own_a));
        b.producers[0].own_send_delay_histogram = histogram::encode(&histogram_of(&own_b));
        a.producers[0].broker_wait =
            BrokerWait { blocked_s: 1.0, confirm_window_s: 0.25, write_s: 0.0, ..BrokerWait::default() };
        b.producers[0].broker_wait =
            BrokerWait { blocked_s: 0.5, confirm_window_s: 0.0, write_s: 0.125, ..BrokerWait::default() };
        a.broker_pace.waited = a.producers[0].broker_wait;
        b.broker_pace.waited = b.producers[0].broker_wait;
        b.broker_pace.paced = true;
        b.broker_pace.reasons = vec!["producer group `producer` fell behind".into()];
        // A result from before these figures: nothing to add, nothing refused.
        let mut old = result("s", 100, &[1000], &[]);
        old.producers[0].own_send_delay_histogram = String::new();
        let merged = merge(&[("a".into(), a), ("b".into(), b), ("old".into(), old)]).expect("merges");
        let sum = BrokerWait { blocked_s: 1.5, confirm_window_s: 0.25, write_s: 0.125, ..BrokerWait::default() };
        assert_eq!(merged.producers[0].broker_wait, sum);
        assert_eq!(merged.broker_pace.waited, sum);
        assert!(merged.broker_pace.paced);
        assert_eq!(merged.broker_pace.reasons, vec!["b: producer group `producer` fell behind".to_owned()]);
        let all: Vec<u64> = own_a.iter().chain(&own_b).copied().collect();
        assert_eq!(merged.producers[0].own_send_delay, Percentiles::of(&histogram_of(&all)));
    }

    #[test]
    fn shards_of_other_scenarios_or_repeated_shards_are_refused() {
        let a = result("seed", 100, &[1000], &[]);
        let b = result("orders", 100, &[1000], &[]);
        let error = merge(&[("a.json".into(), a.clone()), ("b.json".into(), b)]).expect_err("different scenarios");
        assert!(error.to_string().contains("b.json ran scenario `orders`"), "{error}");

        let mut one = a.clone();
        one.shard = Some(ShardInfo { index: 1, count: 2 });
        let error = merge(&[("x".into(), one.clone()), ("y".into(), one)]).expect_err("same shard twice");
        assert!(error.to_string().contains("shard 1/2"), "{error}");
        assert!(matches!(merge(&[]), Err(MergeError::Empty)));
    }
}
