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

use std::collections::BTreeMap;

use super::doc::Block;
use super::{ms, ordered_components, words, Config, Point};
use crate::decision::{human_duration, percent, Slo, Verdict};
use crate::plot::{SweepLine, SweepPoint};
use crate::results_dir::numeric_value;

/// The swept key the report plots against, and its values in increasing order.
pub(crate) struct SweepAxis {
    /// The scenario key, as given to `streamlab sweep --param`.
    pub key: String,
    /// Its distinct values, as written, sorted by numeric value when they are numbers.
    pub values: Vec<String>,
    /// Whether every value is a number or a duration.
    pub numeric: bool,
    /// Whether the values are durations (plotted in ms).
    duration: bool,
}

impl SweepAxis {
    /// The key with the most distinct values across the points (a grid's other keys become
    /// part of each configuration's name); `None` when no point states a value.
    pub fn of(points: &[Point]) -> Option<Self> {
        let mut distinct: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
        for p in points {
            for (k, v) in &p.values {
                let values = distinct.entry(k).or_default();
                if !values.contains(&v) {
                    values.push(v);
                }
            }
        }
        let (key, values) = distinct.into_iter().max_by_key(|(_, v)| v.len())?;
        let parsed: Vec<Option<(f64, bool)>> = values.iter().map(|v| numeric_value(v)).collect();
        let numeric = parsed.iter().all(Option::is_some);
        let duration = numeric && parsed.iter().flatten().any(|p| p.1);
        let mut values: Vec<String> = values.into_iter().cloned().collect();
        if numeric {
            values.sort_by(|a, b| {
                let x = |s: &String| numeric_value(s).map_or(0.0, |p| p.0);
                x(a).total_cmp(&x(b))
            });
        }
        Some(Self {
            key: key.clone(),
            values,
            numeric,
            duration,
        })
    }

    /// The x-axis title, with the unit.
    pub fn axis_title(&self) -> String {
        let key = self.key.to_lowercase();
        let unit = if self.duration {
            "ms"
        } else if key.contains("events_per_second") || key.contains("rate") || key.contains("throughput") {
            "events/s"
        } else if key.contains("size") || key.contains("bytes") {
            "bytes"
        } else {
            "count"
        };
        format!("{} ({unit})", self.key)
    }

    fn value_at<'p>(&self, point: &'p Point) -> Option<&'p String> {
        point.values.get(&self.key)
    }

    fn x(&self, point: &Point) -> Option<f64> {
        self.value_at(point).and_then(|v| numeric_value(v)).map(|p| p.0)
    }

    fn rank(&self, point: &Point) -> usize {
        self.value_at(point)
            .and_then(|v| self.values.iter().position(|x| x == v))
            .unwrap_or(usize::MAX)
    }

    /// A configuration's name across the sweep: its run's name and the point's other keys.
    fn series_name(&self, point: &Point, run_name: &str) -> String {
        let others: Vec<String> = point
            .values
            .iter()
            .filter(|(k, _)| **k != self.key)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if others.is_empty() {
            run_name.to_string()
        } else {
            format!("{run_name} ({})", others.join(", "))
        }
    }

    /// The configurations grouped into series, each ordered by the swept value: (name, indices
    /// into `configs`).
    fn series(&self, points: &[Point], configs: &[Config<'_>]) -> Vec<(String, Vec<usize>)> {
        let mut series: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let name = self.series_name(&points[c.point], &c.run.name);
            match series.iter_mut().find(|(n, _)| *n == name) {
                Some((_, members)) => members.push(i),
                None => series.push((name, vec![i])),
            }
        }
        for (_, members) in &mut series {
            members.sort_by_key(|&i| self.rank(&points[configs[i].point]));
        }
        series
    }

    /// One plotted line per series.
    pub fn lines(&self, points: &[Point], configs: &[Config<'_>]) -> Vec<SweepLine> {
        self.series(points, configs)
            .into_iter()
            .map(|(name, members)| SweepLine {
                name,
                points: members
                    .iter()
                    .filter_map(|&i| {
                        let c = &configs[i];
                        Some(SweepPoint {
                            x: self.x(&points[c.point])?,
                            p50: c.run.latency_ms.p50,
                            p95: c.run.latency_ms.p95,
                            p99: c.run.latency_ms.p99,
                            throughput_eps: c.run.throughput_eps,
                        })
                    })
                    .collect(),
            })
            .collect()
    }
}

/// The decision: which configuration, and the words around it.
struct Decision {
    recommendation: String,
    reasons: Vec<String>,
    chosen: Option<usize>,
}

/// Orders candidates for the recommendation: stable first, then headroom, then throughput.
fn better(a: &Config<'_>, va: &Verdict, b: &Config<'_>, vb: &Verdict) -> std::cmp::Ordering {
    let stable = |c: &Config<'_>| c.run.counts.falling_behind == 0;
    stable(a)
        .cmp(&stable(b))
        .then(va.worst_margin().total_cmp(&vb.worst_margin()))
        .then(a.run.throughput_eps.total_cmp(&b.run.throughput_eps))
}

fn checks_in_words(v: &Verdict) -> String {
    v.checks.iter().map(|c| c.describe()).collect::<Vec<_>>().join("; ")
}

fn unmeasured_note(configs: &[Config<'_>], verdicts: &[Verdict]) -> Option<String> {
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

fn decide_with_slo(slo: &Slo, configs: &[Config<'_>], verdicts: &[Verdict]) -> Decision {
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

fn decide_without_slo(configs: &[Config<'_>]) -> Decision {
    let mut order: Vec<usize> = (0..configs.len()).collect();
    order.sort_by(|&a, &b| configs[a].run.latency_ms.p99.total_cmp(&configs[b].run.latency_ms.p99));
    let chosen = order.first().copied();
    let recommendation = match chosen {
        Some(i) => format!(
            "No SLO was stated (the scenario has no `[slo]` table), so this recommends the lowest p99 latency: **{}** ({}), p99 {}. State an `[slo]` (for example `p99 = \"2s\"`) to get a recommendation for your bound.",
            configs[i].name,
            configs[i].run.model,
            human_duration(configs[i].run.latency_ms.p99)
        ),
        None => "No configuration ran, so none can be recommended.".into(),
    };
    let reasons = order
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            let c = &configs[i];
            format!(
                "{} {}: p99 {}, p50 {}, {:.0} events/s{}.",
                if rank == 0 { "Lowest p99:" } else { "Then" },
                c.name,
                human_duration(c.run.latency_ms.p99),
                human_duration(c.run.latency_ms.p50),
                c.run.throughput_eps,
                if c.run.counts.falling_behind > 0 {
                    format!(", fell behind in {} batches", c.run.counts.falling_behind)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    Decision {
        recommendation,
        reasons,
        chosen,
    }
}

/// Over a sweep: where each series qualifies, and which series to run.
fn decide_sweep(
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
            if let Some(&best) = at
                .iter()
                .min_by(|&&a, &&b| configs[a].run.latency_ms.p99.total_cmp(&configs[b].run.latency_ms.p99))
            {
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
                    "Run **{name}**: it meets the SLO at {count} of {} tested values of `{key}`, more than any other configuration. Pick the value of `{key}` from the table above for your operating point.",
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

/// What a latency component is and which knob moves it.
fn component_meaning(component: &str) -> &'static str {
    match component {
        "trigger_wait" => "waiting for the next trigger; a shorter trigger interval shrinks it (mean ≈ half the interval)",
        "watermark_wait" => "waiting for the watermark to pass the window's end; a smaller watermark delay or out-of-orderness bound shrinks it, at the price of more late records",
        "buffer_wait" => "time in network buffers; `buffer_timeout` bounds it",
        "queueing" => "a backlog in front of the engine; it grows when the engine runs near or over its capacity",
        "processing" => "operator work; more workers or parallelism, or cheaper operators, shrink it",
        "scheduling" => "per-batch and per-task scheduling overhead; group scheduling (`group_size`) amortises it",
        "commit" => "writing the commit log",
        "sink_visibility" => "waiting for the sink to make results visible; with a two-phase-commit (exactly-once) sink that is the next completed checkpoint, so the checkpoint interval bounds it",
        "cache_wait" => "the record cache, forwarded at each `commit_interval`",
        _ => "a part of this model's latency",
    }
}

fn consequences(c: &Config<'_>, point: &Point) -> Vec<String> {
    let mut out = Vec::new();
    let components = ordered_components(c.run);
    let total: f64 = components.iter().map(|x| x.1).sum();
    if let Some((name, value)) = components
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|_| total > 0.0)
    {
        out.push(format!(
            "Its latency is mostly `{name}`: {} of a {} mean ({}) — {}.",
            human_duration(*value),
            human_duration(total),
            percent(value / total),
            component_meaning(name)
        ));
    }
    let config = &c.run.config;
    if c.run.model == "micro-batch" {
        // Spark's default trigger is `ProcessingTime(0)`: batches back to back, no interval.
        let back_to_back = config["trigger"]["interval"]
            .as_str()
            .is_some_and(|i| i.trim_end_matches(|ch: char| ch.is_ascii_alphabetic()) == "0");
        let batches = c.run.counts.batches;
        if back_to_back {
            out.push(
                "It runs Spark's default trigger: each batch starts as soon as the previous one ends, so the per-batch cost, not an interval, is the floor under its latency: results wait for the batch in progress to end, and windows one more batch for the watermark.".to_string()
            );
        } else if let Some(interval) = config["trigger"]["interval"].as_str() {
            out.push(format!(
                "Its trigger interval ({interval}) is a floor under its latency: results wait for a trigger, and windows one more batch for the watermark. Shorter intervals cost more batches, each paying the per-batch overhead."
            ));
        }
        if back_to_back {
            if batches > 0 {
                out.push(format!(
                    "Its {batches} batches ran back to back; with no interval there is nothing to fall behind."
                ));
            }
        } else if c.run.counts.falling_behind > 0 {
            out.push(format!(
                "It fell behind in {} of {batches} batches: processing took longer than the trigger interval, so latency grows with the length of the run and a longer run would show higher percentiles.",
                c.run.counts.falling_behind
            ));
        } else if batches > 0 {
            out.push(format!(
                "It kept up: none of its {batches} batches took longer than the trigger interval."
            ));
        }
    } else {
        let knob = |k: &str| config[k].as_str().map(|v| format!("`{k}` = {v}"));
        let set: Vec<String> = [
            "buffer_timeout",
            "auto_watermark_interval",
            "out_of_orderness",
            "commit_interval",
        ]
        .iter()
        .filter_map(|k| knob(k))
        .collect();
        if !set.is_empty() {
            out.push(format!(
                "Its latency floor is set by {}: the batching hidden inside per-record streaming.",
                set.join(", ")
            ));
        }
        out.push("It keeps operators and state running continuously: capacity is reserved for the peak rate rather than scheduled per batch.".into());
    }
    if c.run.counts.late_dropped > 0 {
        out.push(format!(
            "{} events arrived behind the watermark and were dropped; a larger watermark delay or allowed lateness keeps them, at the price of latency.",
            c.run.counts.late_dropped
        ));
    }
    if let Some(r) = &c.run.recovery {
        if let Some(d) = Some(r.duplicates).filter(|&d| d > 0) {
            out.push(format!(
                "After failures it delivered {d} duplicate outputs (at-least-once): the sink must be idempotent."
            ));
        }
        if let Some(l) = Some(r.losses).filter(|&l| l > 0) {
            out.push(format!("After failures {l} outputs were lost."));
        }
    }
    let summary = &point.dir.summary;
    out.push(if summary.clock == "simulated" {
        format!(
            "These figures are simulated ({}); confirm them with a live run or on the target cluster before committing.",
            summary.modelled.first().map_or("virtual time", String::as_str)
        )
    } else {
        "These figures were measured on this machine's wall clock; a loaded or different machine will shift them.".to_string()
    });
    out
}

/// The decision record's blocks.
pub(crate) fn decision_record(
    points: &[Point],
    configs: &[Config<'_>],
    slo: Option<&Slo>,
    sweep: Option<&SweepAxis>,
) -> Vec<Block> {
    let first = &points[0].dir;
    let mut blocks = vec![
        Block::Heading(2, "Decision record".into()),
        Block::Heading(3, "Context".into()),
    ];
    let rate = words::rate_in_words(&first.scenario)
        .map(|r| format!(" at {r}"))
        .unwrap_or_default();
    blocks.push(Block::Paragraph(format!(
        "Which execution model and settings to run scenario **{}**{rate} with. {}",
        first.summary.scenario,
        match slo {
            Some(s) => format!("The requirement is the scenario's SLO: {}.", s.describe()),
            None => "The scenario states no SLO.".into(),
        }
    )));

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
            if let Some(note) = unmeasured_note(configs, verdicts) {
                blocks.push(Block::Paragraph(note));
            }
        }
        _ => {
            let mut order: Vec<&Config<'_>> = configs.iter().collect();
            order.sort_by(|a, b| a.run.latency_ms.p99.total_cmp(&b.run.latency_ms.p99));
            blocks.push(Block::Table {
                header: [
                    "configuration",
                    "p99 (ms)",
                    "p50 (ms)",
                    "throughput (events/s)",
                    "falling behind",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                rows: order
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            ms(c.run.latency_ms.p99),
                            ms(c.run.latency_ms.p50),
                            format!("{:.0}", c.run.throughput_eps),
                            c.run.counts.falling_behind.to_string(),
                        ]
                    })
                    .collect(),
            });
        }
    }

    let decision = match (sweep, slo, &verdicts) {
        (Some(axis), _, v) => decide_sweep(axis, points, configs, v.as_deref(), &mut blocks),
        (None, Some(slo), Some(v)) => decide_with_slo(slo, configs, v),
        _ => decide_without_slo(configs),
    };
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
        blocks.push(Block::List(consequences(&configs[i], &points[configs[i].point])));
    }
    blocks
}
