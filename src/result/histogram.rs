//! Latency histograms: HdrHistogram in nanoseconds, one per task and kind,
//! merged by adding counts (never by averaging percentiles).

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest value a histogram holds: one hour in nanoseconds. Larger values are clamped.
pub const HIGHEST_NS: u64 = 3_600_000_000_000;

/// A latency histogram in nanoseconds.
pub type Latency = Histogram<u64>;

/// An empty latency histogram (3 significant digits, 1 ns to one hour).
pub fn new_latency() -> Latency {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("constant bounds HdrHistogram accepts")
}

/// Records one value, clamping it into the histogram's range.
#[inline]
pub fn record(histogram: &mut Latency, ns: u64) {
    histogram.saturating_record(ns.clamp(1, HIGHEST_NS));
}

/// Adds `from` into `into`.
pub fn merge(into: &mut Latency, from: &Latency) {
    // Both come from `new_latency`, so the ranges match and `add` cannot fail.
    let _ = into.add(from);
}

/// Serialises a histogram as HdrHistogram V2 with deflate, base64 encoded:
/// the form HdrHistogram tools in other languages read.
pub fn encode(histogram: &Latency) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(histogram, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

/// Why a serialised histogram could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not base64.
    #[error("the histogram is not base64")]
    Base64(#[source] base64::DecodeError),
    /// Not an HdrHistogram V2 encoding.
    #[error("the histogram is not an HdrHistogram V2 encoding")]
    Hdr(#[source] hdrhistogram::serialization::DeserializeError),
}

/// Reads what [`encode`] wrote.
pub fn decode(text: &str) -> Result<Latency, DecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(DecodeError::Base64)?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(DecodeError::Hdr)
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Percentiles {
    /// Number of values recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest value.
    pub max_us: f64,
}

impl Percentiles {
    /// Reads the percentiles of a histogram; all zero when it is empty.
    pub fn of(histogram: &Latency) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            count: histogram.len(),
            mean_us: histogram.mean() / 1000.0,
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let mut h = new_latency();
        for v in [1_000, 2_000, 3_000_000, 50] {
            record(&mut h, v);
        }
        let back = decode(&encode(&h)).expect("decodes");
        assert_eq!(back.len(), 4);
        assert_eq!(back.value_at_quantile(1.0), h.value_at_quantile(1.0));
    }

    #[test]
    fn merged_percentiles_equal_those_of_one_histogram_fed_everything() {
        let (mut a, mut b, mut all) = (new_latency(), new_latency(), new_latency());
        for v in 1..1000u64 {
            record(&mut a, v * 1000);
            record(&mut all, v * 1000);
        }
        for v in 1..10u64 {
            record(&mut b, v * 1_000_000);
            record(&mut all, v * 1_000_000);
        }
        merge(&mut a, &b);
        assert_eq!(Percentiles::of(&a), Percentiles::of(&all));
    }
}
