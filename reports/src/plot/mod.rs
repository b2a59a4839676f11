//! Charts of a run, drawn with plotters and a bundled font, each written as SVG and PNG.
//!
//! Every chart is 1000×600 with gridlines, titled axes with units, a legend and the
//! colour-blind-safe Okabe–Ito palette; [`render`] draws one description to both formats. Charts never panic on awkward data: empty input
//! draws empty axes with a note, a single point or all-zero latencies get a usable range, and
//! zero latencies on a log axis are drawn at the axis' lower edge.
//!
//! * [`latency_cdf`] — the distribution of each run's latency, on a log latency axis.
//! * [`latency_over_time`] — latency against time since the run started, failures marked
//!   ([`latency_over_time_with_failures`]).
//! * [`latency_against_parameter`] — p50/p95/p99 and throughput across a sweep.
//! * [`latency_decomposition`] — stacked mean latency components per configuration.
//! * [`batch_timeline`] — a Gantt chart of micro-batch phases, falling behind outlined.
//! * [`watermark_progress`] — the watermark against processing time.
//! * [`checkpoint_cost`] — checkpoint size and duration over time.

mod axis;
mod batches;
mod cdf;
mod chart;
mod checkpoints;
mod decomposition;
mod font;
mod over_time;
mod palette;
pub mod render;
mod sweep;
mod watermark;

pub use batches::{batch_timeline, BatchBar, BatchRun, MAX_BATCHES_PER_RUN, PHASES};
pub use cdf::{latency_cdf, latency_cdf_points};
pub use checkpoints::{checkpoint_cost, CheckpointPoint, CheckpointSeries};
pub use decomposition::{latency_decomposition, DecompositionBar};
pub use over_time::{latency_over_time, latency_over_time_with_failures, FailureMark, TimeSeries};
pub use render::FigureFiles;
pub use sweep::{latency_against_parameter, SweepLine, SweepPoint};
pub use watermark::{watermark_progress, WatermarkSeries};

#[cfg(test)]
mod tests {
    use hdrhistogram::Histogram;

    use super::*;

    fn histogram(values_ms: &[f64]) -> Histogram<u64> {
        let mut hist = Histogram::<u64>::new(3).unwrap();
        for &ms in values_ms {
            hist.record((ms * 1e6) as u64).unwrap();
        }
        hist
    }

    fn read(path: &std::path::Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn both_charts_name_their_series_and_axes() {
        let dir = tempfile::tempdir().unwrap();
        let batch = histogram(&(1..=2000).map(|i| 500.0 + i as f64 / 4.0).collect::<Vec<_>>());
        let record = histogram(&(1..=2000).map(|i| 0.05 + i as f64 / 1000.0).collect::<Vec<_>>());
        let cdf = dir.path().join("latency-cdf.svg");
        latency_cdf(
            &cdf,
            "Latency distribution",
            &[("spark-1s".to_string(), &batch), ("flink".to_string(), &record)],
        )
        .unwrap();
        let svg = read(&cdf);
        for text in ["spark-1s", "flink", "latency (ms, log scale)", "percentile (%)"] {
            assert!(svg.contains(text), "{text} missing from the CDF chart");
        }

        let over_time = dir.path().join("latency-over-time.svg");
        let series = [
            TimeSeries {
                name: "spark-1s".to_string(),
                points: (0..600)
                    .map(|i| (i as f64 / 10.0, 500.0 + (i % 10) as f64 * 100.0))
                    .collect(),
            },
            TimeSeries {
                name: "flink".to_string(),
                points: (0..600).map(|i| (i as f64 / 10.0, 2.0 + (i % 7) as f64)).collect(),
            },
        ];
        latency_over_time(&over_time, "Latency over time", &series).unwrap();
        let svg = read(&over_time);
        for text in ["spark-1s", "flink", "time since start (s)", "latency (ms)"] {
            assert!(svg.contains(text), "{text} missing from the over-time chart");
        }
    }

    #[test]
    fn empty_and_degenerate_input_draws_a_chart() {
        let dir = tempfile::tempdir().unwrap();
        let empty = Histogram::<u64>::new(3).unwrap();
        let zero = histogram(&[0.0, 0.0]);

        let path = dir.path().join("empty-cdf.svg");
        latency_cdf(&path, "nothing", &[]).unwrap();
        assert!(read(&path).contains("no data recorded"));

        let path = dir.path().join("degenerate-cdf.svg");
        latency_cdf(
            &path,
            "degenerate",
            &[("empty".to_string(), &empty), ("zero".to_string(), &zero)],
        )
        .unwrap();
        let svg = read(&path);
        assert!(svg.contains("empty (no data)") && svg.contains("zero"));

        let path = dir.path().join("empty-over-time.svg");
        latency_over_time(&path, "nothing", &[]).unwrap();
        assert!(read(&path).contains("no data recorded"));

        let path = dir.path().join("single-point.svg");
        let single = TimeSeries {
            name: "single".to_string(),
            points: vec![(1.0, 0.0)],
        };
        latency_over_time(&path, "one point", &[single]).unwrap();
        assert!(read(&path).contains("single"));
    }

    #[test]
    fn unwritable_path_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("chart.svg");
        let err = latency_over_time(&path, "t", &[]).unwrap_err();
        assert!(err.to_string().contains("chart.svg"), "{err}");
    }

    #[test]
    fn new_charts_draw_svg_and_png_even_without_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        let files = batch_timeline(&p("batches.svg"), "t", &[]).unwrap();
        assert!(read(&files.svg).contains("no micro-batches recorded"));
        assert!(
            std::fs::metadata(&files.png).unwrap().len() > 1000,
            "a PNG is written next to the SVG"
        );
        let files = checkpoint_cost(&p("checkpoints.svg"), "t", &[]).unwrap();
        assert!(read(&files.svg).contains("no checkpoints recorded"));
        let files = watermark_progress(&p("watermark.svg"), "t", &[]).unwrap();
        assert!(read(&files.svg).contains("no watermarks recorded"));
        let files = latency_decomposition(&p("decomposition.svg"), "t", &[]).unwrap();
        assert!(read(&files.svg).contains("no latency components recorded"));
        let files = latency_against_parameter(&p("sweep.svg"), "t", "rate (events/s)", &[], &[]).unwrap();
        assert!(read(&files.svg).contains("no sweep points recorded"));
    }

    #[test]
    fn single_bars_batches_and_points_get_usable_axes() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        let bar = DecompositionBar {
            name: "only".into(),
            components: vec![("trigger_wait".into(), 500.0), ("processing".into(), 3.0)],
        };
        let svg = read(&latency_decomposition(&p("d.svg"), "t", &[bar]).unwrap().svg);
        for text in [
            "only",
            "trigger_wait",
            "processing",
            "mean latency (ms), by component",
            "503 ms",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        let batch = BatchBar {
            batch_id: 7,
            trigger_s: 1.0,
            start_s: 1.5,
            phases: vec![("addBatch".into(), 2000.0), ("walCommit".into(), 0.3)],
            falling_behind: true,
        };
        let run = BatchRun {
            name: "mb".into(),
            batches: vec![batch],
        };
        let svg = read(&batch_timeline(&p("b.svg"), "t", &[run]).unwrap().svg);
        for text in [
            "mb",
            "batch id",
            "processing time since start (s)",
            "falling behind (outlined)",
            "addBatch",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        let line = SweepLine {
            name: "pr".into(),
            points: vec![SweepPoint {
                x: 100.0,
                p50: 1.0,
                p95: 2.0,
                p99: 3.0,
                throughput_eps: 5000.0,
            }],
        };
        let svg = read(
            &latency_against_parameter(
                &p("s.svg"),
                "t",
                "interval (ms)",
                &[line],
                &[("SLO p99 ≤ 2 s".into(), 2000.0)],
            )
            .unwrap()
            .svg,
        );
        for text in [
            "pr p99",
            "pr throughput (right axis)",
            "interval (ms)",
            "throughput (events/s, dashed)",
            "SLO p99",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }
}
