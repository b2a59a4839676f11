//! A sweep's results as people and spreadsheets read them: `sweep.csv`, the terminal table,
//! and the progress shown while it runs.

use std::io::IsTerminal;
use std::time::Duration;

use super::SweepSummary;

/// `sweep.csv`: one row per point and engine run.
pub fn sweep_csv(summary: &SweepSummary) -> String {
    let mut out = String::new();
    let mut header: Vec<String> = summary.parameters.iter().map(|k| csv_field(k)).collect();
    header.extend(
        [
            "run",
            "model",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "max_ms",
            "throughput_eps",
            "falling_behind",
            "late_dropped",
        ]
        .map(String::from),
    );
    out.push_str(&header.join(","));
    out.push('\n');
    for point in &summary.points {
        for run in &point.summary.runs {
            let mut row: Vec<String> = summary
                .parameters
                .iter()
                .map(|k| csv_field(point.values.get(k).map_or("", String::as_str)))
                .collect();
            let l = &run.latency_ms;
            row.extend([
                csv_field(&run.name),
                csv_field(&run.model),
                format!("{:.3}", l.p50),
                format!("{:.3}", l.p95),
                format!("{:.3}", l.p99),
                format!("{:.3}", l.max),
                format!("{:.1}", run.throughput_eps),
                run.counts.falling_behind.to_string(),
                run.counts.late_dropped.to_string(),
            ]);
            out.push_str(&row.join(","));
            out.push('\n');
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Progress on stderr: an indicatif bar over all engine runs on a terminal, one line per
/// point otherwise (a log keeps it readable), nothing when disabled.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
}

impl Progress {
    pub(super) fn new(enabled: bool, runs: u64) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (enabled && terminal).then(|| {
            let bar = indicatif::ProgressBar::new(runs);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} runs  {wide_msg}")
                    .expect("a valid progress template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            lines: enabled && !terminal,
        }
    }

    pub(super) fn point(&self, i: usize, n: usize, label: &str) {
        if self.lines {
            eprintln!("[{i}/{n}] {label}");
        }
    }

    pub(super) fn engine(&self, label: &str, engine: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{label}: `{engine}`"));
        }
    }

    pub(super) fn engine_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A table of a sweep's results for the terminal: one row per point and engine run.
pub fn sweep_table(summary: &SweepSummary) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = summary.parameters.clone();
    header.extend(["run", "p50 (ms)", "p99 (ms)", "max (ms)", "events/s", "behind", "late"].map(String::from));
    // A join's, deduplication's or top-N's state, where a point has one.
    let state = summary
        .points
        .iter()
        .any(|p| p.summary.runs.iter().any(|r| r.counts.peak_state_rows > 0));
    if state {
        header.push("state (rows)".into());
    }
    header.push("keeping up".into());
    rows.push(header);
    for point in &summary.points {
        for run in &point.summary.runs {
            let mut row: Vec<String> = summary
                .parameters
                .iter()
                .map(|k| point.values.get(k).cloned().unwrap_or_default())
                .collect();
            let l = &run.latency_ms;
            // No outputs, no latency: `-`, never a 0.0 that reads as measured.
            let lat = |x: f64| {
                if run.has_latency() {
                    format!("{x:.1}")
                } else {
                    "-".into()
                }
            };
            row.extend([
                run.name.clone(),
                lat(l.p50),
                lat(l.p99),
                lat(l.max),
                format!("{:.0}", run.throughput_eps),
                run.counts.falling_behind.to_string(),
                run.counts.late_dropped.to_string(),
            ]);
            if state {
                row.push(run.counts.peak_state_rows.to_string());
            }
            row.push(run.stability.map_or("-", |s| s.cell()).to_string());
            rows.push(row);
        }
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let numeric_from = summary.parameters.len() + 1;
    let text_from = columns - 1;
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c >= numeric_from && c < text_from {
                    format!("{cell:>w$}", w = widths[c])
                } else {
                    format!("{cell:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
