//! Progress off a terminal, and Ctrl-C: `streamlab run` with its stderr piped writes one line
//! as each engine run starts and one with its figures as it ends (no bar); a SIGINT in the
//! middle of a live run stops it cleanly — the results directory holds the sink files and a
//! `summary.json` that says when it was interrupted, which run it stopped and which never ran —
//! and the message says how to resume; in a repeated run's measurement rounds it keeps nothing
//! and says so. A simulated run's lines give its batches falling behind and checkpoints. Costs about 10 s (short live runs of the debug binary).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scenario(duration: &str, checkpoint: &str) -> String {
    format!(
        r#"
name = "progress"
seed = 3
duration = "{duration}"
drain = "500ms"
clock = "live"
[workload]
partitions = 2
rate = {{ profile = "constant", events_per_second = 2000 }}
disorder = {{ bound = "50ms" }}
[pipeline]
filter_kinds = ["view", "click"]
[pipeline.aggregate]
key_by = "page"
window = {{ kind = "tumbling", size = "500ms" }}
function = "count"
[[engine]]
name = "mb"
model = "micro-batch"
trigger = {{ kind = "processing_time", interval = "200ms" }}
watermark_delay = "50ms"
[[engine]]
name = "pr"
model = "per-record"
parallelism = 1
out_of_orderness = "50ms"
{checkpoint}
"#
    )
}

/// Runs `scenario` into `out`, sends it a SIGINT once `file` (under `out`) exists, and returns
/// its stderr after checking it stopped soon, with status 130.
fn interrupted_once(scenario: &str, out: &Path, file: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["run", scenario, "--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !out.join(file).exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "{file} never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the run went on to its end: {stderr}"
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    stderr
}

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("progress.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs `scenario` into `out` with stderr piped; returns stderr after checking it succeeded.
fn run_piped(scenario: &str, out: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["run", scenario, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    stderr
}

#[test]
fn off_a_terminal_each_engine_run_gets_a_line_as_it_starts_and_one_with_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let stderr = run_piped(&write(tmp.path(), &scenario("1s", "")), &out);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "[1/2] running `mb` (micro-batch)", "{stderr}");
    assert!(lines[1].starts_with("  `mb`: 1.5 s of 1.5 s (wall) · "), "{stderr}");
    assert!(
        lines[1].contains(" events read · ") && lines[1].contains(" batches falling behind"),
        "{stderr}"
    );
    assert_eq!(lines[2], "[2/2] running `pr` (per-record)", "{stderr}");
    assert!(lines[3].starts_with("  `pr`: 1.5 s of 1.5 s (wall) · "), "{stderr}");
    assert!(lines[3].contains(" checkpoints"), "{stderr}");
    // The figures are the run's own: its summary's events and outputs.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let events = summary["runs"][0]["counts"]["events"].as_u64().unwrap();
    let outputs = summary["runs"][0]["counts"]["outputs"].as_u64().unwrap();
    assert!(
        lines[1].contains(&format!(" {events} events read · {outputs} outputs")),
        "{stderr}"
    );
    // No bar drawing off a terminal.
    assert!(!stderr.contains('\r') && !stderr.contains("\u{1b}["), "{stderr:?}");
}

#[test]
fn ctrl_c_stops_a_live_run_cleanly_keeping_its_results_and_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write(tmp.path(), &scenario("30s", "checkpoint_interval = \"500ms\""));
    let out = tmp.path().join("out");
    // A few batches into the first engine run.
    let stderr = interrupted_once(&s, &out, "checkpoints/mb/commits/3");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let interrupted = &summary["interrupted"];
    assert_eq!(interrupted["engine"], "mb", "{summary}");
    let at = interrupted["at_s"].as_f64().unwrap();
    assert!(at > 0.0 && at < 30.0, "{at}");
    assert_eq!(interrupted["not_run"], serde_json::json!(["pr"]));
    assert!(interrupted["at_utc"].as_str().unwrap().ends_with('Z'));
    assert_eq!(summary["runs"].as_array().unwrap().len(), 1);
    let run = &summary["runs"][0];
    assert!(run["counts"]["outputs"].as_u64().unwrap() > 0, "{run}");
    assert!(run["notes"].to_string().contains("interrupted (Ctrl-C)"), "{run}");
    // Judged on what it read up to the stop, not on the events it never got to.
    assert_eq!(run["stability"], "keeps-up", "{run}");
    // What the sink delivered before the stop is on disk.
    let sink = std::fs::read_to_string(out.join("sink-mb.csv")).unwrap();
    assert!(sink.lines().count() > 1, "{sink}");

    assert!(stderr.contains("interrupted at "), "{stderr}");
    let resume = format!("streamlab run {s} --resume {}", out.display());
    assert!(stderr.contains(&resume), "{stderr}");
}

#[test]
fn off_a_terminal_a_simulated_run_reports_falling_behind_and_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    // Every batch overruns its 100 ms trigger (120 ms of modelled scheduling); the per-record
    // job checkpoints every 500 ms.
    let text = scenario("6s", "checkpoint_interval = \"500ms\"")
        .replace("clock = \"live\"", "clock = \"simulated\"\nprofile = \"local\"")
        .replace(
            "interval = \"200ms\" }",
            "interval = \"100ms\" }\nscheduling = { per_batch = \"100ms\", per_task = \"10ms\" }",
        );
    let out = tmp.path().join("out");
    let stderr = run_piped(&write(tmp.path(), &text), &out);
    // Simulated runs advance together: both start, then both end.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[..2],
        ["[1/2] running `mb` (micro-batch)", "[2/2] running `pr` (per-record)"],
        "{stderr}"
    );
    let figure = |line: &str, what: &str| -> u64 {
        let before = line.split(&format!(" {what}")).next().unwrap();
        before
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{what} in {line}"))
    };
    assert!(lines[2].starts_with("  `mb`: 6.5 s of 6.5 s (virtual) · "), "{stderr}");
    assert!(figure(lines[2], "batches falling behind") > 0, "{stderr}");
    assert!(lines[3].starts_with("  `pr`: 6.5 s of 6.5 s (virtual) · "), "{stderr}");
    assert!(lines[3].contains(" events read · "), "{stderr}");
    assert!(figure(lines[3], "checkpoints") > 0, "{stderr}");
    // The figures are the run's own.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let behind = summary["runs"][0]["counts"]["falling_behind"].as_u64().unwrap();
    assert_eq!(figure(lines[2], "batches falling behind"), behind, "{stderr}");
}

#[test]
fn ctrl_c_in_the_measurement_rounds_keeps_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let text = scenario("30s", "").replace("clock = \"live\"", "clock = \"live\"\nrepeat = 3");
    let s = write(tmp.path(), &text);
    let out = tmp.path().join("out");
    // A few batches into the first round's first engine run, in the rounds' scratch space.
    let stderr = interrupted_once(&s, &out, "measurement-rounds/checkpoints/mb/commits/2");
    assert!(
        stderr.contains("measurement round 1 of 3") && stderr.contains("nothing was kept"),
        "{stderr}"
    );
    assert!(!out.exists(), "the empty results directory is removed");
}
