//! What counts as a regression when a run is compared with its baseline: the
//! tolerances and the latency percentile compared. Read by `compare`, the
//! HTML report and `bench --baseline` alike.

use schemars::JsonSchema;
use serde::Serialize;

use super::histogram::Percentiles;

/// A latency percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest value.
    Max,
}

/// Parses `10%`, `10` or `0.5%` into a fraction (`0.10`).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value / 100.0),
        _ => Err(format!("`{text}` is not a percentage such as 10%")),
    }
}

/// What counts as a regression.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct Tolerance {
    /// Largest accepted throughput drop, a fraction (0.10 = 10%).
    pub max_throughput_drop: f64,
    /// Largest accepted latency rise, a fraction.
    pub max_latency_rise: f64,
    /// Latency rises below this many microseconds are noise.
    pub min_latency_rise_us: f64,
    /// The latency percentile compared.
    pub metric: Metric,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance {
            max_throughput_drop: 0.10,
            max_latency_rise: 0.20,
            min_latency_rise_us: 1000.0,
            metric: Metric::P99,
        }
    }
}

impl Metric {
    /// The name of a metric as people write it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::Max => "max",
        }
    }

    /// Its value in `percentiles`, microseconds.
    pub fn of(self, percentiles: &Percentiles) -> f64 {
        match self {
            Metric::P50 => percentiles.p50_us,
            Metric::P90 => percentiles.p90_us,
            Metric::P99 => percentiles.p99_us,
            Metric::P999 => percentiles.p999_us,
            Metric::Max => percentiles.max_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse() {
        assert_eq!(parse_percent("10%"), Ok(0.10));
        assert_eq!(parse_percent("2.5"), Ok(0.025));
        assert!(parse_percent("-5%").is_err());
        assert!(parse_percent("ten").is_err());
    }
}
