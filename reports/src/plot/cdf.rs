//! The latency distribution of several runs on one chart.
//!
//! x is latency on a log axis (micro-batch and per-record latencies differ by orders of
//! magnitude), y is the percentile of outputs at or below that latency, 0–100.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::chart::SeriesLabelPosition;

use super::axis;
use super::chart::{Line, LineChart, Scale};
use super::render::{write_svg_and_png, FigureFiles};
use crate::error::Result;
use crate::NANOS_PER_MILLI;

/// Draws the latency CDF of each named histogram (latencies in **nanoseconds**) into an SVG
/// file at `path` and a PNG next to it: x = latency in ms (log scale), y = percentile (%).
pub fn latency_cdf(path: &Path, title: &str, series: &[(String, &Histogram<u64>)]) -> Result<()> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, hist)| (name.clone(), cdf_points(hist)))
        .collect();
    latency_cdf_points(path, title, &curves).map(|_| ())
}

/// Draws latency CDFs given as (latency ms, percentile %) points per named series — for
/// example the rows of an `.hgrm` export — as `path` (SVG) and the same stem `.png`.
pub fn latency_cdf_points(path: &Path, title: &str, series: &[(String, Vec<(f64, f64)>)]) -> Result<FigureFiles> {
    let x_range = axis::log_range(series.iter().flat_map(|(_, points)| points.iter().map(|p| p.0)));
    let floor = x_range.start;
    let lines = series
        .iter()
        .map(|(name, points)| Line {
            name: name.clone(),
            points: points.iter().map(|&(x, y)| (x.max(floor), y)).collect(),
        })
        .collect();
    let chart = LineChart {
        title: title.to_string(),
        x_title: "latency (ms, log scale)".to_string(),
        y_title: "percentile (%)".to_string(),
        x: Scale::Log(x_range),
        y: Scale::Linear(0.0..100.0),
        lines,
        spans: Vec::new(),
        legend_at: SeriesLabelPosition::UpperLeft,
        empty_note: "no data recorded".to_string(),
    };
    write_svg_and_png(path, &chart)
}

/// (latency ms, cumulative %) at every recorded value, starting from 0 % at the lowest one.
fn cdf_points(hist: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = hist.len() as f64;
    let mut cumulative = 0u64;
    let mut points = Vec::new();
    for step in hist.iter_recorded() {
        let ms = step.value_iterated_to() as f64 / NANOS_PER_MILLI;
        if points.is_empty() {
            points.push((ms, 0.0));
        }
        cumulative += step.count_since_last_iteration();
        points.push((ms, 100.0 * cumulative as f64 / total));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_rises_from_zero_to_one_hundred_percent() {
        let mut hist = Histogram::<u64>::new(3).unwrap();
        for ns in [1_000_000, 1_000_000, 3_000_000, 10_000_000] {
            hist.record(ns).unwrap();
        }
        let points = cdf_points(&hist);
        assert_eq!(points.len(), 4);
        assert_eq!(points[0].1, 0.0);
        assert_eq!(points[1].1, 50.0);
        assert_eq!(points[3].1, 100.0);
        assert!((points[3].0 - 10.0).abs() < 0.01);
    }
}
