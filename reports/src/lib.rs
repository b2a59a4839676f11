//! streamlab's reports: what a run leaves behind, in formats other tools and people can read.
//!
//! The engines measure; this crate only turns plain data (histograms, time series, counts)
//! into outputs, so it never depends on the engines and can be tested on hand-made inputs.
//!
//! * [`hgrm`] — raw latency exports in HdrHistogram's percentile-distribution text format, so
//!   HdrHistogram's own plotter tools can read them.
//! * [`summary`] — the stable, documented schema of `summary.json`, and a side-by-side table.
//! * [`plot`] — charts as SVG and PNG drawn with a bundled font, so they render the same on a
//!   machine without system fonts.
//! * [`layout`] — where each file of a results directory (or a sweep's) lives: the one place
//!   that knows, for the run that writes and the report that reads.
//! * [`results_dir`] — reading a results directory (or a sweep's) back.
//! * [`figures`] — a results directory's figures, labelled once for the run and the report.
//! * [`decision`] — a scenario's SLO and how far each configuration is from it.
//! * [`report`] — `report.html` and `report.md` with the decision record ([`write_report`]).
//! * [`error`] — what can go wrong, and whose fault it is.
//!
//! Latency histograms record **nanoseconds**; everything shown to people is in milliseconds.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod decision;
pub mod error;
pub mod figures;
pub mod hgrm;
pub mod layout;
pub mod plot;
pub mod report;
pub mod results_dir;
pub mod summary;

pub use error::{Error, Result};
pub use report::{write_report, ReportPaths};

/// Nanoseconds per millisecond: the ratio between what histograms record and what is shown.
pub const NANOS_PER_MILLI: f64 = 1e6;
