//! The recommendation over one set of runs: with an SLO, the best configuration that meets it
//! (or the closest one); without, the lowest p99.
//!
//! Why a room of its own: these are the rules the module header of [`super`] states, and the
//! sweep decision reuses their ordering ([`better`]). Invariant: candidates are ordered stable
//! first, then by headroom on the tightest bound, then by throughput.

use super::super::Config;
use super::Decision;
use crate::decision::{human_duration, percent, Slo, Verdict};
use crate::report::words::keeping_up_rank;
use crate::summary::Stability;

/// `, fell behind ...` for a run whose batches overran their trigger or that could not keep
/// up; empty otherwise.
fn behind_in_words(c: &Config<'_>) -> String {
    let behind = c.run.counts.falling_behind;
    match c.run.stability {
        Some(Stability::CannotKeepUp) => ", could not keep up with its input".into(),
        Some(Stability::BehindTrigger) => {
            format!(", fell behind its trigger in {behind} batches but kept up with its input")
        }
        _ if behind > 0 => format!(", fell behind in {behind} batches"),
        _ => String::new(),
    }
}

/// Orders candidates for the recommendation: those that kept up first (never behind their
/// trigger, then behind it but keeping up with the input), then headroom, then throughput.
pub(super) fn better(a: &Config<'_>, va: &Verdict, b: &Config<'_>, vb: &Verdict) -> std::cmp::Ordering {
    keeping_up_rank(a.run)
        .cmp(&keeping_up_rank(b.run))
        .then(va.worst_margin().total_cmp(&vb.worst_margin()))
        .then(a.run.throughput_eps.total_cmp(&b.run.throughput_eps))
}

fn checks_in_words(v: &Verdict) -> String {
    v.checks.iter().map(|c| c.describe()).collect::<Vec<_>>().join("; ")
}

pub(super) fn unmeasured_note(configs: &[Config<'_>], verdicts: &[Verdict]) -> Option<String> {
    let slo_bounds = verdicts.first()?.checks.len();
    let unmeasured: Vec<String> = (0..slo_bounds)
        .filter(|&b| verdicts.iter().all(|v| v.checks[b].value.is_none()))
        .map(|b| verdicts[0].checks[b].bound.describe())
        .collect();
    (!unmeasured.is_empty() && !configs.is_empty()).then(|| {
        format!(
            "The bound {} could not be checked: no configuration recorded a failure and recovery (inject failures in the scenario to measure it); it does not enter this recommendation.",
            unmeasured.join(", ")
        )
    })
}

pub(super) fn decide_with_slo(slo: &Slo, configs: &[Config<'_>], verdicts: &[Verdict]) -> Decision {
    let mut reasons = Vec::new();
    let meeting: Vec<usize> = (0..configs.len()).filter(|&i| verdicts[i].meets()).collect();
    let pick = |set: &[usize]| {
        set.iter()
            .copied()
            .max_by(|&a, &b| better(&configs[a], &verdicts[a], &configs[b], &verdicts[b]))
    };
    if let Some(best) = pick(&meeting) {
        let c = &configs[best];
        let recommendation = format!(
            "Run **{}** ({}). It meets the SLO ({}) with {} headroom on its tightest bound.",
            c.name,
            c.run.model,
            slo.describe(),
            percent(verdicts[best].worst_margin())
        );
        reasons.push(format!(
            "{} meets every bound: {}.",
            c.name,
            checks_in_words(&verdicts[best])
        ));
        if meeting.len() == 1 {
            reasons.push(format!(
                "It is the only one of the {} configurations that meets the SLO.",
                configs.len()
            ));
        } else {
            reasons.push(format!(
                "{} of {} configurations meet the SLO; this one {}.",
                meeting.len(),
                configs.len(),
                if c.run.counts.falling_behind == 0 && meeting.iter().any(|&i| configs[i].run.counts.falling_behind > 0)
                {
                    "never fell behind and leaves the most headroom among those that did not"
                } else {
                    "leaves the most headroom on its tightest bound"
                }
            ));
        }
        for &i in meeting.iter().filter(|&&i| i != best) {
            reasons.push(format!(
                "{} also meets it: {}.",
                configs[i].name,
                checks_in_words(&verdicts[i])
            ));
        }
        for i in (0..configs.len()).filter(|i| !meeting.contains(i)) {
            reasons.push(format!(
                "{} does not: {}.",
                configs[i].name,
                verdicts[i].violations().join("; ")
            ));
        }
        Decision {
            recommendation,
            reasons,
            chosen: Some(best),
        }
    } else {
        let closest =
            (0..configs.len()).max_by(|&a, &b| verdicts[a].worst_margin().total_cmp(&verdicts[b].worst_margin()));
        let recommendation = match closest {
            Some(i) => format!(
                "**No configuration meets the SLO** ({}). The closest is **{}** ({}): {}. Change the design (see the consequences) or relax the SLO.",
                slo.describe(),
                configs[i].name,
                configs[i].run.model,
                verdicts[i].violations().join("; ")
            ),
            None => "No configuration ran, so none can be recommended.".into(),
        };
        for (i, c) in configs.iter().enumerate() {
            reasons.push(format!(
                "{} misses it: {}.",
                c.name,
                verdicts[i].violations().join("; ")
            ));
        }
        Decision {
            recommendation,
            reasons,
            chosen: closest,
        }
    }
}

pub(super) fn decide_without_slo(configs: &[Config<'_>]) -> Decision {
    let mut order: Vec<usize> = (0..configs.len()).collect();
    order.sort_by(|&a, &b| {
        configs[a]
            .run
            .p99_for_ranking()
            .total_cmp(&configs[b].run.p99_for_ranking())
    });
    let chosen = order.first().copied().filter(|&i| configs[i].run.has_latency());
    let recommendation = match chosen {
        Some(i) => format!(
            "No SLO was stated (the scenario has no `[slo]` table), so this recommends the lowest p99 latency: **{}** ({}), p99 {}. State an `[slo]` (for example `p99 = \"2s\"`) to get a recommendation for your bound.",
            configs[i].name,
            configs[i].run.model,
            human_duration(configs[i].run.latency_ms.p99)
        ),
        None if configs.is_empty() => "No configuration ran, so none can be recommended.".into(),
        None => "No configuration delivered any output, so none can be recommended: see each run's notes for why.".into(),
    };
    let reasons = order
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            let c = &configs[i];
            if !c.run.has_latency() {
                return format!("{}: no output, so no latency (see its notes).", c.name);
            }
            format!(
                "{} {}: p99 {}, p50 {}, {:.0} events/s{}.",
                if rank == 0 { "Lowest p99:" } else { "Then" },
                c.name,
                human_duration(c.run.latency_ms.p99),
                human_duration(c.run.latency_ms.p50),
                c.run.throughput_eps,
                behind_in_words(c)
            )
        })
        .collect();
    Decision {
        recommendation,
        reasons,
        chosen,
    }
}
