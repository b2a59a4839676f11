//! A live run killed with SIGKILL and started again with `--resume DIR` continues from its
//! checkpoint directory and ends with the same committed output as an uninterrupted run; a
//! damaged or foreign checkpoint directory is refused, named, and left as it was.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SCENARIO: &str = r#"
name = "resume"
seed = 4
duration = "4s"
drain = "1s"
clock = "live"
[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 2000 }
disorder = { bound = "50ms" }
[pipeline]
filter_kinds = ["view", "click"]
[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "500ms" }
function = "count"
[[engine]]
name = "mb"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "200ms" }
watermark_delay = "50ms"
"#;

fn streamlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(args)
        .output()
        .expect("streamlab runs")
}

/// The committed output: window, count and value of every sink row, sorted (delivery times
/// and latencies differ between any two live runs).
fn committed(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("sink-mb.csv")).unwrap();
    let mut rows: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).take(5).collect::<Vec<_>>().join(","))
        .collect();
    rows.sort();
    rows
}

fn commits(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("checkpoints/mb/commits")).map_or(0, |d| d.count())
}

#[test]
fn a_run_killed_mid_way_resumes_to_the_same_committed_output() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("resume.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let s = scenario.to_str().unwrap();

    let whole = tmp.path().join("whole");
    let o = streamlab(&["run", s, "--out", whole.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = committed(&whole);
    assert!(expected.len() > 20, "{} windows", expected.len());

    let killed = tmp.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["run", s, "--out", killed.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while commits(&killed) < 6 {
        assert!(Instant::now() < deadline, "the run never committed six batches");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let at_kill = commits(&killed);
    assert!(at_kill < 25, "killed before the end ({at_kill} commits)");

    let o = streamlab(&["run", s, "--resume", killed.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(commits(&killed) > at_kill, "the resumed run went on committing");
    assert_eq!(
        committed(&killed),
        expected,
        "exactly the uninterrupted run's committed output"
    );
}

#[test]
fn a_damaged_or_foreign_checkpoint_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("resume.toml");
    std::fs::write(&scenario, SCENARIO.replace("duration = \"4s\"", "duration = \"1s\"")).unwrap();
    let dir = tmp.path().join("r");
    let o = streamlab(&["run", scenario.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Another query's checkpoint: the engine configuration changed.
    let other = tmp.path().join("other.toml");
    std::fs::write(&other, SCENARIO.replace("interval = \"200ms\"", "interval = \"300ms\"")).unwrap();
    let o = streamlab(&["run", other.to_str().unwrap(), "--resume", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("metadata") && err.contains("another query"), "{err}");

    // A truncated commit entry: the latest, the one recovery reads.
    let commit = std::fs::read_dir(dir.join("checkpoints/mb/commits"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| p.file_name().unwrap().to_string_lossy().parse::<u64>().unwrap())
        .unwrap();
    std::fs::write(&commit, "v1\n").unwrap();
    let mut before: Vec<_> = std::fs::read_dir(dir.join("checkpoints/mb/commits"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    before.sort();
    let o = streamlab(&["run", scenario.to_str().unwrap(), "--resume", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&commit.display().to_string()) || err.contains("commits/"),
        "{err}"
    );
    let mut after: Vec<_> = std::fs::read_dir(dir.join("checkpoints/mb/commits"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    after.sort();
    assert_eq!(before, after, "nothing deleted");
    assert_eq!(std::fs::read_to_string(&commit).unwrap(), "v1\n", "nothing overwritten");

    // Not a results directory at all.
    let o = streamlab(&[
        "run",
        scenario.to_str().unwrap(),
        "--resume",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no checkpoints/"));
}

const PER_RECORD: &str = r#"
name = "resume-pr"
seed = 4
duration = "4s"
drain = "1s"
clock = "live"
[workload]
partitions = 2
rate = { profile = "constant", events_per_second = 2000 }
disorder = { bound = "50ms" }
[pipeline]
filter_kinds = ["view", "click"]
[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "500ms" }
function = "count"
[[engine]]
name = "pr"
model = "per-record"
parallelism = 2
buffer_timeout = "20ms"
auto_watermark_interval = "50ms"
out_of_orderness = "50ms"
checkpoint_interval = "200ms"
sink = "exactly_once"
"#;

fn completed_checkpoints(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("checkpoints/pr")).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.path().join("_metadata").is_file())
            .count()
    })
}

fn committed_windows(dir: &Path, sink: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(sink)).unwrap();
    let mut rows: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).take(5).collect::<Vec<_>>().join(","))
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_per_record_run_killed_mid_way_resumes_to_the_same_committed_output() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("resume-pr.toml");
    std::fs::write(&scenario, PER_RECORD).unwrap();
    let s = scenario.to_str().unwrap();

    let whole = tmp.path().join("whole");
    let o = streamlab(&["run", s, "--out", whole.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = committed_windows(&whole, "sink-pr.csv");
    assert!(expected.len() > 20, "{} windows", expected.len());

    let killed = tmp.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamlab"))
        .args(["run", s, "--out", killed.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while completed_checkpoints(&killed) < 6 {
        assert!(Instant::now() < deadline, "the run never completed six checkpoints");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = completed_checkpoints(&killed);

    let o = streamlab(&["run", s, "--resume", killed.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        completed_checkpoints(&killed) > at_kill,
        "the resumed run went on checkpointing"
    );
    assert_eq!(
        committed_windows(&killed, "sink-pr.csv"),
        expected,
        "exactly the uninterrupted run's committed output"
    );
}
