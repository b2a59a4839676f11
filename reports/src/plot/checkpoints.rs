//! Checkpoint cost over time: bytes written and duration of each checkpoint, per run.
//!
//! Two panels sharing the x axis (processing time since start): above, the bytes each
//! checkpoint wrote (solid, with markers) and the state size it covered (dashed) — an
//! incremental checkpoint writes far less than the state; below, each checkpoint's duration.
//! A run that recorded no checkpoints draws a note instead of empty axes.

use std::path::Path;

use plotters::chart::SeriesLabelPosition;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis;
use super::font::FAMILY;
use super::palette::series_colour;
use super::render::{centred_note, write_svg_and_png, DrawResult, Figure, FigureFiles};
use crate::error::Result;

/// One checkpoint (or one micro-batch's log and state writes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckpointPoint {
    /// When it completed, seconds since the run started.
    pub time_s: f64,
    /// Bytes it wrote.
    pub bytes: f64,
    /// Size of the state it covers, bytes, when known.
    pub state_bytes: Option<f64>,
    /// How long it took, ms, when known.
    pub duration_ms: Option<f64>,
}

/// One run's checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSeries {
    /// The run's name, shown in the legend.
    pub name: String,
    /// Its checkpoints in time order.
    pub points: Vec<CheckpointPoint>,
}

/// Draws checkpoint size and duration over time as `path` (SVG) and the same stem `.png`.
pub fn checkpoint_cost(path: &Path, title: &str, series: &[CheckpointSeries]) -> Result<FigureFiles> {
    let figure = CheckpointFigure {
        title: title.to_string(),
        series: series.to_vec(),
    };
    write_svg_and_png(path, &figure)
}

struct CheckpointFigure {
    title: String,
    series: Vec<CheckpointSeries>,
}

/// The binary unit that keeps the largest value readable, and its size in bytes.
fn byte_unit(max: f64) -> (&'static str, f64) {
    match max {
        m if m >= 1024.0 * 1024.0 * 1024.0 => ("GiB", 1024.0 * 1024.0 * 1024.0),
        m if m >= 1024.0 * 1024.0 => ("MiB", 1024.0 * 1024.0),
        m if m >= 1024.0 => ("KiB", 1024.0),
        _ => ("bytes", 1.0),
    }
}

impl Figure for CheckpointFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = root.margin(5, 30, 10, 30);
        let root = root.titled(&self.title, (FAMILY, 26))?;
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        if points().next().is_none() {
            return centred_note(&root, "no checkpoints recorded");
        }
        let x = axis::span_range(points().map(|p| p.time_s).chain([0.0]));
        let max_bytes = points()
            .flat_map(|p| [Some(p.bytes), p.state_bytes])
            .flatten()
            .fold(0.0, f64::max);
        let (unit, scale) = byte_unit(max_bytes);
        let size_range = axis::zero_based_range(
            points()
                .flat_map(|p| [Some(p.bytes), p.state_bytes])
                .flatten()
                .map(|b| b / scale),
        );
        let duration_range = axis::zero_based_range(points().filter_map(|p| p.duration_ms));
        let (upper, lower) = root.split_vertically(root.dim_in_pixel().1 / 2);

        let mut size = ChartBuilder::on(&upper)
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .build_cartesian_2d(x.clone(), size_range)?;
        size.configure_mesh()
            .y_desc(format!("size ({unit})"))
            .axis_desc_style((FAMILY, 16))
            .label_style((FAMILY, 13))
            .x_label_formatter(&axis::tick_label)
            .y_label_formatter(&axis::tick_label)
            .bold_line_style(RGBColor(200, 200, 200))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        let mut duration = ChartBuilder::on(&lower)
            .margin(8)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x, duration_range)?;
        duration
            .configure_mesh()
            .x_desc("processing time since start (s)")
            .y_desc("duration (ms)")
            .axis_desc_style((FAMILY, 16))
            .label_style((FAMILY, 13))
            .x_label_formatter(&axis::tick_label)
            .y_label_formatter(&axis::tick_label)
            .bold_line_style(RGBColor(200, 200, 200))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;

        for (index, series) in self.series.iter().enumerate() {
            let colour = series_colour(index);
            let solid = colour.stroke_width(2);
            let written: Vec<(f64, f64)> = series.points.iter().map(|p| (p.time_s, p.bytes / scale)).collect();
            size.draw_series(LineSeries::new(written.iter().copied(), solid))?
                .label(format!("{}: bytes written", series.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], solid));
            size.draw_series(written.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            let state: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter_map(|p| p.state_bytes.map(|b| (p.time_s, b / scale)))
                .collect();
            if !state.is_empty() {
                let dashed = colour.mix(0.7).stroke_width(2);
                size.draw_series(DashedLineSeries::new(state, 6, 4, dashed))?
                    .label(format!("{}: state size", series.name))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 10, y)], dashed));
            }
            let took: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter_map(|p| p.duration_ms.map(|d| (p.time_s, d)))
                .collect();
            duration
                .draw_series(LineSeries::new(took.iter().copied(), solid))?
                .label(format!("{}: duration", series.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], solid));
            duration.draw_series(took.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        size.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .margin(8)
            .draw()?;
        duration
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .margin(8)
            .draw()?;
        Ok(())
    }
}
