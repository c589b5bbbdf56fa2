//! Gates: the scenario's absolute thresholds, judged against a result.
//! Loss is always gated (0 unless the scenario allows some).

use crate::bench::result::{GateResult, Summary};
use crate::bench::scenario::Gates;

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
                ("max_lost".to_owned(), true)
            ]
        );
        summary.lost = 1;
        assert!(evaluate(&Gates::default(), &summary).iter().any(|g| g.name == "max_lost" && !g.passed));
    }
}
