//! Latency against time since the run started, one line per run.
//!
//! This is the chart that shows a backlog building (latency that keeps growing) or a
//! micro-batch sawtooth. The y axis is linear from zero unless the positive latencies span
//! more than three orders of magnitude, where it turns logarithmic so the fast run stays
//! visible. Long series are thinned to the minimum and maximum of each of a fixed number of
//! time slices, which keeps spikes while bounding the SVG's size.

use std::path::Path;

use plotters::chart::SeriesLabelPosition;

use super::axis;
use super::chart::{Line, LineChart, Scale, Span};
use super::render::{write_svg_and_png, FigureFiles};
use crate::error::Result;

/// Ratio of largest to smallest positive latency above which the y axis is logarithmic.
const LOG_SCALE_ABOVE_RATIO: f64 = 1000.0;

/// Time slices a series is thinned to (each keeps its minimum and maximum point).
const MAX_SLICES: usize = 1000;

/// One run's latency over time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    /// Name of the run, shown in the legend.
    pub name: String,
    /// (seconds since the run started, latency in milliseconds), in time order.
    pub points: Vec<(f64, f64)>,
}

/// A failure to mark on the over-time chart: when it happened and when the run recovered.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureMark {
    /// Legend text, for example `"per-record: task crash"`.
    pub label: String,
    /// When the failure was injected, seconds since the run started.
    pub at_s: f64,
    /// When the run had recovered, seconds since the run started; `None` if it never did.
    pub recovered_s: Option<f64>,
}

/// Draws each series' latency over time as a line into an SVG file at `path` and a PNG next
/// to it: x = time since start (s), y = latency (ms).
pub fn latency_over_time(path: &Path, title: &str, series: &[TimeSeries]) -> Result<()> {
    latency_over_time_with_failures(path, title, series, &[]).map(|_| ())
}

/// [`latency_over_time`] with failures marked: a red line where each failure was injected
/// and a shaded band up to its recovery (green line), or to the end if it never recovered.
pub fn latency_over_time_with_failures(
    path: &Path,
    title: &str,
    series: &[TimeSeries],
    failures: &[FailureMark],
) -> Result<FigureFiles> {
    let mut lines: Vec<Line> = series
        .iter()
        .map(|s| Line {
            name: s.name.clone(),
            points: thin(&s.points, MAX_SLICES),
        })
        .collect();
    let all = || lines.iter().flat_map(|l| l.points.iter().copied());
    let marks = failures.iter().flat_map(|f| [Some(f.at_s), f.recovered_s]).flatten();
    let x_range = axis::span_range(all().map(|p| p.0).chain(marks));
    let log_y = axis::positive_bounds(all().map(|p| p.1)).is_some_and(|(lo, hi)| hi / lo > LOG_SCALE_ABOVE_RATIO);
    let (y, y_title) = if log_y {
        let y_range = axis::log_range(all().map(|p| p.1));
        let floor = y_range.start;
        for line in &mut lines {
            for point in &mut line.points {
                point.1 = point.1.max(floor);
            }
        }
        (Scale::Log(y_range), "latency (ms, log scale)")
    } else {
        (
            Scale::Linear(axis::zero_based_range(all().map(|p| p.1))),
            "latency (ms)",
        )
    };
    let spans = failures
        .iter()
        .map(|f| Span {
            label: f.label.clone(),
            start: f.at_s,
            end: f.recovered_s,
        })
        .collect();
    let chart = LineChart {
        title: title.to_string(),
        x_title: "time since start (s)".to_string(),
        y_title: y_title.to_string(),
        x: Scale::Linear(x_range),
        y,
        lines,
        spans,
        legend_at: SeriesLabelPosition::UpperRight,
        empty_note: "no data recorded".to_string(),
    };
    write_svg_and_png(path, &chart)
}

/// The finite points of `points`, thinned to at most two per time slice (the slice's lowest
/// and highest latency, in time order) when there are more than `2 * slices`.
fn thin(points: &[(f64, f64)], slices: usize) -> Vec<(f64, f64)> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect();
    if finite.len() <= 2 * slices {
        return finite;
    }
    let range = axis::span_range(finite.iter().map(|p| p.0));
    let width = (range.end - range.start) / slices as f64;
    let slice_of = |t: f64| (((t - range.start) / width) as usize).min(slices - 1);

    let mut thinned = Vec::with_capacity(2 * slices);
    let mut current: Option<Slice> = None;
    for point in finite {
        let index = slice_of(point.0);
        match &mut current {
            Some(slice) if slice.index == index => slice.add(point),
            _ => {
                if let Some(done) = current.take() {
                    done.push_to(&mut thinned);
                }
                current = Some(Slice {
                    index,
                    low: point,
                    high: point,
                });
            }
        }
    }
    if let Some(done) = current {
        done.push_to(&mut thinned);
    }
    thinned
}

/// The lowest and highest point of one time slice.
struct Slice {
    index: usize,
    low: (f64, f64),
    high: (f64, f64),
}

impl Slice {
    fn add(&mut self, point: (f64, f64)) {
        if point.1 < self.low.1 {
            self.low = point;
        }
        if point.1 > self.high.1 {
            self.high = point;
        }
    }

    /// Appends the slice's points in time order, once each.
    fn push_to(self, out: &mut Vec<(f64, f64)>) {
        let (first, second) = if self.low.0 <= self.high.0 {
            (self.low, self.high)
        } else {
            (self.high, self.low)
        };
        out.push(first);
        if second != first {
            out.push(second);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_spikes_and_bounds_the_point_count() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64 / 1000.0, 1.0)).collect();
        points[54_321].1 = 900.0;
        points.push((f64::NAN, 1.0));
        let thinned = thin(&points, 100);
        assert!(thinned.len() <= 200);
        assert!(thinned.iter().any(|p| p.1 == 900.0));
        assert!(thinned.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn short_series_are_kept_as_they_are() {
        let points = vec![(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(thin(&points, 100), points);
    }
}
