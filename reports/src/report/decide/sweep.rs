//! The decision over a sweep: at which values of the swept key each configuration qualifies,
//! the values where only one does, and which configuration to run.
//!
//! Why a room of its own: a sweep asks "up to which rate, from which interval", a question a
//! single set of runs does not. Invariants: the recommended configuration is the one that
//! qualifies at the most values (then the largest mean headroom); without an SLO, the one with
//! the lowest p99 at the most values.

use std::collections::BTreeMap;

use super::super::doc::Block;
use super::super::{ms, Config, Point};
use super::recommendation::better;
use super::{Decision, SweepAxis};
use crate::decision::{human_duration, percent, Verdict};

/// Over a sweep: where each series qualifies, and which series to run.
pub(super) fn decide_sweep(
    axis: &SweepAxis,
    points: &[Point],
    configs: &[Config<'_>],
    verdicts: Option<&[Verdict]>,
    blocks: &mut Vec<Block>,
) -> Decision {
    let series = axis.series(points, configs);
    let value_of = |i: usize| axis.value_at(&points[configs[i].point]).cloned().unwrap_or_default();
    let key = &axis.key;
    let mut reasons = Vec::new();
    let Some(verdicts) = verdicts else {
        // No SLO: the lowest p99 at each value, and overall the series that wins most often.
        let mut wins: BTreeMap<&String, usize> = BTreeMap::new();
        let mut rows = Vec::new();
        for value in &axis.values {
            let at: Vec<usize> = (0..configs.len()).filter(|&i| value_of(i) == *value).collect();
            if let Some(&best) = at.iter().min_by(|&&a, &&b| {
                configs[a]
                    .run
                    .p99_for_ranking()
                    .total_cmp(&configs[b].run.p99_for_ranking())
            }) {
                let name = series
                    .iter()
                    .find(|(_, m)| m.contains(&best))
                    .map(|(n, _)| n)
                    .unwrap_or(&configs[best].name);
                *wins.entry(name).or_default() += 1;
                rows.push(vec![value.clone(), name.clone(), ms(configs[best].run.latency_ms.p99)]);
                reasons.push(format!(
                    "At `{key}` = {value} the lowest p99 is {}'s, {}.",
                    name,
                    human_duration(configs[best].run.latency_ms.p99)
                ));
            }
        }
        blocks.push(Block::Table {
            header: vec![format!("`{key}`"), "lowest p99".into(), "its p99 (ms)".into()],
            rows,
        });
        let top = wins.iter().max_by_key(|(_, &n)| n).map(|(n, &c)| ((*n).clone(), c));
        let recommendation = match top {
            Some((ref name, count)) => format!(
                "No SLO was stated (the scenario has no `[slo]` table), so this recommends the lowest p99: **{name}** has it at {count} of {} tested values of `{key}`.",
                axis.values.len()
            ),
            None => "No configuration ran, so none can be recommended.".into(),
        };
        let chosen = top.and_then(|(name, _)| {
            series
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, m)| m.first().copied())
        });
        return Decision {
            recommendation,
            reasons,
            chosen,
        };
    };

    let mut per_value_rows = Vec::new();
    for value in &axis.values {
        let at: Vec<usize> = (0..configs.len()).filter(|&i| value_of(i) == *value).collect();
        let meeting: Vec<usize> = at.iter().copied().filter(|&i| verdicts[i].meets()).collect();
        let name_of = |i: usize| {
            series
                .iter()
                .find(|(_, m)| m.contains(&i))
                .map_or(configs[i].name.clone(), |(n, _)| n.clone())
        };
        let best = meeting
            .iter()
            .copied()
            .max_by(|&a, &b| better(&configs[a], &verdicts[a], &configs[b], &verdicts[b]));
        let closest = at
            .iter()
            .copied()
            .max_by(|&a, &b| verdicts[a].worst_margin().total_cmp(&verdicts[b].worst_margin()));
        if meeting.len() == 1 && at.len() > 1 {
            reasons.push(format!(
                "At `{key}` = {value} only {} meets the SLO.",
                name_of(meeting[0])
            ));
        }
        if meeting.is_empty() {
            if let Some(c) = closest {
                reasons.push(format!(
                    "At `{key}` = {value} no configuration meets the SLO; the closest is {} ({}).",
                    name_of(c),
                    verdicts[c].violations().join("; ")
                ));
            }
        }
        per_value_rows.push(vec![
            value.clone(),
            if meeting.is_empty() {
                "none".into()
            } else {
                meeting.iter().map(|&i| name_of(i)).collect::<Vec<_>>().join(", ")
            },
            best.map_or_else(
                || closest.map_or("-".into(), |c| format!("none; closest {}", name_of(c))),
                |b| format!("{} ({} headroom)", name_of(b), percent(verdicts[b].worst_margin())),
            ),
        ]);
    }
    blocks.push(Block::Table {
        header: vec![
            format!("`{key}`"),
            "meets the SLO".into(),
            "recommended at this value".into(),
        ],
        rows: per_value_rows,
    });

    // Per series: where it qualifies, as a range when it can be said as one.
    let mut scored: Vec<(usize, f64, &String, &Vec<usize>)> = Vec::new();
    for (name, members) in &series {
        let ok: Vec<bool> = members.iter().map(|&i| verdicts[i].meets()).collect();
        let values: Vec<String> = members.iter().map(|&i| value_of(i)).collect();
        let count = ok.iter().filter(|&&m| m).count();
        let first_fail = ok.iter().position(|&m| !m);
        let last_fail = ok.iter().rposition(|&m| !m);
        let fail_words = |i: usize| verdicts[members[i]].violations().join("; ");
        let sentence = if count == 0 {
            format!(
                "{name} meets the SLO at no tested value of `{key}` (at {}: {}).",
                values[0],
                fail_words(0)
            )
        } else if count == ok.len() {
            format!(
                "{name} meets the SLO at every tested value of `{key}` ({} to {}).",
                values[0],
                values[values.len() - 1]
            )
        } else if axis.numeric && ok[..count].iter().all(|&m| m) {
            let f = first_fail.unwrap_or(count);
            format!(
                "{name} meets the SLO up to `{key}` = {}; at {} it does not ({}).",
                values[f - 1],
                values[f],
                fail_words(f)
            )
        } else if axis.numeric && ok[ok.len() - count..].iter().all(|&m| m) {
            let l = last_fail.unwrap_or(0);
            format!(
                "{name} meets the SLO from `{key}` = {}; at {} it does not ({}).",
                values[l + 1],
                values[l],
                fail_words(l)
            )
        } else {
            let at: Vec<&String> = values.iter().zip(&ok).filter(|(_, &m)| m).map(|(v, _)| v).collect();
            format!(
                "{name} meets the SLO at `{key}` = {}.",
                at.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        reasons.insert(0, sentence);
        let headroom: Vec<f64> = members
            .iter()
            .filter(|&&i| verdicts[i].meets())
            .map(|&i| verdicts[i].worst_margin())
            .collect();
        let mean = if headroom.is_empty() {
            f64::NEG_INFINITY
        } else {
            headroom.iter().sum::<f64>() / headroom.len() as f64
        };
        scored.push((count, mean, name, members));
    }
    // Keep the per-series sentences in series order.
    let n = series.len();
    reasons[..n].reverse();

    let top = scored
        .iter()
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .filter(|s| s.0 > 0);
    match top {
        Some(&(count, _, name, members)) => {
            let best_member = members
                .iter()
                .copied()
                .filter(|&i| verdicts[i].meets())
                .max_by(|&a, &b| verdicts[a].worst_margin().total_cmp(&verdicts[b].worst_margin()));
            Decision {
                recommendation: format!(
                    "Run **{name}**: it meets the SLO at {count} of {} tested values of `{key}`, more than any other configuration. Pick the value of `{key}` for your operating point from the table of values.",
                    axis.values.len()
                ),
                reasons,
                chosen: best_member,
            }
        }
        None => {
            let closest =
                (0..configs.len()).max_by(|&a, &b| verdicts[a].worst_margin().total_cmp(&verdicts[b].worst_margin()));
            Decision {
                recommendation: match closest {
                    Some(c) => format!(
                        "**No configuration meets the SLO at any tested value of `{key}`.** The closest is **{}** ({}).",
                        configs[c].name,
                        verdicts[c].violations().join("; ")
                    ),
                    None => "No configuration ran, so none can be recommended.".into(),
                },
                reasons,
                chosen: closest,
            }
        }
    }
}

/// The sweep in the fewest cells, for the report's first screen: one row per value of the swept
/// key, one column per configuration, each cell its p99 (`✓`/`✗` against the SLO when there is
/// one; `no output` where nothing was delivered).
pub(super) fn p99_by_value(
    axis: &SweepAxis,
    points: &[Point],
    configs: &[Config<'_>],
    verdicts: Option<&[Verdict]>,
) -> Block {
    let series = axis.series(points, configs);
    let short_key = axis.key.rsplit('.').next().unwrap_or(&axis.key).to_string();
    let mut header = vec![format!("`{short_key}`")];
    header.extend(series.iter().map(|(name, _)| format!("{name} p99")));
    let rows = axis
        .values
        .iter()
        .map(|value| {
            let mut row = vec![value.clone()];
            row.extend(series.iter().map(|(_, members)| {
                let at = members
                    .iter()
                    .copied()
                    .find(|&i| axis.value_at(&points[configs[i].point]) == Some(value));
                match at {
                    None => "-".to_string(),
                    Some(i) if !configs[i].run.has_latency() => "no output".to_string(),
                    Some(i) => {
                        let mark = verdicts.map_or("", |v| if v[i].meets() { " ✓" } else { " ✗" });
                        format!("{}{mark}", human_duration(configs[i].run.latency_ms.p99))
                    }
                }
            }));
            row
        })
        .collect();
    Block::Table { header, rows }
}
