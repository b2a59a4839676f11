//! Out-of-orderness: how far an event's event time lags its arrival.
//!
//! Watermarks, allowed lateness and late-record side outputs only do something when events
//! arrive out of event-time order, so the generator delays each event's *event time* behind
//! its arrival by a random amount. Most events stay within `bound` (a bounded-out-of-orderness
//! watermark with the same bound never calls them late); a `late_fraction` of them are delayed
//! past it by up to `late_extra` more, to exercise lateness handling.
//!
//! Sampling is portable: uniforms are rand's standard `f64` (the top 53 bits of a `u64`) and the
//! truncated exponential uses the crate's portable `fastmath::ln`, so a seed gives the same delays anywhere.

use rand::Rng;
use serde::{Deserialize, Serialize};
use streamlab_engines::time::{Nanos, Span};

use crate::config::{check_at_least, check_nonzero_span, ConfigError};

/// The distribution of an in-bound delay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayDistribution {
    /// Uniform in `[0, bound]`.
    #[default]
    Uniform,
    /// Exponential with mean `bound / 3`, truncated at `bound` (most events nearly in order,
    /// a tail up to the bound).
    Exponential,
}

/// How event time lags arrival (the `disorder` table of the workload).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Disorder {
    /// The largest delay of an in-bound event; 0 means in order (except late events).
    pub bound: Span,
    /// Distribution of in-bound delays.
    pub delay: DelayDistribution,
    /// Fraction of events (0..=1) delayed beyond `bound`.
    pub late_fraction: f64,
    /// A late event's delay is `bound + uniform(0, late_extra]`.
    pub late_extra: Span,
}

impl Default for Disorder {
    fn default() -> Self {
        Self {
            bound: Span::from_ms(200),
            delay: DelayDistribution::Uniform,
            late_fraction: 0.0,
            late_extra: Span::from_ms(2_000),
        }
    }
}

impl Disorder {
    /// Checks `late_fraction` is in `[0, 1]` and `late_extra > 0` when there are late events.
    /// Keys are relative to the disorder table.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_at_least("late_fraction", self.late_fraction, 0.0)?;
        if self.late_fraction > 1.0 {
            return Err(ConfigError::new(
                "late_fraction",
                format!(
                    "{} is out of range; must be a fraction between 0 and 1",
                    self.late_fraction
                ),
            ));
        }
        if self.late_fraction > 0.0 {
            check_nonzero_span("late_extra", self.late_extra)?;
        }
        Ok(())
    }

    /// A sampler of delays for this configuration.
    pub fn sampler(&self) -> DelaySampler {
        DelaySampler {
            bound: self.bound.nanos(),
            bound_plus_one: self.bound.nanos() as f64 + 1.0,
            exponential: self.delay == DelayDistribution::Exponential,
            // 1 - e^{-3}: the CDF of an exponential with mean bound/3, at the bound.
            trunc: 1.0 - crate::fastmath::exp(-3.0),
            late_fraction: self.late_fraction,
            late_extra: self.late_extra.nanos(),
        }
    }
}

/// Draws event-time delays (ns) as configured by a [`Disorder`].
#[derive(Clone, Copy, Debug)]
pub struct DelaySampler {
    bound: Nanos,
    /// `bound as f64 + 1.0`, computed once.
    bound_plus_one: f64,
    exponential: bool,
    trunc: f64,
    late_fraction: f64,
    late_extra: Nanos,
}

impl DelaySampler {
    /// One delay: `<= bound` unless the event is late, then in `(bound, bound + late_extra]`.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Nanos {
        if self.late_fraction > 0.0 && rng.random::<f64>() < self.late_fraction {
            let u: f64 = rng.random();
            let extra = ((1.0 - u) * self.late_extra as f64).ceil() as Nanos;
            return self.bound + extra.clamp(1, self.late_extra.max(1));
        }
        if self.bound == 0 {
            return 0;
        }
        let u: f64 = rng.random();
        let d = if self.exponential {
            // Inverse CDF of the exponential truncated at the bound.
            -(self.bound as f64 / 3.0) * crate::fastmath::ln(1.0 - u * self.trunc)
        } else {
            u * self.bound_plus_one
        };
        (d as Nanos).min(self.bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    #[test]
    fn delays_respect_the_bound() {
        let mut rng = Pcg64::seed_from_u64(1);
        for delay in [DelayDistribution::Uniform, DelayDistribution::Exponential] {
            let d = Disorder {
                delay,
                ..Disorder::default()
            };
            let s = d.sampler();
            let xs: Vec<_> = (0..10_000).map(|_| s.sample(&mut rng)).collect();
            assert!(xs.iter().all(|&x| x <= d.bound.nanos()));
            let mean = xs.iter().sum::<u64>() as f64 / xs.len() as f64 / d.bound.nanos() as f64;
            let expect = if delay == DelayDistribution::Uniform { 0.5 } else { 0.28 };
            assert!((mean - expect).abs() < 0.05, "{delay:?}: {mean}");
        }
        let late = Disorder {
            late_fraction: 1.0,
            ..Disorder::default()
        }
        .sampler();
        for _ in 0..1000 {
            let x = late.sample(&mut rng);
            assert!(x > 200_000_000 && x <= 2_200_000_000);
        }
    }

    #[test]
    fn validation_names_keys() {
        let d = Disorder {
            late_fraction: 1.5,
            ..Disorder::default()
        };
        assert_eq!(d.validate().unwrap_err().key, "late_fraction");
        let d = Disorder {
            late_fraction: 0.1,
            late_extra: Span(0),
            ..Disorder::default()
        };
        assert_eq!(d.validate().unwrap_err().key, "late_extra");
    }
}
