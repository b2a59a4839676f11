//! Latency percentiles against a swept parameter, throughput on a second axis: the chart that
//! shows the sweet spot — where latency is low and the engine still keeps up.
//!
//! One colour per engine configuration; p50, p95 and p99 are lines of growing weight with
//! their own marker, throughput (right axis) is dashed. The latency axis turns logarithmic
//! when the latencies span more than two orders of magnitude, the parameter axis when its
//! values do.

use std::ops::Range;
use std::path::Path;

use plotters::chart::SeriesLabelPosition;
use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis;
use super::font::FAMILY;
use super::palette::series_colour;
use super::render::{centred_note, write_svg_and_png, DrawResult, Figure, FigureFiles};
use crate::error::Result;

/// Ratio above which an axis turns logarithmic.
const LOG_ABOVE_RATIO: f64 = 100.0;

/// One engine configuration's figures at one value of the swept parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// The parameter's value, in the unit of the x axis.
    pub x: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 95th percentile latency, ms.
    pub p95: f64,
    /// 99th percentile latency, ms.
    pub p99: f64,
    /// Throughput, events/s.
    pub throughput_eps: f64,
}

/// One engine configuration across the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepLine {
    /// The configuration's name, shown in the legend.
    pub name: String,
    /// Its figures, one per parameter value, in increasing `x`.
    pub points: Vec<SweepPoint>,
}

/// Draws p50/p95/p99 latency (left axis, ms) and throughput (right axis, events/s) of each
/// line against the swept parameter (`x_title` names it with its unit) as `path` (SVG) and the
/// same stem `.png`. `bounds` are latency limits drawn as horizontal red lines, for example
/// `("SLO p99 ≤ 2 s", 2000.0)`.
pub fn latency_against_parameter(
    path: &Path,
    title: &str,
    x_title: &str,
    lines: &[SweepLine],
    bounds: &[(String, f64)],
) -> Result<FigureFiles> {
    let figure = SweepFigure {
        title: title.to_string(),
        x_title: x_title.to_string(),
        lines: lines.to_vec(),
        bounds: bounds.to_vec(),
    };
    write_svg_and_png(path, &figure)
}

struct SweepFigure {
    title: String,
    x_title: String,
    lines: Vec<SweepLine>,
    bounds: Vec<(String, f64)>,
}

/// Room above the data for the legend: ranges reach this factor above the largest value.
const LEGEND_ROOM: f64 = 1.5;

const PERCENTILES: [(&str, u32); 3] = [("p50", 1), ("p95", 2), ("p99", 3)];

impl SweepPoint {
    fn percentile(&self, index: usize) -> f64 {
        [self.p50, self.p95, self.p99][index]
    }
}

fn wide(values: impl IntoIterator<Item = f64>) -> bool {
    axis::positive_bounds(values).is_some_and(|(lo, hi)| hi / lo > LOG_ABOVE_RATIO)
}

impl Figure for SweepFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let points = || self.lines.iter().flat_map(|l| l.points.iter());
        let xs: Vec<f64> = points().map(|p| p.x).collect();
        let ys: Vec<f64> = points()
            .flat_map(|p| [p.p50, p.p95, p.p99])
            .chain(self.bounds.iter().map(|b| b.1))
            .collect();
        let throughput = axis::zero_based_range(points().map(|p| p.throughput_eps));
        let throughput = throughput.start..throughput.end * LEGEND_ROOM;
        let log_x = wide(xs.iter().copied()) && xs.iter().all(|&x| x > 0.0);
        let log_y = wide(ys.iter().copied());
        let x_range = if log_x {
            axis::log_range(xs)
        } else {
            padded(axis::span_range(xs))
        };
        let linear = |r: Range<f64>| RangedCoordf64::from(r);
        let log = |r: Range<f64>| -> LogCoord<f64> { r.log_scale().into() };
        if log_y {
            let y_range = axis::log_range(ys);
            let y_range = y_range.start..y_range.end * 10.0;
            if log_x {
                self.draw_on(
                    root,
                    [log(x_range.clone()), log(x_range)],
                    log(y_range.clone()),
                    y_range,
                    throughput,
                    true,
                )
            } else {
                self.draw_on(
                    root,
                    [linear(x_range.clone()), linear(x_range)],
                    log(y_range.clone()),
                    y_range,
                    throughput,
                    true,
                )
            }
        } else {
            let y_range = axis::zero_based_range(ys);
            let y_range = y_range.start..y_range.end * LEGEND_ROOM;
            if log_x {
                self.draw_on(
                    root,
                    [log(x_range.clone()), log(x_range)],
                    linear(y_range.clone()),
                    y_range,
                    throughput,
                    false,
                )
            } else {
                self.draw_on(
                    root,
                    [linear(x_range.clone()), linear(x_range)],
                    linear(y_range.clone()),
                    y_range,
                    throughput,
                    false,
                )
            }
        }
    }
}

/// A linear range with 5 % room on both sides, so end points and their markers show whole.
fn padded(range: Range<f64>) -> Range<f64> {
    let pad = (range.end - range.start) * 0.05;
    range.start - pad..range.end + pad
}

impl SweepFigure {
    fn draw_on<DB, X, Y>(
        &self,
        root: &DrawingArea<DB, Shift>,
        [x, x2]: [X; 2],
        y: Y,
        y_range: Range<f64>,
        throughput: Range<f64>,
        log_y: bool,
    ) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let root = root.margin(10, 10, 10, 10);
        let mut context = ChartBuilder::on(&root)
            .caption(&self.title, (FAMILY, 26))
            .margin(10)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .right_y_label_area_size(90)
            .build_cartesian_2d(x, y)?
            .set_secondary_coord(x2, RangedCoordf64::from(throughput));
        let y_title = if log_y {
            "latency (ms, log scale)"
        } else {
            "latency (ms)"
        };
        context
            .configure_mesh()
            .x_desc(&self.x_title)
            .y_desc(y_title)
            .axis_desc_style((FAMILY, 18))
            .label_style((FAMILY, 14))
            .x_label_formatter(&axis::tick_label)
            .y_label_formatter(&axis::tick_label)
            .bold_line_style(RGBColor(200, 200, 200))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        context
            .configure_secondary_axes()
            .y_desc("throughput (events/s, dashed)")
            .axis_desc_style((FAMILY, 18))
            .label_style((FAMILY, 14))
            .y_label_formatter(&axis::tick_label)
            .draw()?;

        let floor = y_range.start;
        let x_span = axis::span_range(self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.x)));
        for (label, limit) in &self.bounds {
            let red = RGBColor(204, 0, 0).stroke_width(2);
            context
                .draw_series(DashedLineSeries::new(
                    [(x_span.start, *limit), (x_span.end, *limit)],
                    10,
                    6,
                    red,
                ))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], red));
        }
        for (index, line) in self.lines.iter().enumerate() {
            let colour = series_colour(index);
            for (p, &(label, width)) in PERCENTILES.iter().enumerate() {
                let style = colour.stroke_width(width);
                let pts: Vec<(f64, f64)> = line.points.iter().map(|q| (q.x, q.percentile(p).max(floor))).collect();
                context
                    .draw_series(LineSeries::new(pts.iter().copied(), style))?
                    .label(format!("{} {label}", line.name))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
                context.draw_series(pts.iter().map(|&pt| -> DynElement<'static, DB, (f64, f64)> {
                    match p {
                        0 => Circle::new(pt, 4, colour.stroke_width(2)).into_dyn(),
                        1 => TriangleMarker::new(pt, 5, colour.filled()).into_dyn(),
                        _ => Circle::new(pt, 5, colour.filled()).into_dyn(),
                    }
                }))?;
            }
            let dashed = colour.mix(0.8).stroke_width(2);
            let pts: Vec<(f64, f64)> = line.points.iter().map(|q| (q.x, q.throughput_eps)).collect();
            context
                .draw_secondary_series(DashedLineSeries::new(pts.iter().copied(), 8, 5, dashed))?
                .label(format!("{} throughput (right axis)", line.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 10, y)], dashed));
            context.draw_secondary_series(pts.iter().map(|&pt| Cross::new(pt, 5, colour.stroke_width(2))))?;
        }
        if !self.lines.is_empty() {
            context
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font((FAMILY, 14))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .margin(10)
                .draw()?;
        }
        if self.lines.iter().all(|l| l.points.is_empty()) {
            centred_note(&root, "no sweep points recorded")?;
        }
        Ok(())
    }
}
