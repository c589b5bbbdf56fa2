//! `bench --repeat N`: one noisy run must not decide. The result is the
//! median run by consumed msgs/s (a real run, not an average of runs, so its
//! histograms and time series stay consistent), with every run's headline
//! figures kept so a comparison can tell when runs spread wider than the tolerance.

use crate::result::{RepeatInfo, RepeatRun, RunResult};

/// Picks the median of `runs` (the lower middle for an even count) and
/// records every run in it; `None` for no runs.
pub fn median(runs: Vec<RunResult>) -> Option<RunResult> {
    let figures: Vec<RepeatRun> = runs
        .iter()
        .map(|r| RepeatRun {
            publish_rate: r.summary.publish_rate,
            consume_rate: r.summary.consume_rate,
            e2e: r.summary.latency.e2e,
            confirm: r.summary.latency.confirm,
            lost: r.summary.lost,
            confirmed_lost: r.summary.confirmed_lost,
        })
        .collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|a, b| figures[*a].consume_rate.total_cmp(&figures[*b].consume_rate));
    let chosen = *order.get(order.len().checked_sub(1)? / 2)?;
    let mut result = runs.into_iter().nth(chosen)?;
    if figures.len() > 1 {
        let lost: u64 = figures.iter().map(|f| f.lost).sum();
        if lost > result.summary.lost {
            result.warnings.push(format!(
                "the {} runs lost {lost} messages in all; the median run shown lost {}",
                figures.len(),
                result.summary.lost
            ));
        }
        // A lost message is a bug, not noise: the loss gate judges the worst run.
        let worst = figures.iter().map(|f| f.lost).max().unwrap_or(0);
        for gate in result.gates.iter_mut().filter(|g| g.name == "max_lost") {
            gate.actual = worst as f64;
            gate.passed = gate.actual <= gate.threshold;
        }
        let worst_confirmed = figures.iter().map(|f| f.confirmed_lost).max().unwrap_or(0);
        for gate in result.gates.iter_mut().filter(|g| g.name == "max_confirmed_lost") {
            gate.actual = worst_confirmed as f64;
            gate.passed = gate.actual <= gate.threshold;
        }
        result.repeat = Some(RepeatInfo { median_run: chosen as u32 + 1, runs: figures });
    }
    Some(result)
}

/// One paragraph for people: every run's headline figures and their spread.
pub fn summary(repeat: &RepeatInfo) -> String {
    use crate::compare::spread;
    use crate::report::units::{micros, si};
    let rates: Vec<f64> = repeat.runs.iter().map(|r| r.consume_rate).collect();
    let p99s: Vec<f64> = repeat.runs.iter().map(|r| r.e2e.p99_us).collect();
    let percent = |values: &[f64]| spread(values).map_or_else(|| "-".to_owned(), |s| format!("{:.1}%", s * 100.0));
    format!(
        "median of {} runs (run {} shown): consumed msgs/s {} (spread {}); e2e p99 {} (spread {})\n",
        repeat.runs.len(),
        repeat.median_run,
        rates.iter().map(|r| si(*r)).collect::<Vec<_>>().join(", "),
        percent(&rates),
        p99s.iter().map(|p| micros(*p)).collect::<Vec<_>>().join(", "),
        percent(&p99s),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::sample::result;

    #[test]
    fn the_median_run_is_kept_whole_and_every_run_is_listed() {
        let runs: Vec<RunResult> = [300, 100, 200].iter().map(|n| result("s", *n, &[1000], &[])).collect();
        let median = median(runs).expect("runs");
        assert_eq!(median.summary.consumed, 200);
        let repeat = median.repeat.expect("repeat info");
        assert_eq!(repeat.median_run, 3);
        let rates: Vec<f64> = repeat.runs.iter().map(|r| r.consume_rate).collect();
        assert_eq!(rates, vec![30.0, 10.0, 20.0]);
    }

    #[test]
    fn a_loss_in_any_run_fails_the_loss_gate() {
        let mut runs: Vec<RunResult> = [100, 200, 300].iter().map(|n| result("s", *n, &[1000], &[])).collect();
        runs[0].summary.lost = 4;
        let median = median(runs).expect("runs");
        let gate = median.gates.iter().find(|g| g.name == "max_lost").expect("loss gate");
        assert!(!gate.passed);
        assert_eq!(gate.actual, 4.0);
    }

    #[test]
    fn the_summary_lists_every_run_and_the_spread() {
        let runs: Vec<RunResult> = [100, 200, 300].iter().map(|n| result("s", *n, &[1000], &[])).collect();
        let text = summary(&median(runs).and_then(|r| r.repeat).expect("repeat info"));
        assert!(
            text.starts_with("median of 3 runs (run 2 shown): consumed msgs/s 10, 20, 30 (spread 100.0%)"),
            "{text}"
        );
    }

    #[test]
    fn one_run_is_just_that_run() {
        let one = median(vec![result("s", 100, &[1000], &[])]).expect("a run");
        assert!(one.repeat.is_none());
        assert!(median(Vec::new()).is_none());
    }
}
