//! `streamlab report` end to end on a real run: a fixed, seeded scenario on the simulated clock
//! (byte-deterministic) is run by the `streamlab` binary, then reported.
//!
//! * The normalized `report.md` must equal `tests/golden/report.md` — structure and numbers.
//!   After an intended change, rewrite it with `STREAMLAB_BLESS=1 cargo test --test report`
//!   and review the diff.
//! * `report.html` must load in headless Chromium with every figure's SVG intact. Without
//!   Chromium the test is skipped with a message, except under CI (`CI` set), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use streamlab_reports::write_report;

/// The scenario the golden report is made from: the quickstart's two engines over 4 simulated
/// seconds, with an SLO only the per-record engine meets.
const SCENARIO: &str = r#"# The golden report's scenario (tests/report.rs).
name = "golden"
description = "Windowed click count: micro-batch 1 s against per-record, p99 <= 1 s"
seed = 42
duration = "4s"
drain = "2s"
clock = "simulated"
profile = "local"

[cluster]
nodes = 1
cores_per_node = 2

[slo]
p99 = "1s"

[workload]
partitions = 4
rate = { profile = "constant", events_per_second = 5000 }
disorder = { bound = "200ms", delay = "uniform", late_fraction = 0.0 }

[pipeline]
filter_kinds = ["click"]
lookup_join = true

[pipeline.aggregate]
key_by = "campaign"
window = { kind = "tumbling", size = "1s" }
function = "count"

[[engine]]
name = "micro-batch 1s"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "1s" }
watermark_delay = "200ms"

[[engine]]
name = "per-record"
model = "per-record"
parallelism = 2
buffer_timeout = "100ms"
auto_watermark_interval = "200ms"
out_of_orderness = "200ms"
"#;

/// Runs the golden scenario and writes its report; returns (temp dir guard, report dir).
fn golden_report() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("golden.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let results = tmp.path().join("results");
    let output = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["run"])
        .arg(&scenario)
        .arg("--out")
        .arg(&results)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "streamlab run failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = tmp.path().join("report");
    write_report(&[results], &report).unwrap();
    (tmp, report)
}

/// The report with what legitimately varies between machines taken out: the temporary
/// directory's path, trailing spaces.
fn normalize(text: &str, tmp: &Path) -> String {
    let text = text.replace(&tmp.display().to_string(), "<tmp>");
    text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

#[test]
fn report_md_of_the_seeded_simulated_scenario_matches_the_golden_file() {
    let (tmp, report) = golden_report();
    let actual = normalize(&std::fs::read_to_string(report.join("report.md")).unwrap(), tmp.path());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.md");
    if std::env::var_os("STREAMLAB_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&golden, &actual).unwrap();
        eprintln!("blessed {}", golden.display());
        return;
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with STREAMLAB_BLESS=1", golden.display()));
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "report.md drifted from {} at line {}:\n  actual:   {:?}\n  expected: {:?}\n\
             If the change is intended, rerun with STREAMLAB_BLESS=1 and review the diff.",
            golden.display(),
            first + 1,
            actual.lines().nth(first),
            expected.lines().nth(first)
        );
    }
    // Every figure the Markdown references was written next to it.
    for line in actual.lines().filter(|l| l.starts_with("![")) {
        let file = line.rsplit_once("](").unwrap().1.trim_end_matches(')');
        assert!(report.join(file).is_file(), "{file} is referenced but missing");
        assert!(report.join(file).with_extension("svg").is_file());
    }
}

/// The Chromium binary, if installed.
fn chromium() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    })
}

#[test]
fn report_html_loads_in_headless_chromium_with_every_plot_rendered() {
    let Some(chromium) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but Chromium is not installed: .ci/run installs it with apt-get (package `chromium`)");
        }
        eprintln!(
            "SKIPPED report_html_loads_in_headless_chromium_with_every_plot_rendered: \
             /usr/bin/chromium is not installed (apt-get install chromium); under CI this test fails instead"
        );
        return;
    };
    let (tmp, report) = golden_report();
    let html_path = report.join("report.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    for forbidden in ["<script", "http://", "https://", "@import", "url("] {
        let outside_svg_namespace = html.replace("http://www.w3.org/", "");
        assert!(
            !outside_svg_namespace.contains(forbidden),
            "report.html must be self-contained, found {forbidden}"
        );
    }
    let profile = tmp.path().join("chromium-profile");
    let output = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html_path.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && dom.contains("</html>"),
        "chromium did not load the report: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = html.matches("<svg").count();
    assert!(expected >= 5, "the report has {expected} figures");
    let figures: Vec<&str> = dom.split("<svg").skip(1).collect();
    assert_eq!(figures.len(), expected, "every inline SVG survives parsing");
    for (i, figure) in figures.iter().enumerate() {
        let body = &figure[..figure
            .find("</svg>")
            .unwrap_or_else(|| panic!("figure {i} is not closed"))];
        let shapes = ["<path", "<polyline", "<rect", "<circle", "<line"]
            .iter()
            .map(|tag| body.matches(tag).count())
            .sum::<usize>();
        assert!(shapes > 1, "figure {i} has no drawing in the rendered DOM");
        assert!(body.contains("<text"), "figure {i} has no text (titles, axes)");
    }
    assert!(!dom.contains("parsererror"), "the browser reported a parse error");
}
