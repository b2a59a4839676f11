//! `streamlab report`: one or more results directories (or a sweep directory) turned into
//! `report.html` and `report.md` — the scenario in plain words, the table of results, the
//! plots, and a decision record whose recommendation is computed from the numbers against the
//! scenario's `[slo]`.
//!
//! Nothing here knows a particular scenario: every sentence is built from `scenario.toml`,
//! `summary.json` and the progress files. Figures are written next to the reports as
//! `report-*.svg` and `report-*.png` (the prefix keeps the run's own plots untouched when the
//! report goes into the results directory itself); the HTML inlines the SVGs.

mod answer;
mod decide;
pub mod doc;
mod words;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::decision::{Bound, Slo};
use crate::error::{Error, Result};
use crate::figures;
use crate::layout::{slug, ResultsLayout, SweepLayout};
use crate::plot::{self, FigureFiles};
use crate::results_dir::{read_sweep_file, ResultsDir};
use crate::summary::RunSummary;
use doc::Block;

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    /// The self-contained HTML report.
    pub html: PathBuf,
    /// The Markdown report (its figures are the PNG files next to it).
    pub markdown: PathBuf,
    /// Every figure written, SVG and PNG.
    pub figures: Vec<FigureFiles>,
}

/// One results directory of the report: a run of the scenario, or a point of a sweep.
pub(crate) struct Point {
    /// How the point is named in tables (`"interval=100ms"`, or the directory's name); empty
    /// when the report has a single point.
    pub label: String,
    /// The swept keys' values at this point, as written.
    pub values: BTreeMap<String, String>,
    /// The directory.
    pub dir: ResultsDir,
}

/// One engine configuration at one point: an option of the decision record.
pub(crate) struct Config<'a> {
    /// Its name in the report: the run's name, with the point's label when there are several.
    pub name: String,
    /// A shorter name for chart labels: the point's values without their keys.
    pub short: String,
    /// Index of its point.
    pub point: usize,
    /// The run (its failures and recovery included).
    pub run: &'a RunSummary,
}

/// Reads `dirs` (results directories, or sweep directories holding `sweep.json`) and writes
/// `report.html`, `report.md` and their figures into `out_dir` (created if missing).
///
/// With a single sweep directory the report plots latency against the swept parameter and the
/// recommendation says for which values each configuration meets the SLO.
///
/// # Errors
///
/// [`Error::Input`] when a directory is not a results or sweep directory or one of its files is
/// malformed (naming the file and line); [`Error::Io`] and [`Error::Plot`] when writing fails.
pub fn write_report(dirs: &[PathBuf], out_dir: &Path) -> Result<ReportPaths> {
    let (points, sweep) = load(dirs)?;
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let configs: Vec<Config<'_>> = points
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            p.dir.summary.runs.iter().map(move |run| Config {
                name: if p.label.is_empty() {
                    run.name.clone()
                } else {
                    format!("{} @ {}", run.name, p.label)
                },
                short: if p.values.is_empty() {
                    if p.label.is_empty() {
                        run.name.clone()
                    } else {
                        format!("{} @ {}", run.name, p.label)
                    }
                } else {
                    let values: Vec<&str> = p.values.values().map(String::as_str).collect();
                    format!("{} @ {}", run.name, values.join(", "))
                },
                point: i,
                run,
            })
        })
        .collect();
    let first = &points[0].dir;
    let slo = Slo::from_scenario(&first.scenario, &ResultsLayout::new(&first.path).scenario())?;
    let sweep_axis = if sweep { decide::SweepAxis::of(&points) } else { None };

    let record = decide::decision_record(&points, &configs, slo.as_ref(), sweep_axis.as_ref());
    let mut blocks = Vec::new();
    let title = format!("streamlab report: {}", first.summary.scenario);
    blocks.push(Block::Heading(1, title.clone()));
    let mut figures = Vec::new();
    let trade_off = trade_off_figure(
        out_dir,
        &points,
        &configs,
        sweep_axis.as_ref(),
        slo.as_ref(),
        &mut figures,
    )?;
    blocks.extend(answer::answer_section(&record, &configs, trade_off.block));
    blocks.extend(scenario_section(&points, &slo, sweep_axis.as_ref()));
    blocks.extend(results_section(&configs));
    blocks.extend(plots_section(out_dir, &points, &configs, trade_off.kind, &mut figures)?);
    blocks.extend(record.blocks);

    let markdown = out_dir.join("report.md");
    let html = out_dir.join("report.html");
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    write(&markdown, doc::markdown(&blocks))?;
    write(&html, doc::html(&title, &blocks))?;
    Ok(ReportPaths {
        html,
        markdown,
        figures,
    })
}

/// Reads the directories; `true` when the input is a single sweep.
fn load(dirs: &[PathBuf]) -> Result<(Vec<Point>, bool)> {
    let mut points = Vec::new();
    let mut sweeps = 0;
    for dir in dirs {
        if let Some(sweep) = read_sweep_file(dir)? {
            sweeps += 1;
            for p in sweep.points {
                let values: BTreeMap<String, String> = p
                    .values
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (k, v)
                    })
                    .collect();
                let label = values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                points.push(Point {
                    label,
                    values,
                    dir: ResultsDir::read(&SweepLayout::new(dir).point(&p.dir))?,
                });
            }
        } else {
            let label = dir
                .file_name()
                .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
            points.push(Point {
                label,
                values: BTreeMap::new(),
                dir: ResultsDir::read(dir)?,
            });
        }
    }
    if points.is_empty() {
        return Err(Error::Input {
            path: dirs.first().cloned().unwrap_or_default(),
            message: "no results to report: give at least one results directory".into(),
        });
    }
    if points.len() == 1 {
        points[0].label.clear();
    } else {
        let mut seen = BTreeSet::new();
        for (i, p) in points.iter_mut().enumerate() {
            if !seen.insert(p.label.clone()) {
                p.label = format!("{} ({})", p.label, i + 1);
            }
        }
    }
    let sweep = sweeps == 1 && dirs.len() == 1;
    Ok((points, sweep))
}

/// A latency in ms with the precision it deserves.
pub(crate) fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A latency of `run` in ms, or `-` when the run has no outputs (nothing was measured).
pub(crate) fn latency_cell(run: &RunSummary, x: f64) -> String {
    if run.has_latency() {
        ms(x)
    } else {
        "-".into()
    }
}

fn scenario_section(points: &[Point], slo: &Option<Slo>, sweep: Option<&decide::SweepAxis>) -> Vec<Block> {
    let first = &points[0].dir;
    let mut blocks = vec![Block::Heading(2, "The scenario".into())];
    blocks.extend(
        words::scenario_paragraphs(&first.scenario, &first.summary)
            .into_iter()
            .map(Block::Paragraph),
    );
    blocks.push(Block::Paragraph("**Engine configurations** compared:".into()));
    blocks.push(Block::List(first.summary.runs.iter().map(words::engine_line).collect()));
    if let Some(axis) = sweep {
        blocks.push(Block::Paragraph(format!(
            "**Swept**: `{}` over {} ({} points, every configuration at each).",
            axis.key,
            axis.values.join(", "),
            points.len()
        )));
    } else if points.len() > 1 {
        blocks.push(Block::Paragraph(format!(
            "**Results directories**: {} — each configuration is named with its directory.",
            points
                .iter()
                .map(|p| format!("`{}`", p.label))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    blocks.push(Block::Paragraph(match slo {
        Some(slo) => format!("**Service-level objective** (`[slo]`): {}.", slo.describe()),
        None => "**Service-level objective**: none stated (the scenario has no `[slo]` table).".into(),
    }));
    blocks
}

/// Latency components in the order they happen to a record, per model; others follow by name.
const COMPONENT_ORDER: [&str; 10] = [
    "trigger_wait",
    "queueing",
    "scheduling",
    "buffer_wait",
    "cache_wait",
    "processing",
    "commit",
    "watermark_wait",
    "sink_visibility",
    "broker",
];

pub(crate) fn ordered_components(run: &RunSummary) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = COMPONENT_ORDER
        .iter()
        .filter_map(|&c| run.components_ms.get(c).map(|&v| (c.to_string(), v)))
        .collect();
    for (name, &v) in &run.components_ms {
        if !COMPONENT_ORDER.contains(&name.as_str()) {
            out.push((name.clone(), v));
        }
    }
    out
}

fn results_section(configs: &[Config<'_>]) -> Vec<Block> {
    let mut blocks = vec![
        Block::Heading(2, "Results".into()),
        Block::Paragraph(
            "Latency is measured from each event's scheduled arrival (open loop: a backlog counts) to the delivery of the output it contributed to."
                .into(),
        ),
    ];
    let header = [
        "configuration",
        "model",
        "p50 (ms)",
        "p95 (ms)",
        "p99 (ms)",
        "max (ms)",
        "mean (ms)",
        "throughput (events/s)",
        "events",
        "outputs",
        "batches",
        "falling behind",
        "keeping up",
        "late dropped",
    ];
    let rows = configs
        .iter()
        .map(|c| {
            let (l, n) = (&c.run.latency_ms, &c.run.counts);
            let lat = |x: f64| latency_cell(c.run, x);
            vec![
                c.name.clone(),
                c.run.model.clone(),
                lat(l.p50),
                lat(l.p95),
                lat(l.p99),
                lat(l.max),
                lat(l.mean),
                format!("{:.0}", c.run.throughput_eps),
                n.events.to_string(),
                n.outputs.to_string(),
                n.batches.to_string(),
                n.falling_behind.to_string(),
                words::keeping_up(c.run).to_string(),
                n.late_dropped.to_string(),
            ]
        })
        .collect();
    blocks.push(Block::Table {
        header: header.iter().map(|s| s.to_string()).collect(),
        rows,
    });
    if configs
        .iter()
        .any(|c| c.run.resources.per_core_vs_fastest_real.is_some())
    {
        blocks.push(Block::Paragraph(
            "Throughput per core beside the real engines of the same run: each configuration's events/s per core over the faster real engine's (Spark, Flink) per core."
                .into(),
        ));
        let rows = configs
            .iter()
            .map(|c| {
                let r = &c.run.resources;
                vec![
                    c.name.clone(),
                    r.cores.to_string(),
                    format!("{:.0}", r.throughput_eps_per_core),
                    r.per_core_vs_fastest_real
                        .map_or_else(|| "-".to_string(), |x| format!("{x:.2}x")),
                ]
            })
            .collect();
        blocks.push(Block::Table {
            header: [
                "configuration",
                "cores",
                "per core (events/s)",
                "per core / fastest real",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            rows,
        });
    }

    let components: Vec<String> = {
        let present: BTreeSet<&String> = configs.iter().flat_map(|c| c.run.components_ms.keys()).collect();
        let mut ordered: Vec<String> = COMPONENT_ORDER
            .iter()
            .filter(|c| present.iter().any(|p| p == c))
            .map(|c| c.to_string())
            .collect();
        ordered.extend(
            present
                .into_iter()
                .filter(|p| !COMPONENT_ORDER.contains(&p.as_str()))
                .cloned(),
        );
        ordered
    };
    if !components.is_empty() {
        blocks.push(Block::Paragraph(
            "Mean latency by component (ms; `-` where the model has no such part). The parts add up to the mean latency."
                .into(),
        ));
        let mut header = vec!["configuration".to_string()];
        header.extend(components.iter().cloned());
        let rows = configs
            .iter()
            .map(|c| {
                let mut row = vec![c.name.clone()];
                row.extend(components.iter().map(|k| {
                    c.run
                        .components_ms
                        .get(k)
                        .map_or_else(|| "-".to_string(), |&v| latency_cell(c.run, v))
                }));
                row
            })
            .collect();
        blocks.push(Block::Table { header, rows });
    }

    if configs
        .iter()
        .any(|c| c.run.recovery.is_some() || !c.run.failures.is_empty())
    {
        blocks.push(Block::Paragraph("Failures and recovery:".into()));
        let opt = |x: Option<f64>| x.map_or_else(|| "-".to_string(), ms);
        let count = |x: Option<u64>| x.map_or_else(|| "-".to_string(), |v| v.to_string());
        let rows = configs
            .iter()
            .map(|c| {
                let r = c.run.recovery;
                vec![
                    c.name.clone(),
                    c.run.failures.len().to_string(),
                    opt(r.and_then(|r| r.downtime_ms)),
                    opt(r.and_then(|r| r.catch_up_ms)),
                    count(r.map(|r| r.replayed)),
                    count(r.map(|r| r.duplicates)),
                    count(r.map(|r| r.losses)),
                ]
            })
            .collect();
        blocks.push(Block::Table {
            header: [
                "configuration",
                "failures",
                "downtime (ms)",
                "catch-up (ms)",
                "replayed",
                "duplicates",
                "losses",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            rows,
        });
    }

    let notes: Vec<String> = configs
        .iter()
        .flat_map(|c| c.run.notes.iter().map(move |n| format!("{}: {n}", c.name)))
        .collect();
    if !notes.is_empty() {
        blocks.push(Block::Paragraph("Notes from the runs:".into()));
        blocks.push(Block::List(notes));
    }
    blocks
}

/// Draws one figure and returns its block.
fn figure(
    out_dir: &Path,
    stem: &str,
    title: &str,
    caption: String,
    files: &mut Vec<FigureFiles>,
    draw: impl FnOnce(&Path) -> Result<FigureFiles>,
) -> Result<Block> {
    let svg_path = out_dir.join(format!("report-{stem}.svg"));
    let written = draw(&svg_path)?;
    let svg = std::fs::read_to_string(&written.svg).map_err(|source| Error::Io {
        path: written.svg.clone(),
        source,
    })?;
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let block = Block::Figure {
        svg_file: name(&written.svg),
        png_file: name(&written.png),
        svg,
        title: title.to_string(),
        caption,
    };
    files.push(written);
    Ok(block)
}

/// Which figure leads the report: latency against a numeric swept key, or the CDF.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TradeOff {
    AgainstParameter,
    Cdf,
}

/// The figure that shows the trade-off, drawn for the report's first screen.
struct TradeOffFigure {
    block: Block,
    kind: TradeOff,
}

/// Latency against the swept key when the sweep's values are numeric, else the latency CDF
/// of every configuration.
fn trade_off_figure(
    out_dir: &Path,
    points: &[Point],
    configs: &[Config<'_>],
    sweep: Option<&decide::SweepAxis>,
    slo: Option<&Slo>,
    files: &mut Vec<FigureFiles>,
) -> Result<TradeOffFigure> {
    if let Some(axis) = sweep.filter(|a| a.numeric) {
        let lines = axis.lines(points, configs);
        let x_title = axis.axis_title();
        let bounds: Vec<(String, f64)> = slo
            .iter()
            .flat_map(|s| &s.bounds)
            .filter_map(|b| match *b {
                Bound::P99(ms) | Bound::P50(ms) => Some((format!("SLO {}", b.describe()), ms)),
                _ => None,
            })
            .collect();
        let block = figure(
            out_dir,
            "latency-vs-parameter",
            &format!("Latency and throughput against {}", axis.key),
            format!(
                "p50, p95 and p99 latency (left axis; thicker is a higher percentile) of each configuration at each value of `{}`, and its throughput (dashed, right axis). The sweet spot is where latency is low while throughput still matches the input rate; red dashed lines are the SLO's latency bounds.",
                axis.key
            ),
            files,
            |path| {
                plot::latency_against_parameter(
                    path,
                    &format!("Latency and throughput against {}", axis.key),
                    &x_title,
                    &lines,
                    &bounds,
                )
            },
        )?;
        return Ok(TradeOffFigure {
            block,
            kind: TradeOff::AgainstParameter,
        });
    }
    Ok(TradeOffFigure {
        block: cdf_figure(out_dir, points, configs, files)?,
        kind: TradeOff::Cdf,
    })
}

fn cdf_figure(out_dir: &Path, points: &[Point], configs: &[Config<'_>], files: &mut Vec<FigureFiles>) -> Result<Block> {
    let cdfs: Vec<(String, Vec<(f64, f64)>)> = configs
        .iter()
        .filter_map(|c| {
            points[c.point]
                .dir
                .cdf
                .get(&c.run.name)
                .map(|pts| (c.name.clone(), pts.clone()))
        })
        .collect();
    figure(
        out_dir,
        "latency-cdf",
        "Latency distribution",
        "Share of outputs (y) delivered within a latency (x, log scale): a curve further left is faster; its top end is the tail (p99 at 99 %).".into(),
        files,
        |path| plot::latency_cdf_points(path, "Latency distribution of all configurations", &cdfs),
    )
}

/// The plots after the first screen: every one but the trade-off figure already shown there.
fn plots_section(
    out_dir: &Path,
    points: &[Point],
    configs: &[Config<'_>],
    shown: TradeOff,
    files: &mut Vec<FigureFiles>,
) -> Result<Vec<Block>> {
    let mut blocks = vec![Block::Heading(2, "Plots".into())];
    let bars: Vec<plot::DecompositionBar> = configs
        .iter()
        .map(|c| plot::DecompositionBar {
            name: c.short.clone(),
            components: ordered_components(c.run),
        })
        .collect();
    blocks.push(figure(
        out_dir,
        "latency-decomposition",
        "Where the latency goes",
        "Mean latency of each configuration split into its components (same colour, same mechanism). Micro-batch: trigger wait, queueing behind an overrun, scheduling, processing, commit, and the watermark's one-batch lag; per-record: queueing, network buffers, processing, watermark wait.".into(),
        files,
        |path| plot::latency_decomposition(path, "Mean latency by component", &bars),
    )?);
    if shown != TradeOff::Cdf {
        blocks.push(cdf_figure(out_dir, points, configs, files)?);
    }

    for point in points {
        let suffix = if point.label.is_empty() {
            String::new()
        } else {
            format!("-{}", slug(&point.label))
        };
        let at = if point.label.is_empty() {
            String::new()
        } else {
            format!(" at {}", point.label)
        };
        if points.len() > 1 {
            blocks.push(Block::Heading(3, format!("Details{at}")));
        }
        blocks.extend(point_figures(out_dir, point, &suffix, &at, files)?);
    }
    Ok(blocks)
}

fn point_figures(
    out_dir: &Path,
    point: &Point,
    suffix: &str,
    at: &str,
    files: &mut Vec<FigureFiles>,
) -> Result<Vec<Block>> {
    let dir = &point.dir;
    let runs = &dir.summary.runs;
    let mut blocks = Vec::new();

    let failures = figures::failure_marks(runs);
    let failure_words = if failures.is_empty() {
        "No failures were injected in this run.".to_string()
    } else {
        "Red lines mark injected failures; the shaded band lasts until the run recovered (green line), or to the end if it never did.".to_string()
    };
    blocks.push(figure(
        out_dir,
        &format!("latency-over-time{suffix}"),
        &format!("Latency over time{at}"),
        format!("The largest latency delivered in each 100 ms of the run: a sawtooth is batching, a line that keeps rising is a backlog. {failure_words}"),
        files,
        |path| figures::latency_over_time(path, &format!("Latency over time{at}"), runs, &dir.timeline),
    )?);

    let batch_runs: Vec<plot::BatchRun> = runs
        .iter()
        .filter(|r| r.model == "micro-batch")
        .map(|r| plot::BatchRun {
            name: r.name.clone(),
            batches: dir.batches(&r.name),
        })
        .filter(|b| !b.batches.is_empty())
        .collect();
    if !batch_runs.is_empty() {
        blocks.push(figure(
            out_dir,
            &format!("batch-timeline{suffix}"),
            &format!("Micro-batch timeline{at}"),
            format!(
                "Each row is a batch, drawn from its trigger instant over processing time: grey is waiting for the previous batch, then Spark's phases in their colours; batches outlined in red fell behind (took longer than the trigger interval). At most the first {} batches of a run are shown.",
                plot::MAX_BATCHES_PER_RUN
            ),
            files,
            |path| plot::batch_timeline(path, &format!("Micro-batch timeline{at}"), &batch_runs),
        )?);
    }

    let watermarks: Vec<plot::WatermarkSeries> = runs
        .iter()
        .map(|r| {
            let (watermark, max_event_time) = dir.watermarks(&r.name);
            let how = if r.model == "per-record" {
                " (min over source subtasks)"
            } else {
                ""
            };
            plot::WatermarkSeries {
                name: format!("{}{how}", r.name),
                watermark,
                max_event_time,
            }
        })
        .filter(|s| !s.watermark.is_empty())
        .collect();
    if !watermarks.is_empty() {
        blocks.push(figure(
            out_dir,
            &format!("watermark{suffix}"),
            &format!("Watermark{at}"),
            "The watermark (event time declared complete) against processing time. The gap below the diagonal is how long a window waits after its end before it can fire; the dashed line is the largest event time seen (micro-batch), so its gap to the watermark is the watermark delay plus the one-batch lag.".into(),
            files,
            |path| plot::watermark_progress(path, &format!("Watermark against processing time{at}"), &watermarks),
        )?);
    }

    let checkpoints: Vec<plot::CheckpointSeries> = runs
        .iter()
        .map(|r| plot::CheckpointSeries {
            name: r.name.clone(),
            points: dir.checkpoints(&r.name),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let caption = if checkpoints.is_empty() {
        "No checkpoints were recorded in this run.".to_string()
    } else {
        "Bytes written by each checkpoint (above; dashed: the state size it covers) and how long it took (below)."
            .to_string()
    };
    blocks.push(figure(
        out_dir,
        &format!("checkpoints{suffix}"),
        &format!("Checkpoints{at}"),
        caption,
        files,
        |path| plot::checkpoint_cost(path, &format!("Checkpoint size and duration{at}"), &checkpoints),
    )?);
    Ok(blocks)
}
