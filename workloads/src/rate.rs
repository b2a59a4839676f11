//! Rate profiles: how many events per second the open-loop source schedules, over time.
//!
//! Sustainable throughput and recovery are only visible under a *changing* load, so the rate is
//! a function of time rather than a number. The schedule is deterministic, not Poisson: the
//! `k`-th arrival (k = 0, 1, ...) is the first instant where the integrated rate
//! `Λ(t) = ∫₀ᵗ rate` exceeds `k`. Under a constant rate that is exactly `next = t + 1/rate`;
//! a step or spike takes effect at its instant to the nanosecond, and a rate of 0 simply
//! produces no arrival (a sine trough does not stall the schedule). Randomness lives in *what*
//! arrives (see [`crate::generator`]), never in *when*, so the offered load is exactly the
//! profile and a backlog can only come from the engine.

use serde::{Deserialize, Serialize};
use streamlab_engines::time::{Nanos, Span, NANOS_PER_SEC};

use crate::config::{check_at_least, check_nonzero_span, check_positive, ConfigError};

/// The highest rate accepted: one event per nanosecond (the arrival clock's resolution).
pub const MAX_EVENTS_PER_SECOND: f64 = 1e9;

/// The arrival rate over time, in events per second. Tagged by `profile` in scenario files,
/// e.g. `rate = { profile = "step", before = 10000, after = 20000, at = "30s" }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "profile", rename_all = "snake_case", deny_unknown_fields)]
pub enum RateProfile {
    /// The same rate throughout.
    Constant {
        /// Events per second (> 0).
        events_per_second: f64,
    },
    /// `before` until `at`, `after` from then on.
    Step {
        /// Events per second before the step.
        before: f64,
        /// Events per second from `at` on.
        after: f64,
        /// When the step happens (since the start of the run).
        at: Span,
    },
    /// `base`, except `peak` during `[at, at + duration)`.
    Spike {
        /// Events per second outside the spike.
        base: f64,
        /// Events per second during the spike.
        peak: f64,
        /// When the spike starts.
        at: Span,
        /// How long the spike lasts (> 0).
        duration: Span,
    },
    /// `mean + amplitude * sin(2π t / period)` (a diurnal pattern, compressed).
    Sine {
        /// Mean events per second (> 0).
        mean: f64,
        /// Swing around the mean, events per second (`0 <= amplitude <= mean`).
        amplitude: f64,
        /// Length of one cycle (> 0).
        period: Span,
    },
}

impl Default for RateProfile {
    fn default() -> Self {
        Self::Constant {
            events_per_second: 20_000.0,
        }
    }
}

fn secs(n: Nanos) -> f64 {
    n as f64 / NANOS_PER_SEC as f64
}

fn check_rate(key: &str, value: f64) -> Result<(), ConfigError> {
    check_at_least(key, value, 0.0)?;
    if value > MAX_EVENTS_PER_SECOND {
        return Err(ConfigError::new(
            key,
            format!("{value} events per second is above the maximum {MAX_EVENTS_PER_SECOND:e} (one per nanosecond)"),
        ));
    }
    Ok(())
}

impl RateProfile {
    /// The rate (events per second) at processing time `t`.
    pub fn rate_at(&self, t: Nanos) -> f64 {
        match *self {
            Self::Constant { events_per_second } => events_per_second,
            Self::Step { before, after, at } => {
                if t < at.nanos() {
                    before
                } else {
                    after
                }
            }
            Self::Spike {
                base,
                peak,
                at,
                duration,
            } => {
                if t >= at.nanos() && t - at.nanos() < duration.nanos() {
                    peak
                } else {
                    base
                }
            }
            Self::Sine {
                mean,
                amplitude,
                period,
            } => mean + amplitude * (std::f64::consts::TAU * secs(t) / secs(period.nanos())).sin(),
        }
    }

    /// The rate the run starts from and mostly sits at (constant rate, `before`, `base`,
    /// `mean`); it sizes the generator's pool of concurrent sessions.
    pub fn base_rate(&self) -> f64 {
        match *self {
            Self::Constant { events_per_second } => events_per_second,
            Self::Step { before, .. } => before,
            Self::Spike { base, .. } => base,
            Self::Sine { mean, .. } => mean,
        }
    }

    /// The expected number of arrivals in `[0, t)`: the integrated rate `Λ(t)`.
    pub fn cumulative(&self, t: Nanos) -> f64 {
        match *self {
            Self::Sine {
                mean,
                amplitude,
                period,
            } => sine_cumulative(mean, amplitude, period, secs(t)),
            _ => {
                let (pieces, len) = self.pieces();
                let mut total = 0.0;
                for (i, &(start, rate)) in pieces[..len].iter().enumerate() {
                    let end = if i + 1 < len { pieces[i + 1].0 } else { f64::INFINITY };
                    let t = t as f64;
                    if t > start {
                        total += rate * (t.min(end) - start) / NANOS_PER_SEC as f64;
                    }
                }
                total
            }
        }
    }

    /// The arrival schedule: instants (ns since the start) in non-decreasing order, endless
    /// unless the rate drops to 0 for good.
    pub fn arrivals(&self) -> Arrivals {
        let (pieces, len) = self.pieces();
        let mut cum = [0.0; 3];
        for i in 1..len {
            cum[i] = cum[i - 1] + pieces[i - 1].1 * (pieces[i].0 - pieces[i - 1].0) / NANOS_PER_SEC as f64;
        }
        // The spacing of each piece, ns per event (only used where the rate is > 0).
        let spacing = pieces.map(|(_, rate)| NANOS_PER_SEC as f64 / rate);
        Arrivals {
            profile: *self,
            pieces,
            spacing,
            cum,
            len,
            piece: 0,
            k: 0,
            last: 0,
            last_secs: 0.0,
        }
    }

    /// The profile as up to three constant pieces `(start ns, events per second)`; a sine is
    /// returned as one piece at its mean (it is handled separately).
    fn pieces(&self) -> ([(f64, f64); 3], usize) {
        let mut p = [(0.0, 0.0); 3];
        let len = match *self {
            Self::Constant { events_per_second } => {
                p[0] = (0.0, events_per_second);
                1
            }
            Self::Step { before, after, at } => {
                p[0] = (0.0, before);
                p[1] = (at.nanos() as f64, after);
                2
            }
            Self::Spike {
                base,
                peak,
                at,
                duration,
            } => {
                p[0] = (0.0, base);
                p[1] = (at.nanos() as f64, peak);
                p[2] = (at.nanos() as f64 + duration.nanos() as f64, base);
                3
            }
            Self::Sine { mean, .. } => {
                p[0] = (0.0, mean);
                1
            }
        };
        (p, len)
    }

    /// Checks rates are finite, within `0..=1e9` and not all zero, and spans are positive where
    /// they must be. Keys are relative to the rate table.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Self::Constant { events_per_second } => {
                check_positive("events_per_second", events_per_second)?;
                check_rate("events_per_second", events_per_second)
            }
            Self::Step { before, after, .. } => {
                check_rate("before", before)?;
                check_rate("after", after)?;
                if before == 0.0 && after == 0.0 {
                    return Err(ConfigError::new(
                        "after",
                        "before and after are both 0; at least one must be > 0",
                    ));
                }
                Ok(())
            }
            Self::Spike {
                base, peak, duration, ..
            } => {
                check_rate("base", base)?;
                check_rate("peak", peak)?;
                check_nonzero_span("duration", duration)?;
                if base == 0.0 && peak == 0.0 {
                    return Err(ConfigError::new(
                        "peak",
                        "base and peak are both 0; at least one must be > 0",
                    ));
                }
                Ok(())
            }
            Self::Sine {
                mean,
                amplitude,
                period,
            } => {
                check_positive("mean", mean)?;
                check_rate("mean", mean)?;
                check_at_least("amplitude", amplitude, 0.0)?;
                if amplitude > mean {
                    return Err(ConfigError::new(
                        "amplitude",
                        format!("{amplitude} is larger than mean {mean}; must be between 0 and mean (a rate cannot go negative)"),
                    ));
                }
                if mean + amplitude > MAX_EVENTS_PER_SECOND {
                    return Err(ConfigError::new(
                        "amplitude",
                        format!("mean + amplitude exceeds the maximum {MAX_EVENTS_PER_SECOND:e} events per second"),
                    ));
                }
                check_nonzero_span("period", period)
            }
        }
    }
}

/// `Λ(t)` of a sine profile, `t` in seconds.
fn sine_cumulative(mean: f64, amplitude: f64, period: Span, t: f64) -> f64 {
    let omega = std::f64::consts::TAU / secs(period.nanos());
    mean * t + amplitude / omega * (1.0 - (omega * t).cos())
}

/// The arrival schedule of a [`RateProfile`] (see [`RateProfile::arrivals`]).
#[derive(Clone, Debug)]
pub struct Arrivals {
    profile: RateProfile,
    pieces: [(f64, f64); 3],
    /// `1e9 / rate` of each piece.
    spacing: [f64; 3],
    /// `Λ` at the start of each piece.
    cum: [f64; 3],
    len: usize,
    piece: usize,
    k: u64,
    last: Nanos,
    last_secs: f64,
}

impl Arrivals {
    #[inline(always)]
    fn next_piecewise(&mut self) -> Option<f64> {
        let k = self.k as f64;
        while self.piece + 1 < self.len && self.cum[self.piece + 1] <= k {
            self.piece += 1;
        }
        let (start, rate) = self.pieces[self.piece];
        if rate <= 0.0 {
            return None; // the last piece has rate 0: no more arrivals, ever
        }
        Some(start + (k - self.cum[self.piece]) * self.spacing[self.piece])
    }

    /// The next arrival of a sine profile, ns (kept out of line so that `next`, which the
    /// generator calls once per event, stays small enough to inline).
    #[inline(never)]
    fn next_sine_ns(&mut self, mean: f64, amplitude: f64, period: Span) -> f64 {
        let s = self.next_sine(mean, amplitude, period);
        self.last_secs = s;
        s * NANOS_PER_SEC as f64
    }

    /// Solves `Λ(t) = k` for a sine profile by safeguarded Newton iteration (seconds).
    fn next_sine(&mut self, mean: f64, amplitude: f64, period: Span) -> f64 {
        if self.k == 0 {
            return 0.0;
        }
        let k = self.k as f64;
        let lambda = |t: f64| sine_cumulative(mean, amplitude, period, t) - k;
        let omega = std::f64::consts::TAU / secs(period.nanos());
        let rate = |t: f64| mean + amplitude * (omega * t).sin();
        let mut lo = self.last_secs;
        let mut hi = lo + 1.0 / mean;
        while lambda(hi) < 0.0 {
            hi = lo + 2.0 * (hi - lo);
        }
        let mut x = (lo + 1.0 / rate(lo).max(mean * 1e-3)).min(hi);
        for _ in 0..100 {
            let f = lambda(x);
            if f > 0.0 {
                hi = x;
            } else {
                lo = x;
            }
            let d = rate(x);
            let mut next = if d > 0.0 { x - f / d } else { f64::NAN };
            if !(next > lo && next < hi) {
                next = 0.5 * (lo + hi);
            }
            let done = (next - x).abs() < 1e-11;
            x = next;
            if done || hi - lo < 1e-11 {
                break;
            }
        }
        x
    }
}

impl Iterator for Arrivals {
    type Item = Nanos;

    /// Inlined into the generator's loop, which calls it once per event.
    #[inline(always)]
    fn next(&mut self) -> Option<Nanos> {
        let t_ns = match self.profile {
            RateProfile::Sine {
                mean,
                amplitude,
                period,
            } => self.next_sine_ns(mean, amplitude, period),
            _ => self.next_piecewise()?,
        };
        if t_ns.is_nan() || t_ns >= u64::MAX as f64 {
            return None;
        }
        // t_ns >= 0: the saturating cast truncates, i.e. floors (no libm `floor` call).
        let t = (t_ns as Nanos).max(self.last);
        self.last = t;
        self.k += 1;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_before(p: RateProfile, end: Nanos) -> usize {
        p.arrivals().take_while(|&t| t < end).count()
    }

    #[test]
    fn constant_spacing_is_exact() {
        let p = RateProfile::Constant {
            events_per_second: 1000.0,
        };
        let first: Vec<_> = p.arrivals().take(3).collect();
        assert_eq!(first, vec![0, 1_000_000, 2_000_000]);
        assert_eq!(count_before(p, 10 * NANOS_PER_SEC), 10_000);
    }

    #[test]
    fn step_and_spike_take_effect_at_their_instant() {
        let s = RateProfile::Step {
            before: 100.0,
            after: 200.0,
            at: Span::from_ms(1000),
        };
        assert_eq!(count_before(s, NANOS_PER_SEC), 100);
        assert_eq!(count_before(s, 2 * NANOS_PER_SEC), 300);
        let z = RateProfile::Step {
            before: 0.0,
            after: 10.0,
            at: Span::from_ms(500),
        };
        assert_eq!(z.arrivals().next(), Some(500_000_000));
        let off = RateProfile::Step {
            before: 10.0,
            after: 0.0,
            at: Span::from_ms(1000),
        };
        assert_eq!(off.arrivals().count(), 10);
        let sp = RateProfile::Spike {
            base: 10.0,
            peak: 1000.0,
            at: Span::from_ms(1000),
            duration: Span::from_ms(1000),
        };
        assert_eq!(count_before(sp, 3 * NANOS_PER_SEC), 10 + 1000 + 10);
    }

    #[test]
    fn sine_follows_its_integral_even_through_a_zero_trough() {
        let p = RateProfile::Sine {
            mean: 1000.0,
            amplitude: 1000.0,
            period: Span::from_ms(4000),
        };
        let ts: Vec<_> = p.arrivals().take_while(|&t| t < 8 * NANOS_PER_SEC).collect();
        assert!((ts.len() as f64 - 8000.0).abs() <= 1.0, "{}", ts.len());
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        let first_second = ts.iter().filter(|&&t| t < NANOS_PER_SEC).count() as f64;
        assert!((first_second - p.cumulative(NANOS_PER_SEC)).abs() <= 1.0);
    }

    #[test]
    fn rate_at_and_validation() {
        let sp = RateProfile::Spike {
            base: 1.0,
            peak: 5.0,
            at: Span::from_ms(10),
            duration: Span::from_ms(10),
        };
        assert_eq!(sp.rate_at(9_999_999), 1.0);
        assert_eq!(sp.rate_at(10_000_000), 5.0);
        assert_eq!(sp.rate_at(20_000_000), 1.0);
        let bad = RateProfile::Constant { events_per_second: 0.0 };
        assert_eq!(bad.validate().unwrap_err().key, "events_per_second");
        let bad = RateProfile::Sine {
            mean: 10.0,
            amplitude: 11.0,
            period: Span::from_ms(10),
        };
        assert_eq!(bad.validate().unwrap_err().key, "amplitude");
        let bad = RateProfile::Sine {
            mean: 10.0,
            amplitude: 1.0,
            period: Span(0),
        };
        assert_eq!(bad.validate().unwrap_err().key, "period");
        let bad = RateProfile::Step {
            before: f64::NAN,
            after: 1.0,
            at: Span(0),
        };
        assert_eq!(bad.validate().unwrap_err().key, "before");
    }
}
