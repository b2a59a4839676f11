//! Fault tolerance: crashes injected at every phase of every batch on virtual time leave the
//! committed output equal to a failure-free run; the checkpoint directory is Spark's layout;
//! a foreign or damaged checkpoint directory is refused and left untouched.

use std::path::Path;

use streamlab_scenarios::crash_sweep::crash_sweep;
use streamlab_scenarios::spec::Scenario;

const WINDOWED: &str = r#"
name = "ft"
duration = "3s"
drain = "2s"
clock = "simulated"
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
name = "mb append"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "200ms" }
watermark_delay = "50ms"
shuffle_partitions = 2
restart_delay = "300ms"
[[engine]]
name = "mb update"
model = "micro-batch"
trigger = { kind = "processing_time", interval = "300ms" }
output_mode = "update"
watermark_delay = "50ms"
restart_delay = "1s"
"#;

#[test]
fn micro_batch_crashes_in_every_phase_leave_exactly_the_failure_free_output() {
    let scenario = Scenario::parse(Path::new("ft.toml"), WINDOWED).unwrap();
    let outcomes = crash_sweep(&scenario, 3, 10_000, |_| {}).unwrap();
    // Two engines, every phase of every batch: hundreds of points.
    assert!(outcomes.len() >= 200, "{} points", outcomes.len());
    for o in &outcomes {
        assert_eq!((o.duplicates, o.losses), (0, 0), "{} at {}", o.engine, o.point);
    }
    assert!(
        outcomes.iter().any(|o| o.replayed > 0),
        "some crashes replay an uncommitted batch"
    );
    assert!(
        outcomes.iter().all(|o| o.downtime_ms.is_none_or(|d| d >= 300.0)),
        "restart delay is part of the downtime"
    );
    assert!(outcomes.iter().filter(|o| o.downtime_ms.is_some()).count() > 100);
}

#[test]
fn stateless_micro_batch_crash_sweep_is_exactly_once() {
    let text = WINDOWED.replace(
        "[pipeline.aggregate]\nkey_by = \"page\"\nwindow = { kind = \"tumbling\", size = \"500ms\" }\nfunction = \"count\"\n",
        "",
    );
    let scenario = Scenario::parse(Path::new("ft.toml"), &text).unwrap();
    let outcomes = crash_sweep(&scenario, 5, 60, |_| {}).unwrap();
    for o in &outcomes {
        assert_eq!((o.duplicates, o.losses), (0, 0), "{} at {}", o.engine, o.point);
    }
}

/// Runs `scenario` with its results under `out`.
fn run_in(
    scenario: &Scenario,
    out: &Path,
) -> Result<streamlab_scenarios::runner::RunOutcome, streamlab_scenarios::error_run::RunError> {
    let opts = streamlab_scenarios::runner::RunOptions {
        out: Some(out.to_path_buf()),
        ..Default::default()
    };
    streamlab_scenarios::runner::run_scenario(scenario, &opts, |_| {})
}

const PER_RECORD: &str = r#"
name = "ft-pr"
duration = "3s"
drain = "2s"
clock = "simulated"
[workload]
partitions = 4
rate = { profile = "constant", events_per_second = 2000 }
disorder = { bound = "50ms" }
[pipeline]
filter_kinds = ["view", "click"]
[pipeline.aggregate]
key_by = "page"
window = { kind = "tumbling", size = "500ms" }
function = "count"
[[engine]]
name = "exactly-once"
model = "per-record"
parallelism = 2
buffer_timeout = "20ms"
auto_watermark_interval = "50ms"
out_of_orderness = "50ms"
checkpoint_interval = "300ms"
sink = "exactly_once"
restart = { kind = "fixed_delay", delay = "200ms" }
[[engine]]
name = "at-least-once"
model = "per-record"
parallelism = 2
buffer_timeout = "20ms"
auto_watermark_interval = "50ms"
out_of_orderness = "50ms"
checkpoint_interval = "300ms"
sink = "at_least_once"
restart = { kind = "exponential_delay", initial = "100ms", max = "1s", multiplier = 2.0 }
"#;

#[test]
fn per_record_two_phase_commit_is_exactly_once_and_at_least_once_shows_duplicates() {
    let scenario = Scenario::parse(Path::new("ft-pr.toml"), PER_RECORD).unwrap();
    let outcomes = crash_sweep(&scenario, 9, 120, |_| {}).unwrap();
    let exactly: Vec<_> = outcomes.iter().filter(|o| o.engine == "exactly-once").collect();
    assert_eq!(exactly.len(), 120);
    for o in &exactly {
        assert_eq!((o.duplicates, o.losses), (0, 0), "exactly-once at {}", o.point);
    }
    assert!(
        exactly.iter().any(|o| o.replayed > 0),
        "crashes rewind to the last checkpoint"
    );
    // The sweep covers every phase of the checkpoints as well as instants.
    for phase in ["trigger", "snapshot", "notify"] {
        assert!(
            exactly.iter().any(|o| o.point.ends_with(phase)),
            "no crash in phase {phase}"
        );
    }
    let at_least: Vec<_> = outcomes.iter().filter(|o| o.engine == "at-least-once").collect();
    assert!(at_least.iter().all(|o| o.losses == 0), "at-least-once loses nothing");
    // Duplicates appear when a window fired (and was visible at once) between the last
    // checkpoint and the crash: replay fires it again.
    let duplicated = at_least.iter().filter(|o| o.duplicates > 0).count();
    assert!(
        duplicated >= 15,
        "but shows its duplicates: {duplicated} of {}",
        at_least.len()
    );
}

#[test]
fn a_crash_between_checkpoint_completion_and_notification_commits_on_recovery() {
    // The metadata of checkpoint 3 is written but the sink has not committed its transaction:
    // the restarted sink commits it (recover-and-commit), so nothing is lost or repeated.
    let text = format!(
        "{PER_RECORD}\n[[failure]]\nkind = \"crash\"\ncheckpoint = 3\ncheckpoint_phase = \"notify\"\nengine = \"exactly-once\"\n"
    );
    let scenario = Scenario::parse(Path::new("ft-pr.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    let run = &outcome.summary.runs[0];
    assert_eq!(run.failures.len(), 1, "{:?}", run.failures);
    // Checkpoint 3 is triggered at 900 ms and completes shortly after.
    assert!(
        run.failures[0].at_ms > 900.0 && run.failures[0].at_ms < 1200.0,
        "{:?}",
        run.failures
    );
    let r = run.recovery.unwrap();
    assert_eq!((r.duplicates, r.losses), (0, 0), "{r:?}");

    // Checkpoint 17 is triggered at 5.1 s, just past the simulator's first 5 s segment: the
    // source must still hold what the restart from checkpoint 16 (4.8 s) rereads.
    let long = text
        .replace("duration = \"3s\"", "duration = \"8s\"")
        .replace("checkpoint = 3\n", "checkpoint = 17\n")
        .replace("\"notify\"", "\"trigger\"");
    let scenario = Scenario::parse(Path::new("ft-pr.toml"), &long).unwrap();
    let outcome = run_in(&scenario, &dir.path().join("long")).unwrap();
    let r = outcome.summary.runs[0].recovery.unwrap();
    assert_eq!((r.duplicates, r.losses), (0, 0), "{r:?}");
    assert!(r.replayed > 0, "{r:?}");

    // Error paths: a micro-batch engine has no checkpoints to crash in; a phase needs a
    // checkpoint.
    let err = Scenario::parse(
        Path::new("ft.toml"),
        &format!("{WINDOWED}\n[[failure]]\nkind = \"crash\"\ncheckpoint = 2\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("failure[0].checkpoint") && err.contains("micro-batch"),
        "{err}"
    );
    let err = Scenario::parse(
        Path::new("ft-pr.toml"),
        &format!("{PER_RECORD}\n[[failure]]\nkind = \"crash\"\nat = \"1s\"\ncheckpoint_phase = \"notify\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("checkpoint_phase"), "{err}");
    let err = Scenario::parse(
        Path::new("ft-pr.toml"),
        &format!("{PER_RECORD}\n[[failure]]\nkind = \"crash\"\ncheckpoint = 2\ncheckpoint_phase = \"later\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("trigger") && err.contains("notify"), "{err}");
    let no_checkpoints = text.replace(
        "checkpoint_interval = \"300ms\"\nsink = \"exactly_once\"",
        "sink = \"at_least_once\"",
    );
    let scenario = Scenario::parse(Path::new("ft-pr.toml"), &no_checkpoints).unwrap();
    let err = run_in(&scenario, &dir.path().join("none")).unwrap_err().to_string();
    assert!(
        err.contains("failure.checkpoint") && err.contains("checkpoint_interval"),
        "{err}"
    );
}

#[test]
fn live_crashes_inside_each_checkpoint_phase_tear_the_job_down_and_commit_exactly_once() {
    // On the wall clock the coordinator tears the job's threads down when checkpoint 2 reaches
    // the phase; the restart restores the latest completed checkpoint from the directory (and,
    // after `notify`, commits the transaction the completed checkpoint pre-committed).
    let live = PER_RECORD
        .replace("clock = \"simulated\"", "clock = \"live\"")
        .replace("duration = \"3s\"", "duration = \"2s\"")
        .replace("drain = \"2s\"", "drain = \"1s\"");
    let dir = tempfile::tempdir().unwrap();
    for phase in ["trigger", "snapshot", "notify"] {
        let text = format!(
            "{live}\n[[failure]]\nkind = \"crash\"\ncheckpoint = 2\ncheckpoint_phase = \"{phase}\"\nengine = \"exactly-once\"\n"
        );
        let scenario = Scenario::parse(Path::new("ft-pr.toml"), &text).unwrap();
        let outcome = run_in(&scenario, &dir.path().join(phase)).unwrap();
        let run = &outcome.summary.runs[0];
        assert_eq!(run.failures.len(), 1, "{phase}: {:?}", run.failures);
        // Checkpoint 2 is triggered at 600 ms and completes within tens of milliseconds.
        let at = run.failures[0].at_ms;
        assert!((600.0..800.0).contains(&at), "{phase}: crashed at {at} ms");
        let r = run.recovery.unwrap();
        assert_eq!((r.duplicates, r.losses), (0, 0), "{phase}: {r:?}");
        assert!(r.downtime_ms.unwrap() >= 200.0, "{phase}: {r:?}");
    }
}

#[test]
fn a_crashed_run_reports_its_recovery_in_the_summary() {
    // After the window [1000, 1500) fired (~1.6 s) and after the checkpoint at 1.5 s.
    let text = format!("{PER_RECORD}\n[[failure]]\nkind = \"crash\"\nat = \"1700ms\"\n");
    let scenario = Scenario::parse(Path::new("ft-pr.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    let exactly = &outcome.summary.runs[0];
    let recovery = exactly.recovery.unwrap();
    assert_eq!((recovery.duplicates, recovery.losses), (0, 0));
    assert!(recovery.replayed > 0);
    assert!(recovery.downtime_ms.unwrap() >= 200.0, "{recovery:?}");
    assert_eq!(exactly.failures.len(), 1);
    assert_eq!(exactly.failures[0].at_ms, 1700.0);
    assert!(exactly.components_ms.contains_key("sink_visibility"));
    let at_least = outcome.summary.runs[1].recovery.unwrap();
    assert!(at_least.duplicates > 0);
    // The checkpoint directories are there, one per engine run.
    let chk = dir.path().join("r/checkpoints/exactly-once");
    assert!(std::fs::read_dir(&chk)
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().starts_with("chk-")));
    let progress = std::fs::read_to_string(dir.path().join("r/progress.jsonl")).unwrap();
    assert!(progress
        .lines()
        .any(|l| l.contains("\"type\":\"checkpoint\"") && l.contains("alignmentMs")));
}

#[test]
fn stragglers_outages_spikes_and_slow_state_are_marked_and_lose_nothing() {
    let text = std::fs::read_to_string("scenarios/degraded.toml")
        .unwrap()
        .replace("duration = \"60s\"", "duration = \"55s\"");
    let scenario = Scenario::parse(Path::new("degraded.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    for run in &outcome.summary.runs {
        let kinds: Vec<&str> = run.failures.iter().map(|f| f.kind.as_str()).collect();
        let expected: &[&str] = if run.name == "per-record" {
            &["straggler", "source_outage", "rate_spike", "slow_state"]
        } else {
            &["straggler", "source_outage", "rate_spike", "slow_state", "worker_loss"]
        };
        assert_eq!(kinds, expected, "{}", run.name);
        let r = run.recovery.unwrap();
        assert_eq!((r.duplicates, r.losses), (0, 0), "{}", run.name);
    }
    // The outage holds every output back until the source is back: nothing is delivered
    // between 22 s and 25 s in the per-record run, and latency peaks right after it.
    let timeline = std::fs::read_to_string(dir.path().join("r/timeline.csv")).unwrap();
    let during: Vec<f64> = timeline
        .lines()
        .filter(|l| l.starts_with("per-record,"))
        .filter_map(|l| l.split(',').nth(1)?.parse::<f64>().ok())
        .filter(|t| *t > 22.3 && *t < 24.9)
        .collect();
    assert!(during.is_empty(), "outputs during the outage at {during:?}");
}

#[test]
fn a_straggler_on_a_worker_the_engine_lacks_or_a_speed_up_is_refused() {
    let text = std::fs::read_to_string("scenarios/degraded.toml")
        .unwrap()
        .replace("clock = \"simulated\"", "clock = \"live\"")
        .replace("worker = 0", "worker = 5");
    let scenario = Scenario::parse(Path::new("degraded.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = run_in(&scenario, &dir.path().join("r")).unwrap_err().to_string();
    assert!(err.contains("failure.worker") && err.contains("worker 5"), "{err}");
    let text = text.replace("worker = 5", "worker = 0");
    let bad = text.replace("factor = 4.0\nworker = 0", "factor = 0.5\nworker = 0");
    let err = Scenario::parse(Path::new("degraded.toml"), &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("failure[0].factor") && err.contains(">= 1"), "{err}");
}

#[test]
fn a_live_micro_batch_query_is_slowed_by_a_straggler_and_a_slow_state_store() {
    // On the wall clock the tasks of the straggling worker, and the state updates under the
    // slow store, wait out `factor` times what they measured; the output is unchanged.
    let text = WINDOWED
        .replace("clock = \"simulated\"", "clock = \"live\"")
        .replace("shuffle_partitions = 2\n", "shuffle_partitions = 2\nworkers = 2\n");
    let text = format!(
        "{text}\n[[failure]]\nkind = \"straggler\"\nat = \"500ms\"\nduration = \"1s\"\nfactor = 3.0\nworker = 1\nengine = \"mb append\"\n\
         \n[[failure]]\nkind = \"slow_state\"\nat = \"1500ms\"\nduration = \"1s\"\nfactor = 5.0\n"
    );
    let scenario = Scenario::parse(Path::new("ft.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    let kinds: Vec<&str> = outcome.summary.runs[0]
        .failures
        .iter()
        .map(|f| f.kind.as_str())
        .collect();
    assert_eq!(kinds, ["straggler", "slow_state"]);
    for run in &outcome.summary.runs {
        let r = run.recovery.unwrap();
        assert_eq!((r.duplicates, r.losses), (0, 0), "{}: {r:?}", run.name);
    }
}

#[test]
fn a_live_per_record_job_is_slowed_by_a_straggling_slot_and_a_slow_state_store() {
    // On the wall clock the subtasks in the straggling slot wait out `factor` times the time
    // their steps measured, and the window subtasks their state accesses under the slow store;
    // nothing restarts and the output is unchanged.
    let text = PER_RECORD
        .replace("clock = \"simulated\"", "clock = \"live\"")
        .replace("duration = \"3s\"", "duration = \"2s\"")
        .replace("drain = \"2s\"", "drain = \"1s\"");
    let text = format!(
        "{text}\n[[failure]]\nkind = \"straggler\"\nat = \"300ms\"\nduration = \"700ms\"\nfactor = 3.0\nworker = 1\n\
         \n[[failure]]\nkind = \"slow_state\"\nat = \"1s\"\nduration = \"700ms\"\nfactor = 50.0\nengine = \"exactly-once\"\n"
    );
    let scenario = Scenario::parse(Path::new("ft-pr.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    let exactly = &outcome.summary.runs[0];
    let kinds: Vec<&str> = exactly.failures.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["straggler", "slow_state"]);
    for run in &outcome.summary.runs {
        let r = run.recovery.unwrap();
        assert_eq!((r.duplicates, r.losses), (0, 0), "{}: {r:?}", run.name);
    }
    // The slow store shows in the time per state access (asserted as a ratio of the two runs'
    // own measurements, not a wall-clock threshold).
    let per_access = |i: usize| outcome.summary.runs[i].counts.state_access_ns().unwrap();
    let (slowed, plain) = (per_access(0), per_access(1));
    assert!(
        slowed > 2.0 * plain,
        "slow store not felt: {slowed:.1} vs {plain:.1} ns per access"
    );
}

#[test]
fn a_failed_task_is_retried_without_restarting_the_micro_batch_query() {
    let text =
        format!("{WINDOWED}\n[[failure]]\nkind = \"crash\"\nscope = \"task\"\nat = \"1s\"\nengine = \"mb append\"\n");
    let scenario = Scenario::parse(Path::new("ft.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    let run = &outcome.summary.runs[0];
    assert_eq!(run.failures.len(), 1);
    assert_eq!(run.failures[0].kind, "task_failure");
    let r = run.recovery.unwrap();
    assert_eq!(
        (r.duplicates, r.losses, r.task_retries),
        (0, 0, 1),
        "a retried task changes nothing but time: {r:?}"
    );
    // The retry costs time: the batches' task phases add up to more than without the failure.
    let add_batch = |progress: &str| -> f64 {
        progress
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["run"] == "mb append")
            .filter_map(|v| v["durationMs"]["addBatch"].as_f64())
            .sum()
    };
    let failing = add_batch(&std::fs::read_to_string(dir.path().join("r/progress.jsonl")).unwrap());
    let plain = Scenario::parse(Path::new("ft.toml"), WINDOWED).unwrap();
    run_in(&plain, &dir.path().join("plain")).unwrap();
    let baseline = add_batch(&std::fs::read_to_string(dir.path().join("plain/progress.jsonl")).unwrap());
    assert!(failing > baseline, "retry not paid: {failing} <= {baseline}");
}

#[test]
fn a_lost_worker_retries_its_tasks_on_the_others_and_the_output_is_unchanged() {
    let text = format!(
        "{WINDOWED}\n[[failure]]\nkind = \"crash\"\nscope = \"worker\"\nat = \"1s\"\nduration = \"1s\"\nworker = 1\nengine = \"mb append\"\n"
    )
    .replace("shuffle_partitions = 2\n", "shuffle_partitions = 2\nworkers = 2\n");
    let scenario = Scenario::parse(Path::new("ft.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    let run = &outcome.summary.runs[0];
    assert_eq!(run.failures.len(), 1, "{:?}", run.failures);
    assert_eq!(run.failures[0].kind, "worker_loss");
    let r = run.recovery.unwrap();
    assert_eq!((r.duplicates, r.losses), (0, 0), "{r:?}");

    // A worker the engine does not have is refused, naming the key.
    let bad = text.replace("worker = 1\n", "worker = 7\n");
    let scenario = Scenario::parse(Path::new("ft.toml"), &bad).unwrap();
    let err = run_in(&scenario, &dir.path().join("bad")).unwrap_err().to_string();
    assert!(err.contains("failure.worker") && err.contains("worker 7"), "{err}");
    // A worker loss needs to know when the worker comes back.
    let err = Scenario::parse(Path::new("ft.toml"), &text.replace("duration = \"1s\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("duration"), "{err}");

    // The per-record job loses a task manager: Flink restarts the whole job from its checkpoint.
    let text = format!(
        "{PER_RECORD}\n[[failure]]\nkind = \"crash\"\nscope = \"worker\"\nat = \"1200ms\"\nduration = \"1s\"\nengine = \"exactly-once\"\n"
    );
    let scenario = Scenario::parse(Path::new("ft-pr.toml"), &text).unwrap();
    let outcome = run_in(&scenario, &dir.path().join("pr")).unwrap();
    let run = &outcome.summary.runs[0];
    assert_eq!(run.failures.len(), 1, "{:?}", run.failures);
    assert_eq!(run.failures[0].kind, "crash");
    let r = run.recovery.unwrap();
    assert_eq!((r.duplicates, r.losses), (0, 0), "{r:?}");
}

#[test]
fn live_task_failures_and_a_lost_worker_rerun_tasks_for_real_and_leave_the_output_unchanged() {
    // On the wall clock a failed attempt really ran; its task runs again on a worker thread,
    // a reduce task reloading its state version from the checkpoint directory.
    let text = WINDOWED
        .replace("clock = \"simulated\"", "clock = \"live\"")
        .replace("duration = \"3s\"", "duration = \"2s\"")
        .replace("drain = \"2s\"", "drain = \"1s\"")
        .replace("shuffle_partitions = 2\n", "shuffle_partitions = 2\nworkers = 2\n");
    let text = format!(
        "{text}\n[[failure]]\nkind = \"crash\"\nscope = \"task\"\nat = \"500ms\"\nengine = \"mb append\"\n\
         \n[[failure]]\nkind = \"crash\"\nscope = \"task\"\nat = \"900ms\"\n\
         \n[[failure]]\nkind = \"crash\"\nscope = \"worker\"\nat = \"1200ms\"\nduration = \"400ms\"\nworker = 1\n"
    );
    let scenario = Scenario::parse(Path::new("ft.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    for run in &outcome.summary.runs {
        let r = run.recovery.unwrap();
        assert_eq!((r.duplicates, r.losses), (0, 0), "{}: {r:?}", run.name);
        let kinds: Vec<&str> = run.failures.iter().map(|f| f.kind.as_str()).collect();
        assert!(
            kinds.contains(&"task_failure") && kinds.contains(&"worker_loss"),
            "{kinds:?}"
        );
    }
    let retries = |name: &str| {
        let run = outcome.summary.runs.iter().find(|r| r.name == name).unwrap();
        run.recovery.unwrap().task_retries
    };
    // Each injected task failure strikes one attempt; the lost worker may or may not have been
    // running a task at that instant.
    assert!(retries("mb append") >= 2, "{}", retries("mb append"));
    assert!(retries("mb update") >= 1, "{}", retries("mb update"));
}

#[test]
fn a_live_per_record_crash_tears_the_job_down_and_restarts_it_exactly_once() {
    let text = PER_RECORD
        .replace("clock = \"simulated\"", "clock = \"live\"")
        .replace("duration = \"3s\"", "duration = \"2s\"")
        .replace("drain = \"2s\"", "drain = \"1s\"");
    let text = format!("{text}\n[[failure]]\nkind = \"crash\"\nat = \"1200ms\"\nengine = \"exactly-once\"\n");
    let scenario = Scenario::parse(Path::new("ft-pr.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_in(&scenario, &dir.path().join("r")).unwrap();
    let run = &outcome.summary.runs[0];
    assert_eq!(run.failures.len(), 1);
    let r = run.recovery.unwrap();
    assert_eq!((r.duplicates, r.losses), (0, 0), "{r:?}");
    assert!(
        r.downtime_ms.unwrap() >= 200.0,
        "the restart delay is part of the downtime: {r:?}"
    );
    assert!(
        outcome.summary.runs[1].failures.is_empty(),
        "the crash named one engine"
    );
}

/// The files under `dir` (recursively) whose path contains `part`.
fn files_containing(dir: &Path, part: &str) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            n += files_containing(&path, part);
        } else if path.to_string_lossy().contains(part) {
            n += 1;
        }
    }
    n
}

#[test]
fn lsm_state_checkpoints_incrementally_and_recovers_exactly_once_in_both_engines() {
    // With `state_backend = "lsm"` each checkpoint of a window subtask (per-record) or state
    // partition version (micro-batch) is an incremental checkpoint of its store: a manifest
    // listing runs, of which only the new ones are written; recovery restores the store from it.
    let backend = |text: &str, kind: &str| {
        let key = format!("state_backend = \"{kind}\"\n");
        text.replace(
            "restart_delay = \"300ms\"\n",
            &format!("restart_delay = \"300ms\"\n{key}"),
        )
        .replace("sink = \"exactly_once\"\n", &format!("sink = \"exactly_once\"\n{key}"))
    };
    let lsm = |text: &str| backend(text, "lsm");
    let dir = tempfile::tempdir().unwrap();
    // In changelog mode a checkpoint uploads the changelog written since the last one (runs
    // only at materialization, past 16 MiB of changelog: not in this short run).
    for (clock, kind, shared) in [
        ("simulated", "lsm", ".sst"),
        ("live", "lsm", ".sst"),
        ("simulated", "lsm_changelog", "changelog"),
    ] {
        let text = backend(PER_RECORD, kind)
            .replace("clock = \"simulated\"", &format!("clock = \"{clock}\""))
            .replace("duration = \"3s\"", "duration = \"2500ms\"");
        let text = format!("{text}\n[[failure]]\nkind = \"crash\"\nat = \"1700ms\"\nengine = \"exactly-once\"\n");
        let scenario = Scenario::parse(Path::new("ft-pr.toml"), &text).unwrap();
        let out = dir.path().join(format!("pr-{clock}-{kind}"));
        let outcome = run_in(&scenario, &out).unwrap();
        let r = outcome.summary.runs[0].recovery.unwrap();
        assert_eq!((r.duplicates, r.losses), (0, 0), "{clock}: {r:?}");
        assert!(r.replayed > 0, "{clock}: {r:?}");
        let chk = out.join("checkpoints/exactly-once");
        assert!(files_containing(&chk, "MANIFEST") > 2, "{clock}: incremental manifests");
        assert!(
            files_containing(&chk.join("state"), shared) > 0,
            "{clock} {kind}: shared files"
        );
        // Window subtasks 2 and 3 write no full snapshot (the sink subtask 4 has no state).
        let full = files_containing(&chk, "subtask-2.state") + files_containing(&chk, "subtask-3.state");
        assert_eq!(full, 0, "{clock}: full snapshots written");
        // Later checkpoints reference runs earlier ones wrote: they write less than the state.
        let progress = std::fs::read_to_string(out.join("progress.jsonl")).unwrap();
        let referencing = progress
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["run"] == "exactly-once" && v["type"] == "checkpoint")
            .filter(|v| v["bytes"].as_u64().unwrap() < v["stateBytes"].as_u64().unwrap())
            .count();
        assert!(referencing > 0, "{clock}: no checkpoint referenced an earlier run");
    }
    // Micro-batch: crashes in every phase of the first batches, state restored from the
    // incremental checkpoint of the version before the replayed batch.
    let scenario = Scenario::parse(Path::new("ft.toml"), &lsm(WINDOWED)).unwrap();
    let outcomes = crash_sweep(&scenario, 3, 40, |_| {}).unwrap();
    assert!(outcomes.len() >= 40);
    for o in &outcomes {
        assert_eq!((o.duplicates, o.losses), (0, 0), "{} at {}", o.engine, o.point);
    }
    let text = format!("{}\n[[failure]]\nkind = \"crash\"\nat = \"1500ms\"\n", lsm(WINDOWED));
    let scenario = Scenario::parse(Path::new("ft.toml"), &text).unwrap();
    let out = dir.path().join("mb");
    run_in(&scenario, &out).unwrap();
    let state = out.join("checkpoints/mb-append/state/0/0");
    assert!(state.join("chk-1/MANIFEST").is_file(), "{}", state.display());
    assert!(files_containing(&state.join("shared"), ".sst") > 0);
}
