//! The figures of one results directory, drawn from what the directory holds: the run draws
//! them when it finishes, the report draws them again for its pages, and both go through here
//! so a figure has one set of labels.
//!
//! [`crate::plot`] knows charts of plain data; this module knows which runs, series and
//! failure marks a results directory's figure shows and how they are labelled.

use hdrhistogram::Histogram;

use crate::error::Result;
use crate::layout::ResultsLayout;
use crate::plot::{self, FigureFiles};
use crate::results_dir::TimelineRow;
use crate::summary::RunSummary;

/// The latency-over-time figure of `runs`: per run, the largest latency of each 100 ms bucket
/// of `timeline`, and each run's failures shaded until it recovered.
pub fn latency_over_time(
    path: &std::path::Path,
    title: &str,
    runs: &[RunSummary],
    timeline: &[TimelineRow],
) -> Result<FigureFiles> {
    let series: Vec<plot::TimeSeries> = runs
        .iter()
        .map(|r| plot::TimeSeries {
            name: format!("{} (max per 100 ms)", r.name),
            points: timeline
                .iter()
                .filter(|row| row.run == r.name)
                .map(|row| (row.time_s, row.max_latency_ms))
                .collect(),
        })
        .collect();
    plot::latency_over_time_with_failures(path, title, &series, &failure_marks(runs))
}

/// Each run's failures, as the over-time figure marks them.
pub fn failure_marks(runs: &[RunSummary]) -> Vec<plot::FailureMark> {
    runs.iter()
        .flat_map(|r| {
            r.failures.iter().map(|f| plot::FailureMark {
                label: format!(
                    "{}: {} (shaded until recovered)",
                    r.name,
                    if f.kind.is_empty() { "failure" } else { &f.kind }
                ),
                at_s: f.at_ms / 1000.0,
                recovered_s: f.recovered_ms.map(|m| m / 1000.0),
            })
        })
        .collect()
}

/// The plots a run leaves in its results directory: the latency distribution of every run
/// (from its histogram, in nanoseconds) and latency over time.
pub fn write_run_plots(
    layout: &ResultsLayout,
    scenario: &str,
    runs: &[RunSummary],
    histograms: &[(String, &Histogram<u64>)],
    timeline: &[TimelineRow],
) -> Result<()> {
    plot::latency_cdf(
        &layout.latency_cdf_plot(),
        &format!("{scenario}: latency distribution"),
        histograms,
    )?;
    latency_over_time(
        &layout.latency_over_time_plot(),
        &format!("{scenario}: latency over time"),
        runs,
        timeline,
    )?;
    Ok(())
}
