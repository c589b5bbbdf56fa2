//! Numbers as people read them in narrow columns: rates, durations, byte rates.

/// `1234567.0` as `1.23M`, for rates and counts in narrow columns.
pub fn si(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e9 {
        format!("{:.2}G", value / 1e9)
    } else if abs >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if abs >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if abs >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Microseconds as a short duration: `850µs`, `12.3ms`, `1.20s`.
pub fn micros(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1e4 {
        format!("{:.1}ms", us / 1e3)
    } else if us >= 1e3 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}µs")
    }
}

/// Bytes per second as `12.3 MB/s`.
pub fn bytes_rate(bytes: f64) -> String {
    format!("{}/s", bytes_size(bytes))
}

/// Bytes as `12.3 MB`.
pub fn bytes_size(bytes: f64) -> String {
    let abs = bytes.abs();
    if abs >= 1e9 {
        format!("{:.2} GB", bytes / 1e9)
    } else if abs >= 1e6 {
        format!("{:.2} MB", bytes / 1e6)
    } else if abs >= 1e3 {
        format!("{:.1} kB", bytes / 1e3)
    } else {
        format!("{bytes:.0} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(si(1_234_567.0), "1.23M");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(42.0), "42");
        assert_eq!(micros(850.0), "850µs");
        assert_eq!(micros(12_345.0), "12.3ms");
        assert_eq!(bytes_rate(2_500_000.0), "2.50 MB/s");
    }
}
