//! Axis ranges that survive real data: empty series, a single point, zero latencies (which a
//! log axis cannot show) and latency spans of several orders of magnitude.

use std::ops::Range;

/// Range of a log axis covering the positive values, widened to whole decades so its ticks
/// are round numbers. Without positive values it is `0.001..1` (1 µs to 1 ms).
pub fn log_range(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let (min, max) = positive_bounds(values).unwrap_or((1e-3, 1.0));
    let lo = 10f64.powf(min.log10().floor());
    let mut hi = 10f64.powf(max.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    lo..hi
}

/// Range of a linear axis from zero to a little above the largest value (`0..1` when every
/// value is zero or there are none).
pub fn zero_based_range(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let max = values.into_iter().filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    if max > 0.0 {
        0.0..max * 1.05
    } else {
        0.0..1.0
    }
}

/// Range of a linear axis spanning the values exactly (a unit-wide range around a single
/// value, `0..1` when there are none).
pub fn span_range(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let (min, max) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })
        .unwrap_or((0.0, 1.0));
    if max > min {
        min..max
    } else {
        min - 0.5..max + 0.5
    }
}

/// Smallest and largest finite positive value, if any.
pub fn positive_bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(None, |acc, v| {
            Some(acc.map_or((v, v), |(lo, hi): (f64, f64)| (lo.min(v), hi.max(v))))
        })
}

/// A tick label without trailing zeros: `0.001`, `0.5`, `20`, `1000`.
pub fn tick_label(value: &f64) -> String {
    let text = if value.abs() >= 1e4 {
        format!("{value:.0}")
    } else {
        format!("{value:.6}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_range_widens_to_whole_decades_and_ignores_zero() {
        assert_eq!(log_range([0.0, 0.2, 35.0]), 0.1..100.0);
        assert_eq!(log_range([1.0]), 1.0..10.0);
        assert_eq!(log_range([0.0]), 0.001..1.0);
        assert_eq!(log_range([]), 0.001..1.0);
    }

    #[test]
    fn linear_ranges_are_never_empty() {
        assert_eq!(zero_based_range([0.0, 0.0]), 0.0..1.0);
        assert_eq!(span_range([3.0]), 2.5..3.5);
        assert_eq!(span_range([]), 0.0..1.0);
        assert_eq!(span_range([1.0, f64::NAN, 4.0]), 1.0..4.0);
    }

    #[test]
    fn tick_labels_drop_trailing_zeros() {
        assert_eq!(tick_label(&0.001), "0.001");
        assert_eq!(tick_label(&20.0), "20");
        assert_eq!(tick_label(&2.5), "2.5");
        assert_eq!(tick_label(&100000.0), "100000");
    }
}
