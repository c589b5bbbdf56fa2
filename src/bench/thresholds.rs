//! Gates: the scenario's absolute thresholds, judged against a result.
//! Loss is always gated (0 unless the scenario allows some), and so is the
//! loss of messages the broker confirmed.

use crate::bench::scenario::Gates;
use crate::result::{GateResult, Summary};

/// Judges every gate the scenario sets.
pub fn evaluate(gates: &Gates, summary: &Summary) -> Vec<GateResult> {
    let mut results = Vec::new();
    let mut at_least = |name: &str, threshold: f64, actual: f64| {
        results.push(GateResult { name: name.into(), threshold, actual, passed: actual >= threshold });
    };
    if let Some(min) = gates.throughput_min {
        at_least("throughput_min", min, summary.consume_rate);
    }
    let mut at_most = |name: &str, threshold: f64, actual: f64| {
        results.push(GateResult { name: name.into(), threshold, actual, passed: actual <= threshold });
    };
    let latency = &summary.latency.e2e;
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    if let Some(max) = gates.latency_p50_max {
        at_most("latency_p50_max", us(max), latency.p50_us);
    }
    if let Some(max) = gates.latency_p99_max {
        at_most("latency_p99_max", us(max), latency.p99_us);
    }
    if let Some(max) = gates.latency_p999_max {
        at_most("latency_p999_max", us(max), latency.p999_us);
    }
    at_most("max_lost", gates.max_lost as f64, summary.lost as f64);
    at_most("max_confirmed_lost", gates.max_confirmed_lost as f64, summary.confirmed_lost as f64);
    if let Some(max) = gates.max_duplicated {
        at_most("max_duplicated", max as f64, summary.duplicated as f64);
    }
    if let Some(max) = gates.max_returned {
        at_most("max_returned", max as f64, summary.returned as f64);
    }
    if let Some(max) = gates.max_errors {
        at_most("max_errors", max as f64, summary.errors as f64);
    }
    results
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn loss_is_gated_by_default_and_thresholds_compare_the_right_way() {
        let mut summary = Summary { consume_rate: 900.0, lost: 0, ..Summary::default() };
        summary.latency.e2e.p99_us = 2_000.0;
        let gates =
            Gates { throughput_min: Some(1000.0), latency_p99_max: Some(Duration::from_millis(5)), ..Gates::default() };
        let verdicts: Vec<(String, bool)> =
            evaluate(&gates, &summary).into_iter().map(|g| (g.name, g.passed)).collect();
        assert_eq!(
            verdicts,
            vec![
                ("throughput_min".to_owned(), false),
                ("latency_p99_max".to_owned(), true),
                ("max_lost".to_owned(), true),
                ("max_confirmed_lost".to_owned(), true)
            ]
        );
        summary.lost = 1;
        assert!(evaluate(&Gates::default(), &summary).iter().any(|g| g.name == "max_lost" && !g.passed));
        summary.confirmed_lost = 1;
        assert!(evaluate(&Gates::default(), &summary).iter().any(|g| g.name == "max_confirmed_lost" && !g.passed));
    }

    /// Every gate at once, each met exactly: a figure on its threshold passes.
    fn every_gate() -> (Gates, Summary) {
        let gates = Gates {
            throughput_min: Some(100.0),
            latency_p50_max: Some(Duration::from_millis(1)),
            latency_p99_max: Some(Duration::from_millis(5)),
            latency_p999_max: Some(Duration::from_millis(20)),
            max_lost: 1,
            max_confirmed_lost: 1,
            max_duplicated: Some(2),
            max_returned: Some(3),
            max_errors: Some(4),
        };
        let mut summary = Summary {
            consume_rate: 100.0,
            lost: 1,
            confirmed_lost: 1,
            duplicated: 2,
            returned: 3,
            errors: 4,
            ..Summary::default()
        };
        let e2e = &mut summary.latency.e2e;
        (e2e.p50_us, e2e.p99_us, e2e.p999_us) = (1_000.0, 5_000.0, 20_000.0);
        // The other histograms are not gated: make them fail every latency gate.
        summary.latency.e2e_actual.p99_us = 1e9;
        summary.latency.confirm.p99_us = 1e9;
        summary.latency.send_delay.p99_us = 1e9;
        (gates, summary)
    }

    #[test]
    fn each_gate_fails_on_its_own_figure_past_its_threshold_and_no_other() {
        let (gates, healthy) = every_gate();
        let verdicts = evaluate(&gates, &healthy);
        assert_eq!(verdicts.len(), 9, "{verdicts:?}");
        assert!(verdicts.iter().all(|g| g.passed), "on the threshold is within it: {verdicts:?}");
        type Breach = fn(&mut Summary);
        let breaches: [(&str, f64, Breach); 9] = [
            ("throughput_min", 99.5, |s| s.consume_rate = 99.5),
            ("latency_p50_max", 1_001.0, |s| s.latency.e2e.p50_us = 1_001.0),
            ("latency_p99_max", 5_001.0, |s| s.latency.e2e.p99_us = 5_001.0),
            ("latency_p999_max", 20_001.0, |s| s.latency.e2e.p999_us = 20_001.0),
            ("max_lost", 2.0, |s| s.lost = 2),
            ("max_confirmed_lost", 2.0, |s| s.confirmed_lost = 2),
            ("max_duplicated", 3.0, |s| s.duplicated = 3),
            ("max_returned", 4.0, |s| s.returned = 4),
            ("max_errors", 5.0, |s| s.errors = 5),
        ];
        for (name, actual, breach) in breaches {
            let mut summary = healthy.clone();
            breach(&mut summary);
            let failed: Vec<GateResult> = evaluate(&gates, &summary).into_iter().filter(|g| !g.passed).collect();
            assert_eq!(failed.len(), 1, "{name}: {failed:?}");
            assert_eq!((failed[0].name.as_str(), failed[0].actual), (name, actual), "{failed:?}");
        }
    }

    #[test]
    fn latency_thresholds_are_in_microseconds_and_unset_gates_are_not_judged() {
        let (gates, summary) = every_gate();
        let threshold =
            |name: &str| evaluate(&gates, &summary).into_iter().find(|g| g.name == name).map(|g| g.threshold);
        assert_eq!(threshold("latency_p50_max"), Some(1_000.0));
        assert_eq!(threshold("latency_p999_max"), Some(20_000.0));
        assert_eq!(threshold("max_duplicated"), Some(2.0));
        assert_eq!(threshold("max_errors"), Some(4.0));
        let names: Vec<String> = evaluate(&Gates::default(), &summary).into_iter().map(|g| g.name).collect();
        assert_eq!(names, vec!["max_lost", "max_confirmed_lost"], "only the loss gates are always judged");
    }
}
