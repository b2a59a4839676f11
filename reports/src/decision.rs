//! The decision record's arithmetic: a scenario's service-level objective, whether each
//! engine configuration meets each of its bounds, and by how much.
//!
//! A bound's **margin** is relative: for an upper bound (p99, p50, recovery) it is
//! `(limit − value) / limit`, for the throughput floor `(value − limit) / limit`. A margin
//! ≥ 0 meets the bound and is the headroom left; a negative margin is the relative violation.
//! A configuration meets the SLO when it meets every bound that could be measured on it; a
//! bound that could not be measured (recovery without an injected failure) is reported as
//! such and does not decide anything.

use std::path::Path;

use crate::error::{Error, Result};
use crate::results_dir::parse_duration_ms;
use crate::summary::RunSummary;

/// One bound of a service-level objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// p99 latency at most this many ms.
    P99(f64),
    /// p50 latency at most this many ms.
    P50(f64),
    /// Recovery after a failure (downtime plus catch-up) at most this many ms.
    Recovery(f64),
    /// Throughput at least this many events/s.
    MinThroughput(f64),
}

/// The scenario's `[slo]`: the bounds it states, in the order p99, p50, recovery, throughput.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The stated bounds (at least one).
    pub bounds: Vec<Bound>,
}

impl Slo {
    /// Reads the `[slo]` table of a scenario (`path` names the file in errors); `None` when the
    /// scenario states no SLO.
    pub fn from_scenario(scenario: &toml::Table, path: &Path) -> Result<Option<Slo>> {
        let Some(slo) = scenario.get("slo") else {
            return Ok(None);
        };
        let bad = |key: &str, allowed: &str| Error::Input {
            path: path.to_path_buf(),
            message: format!("key `slo.{key}`: {allowed}"),
        };
        let table = slo.as_table().ok_or_else(|| bad("", "must be a table"))?;
        let duration = |key: &str| -> Result<Option<f64>> {
            table
                .get(key)
                .map(|v| {
                    v.as_str()
                        .and_then(parse_duration_ms)
                        .ok_or_else(|| bad(key, "must be a duration such as \"2s\" or \"500ms\""))
                })
                .transpose()
        };
        let mut bounds = Vec::new();
        if let Some(ms) = duration("p99")? {
            bounds.push(Bound::P99(ms));
        }
        if let Some(ms) = duration("p50")? {
            bounds.push(Bound::P50(ms));
        }
        if let Some(ms) = duration("recovery")? {
            bounds.push(Bound::Recovery(ms));
        }
        if let Some(v) = table.get("min_throughput_eps") {
            let eps = v
                .as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .ok_or_else(|| bad("min_throughput_eps", "must be a number of events per second"))?;
            bounds.push(Bound::MinThroughput(eps));
        }
        Ok((!bounds.is_empty()).then_some(Slo { bounds }))
    }

    /// The SLO in words: "p99 ≤ 2 s, recovery ≤ 30 s".
    pub fn describe(&self) -> String {
        self.bounds.iter().map(Bound::describe).collect::<Vec<_>>().join(", ")
    }
}

/// A duration in ms, the way people say it: `850 ms`, `2 s`, `1.5 s`, `0.25 ms`.
pub fn human_duration(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", trim(ms / 1000.0, 3))
    } else if ms >= 1.0 {
        format!("{} ms", trim(ms, 1))
    } else {
        format!("{} ms", trim(ms, 3))
    }
}

fn trim(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

impl Bound {
    /// The bound in words: `p99 ≤ 2 s`, `throughput ≥ 50000 events/s`.
    pub fn describe(&self) -> String {
        match *self {
            Bound::P99(ms) => format!("p99 ≤ {}", human_duration(ms)),
            Bound::P50(ms) => format!("p50 ≤ {}", human_duration(ms)),
            Bound::Recovery(ms) => format!("recovery ≤ {}", human_duration(ms)),
            Bound::MinThroughput(eps) => format!("throughput ≥ {eps:.0} events/s"),
        }
    }

    /// What the bound limits, for table headers.
    pub fn quantity(&self) -> &'static str {
        match self {
            Bound::P99(_) => "p99",
            Bound::P50(_) => "p50",
            Bound::Recovery(_) => "recovery",
            Bound::MinThroughput(_) => "throughput",
        }
    }

    fn limit(&self) -> f64 {
        match *self {
            Bound::P99(x) | Bound::P50(x) | Bound::Recovery(x) | Bound::MinThroughput(x) => x,
        }
    }

    /// The quantity measured on a run; `None` when it was not measured (recovery without a
    /// failure). A failure that never recovered is an infinite recovery time.
    pub fn measure(&self, run: &RunSummary) -> Option<f64> {
        match self {
            // Over zero outputs there is no latency to hold against the bound.
            Bound::P99(_) => run.has_latency().then_some(run.latency_ms.p99),
            Bound::P50(_) => run.has_latency().then_some(run.latency_ms.p50),
            Bound::MinThroughput(_) => Some(run.throughput_eps),
            Bound::Recovery(_) => recovery_ms(run),
        }
    }

    /// The relative margin of `value` against the bound (≥ 0: met, with that headroom).
    pub fn margin(&self, value: f64) -> f64 {
        let limit = self.limit();
        match self {
            Bound::MinThroughput(_) => (value - limit) / limit,
            _ if value.is_infinite() => f64::NEG_INFINITY,
            _ => (limit - value) / limit,
        }
    }

    /// A measured value in the bound's unit: `1.2 s`, `48000 events/s`, `never`.
    pub fn format_value(&self, value: f64) -> String {
        match self {
            Bound::MinThroughput(_) => format!("{value:.0} events/s"),
            _ if value.is_infinite() => "never recovered".to_string(),
            _ => human_duration(value),
        }
    }
}

/// A run's recovery time: `recovery.catch_up_ms` (measured from the failure, so it includes the
/// downtime) when reported, else the downtime, else the longest `recovered_ms − at_ms` over its
/// failures (infinite if one never recovered); `None` without failures.
pub fn recovery_ms(run: &RunSummary) -> Option<f64> {
    if let Some(r) = &run.recovery {
        if let Some(t) = r.catch_up_ms.or(r.downtime_ms) {
            return Some(t);
        }
    }
    run.failures
        .iter()
        .map(|f| f.recovered_ms.map_or(f64::INFINITY, |end| end - f.at_ms))
        .reduce(f64::max)
}

/// One bound checked on one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    /// The bound.
    pub bound: Bound,
    /// The measured value, if measured.
    pub value: Option<f64>,
    /// Its margin, if measured.
    pub margin: Option<f64>,
}

impl Check {
    /// Whether the bound is met; `None` when it could not be measured.
    pub fn meets(&self) -> Option<bool> {
        self.margin.map(|m| m >= 0.0)
    }

    /// The check in words: `p99 1.9 s ≤ 2 s (4% headroom)`, `p99 2.3 s > 2 s (15% over)`.
    pub fn describe(&self) -> String {
        let (Some(value), Some(margin)) = (self.value, self.margin) else {
            return format!("{}: not measured", self.bound.describe());
        };
        let quantity = self.bound.quantity();
        let shown = self.bound.format_value(value);
        let limit = self.bound.format_value(self.bound.limit());
        let (op, bad_op) = match self.bound {
            Bound::MinThroughput(_) => ("≥", "<"),
            _ => ("≤", ">"),
        };
        if margin >= 0.0 {
            format!("{quantity} {shown} {op} {limit} ({} headroom)", percent(margin))
        } else if margin.is_infinite() {
            format!("{quantity}: {shown} (bound {op} {limit})")
        } else {
            format!("{quantity} {shown} {bad_op} {limit} ({} over)", percent(-margin))
        }
    }
}

/// A ratio as a percentage with no more precision than it deserves: `4%`, `0.5%`, `120%`.
pub fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p.abs() >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{}%", trim(p, 1))
    }
}

/// Every bound of `slo` checked on one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// One check per bound, in the SLO's order.
    pub checks: Vec<Check>,
}

impl Verdict {
    /// Checks `run` against every bound of `slo`.
    pub fn of(slo: &Slo, run: &RunSummary) -> Self {
        let checks = slo
            .bounds
            .iter()
            .map(|&bound| {
                let value = bound.measure(run);
                Check {
                    bound,
                    value,
                    margin: value.map(|v| bound.margin(v)),
                }
            })
            .collect();
        Self { checks }
    }

    /// Whether every measured bound is met (and at least one was measured); a latency bound
    /// that could not be measured (no outputs) is not met.
    pub fn meets(&self) -> bool {
        let measured: Vec<bool> = self.checks.iter().filter_map(Check::meets).collect();
        let latency_unmeasured = self
            .checks
            .iter()
            .any(|c| c.value.is_none() && matches!(c.bound, Bound::P99(_) | Bound::P50(_)));
        !latency_unmeasured && !measured.is_empty() && measured.iter().all(|&m| m)
    }

    /// The smallest margin over the measured bounds: the headroom when the SLO is met, minus
    /// the largest relative violation when it is not. `-inf` when nothing was measured.
    pub fn worst_margin(&self) -> f64 {
        self.checks
            .iter()
            .filter_map(|c| c.margin)
            .reduce(f64::min)
            .unwrap_or(f64::NEG_INFINITY)
    }

    /// The bounds that were not met, in words.
    pub fn violations(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.meets() == Some(false))
            .map(Check::describe)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{Counts, FailureMark, LatencySummary};

    fn run(p99: f64, throughput: f64) -> RunSummary {
        RunSummary {
            name: "r".into(),
            model: "per-record".into(),
            config: serde_json::Value::Null,
            latency_ms: LatencySummary {
                p99,
                p50: p99 / 2.0,
                count: 100,
                ..LatencySummary::default()
            },
            event_time_latency_ms: None,
            components_ms: Default::default(),
            throughput_eps: throughput,
            throughput_runs_eps: Vec::new(),
            resources: Default::default(),
            counts: Counts {
                outputs: 100,
                ..Counts::default()
            },
            stability: None,
            notes: vec![],
            failures: Vec::new(),
            recovery: None,
        }
    }

    fn slo(text: &str) -> Option<Slo> {
        Slo::from_scenario(&text.parse().unwrap(), Path::new("s.toml")).unwrap()
    }

    #[test]
    fn slo_reads_every_bound_and_rejects_bad_values() {
        let s = slo("[slo]\np99 = \"2s\"\nrecovery = \"30s\"\nmin_throughput_eps = 5000\n").unwrap();
        assert_eq!(
            s.bounds,
            [
                Bound::P99(2000.0),
                Bound::Recovery(30000.0),
                Bound::MinThroughput(5000.0)
            ]
        );
        assert_eq!(s.describe(), "p99 ≤ 2 s, recovery ≤ 30 s, throughput ≥ 5000 events/s");
        assert!(slo("name = \"x\"").is_none());
        let err = Slo::from_scenario(&"[slo]\np99 = 3".parse().unwrap(), Path::new("s.toml")).unwrap_err();
        assert!(err.to_string().contains("slo.p99"), "{err}");
    }

    #[test]
    fn margins_are_relative_headroom_or_violation() {
        let s = slo("[slo]\np99 = \"2s\"\nmin_throughput_eps = 1000").unwrap();
        let good = Verdict::of(&s, &run(1500.0, 2000.0));
        assert!(good.meets());
        assert_eq!(good.worst_margin(), 0.25);
        let bad = Verdict::of(&s, &run(2300.0, 2000.0));
        assert!(!bad.meets());
        assert!((bad.worst_margin() + 0.15).abs() < 1e-12);
        assert_eq!(bad.violations(), ["p99 2.3 s > 2 s (15% over)"]);
    }

    #[test]
    fn a_run_without_outputs_never_meets_a_latency_bound() {
        let s = slo("[slo]\np99 = \"2s\"\nmin_throughput_eps = 1000").unwrap();
        let mut empty = run(0.0, 2000.0);
        empty.counts.outputs = 0;
        empty.latency_ms.count = 0;
        let v = Verdict::of(&s, &empty);
        assert_eq!(v.checks[0].value, None, "no p99 over zero outputs");
        assert!(!v.meets());
    }

    #[test]
    fn recovery_is_unmeasured_without_failures_and_infinite_when_never_recovered() {
        let s = slo("[slo]\nrecovery = \"30s\"").unwrap();
        let none = Verdict::of(&s, &run(1.0, 1.0));
        assert_eq!(none.checks[0].meets(), None);
        assert!(!none.meets());
        let never = RunSummary {
            failures: vec![FailureMark {
                kind: "crash".into(),
                at_ms: 1000.0,
                recovered_ms: None,
            }],
            recovery: None,
            ..run(1.0, 1.0)
        };
        let v = Verdict::of(&s, &never);
        assert_eq!(v.checks[0].meets(), Some(false));
        assert_eq!(v.worst_margin(), f64::NEG_INFINITY);
    }
}
