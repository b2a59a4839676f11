//! Where each file of a results directory (and of a sweep directory) lives: the one place that
//! knows the layout.
//!
//! `streamlab run` writes a results directory and `streamlab report` reads it back; both ask
//! [`ResultsLayout`] for every path, so a file is renamed or moved here and nowhere else. The
//! same holds for [`SweepLayout`] and `streamlab sweep`.
//!
//! ```text
//! summary.json                  the run's summary (crate::summary), required
//! scenario.toml                 the scenario as run
//! progress.jsonl                one progress record per line (batches, checkpoints, watermarks)
//! timeline.csv                  per 100 ms: outputs, mean and max latency, per run
//! latency-<run>.hgrm            latency histogram (HdrHistogram text), per run
//! event-time-latency-<run>.hgrm the same from event time (windowed pipelines)
//! sink-<run>.csv                what the run's sink delivered
//! sink-<run>.parts/<id>.csv     a durable sink's batch or transaction files, joined at the end
//! late-<run>.csv                events dropped behind the watermark (side output)
//! latency-cdf.svg, latency-over-time.svg   the run's plots (and a PNG next to each)
//! checkpoints/<run>/            engines' durable checkpoints (kept for --resume)
//! checkpoints-failure-free/     scratch checkpoints of the failure-free baseline run
//! measurement-rounds/           scratch checkpoints and sink files of a `repeat` run's
//!                               measurement rounds, removed after each round
//! ```
//!
//! `<run>` is the run's name as [`slug`] spells it for a file name.

use std::path::{Path, PathBuf};

/// The file-name form of a run name, as the run writes it: lowercase ASCII alphanumerics,
/// other characters folded into single dashes (`"micro-batch 1s"` → `"micro-batch-1s"`).
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

/// The paths of one results directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsLayout {
    dir: PathBuf,
}

impl ResultsLayout {
    /// `summary.json`.
    pub const SUMMARY: &'static str = "summary.json";
    /// `scenario.toml`.
    pub const SCENARIO: &'static str = "scenario.toml";
    /// `progress.jsonl`.
    pub const PROGRESS: &'static str = "progress.jsonl";
    /// `timeline.csv`.
    pub const TIMELINE: &'static str = "timeline.csv";
    /// The latency distribution plot.
    pub const LATENCY_CDF_PLOT: &'static str = "latency-cdf.svg";
    /// The latency-over-time plot.
    pub const LATENCY_OVER_TIME_PLOT: &'static str = "latency-over-time.svg";
    /// The engines' checkpoint directories.
    pub const CHECKPOINTS: &'static str = "checkpoints";
    /// Scratch checkpoints of the failure-free baseline run.
    pub const FAILURE_FREE_CHECKPOINTS: &'static str = "checkpoints-failure-free";
    /// Scratch space of the measurement rounds before the kept run (`repeat`).
    pub const MEASUREMENT_ROUNDS: &'static str = "measurement-rounds";

    /// The layout of the results directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `summary.json`.
    pub fn summary(&self) -> PathBuf {
        self.dir.join(Self::SUMMARY)
    }

    /// `scenario.toml`, the scenario as run.
    pub fn scenario(&self) -> PathBuf {
        self.dir.join(Self::SCENARIO)
    }

    /// `progress.jsonl`.
    pub fn progress(&self) -> PathBuf {
        self.dir.join(Self::PROGRESS)
    }

    /// `timeline.csv`.
    pub fn timeline(&self) -> PathBuf {
        self.dir.join(Self::TIMELINE)
    }

    /// `latency-<run>.hgrm`.
    pub fn latency_hgrm(&self, run: &str) -> PathBuf {
        self.dir.join(format!("latency-{}.hgrm", slug(run)))
    }

    /// `event-time-latency-<run>.hgrm`.
    pub fn event_time_latency_hgrm(&self, run: &str) -> PathBuf {
        self.dir.join(format!("event-time-latency-{}.hgrm", slug(run)))
    }

    /// `sink-<run>.csv`.
    pub fn sink(&self, run: &str) -> PathBuf {
        self.dir.join(format!("sink-{}.csv", slug(run)))
    }

    /// `sink-<run>.parts`: a durable sink's files, one per batch or committed transaction.
    pub fn sink_parts(&self, run: &str) -> PathBuf {
        self.dir.join(format!("sink-{}.parts", slug(run)))
    }

    /// The file of batch or transaction `id` in a [`sink_parts`](Self::sink_parts) directory.
    pub fn sink_part(parts: &Path, id: u64) -> PathBuf {
        parts.join(format!("{id:010}.csv"))
    }

    /// `late-<run>.csv`, the events dropped behind the watermark.
    pub fn late(&self, run: &str) -> PathBuf {
        self.dir.join(format!("late-{}.csv", slug(run)))
    }

    /// `latency-cdf.svg`.
    pub fn latency_cdf_plot(&self) -> PathBuf {
        self.dir.join(Self::LATENCY_CDF_PLOT)
    }

    /// `latency-over-time.svg`.
    pub fn latency_over_time_plot(&self) -> PathBuf {
        self.dir.join(Self::LATENCY_OVER_TIME_PLOT)
    }

    /// `checkpoints/`: under it, one checkpoint directory per run ([`Self::run_checkpoints`]).
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join(Self::CHECKPOINTS)
    }

    /// `checkpoints-failure-free/`, the baseline run's scratch checkpoints.
    pub fn failure_free_checkpoints(&self) -> PathBuf {
        self.dir.join(Self::FAILURE_FREE_CHECKPOINTS)
    }

    /// `measurement-rounds/`: the checkpoints and sink files of the measurement rounds that
    /// precede the kept run of a scenario with `repeat` (removed after each round).
    pub fn measurement_rounds(&self) -> PathBuf {
        self.dir.join(Self::MEASUREMENT_ROUNDS)
    }

    /// A run's checkpoint directory under a checkpoint root (`<root>/<run>`).
    pub fn run_checkpoints(root: &Path, run: &str) -> PathBuf {
        root.join(slug(run))
    }

    /// The data files, as `streamlab run` lists them for people.
    pub fn listing() -> String {
        format!(
            "{}, {}, latency-*.hgrm, sink-*.csv, {}",
            Self::SUMMARY,
            Self::PROGRESS,
            Self::TIMELINE
        )
    }
}

/// The paths of one sweep directory: `sweep.json`, `sweep.csv`, and a results directory per
/// point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepLayout {
    dir: PathBuf,
}

impl SweepLayout {
    /// `sweep.json`.
    pub const SWEEP: &'static str = "sweep.json";
    /// `sweep.csv`.
    pub const SWEEP_CSV: &'static str = "sweep.csv";

    /// The layout of the sweep directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `sweep.json`.
    pub fn sweep(&self) -> PathBuf {
        self.dir.join(Self::SWEEP)
    }

    /// `sweep.csv`.
    pub fn sweep_csv(&self) -> PathBuf {
        self.dir.join(Self::SWEEP_CSV)
    }

    /// The results directory of a point, `point` being its name relative to the sweep.
    pub fn point(&self, point: &str) -> PathBuf {
        self.dir.join(point)
    }
}

/// Where `streamlab run` and `streamlab sweep` put a results directory when not told: `results/`
/// under the working directory.
pub const DEFAULT_ROOT: &str = "results";

/// The newest results or sweep directory directly under `root` (the one whose `summary.json` or
/// `sweep.json` was written last), for `streamlab report` without arguments; `None` when `root`
/// holds none.
pub fn newest_results(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter_map(|dir| {
            let marker = [SweepLayout::new(&dir).sweep(), ResultsLayout::new(&dir).summary()]
                .into_iter()
                .find(|f| f.is_file())?;
            let written = std::fs::metadata(marker).and_then(|m| m.modified()).ok()?;
            Some((written, dir))
        })
        .max()
        .map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_files_carry_the_slug_of_the_run_name() {
        let l = ResultsLayout::new("out");
        assert_eq!(
            l.latency_hgrm("micro-batch 1s"),
            Path::new("out/latency-micro-batch-1s.hgrm")
        );
        assert_eq!(l.sink_parts("PR"), Path::new("out/sink-pr.parts"));
        assert_eq!(
            ResultsLayout::sink_part(Path::new("p"), 7),
            Path::new("p/0000000007.csv")
        );
    }
}
