//! The micro-batch timeline: a Gantt chart of each batch's phases over processing time.
//!
//! One panel per run, one row per batch (batch 0 at the bottom), x = processing time since the
//! run started. A batch's row starts at its trigger instant; a grey stretch up to its actual
//! start is time spent waiting for the previous batch (an overrun), then Spark's phases
//! (`latestOffset`, `walCommit`, `getBatch`, `queryPlanning`, `addBatch`, `commitOffsets`)
//! follow in their colours. A batch that fell behind (took longer than its trigger interval)
//! is outlined in red. Phases too short to see at the chart's scale are drawn a few pixels
//! wide, so every batch shows.

use std::path::Path;

use plotters::chart::SeriesLabelPosition;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis;
use super::font::FAMILY;
use super::palette::series_colour;
use super::render::{centred_note, write_svg_and_png, DrawResult, Figure, FigureFiles};
use crate::error::Result;

/// Batches drawn per run at most (the first ones); more would be rows too thin to read.
pub const MAX_BATCHES_PER_RUN: usize = 60;

/// The phases of a micro-batch, in execution order, as Spark names them in `durationMs`.
pub const PHASES: [&str; 6] = [
    "latestOffset",
    "walCommit",
    "getBatch",
    "queryPlanning",
    "addBatch",
    "commitOffsets",
];

const WAITING: RGBColor = RGBColor(190, 190, 190);
const FALLING_BEHIND: RGBColor = RGBColor(204, 0, 0);

/// One micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchBar {
    /// Spark's `batchId`.
    pub batch_id: u64,
    /// The trigger instant it was due at, seconds since the run started.
    pub trigger_s: f64,
    /// When it actually started, seconds since the run started (later than `trigger_s` when
    /// the previous batch overran).
    pub start_s: f64,
    /// Duration of each phase in ms, keyed by the names in [`PHASES`] (others are ignored).
    pub phases: Vec<(String, f64)>,
    /// Whether it took longer than the trigger interval.
    pub falling_behind: bool,
}

/// One run's batches.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRun {
    /// The run's name, shown above its panel.
    pub name: String,
    /// Its batches in execution order.
    pub batches: Vec<BatchBar>,
}

/// Draws the batch timeline of each run as `path` (SVG) and the same stem `.png`.
pub fn batch_timeline(path: &Path, title: &str, runs: &[BatchRun]) -> Result<FigureFiles> {
    let figure = TimelineFigure {
        title: title.to_string(),
        runs: runs.to_vec(),
    };
    write_svg_and_png(path, &figure)
}

struct TimelineFigure {
    title: String,
    runs: Vec<BatchRun>,
}

impl BatchBar {
    fn end_s(&self) -> f64 {
        self.start_s + self.phases.iter().map(|p| p.1.max(0.0)).sum::<f64>() / 1000.0
    }
}

impl Figure for TimelineFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = root.margin(5, 20, 10, 20);
        let root = root.titled(&self.title, (FAMILY, 26))?;
        if self.runs.iter().all(|r| r.batches.is_empty()) {
            return centred_note(&root, "no micro-batches recorded (per-record runs only)");
        }
        let shown: Vec<&[BatchBar]> = self
            .runs
            .iter()
            .map(|r| &r.batches[..r.batches.len().min(MAX_BATCHES_PER_RUN)])
            .collect();
        let x = axis::span_range(
            shown
                .iter()
                .flat_map(|b| b.iter().flat_map(|b| [b.trigger_s, b.end_s()])),
        );
        let x = x.start.min(0.0)..x.end + (x.end - x.start) * 0.02;
        let min_width = (x.end - x.start) / 400.0;
        let panels = root.split_evenly((self.runs.len(), 1));
        for (index, ((run, batches), panel)) in self.runs.iter().zip(&shown).zip(&panels).enumerate() {
            let caption = if batches.len() < run.batches.len() {
                format!(
                    "{} (first {} of {} batches)",
                    run.name,
                    batches.len(),
                    run.batches.len()
                )
            } else {
                run.name.clone()
            };
            let rows = batches.len().max(1);
            let ids: Vec<u64> = batches.iter().map(|b| b.batch_id).collect();
            let last = index + 1 == self.runs.len();
            let mut context = ChartBuilder::on(panel)
                .caption(caption, (FAMILY, 18))
                .margin(5)
                .x_label_area_size(if last { 50 } else { 30 })
                .y_label_area_size(70)
                .build_cartesian_2d(x.clone(), (0..rows).into_segmented())?;
            let label_of = |v: &SegmentValue<usize>| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    ids.get(*i).map(u64::to_string).unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            };
            let mut mesh = context.configure_mesh();
            mesh.y_desc("batch id")
                .axis_desc_style((FAMILY, 16))
                .label_style((FAMILY, 13))
                .x_label_formatter(&axis::tick_label)
                .y_label_formatter(&label_of)
                .y_labels(rows.min(10))
                .disable_y_mesh()
                .bold_line_style(RGBColor(210, 210, 210))
                .light_line_style(RGBColor(240, 240, 240));
            if last {
                mesh.x_desc("processing time since start (s)");
            }
            mesh.draw()?;

            let row = |i: usize| (SegmentValue::Exact(i), SegmentValue::Exact(i + 1));
            let bar = |from: f64, to: f64, i: usize, style: ShapeStyle| {
                let (lo, hi) = row(i);
                let mut rect = Rectangle::new([(from, lo), (to.max(from + min_width), hi)], style);
                rect.set_margin(1, 1, 0, 0);
                rect
            };
            let waiting: Vec<_> = batches
                .iter()
                .enumerate()
                .filter(|(_, b)| b.start_s > b.trigger_s)
                .map(|(i, b)| bar(b.trigger_s, b.start_s, i, WAITING.filled()))
                .collect();
            let drawn = context.draw_series(waiting)?;
            if index == 0 {
                drawn
                    .label("waiting for the previous batch")
                    .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], WAITING.filled()));
            }
            for (p, phase) in PHASES.iter().enumerate() {
                let colour = series_colour(p);
                let rects: Vec<_> = batches
                    .iter()
                    .enumerate()
                    .filter_map(|(i, b)| {
                        let offset: f64 = b
                            .phases
                            .iter()
                            .filter(|(name, _)| PHASES[..p].contains(&name.as_str()))
                            .map(|ph| ph.1.max(0.0))
                            .sum();
                        let (_, ms) = b.phases.iter().find(|(name, _)| name == phase)?;
                        let from = b.start_s + offset / 1000.0;
                        // A phase under the visible width is drawn only if it is the batch's longest.
                        let longest = b.phases.iter().all(|other| other.1 <= *ms);
                        (ms / 1000.0 >= min_width || longest)
                            .then(|| bar(from, from + ms.max(0.0) / 1000.0, i, colour.filled()))
                    })
                    .collect();
                let drawn = context.draw_series(rects)?;
                if index == 0 {
                    drawn
                        .label(*phase)
                        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], colour.filled()));
                }
            }
            let behind: Vec<_> = batches
                .iter()
                .enumerate()
                .filter(|(_, b)| b.falling_behind)
                .map(|(i, b)| bar(b.trigger_s, b.end_s(), i, FALLING_BEHIND.stroke_width(2)))
                .collect();
            let any_behind = !behind.is_empty();
            let drawn = context.draw_series(behind)?;
            if any_behind || index == 0 {
                drawn
                    .label("falling behind (outlined)")
                    .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], FALLING_BEHIND.stroke_width(2)));
            }
            if index == 0 || any_behind {
                context
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .label_font((FAMILY, 13))
                    .background_style(WHITE.mix(0.9))
                    .border_style(RGBColor(160, 160, 160))
                    .margin(6)
                    .draw()?;
            }
            if batches.is_empty() {
                centred_note(panel, "no micro-batches (a per-record run)")?;
            }
        }
        Ok(())
    }
}
