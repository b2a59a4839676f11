//! The watermark against processing time: how far behind the clock each engine declares
//! event time complete.
//!
//! x = processing time since the run started, y = event time since the workload started,
//! both in seconds. The grey diagonal is "event time = processing time" (an event that
//! arrived without delay sits on it). Each run's watermark is a step line in its colour: the
//! vertical gap to the diagonal is how long a window ending at that event time waits before
//! it can fire. Where known (micro-batch progress), the largest event time seen so far is
//! dashed in the same colour; the gap between it and the watermark is the configured delay
//! plus, for micro-batch, the one-batch lag.

use std::path::Path;

use plotters::chart::SeriesLabelPosition;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis;
use super::font::FAMILY;
use super::palette::series_colour;
use super::render::{centred_note, write_svg_and_png, DrawResult, Figure, FigureFiles};
use crate::error::Result;

/// One run's watermark over processing time.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkSeries {
    /// The run's name (with how the watermark was combined, e.g. "min over subtasks").
    pub name: String,
    /// (processing time s, watermark as event time s), in time order.
    pub watermark: Vec<(f64, f64)>,
    /// (processing time s, largest event time seen s), empty when unknown.
    pub max_event_time: Vec<(f64, f64)>,
}

/// Draws the watermark of each series as `path` (SVG) and the same stem `.png`.
pub fn watermark_progress(path: &Path, title: &str, series: &[WatermarkSeries]) -> Result<FigureFiles> {
    let figure = WatermarkFigure {
        title: title.to_string(),
        series: series.to_vec(),
    };
    write_svg_and_png(path, &figure)
}

struct WatermarkFigure {
    title: String,
    series: Vec<WatermarkSeries>,
}

/// A step line: each value holds until the next point.
fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(x, y)) in points.iter().enumerate() {
        if i > 0 {
            out.push((x, points[i - 1].1));
        }
        out.push((x, y));
    }
    out
}

impl Figure for WatermarkFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = root.margin(10, 30, 10, 30);
        let all = || {
            self.series
                .iter()
                .flat_map(|s| s.watermark.iter().chain(&s.max_event_time).copied())
        };
        let x = axis::span_range(all().map(|p| p.0).chain([0.0]));
        let y = axis::span_range(all().map(|p| p.1).chain([0.0]));
        let mut context = ChartBuilder::on(&root)
            .caption(&self.title, (FAMILY, 26))
            .margin(10)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(x.clone(), y.clone())?;
        context
            .configure_mesh()
            .x_desc("processing time since start (s)")
            .y_desc("event time (s)")
            .axis_desc_style((FAMILY, 18))
            .label_style((FAMILY, 14))
            .x_label_formatter(&axis::tick_label)
            .y_label_formatter(&axis::tick_label)
            .bold_line_style(RGBColor(200, 200, 200))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        let lo = x.start.max(y.start);
        let hi = x.end.min(y.end);
        if hi > lo {
            let grey = RGBColor(120, 120, 120).stroke_width(1);
            context
                .draw_series(DashedLineSeries::new([(lo, lo), (hi, hi)], 4, 4, grey))?
                .label("event time = processing time")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], grey));
        }
        for (index, series) in self.series.iter().enumerate() {
            let colour = series_colour(index);
            let solid = colour.stroke_width(2);
            context
                .draw_series(LineSeries::new(steps(&series.watermark), solid))?
                .label(format!("{}: watermark", series.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], solid));
            if !series.max_event_time.is_empty() {
                let dashed = colour.mix(0.7).stroke_width(2);
                context
                    .draw_series(DashedLineSeries::new(steps(&series.max_event_time), 6, 4, dashed))?
                    .label(format!("{}: max event time seen", series.name))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 10, y)], dashed));
            }
        }
        context
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .margin(12)
            .draw()?;
        if self.series.iter().all(|s| s.watermark.is_empty()) {
            centred_note(&root, "no watermarks recorded")?;
        }
        Ok(())
    }
}
