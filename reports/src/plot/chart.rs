//! One way to draw a line chart, shared by the line plots: size, margins, fonts, gridlines,
//! palette and legend are decided here so all charts of a report look alike.

use std::ops::Range;

use plotters::chart::SeriesLabelPosition;
use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::font::FAMILY;
use super::palette::series_colour;
use super::render::{centred_note, DrawResult, Figure};

/// How an axis maps values: linearly or by decades.
#[derive(Debug, Clone, PartialEq)]
pub enum Scale {
    /// Linear over the range.
    Linear(Range<f64>),
    /// Logarithmic over the (positive) range.
    Log(Range<f64>),
}

impl Scale {
    fn range(&self) -> Range<f64> {
        match self {
            Scale::Linear(r) | Scale::Log(r) => r.clone(),
        }
    }
}

/// One named line.
pub struct Line {
    /// Legend text.
    pub name: String,
    /// Points in data coordinates, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A stretch of the x axis to mark: a vertical line at `start` and, up to `end` (or to the
/// right edge when it never ended), a shaded band. Failures and their recoveries.
pub struct Span {
    /// Legend text.
    pub label: String,
    /// Where the span starts, in x coordinates.
    pub start: f64,
    /// Where it ends, if it did.
    pub end: Option<f64>,
}

/// What a chart shows.
pub struct LineChart {
    /// Title above the chart.
    pub title: String,
    /// Title of the x axis, with its unit.
    pub x_title: String,
    /// Title of the y axis, with its unit.
    pub y_title: String,
    /// The x axis.
    pub x: Scale,
    /// The y axis.
    pub y: Scale,
    /// The lines, one colour each.
    pub lines: Vec<Line>,
    /// Marked stretches of x (drawn under the lines).
    pub spans: Vec<Span>,
    /// Where the legend goes (where the lines usually are not).
    pub legend_at: SeriesLabelPosition,
    /// The note drawn when no line has a point.
    pub empty_note: String,
}

impl Figure for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let linear = |r: Range<f64>| RangedCoordf64::from(r);
        let log = |r: Range<f64>| -> LogCoord<f64> { r.log_scale().into() };
        match (&self.x, &self.y) {
            (Scale::Linear(x), Scale::Linear(y)) => self.draw_on(root, linear(x.clone()), linear(y.clone())),
            (Scale::Linear(x), Scale::Log(y)) => self.draw_on(root, linear(x.clone()), log(y.clone())),
            (Scale::Log(x), Scale::Linear(y)) => self.draw_on(root, log(x.clone()), linear(y.clone())),
            (Scale::Log(x), Scale::Log(y)) => self.draw_on(root, log(x.clone()), log(y.clone())),
        }
    }
}

/// Colour of failure marks.
const FAILURE: RGBColor = RGBColor(204, 0, 0);

impl LineChart {
    fn draw_on<DB, X, Y>(&self, root: &DrawingArea<DB, Shift>, x: X, y: Y) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let root = root.margin(10, 30, 10, 30);
        let mut context = ChartBuilder::on(&root)
            .caption(&self.title, (FAMILY, 26))
            .margin(10)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(x, y)?;

        context
            .configure_mesh()
            .x_desc(&self.x_title)
            .y_desc(&self.y_title)
            .axis_desc_style((FAMILY, 18))
            .label_style((FAMILY, 14))
            .x_label_formatter(&super::axis::tick_label)
            .y_label_formatter(&super::axis::tick_label)
            .bold_line_style(RGBColor(200, 200, 200))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;

        let (x_range, y_range) = (self.x.range(), self.y.range());
        for span in &self.spans {
            let end = span.end.unwrap_or(x_range.end).min(x_range.end);
            let band = Rectangle::new(
                [(span.start, y_range.start), (end, y_range.end)],
                FAILURE.mix(0.12).filled(),
            );
            let start_line = PathElement::new(
                [(span.start, y_range.start), (span.start, y_range.end)],
                FAILURE.stroke_width(2),
            );
            context
                .draw_series([band])?
                .label(&span.label)
                .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 24, y + 6)], FAILURE.mix(0.35).filled()));
            context.draw_series([start_line])?;
            if let Some(end) = span.end.filter(|&e| e <= x_range.end) {
                let recovered = RGBColor(0, 158, 115);
                context.draw_series([PathElement::new(
                    [(end, y_range.start), (end, y_range.end)],
                    recovered.stroke_width(2),
                )])?;
            }
        }

        for (index, line) in self.lines.iter().enumerate() {
            let style = series_colour(index).stroke_width(2);
            context
                .draw_series(LineSeries::new(line.points.iter().copied(), style))?
                .label(if line.points.is_empty() {
                    format!("{} (no data)", line.name)
                } else {
                    line.name.clone()
                })
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
        }
        if !self.lines.is_empty() || !self.spans.is_empty() {
            context
                .configure_series_labels()
                .position(self.legend_at.clone())
                .label_font((FAMILY, 15))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .margin(12)
                .draw()?;
        }
        if self.lines.iter().all(|line| line.points.is_empty()) {
            centred_note(&root, &self.empty_note)?;
        }
        Ok(())
    }
}
