//! The decision record: context, options, measured results against the SLO, a recommendation
//! computed from them, its reasons and its consequences.
//!
//! Rules, in order:
//! * With an SLO, a configuration qualifies when it meets every bound measured on it. Among
//!   those, configurations that never fell behind come first, then the largest headroom on the
//!   tightest bound, then the higher throughput. With none qualifying, the report says so and
//!   names the closest: the smallest relative violation of its worst bound.
//! * Without an SLO, the lowest p99 wins, and the report says no SLO was stated.
//! * Over a sweep, each configuration's qualifying values of the swept key are stated ("up to
//!   N", "from N"), values where only one configuration qualifies are called out, and the
//!   recommended configuration is the one qualifying at the most values (then the largest mean
//!   headroom).
//!
//! Why it is split: the record's sections are built here, in order (context, options, measured
//! results, recommendation, reasons, consequences); the rules that choose a configuration live
//! in [`recommendation`] (one set of runs) and [`sweep`] (over a swept key, with its
//! [`axis`]), and what choosing it implies in [`consequences`]. Invariant: every sentence is
//! computed from the results directories; the golden report pins the wording.

mod axis;
mod consequences;
mod recommendation;
mod sweep;

pub(crate) use axis::SweepAxis;

use super::doc::Block;
use super::{latency_cell, words, Config, Point};
use crate::decision::{percent, Slo, Verdict};

/// The decision: which configuration, and the words around it.
pub(super) struct Decision {
    /// The recommendation paragraph.
    pub(super) recommendation: String,
    /// The reasons, one list item each.
    pub(super) reasons: Vec<String>,
    /// The index into the configurations of the one recommended, if any.
    pub(super) chosen: Option<usize>,
}

/// The decision record, and the parts of it the report's first screen leads with.
pub(crate) struct Record {
    /// The whole record's blocks, in order.
    pub(crate) blocks: Vec<Block>,
    /// The question the record answers (its context sentence).
    pub(crate) question: String,
    /// The recommendation, with its reason.
    pub(crate) recommendation: String,
    /// The table that shows the recommendation against the SLO in the fewest rows: per value
    /// of a swept key, or per configuration.
    pub(crate) summary_table: Option<Block>,
}

/// Without an SLO, the runs by p99: with throughput and falling-behind counts in the record,
/// in the fewest columns (`full` false) for the report's first screen.
fn p99_by_configuration(configs: &[Config<'_>], full: bool) -> Block {
    let mut order: Vec<&Config<'_>> = configs.iter().collect();
    order.sort_by(|a, b| a.run.p99_for_ranking().total_cmp(&b.run.p99_for_ranking()));
    let mut header = vec!["configuration", "p99 (ms)", "p50 (ms)"];
    if full {
        header.extend(["throughput (events/s)", "falling behind"]);
    }
    header.push("keeping up");
    Block::Table {
        header: header.iter().map(|s| s.to_string()).collect(),
        rows: order
            .iter()
            .map(|c| {
                let mut row = vec![
                    c.name.clone(),
                    latency_cell(c.run, c.run.latency_ms.p99),
                    latency_cell(c.run, c.run.latency_ms.p50),
                ];
                if full {
                    row.extend([
                        format!("{:.0}", c.run.throughput_eps),
                        c.run.counts.falling_behind.to_string(),
                    ]);
                }
                row.push(words::keeping_up(c.run).to_string());
                row
            })
            .collect(),
    }
}

/// The decision record.
pub(crate) fn decision_record(
    points: &[Point],
    configs: &[Config<'_>],
    slo: Option<&Slo>,
    sweep: Option<&SweepAxis>,
) -> Record {
    let first = &points[0].dir;
    let mut blocks = vec![
        Block::Heading(2, "Decision record".into()),
        Block::Heading(3, "Context".into()),
    ];
    let rate = words::rate_in_words(&first.scenario)
        .map(|r| format!(" at {r}"))
        .unwrap_or_default();
    let question = format!(
        "Which execution model and settings to run scenario **{}**{rate} with. {}",
        first.summary.scenario,
        match slo {
            Some(s) => format!("The requirement is the scenario's SLO: {}.", s.describe()),
            None => "The scenario states no SLO.".into(),
        }
    );
    blocks.push(Block::Paragraph(question.clone()));

    blocks.push(Block::Heading(3, "Options".into()));
    let mut options: Vec<String> = first.summary.runs.iter().map(words::engine_line).collect();
    if let Some(axis) = sweep {
        options.push(format!("Each at `{}` = {}.", axis.key, axis.values.join(", ")));
    }
    blocks.push(Block::List(options));

    blocks.push(Block::Heading(3, "Measured results".into()));
    let verdicts: Option<Vec<Verdict>> = slo.map(|s| configs.iter().map(|c| Verdict::of(s, c.run)).collect());
    match (&verdicts, slo) {
        (Some(verdicts), Some(slo)) => {
            let mut header = vec!["configuration".to_string()];
            header.extend(slo.bounds.iter().map(|b| b.describe()));
            header.extend(["meets the SLO".to_string(), "tightest margin".to_string()]);
            let rows = configs
                .iter()
                .zip(verdicts)
                .map(|(c, v)| {
                    let mut row = vec![c.name.clone()];
                    row.extend(v.checks.iter().map(|ch| match (ch.value, ch.meets()) {
                        (Some(value), Some(ok)) => {
                            format!("{} {}", ch.bound.format_value(value), if ok { "✓" } else { "✗" })
                        }
                        _ => "not measured".into(),
                    }));
                    row.push(if v.meets() { "yes".into() } else { "no".into() });
                    let m = v.worst_margin();
                    row.push(if m.is_finite() {
                        format!("{}{}", if m >= 0.0 { "+" } else { "−" }, percent(m.abs()))
                    } else {
                        "-".into()
                    });
                    row
                })
                .collect();
            blocks.push(Block::Table { header, rows });
            blocks.push(Block::Paragraph(
                "A margin is relative to the bound: + is headroom left, − is how far the bound is exceeded.".into(),
            ));
            if let Some(note) = recommendation::unmeasured_note(configs, verdicts) {
                blocks.push(Block::Paragraph(note));
            }
        }
        _ => blocks.push(p99_by_configuration(configs, true)),
    }

    let decision = match (sweep, slo, &verdicts) {
        (Some(axis), _, v) => sweep::decide_sweep(axis, points, configs, v.as_deref(), &mut blocks),
        (None, Some(slo), Some(v)) => recommendation::decide_with_slo(slo, configs, v),
        _ => recommendation::decide_without_slo(configs),
    };
    let summary_table = match (sweep, slo) {
        (Some(axis), _) => Some(sweep::p99_by_value(axis, points, configs, verdicts.as_deref())),
        (None, Some(_)) => blocks.iter().rev().find(|b| matches!(b, Block::Table { .. })).cloned(),
        (None, None) => Some(p99_by_configuration(configs, false)),
    };
    let recommendation = decision.recommendation.clone();
    blocks.push(Block::Heading(3, "Recommendation".into()));
    blocks.push(Block::Paragraph(decision.recommendation));
    blocks.push(Block::Heading(3, "Reasons".into()));
    blocks.push(Block::List(decision.reasons));
    if let Some(i) = decision.chosen {
        blocks.push(Block::Heading(3, "Consequences".into()));
        blocks.push(Block::Paragraph(
            match sweep.and_then(|a| a.value_at(&points[configs[i].point]).map(|v| (a, v))) {
                Some((axis, value)) => format!(
                    "Of choosing {} (figures at `{}` = {value}, where it has the most headroom):",
                    configs[i].run.name, axis.key
                ),
                None => format!("Of choosing {}:", configs[i].name),
            },
        ));
        blocks.push(Block::List(consequences::consequences(
            &configs[i],
            &points[configs[i].point],
        )));
    }
    Record {
        blocks,
        question,
        recommendation,
        summary_table,
    }
}
