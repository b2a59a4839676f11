//! The feeder's sending lag: for every event, the instant its row was handed to the socket
//! minus its scheduled arrival. An open-loop source that falls behind must say so: latency is
//! measured from the scheduled arrival, so a lag here is a part of every engine's latency that
//! the engine did not cause. Every event is recorded (nothing sampled, nothing dropped).

use std::fmt;

use hdrhistogram::Histogram;
use streamlab_engines::time::Nanos;

/// Highest lag the histogram resolves, ns (one hour; larger lags saturate to it).
const LAG_MAX: u64 = 3_600_000_000_000;

/// A fresh lag histogram: 1 ns to one hour at 3 significant digits.
pub(crate) fn lag_histogram() -> Histogram<u64> {
    Histogram::new_with_max(LAG_MAX, 3).expect("constant histogram bounds are valid")
}

/// Summary of the sending lag over every event the feeder wrote, ns.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SendingLag {
    /// Events measured (all events written).
    pub events: u64,
    /// Mean lag, ns.
    pub mean: f64,
    /// Median lag, ns.
    pub p50: Nanos,
    /// 99th-percentile lag, ns.
    pub p99: Nanos,
    /// Largest lag, ns.
    pub max: Nanos,
}

impl SendingLag {
    /// Summarizes `histogram` (values in ns).
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            events: histogram.len(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.5),
            p99: histogram.value_at_quantile(0.99),
            max: histogram.max(),
        }
    }
}

impl fmt::Display for SendingLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: Nanos| ns as f64 / 1e6;
        write!(
            f,
            "sending lag over {} events: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.events,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}
