//! The real engines end to end, through the `streamlab` binary: short, low-rate scenarios on
//! Apache Spark and Apache Flink — a stateless clickstream pipeline, Nexmark's q1 and q2 in one
//! (`where`, `convert`, the Nexmark record in the feeder's slot columns) and a left outer
//! interval join of Nexmark's auctions and bids, each one scenario with both engines (local), and
//! the windowed clickstream pipeline on a Spark standalone cluster and a Flink session cluster —
//! whose outputs must equal the reference evaluator's, after which no engine process may be
//! left; also when streamlab is interrupted (Ctrl-C: the outputs received so far are kept in the
//! results, marked interrupted) or killed outright in the middle of a run.
//!
//! Costs about two minutes with the engines installed (every run is a JVM start and a 5 s
//! schedule; the JVM start dominates, so each run checks two things: its outputs and that no
//! process is left).
//!
//! A scenario with a real engine that is not installed is refused before anything runs (tested
//! without the engines).
//!
//! The engines are an optional install (`streamlab engines install`). Without them every test
//! here says it is skipped and why, and passes, so `cargo test --workspace` passes on a fresh
//! machine; CI installs them and sets `STREAMLAB_REQUIRE_REAL_ENGINES=1`, which turns a skip
//! into a failure. Nothing here is a measurement (outputs are checked, not their latency), so two
//! tests run their engines at once — the JVMs' start-ups overlap the other's idle schedule — and
//! no more than two, whatever the test threads (`TwoAtATime`).

mod common;

use common::assert_equal_to_reference;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use streamlab_real_engines::flink::session::SessionCluster;
use streamlab_real_engines::spark::standalone::{ClusterShape, StandaloneCluster};
use streamlab_real_engines::{CacheDir, PythonEngine, VenvStatus};

/// Two tests with real engines at a time: each holds a permit while its engines run.
struct TwoAtATime {
    running: Mutex<usize>,
    freed: Condvar,
}

static ENGINES: TwoAtATime = TwoAtATime {
    running: Mutex::new(0),
    freed: Condvar::new(),
};

/// A permit of [`ENGINES`], given back when dropped.
struct Permit;

impl TwoAtATime {
    fn permit(&'static self) -> Permit {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= 2 {
            running = self.freed.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *ENGINES.running.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        ENGINES.freed.notify_one();
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_streamlab")
}

/// Whether `engine` is installed; if not, says the test is skipped (or fails under CI).
fn installed(engine: PythonEngine, test: &str) -> bool {
    let status = CacheDir::from_env().map(|c| c.venv(engine).status());
    match status {
        Ok(VenvStatus::Ready) => true,
        other => {
            let why = match other {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            };
            if std::env::var_os("STREAMLAB_REQUIRE_REAL_ENGINES").is_some_and(|v| v == "1") {
                panic!(
                    "{test}: {} is not ready ({why}) but STREAMLAB_REQUIRE_REAL_ENGINES=1",
                    engine.name()
                );
            }
            eprintln!(
                "{test}: SKIPPED: {} is not ready ({why}); run `streamlab engines install` to run it",
                engine.name()
            );
            false
        }
    }
}

const WORKLOAD: &str = r#"
seed = 11
duration = "5s"
drain = "1s"
clock = "live"

[workload]
partitions = 2
users = 1000
pages = 100
campaigns = 10
ads_per_campaign = 10
rate = { profile = "constant", events_per_second = 500 }
disorder = { bound = "100ms", delay = "uniform", late_fraction = 0.0 }
"#;

const WINDOWED: &str = r#"
[pipeline]
filter_kinds = ["click", "view"]
lookup_join = true

[pipeline.aggregate]
key_by = "campaign"
window = { kind = "tumbling", size = "2s" }
function = "count"
"#;

const STATELESS: &str = r#"
[pipeline]
filter_kinds = ["click"]
lookup_join = true
project = ["seq", "event_time", "user", "campaign"]
"#;

/// Nexmark's records at a low rate: bids, auctions and people in the feeder's slot columns.
const NEXMARK_WORKLOAD: &str = r#"
seed = 11
duration = "5s"
drain = "1s"
clock = "live"

[workload]
generator = "nexmark"
partitions = 2
rate = { profile = "constant", events_per_second = 500 }
"#;

/// Nexmark q1 and q2 in one: the bids on a third of the auctions, their price converted, with
/// a column from every slot the bid uses (each row is checked column by column).
const NEXMARK_Q1_Q2: &str = r#"
[pipeline]
filter_kinds = ["bid"]
where = [{ field = "auction", modulo = 3, equals = 0 }]
convert = { field = "price", multiply = 908, divide = 1000 }
project = ["seq", "event_time", "auction", "bidder", "price", "channel", "url", "kind"]
"#;

/// A left outer interval join of auctions and their bids (a where on the bids): pairs as they
/// match, each auction without a bid once no bid can come any more (Flink: on its timer;
/// Spark: once its watermark passes the bound, the last ones never at the end of the input).
const NEXMARK_INTERVAL_JOIN: &str = r#"
[pipeline.join]
kind = "interval"
type = "left_outer"
lower = "-500ms"
upper = "1s"
left = { kinds = ["auction"], key = "id" }
right = { kinds = ["bid"], key = "auction", where = [{ field = "price", at_least = 100 }] }
"#;

/// A scenario file in `dir` with `pipeline` and `engines` (the Nexmark workload for a pipeline
/// named `nexmark*`, the clickstream's otherwise).
fn scenario(dir: &Path, name: &str, pipeline: &str, engines: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let workload = if name.starts_with("nexmark") {
        NEXMARK_WORKLOAD
    } else {
        WORKLOAD
    };
    std::fs::write(&path, format!("name = \"{name}\"\n{workload}{pipeline}{engines}")).unwrap();
    path
}

/// Runs `scenario` into `out` and returns its summary.
fn run(scenario: &Path, out: &Path) -> serde_json::Value {
    let output = Command::new(bin())
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "streamlab run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// The processes whose working directory is under `dir` (every engine process runs in its
/// job's directory), with their command lines.
fn processes_under(dir: &Path) -> Vec<String> {
    commands_under(dir)
        .into_iter()
        .map(|(pid, cmd)| format!("{pid}: {}", cmd.chars().take(160).collect::<String>()))
        .collect()
}

/// The processes whose working directory is under `dir`, with their whole command lines.
fn commands_under(dir: &Path) -> Vec<(u32, String)> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) {
            if cwd.starts_with(&dir) {
                let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                found.push((pid, cmd));
            }
        }
    }
    found
}

/// Asserts no process runs under `dir`, allowing a moment for the kernel to reap.
fn assert_no_process_left(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_under(dir);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind:\n{}", left.join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
}

const SPARK: &str = r#"
[[engine]]
name = "spark 1s"
model = "spark"
trigger = { kind = "processing_time", interval = "1s" }
watermark_delay = "100ms"
shuffle_partitions = 2
workers = 2
"#;

const FLINK: &str = r#"
[[engine]]
name = "flink"
model = "flink"
parallelism = 2
buffer_timeout = "10ms"
auto_watermark_interval = "200ms"
out_of_orderness = "100ms"
"#;

/// Spark (local) and Flink (MiniCluster) on `pipeline`, one scenario with both engines: their
/// outputs equal the reference, and no process is left. (The windowed pipeline runs on a cluster
/// of each below.)
fn spark_and_flink_on(name: &str, pipeline: &str) {
    let test = format!("spark_and_flink_on_{name}");
    if !installed(PythonEngine::Spark, &test) || !installed(PythonEngine::Flink, &test) {
        return;
    }
    let _permit = ENGINES.permit();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(name);
    let summary = run(&scenario(tmp.path(), name, pipeline, &format!("{SPARK}{FLINK}")), &out);
    assert_equal_to_reference(&summary);
    assert_eq!(summary["runs"][0]["model"], "spark", "{name}");
    assert_eq!(summary["runs"][1]["model"], "flink", "{name}");
    assert!(out.join("jobs/spark-1s/streamlab_spark.py").is_file());
    assert!(out.join("jobs/flink/streamlab_flink.py").is_file());
    assert_no_process_left(&out);
}

#[test]
fn spark_and_flink_on_a_stateless_pipeline_equal_the_reference_and_leave_no_process() {
    spark_and_flink_on("stateless", STATELESS);
}

#[test]
fn spark_and_flink_on_nexmark_q1_q2_equal_the_reference_and_leave_no_process() {
    spark_and_flink_on("nexmark", NEXMARK_Q1_Q2);
}

#[test]
fn spark_and_flink_on_an_interval_join_equal_the_reference_and_leave_no_process() {
    spark_and_flink_on("nexmark-join", NEXMARK_INTERVAL_JOIN);
}

#[test]
fn spark_on_a_standalone_cluster_with_two_workers() {
    if !installed(PythonEngine::Spark, "spark_on_a_standalone_cluster") {
        return;
    }
    let _permit = ENGINES.permit();
    let tmp = tempfile::tempdir().unwrap();
    let venv = CacheDir::from_env().unwrap().venv(PythonEngine::Spark);
    let shape = ClusterShape {
        workers: 2,
        cores: 1,
        memory: "1g".into(),
        timeout: Duration::from_secs(90),
    };
    let cluster = StandaloneCluster::start(&venv, &tmp.path().join("cluster"), &shape).unwrap();
    let engines = SPARK.replace(
        "workers = 2\n",
        &format!("workers = 2\nmaster = \"{}\"\n", cluster.master_url()),
    );
    let out = tmp.path().join("cluster-run");
    let summary = run(&scenario(tmp.path(), "cluster", WINDOWED, &engines), &out);
    assert_equal_to_reference(&summary);
    assert_eq!(summary["runs"][0]["config"]["master"], cluster.master_url());
    assert_no_process_left(&out);
    let cluster_dir = tmp.path().join("cluster");
    // The workers ran the application's executors (each keeps a work directory per app).
    for worker in ["worker-0", "worker-1"] {
        let apps: Vec<_> = std::fs::read_dir(cluster_dir.join(worker))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("app-"))
            .collect();
        assert!(!apps.is_empty(), "{worker} ran no executor of the application");
    }
    drop(cluster);
    assert_no_process_left(&cluster_dir);
}

#[test]
fn flink_on_a_session_cluster() {
    if !installed(PythonEngine::Flink, "flink_on_a_session_cluster") {
        return;
    }
    let _permit = ENGINES.permit();
    let tmp = tempfile::tempdir().unwrap();
    let venv = CacheDir::from_env().unwrap().venv(PythonEngine::Flink);
    let cluster_dir = tmp.path().join("cluster");
    let cluster = SessionCluster::start(&venv, &cluster_dir, 2, Duration::from_secs(90)).unwrap();
    let engines = FLINK.replace(
        "parallelism = 2\n",
        &format!("parallelism = 2\nmaster = \"{}\"\n", cluster.rest_address()),
    );
    let out = tmp.path().join("cluster-run");
    let summary = run(&scenario(tmp.path(), "session", WINDOWED, &engines), &out);
    assert_equal_to_reference(&summary);
    assert_eq!(summary["runs"][0]["config"]["master"], cluster.rest_address().as_str());
    // The job ran on the session cluster: its JobManager lists it as finished.
    let port: u16 = cluster.rest_address().rsplit(':').next().unwrap().parse().unwrap();
    let jobs = streamlab_real_engines::http::get(port, "/jobs/overview").unwrap();
    assert!(jobs.contains("\"FINISHED\""), "{jobs}");
    assert_no_process_left(&out);
    drop(cluster);
    assert_no_process_left(&cluster_dir);
}

/// Starts `streamlab run` on a long Spark scenario of the stateless pipeline and waits until
/// `up` says the engine is up.
fn start_long_spark_run(tmp: &Path, up: &dyn Fn(&Path) -> bool) -> (std::process::Child, PathBuf) {
    let path = scenario(tmp, "interrupted", STATELESS, SPARK);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("duration = \"5s\"", "duration = \"120s\"");
    std::fs::write(&path, text).unwrap();
    let out = tmp.join("out");
    let mut child = Command::new(bin())
        .args(["run", path.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !up(&out) {
        assert!(Instant::now() < deadline, "the Spark job never came up");
        assert!(child.try_wait().unwrap().is_none(), "streamlab ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !processes_under(&out).is_empty(),
        "the engine runs in its job directory"
    );
    (child, out)
}

fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_keeps_a_real_engines_outputs_and_leaves_no_engine_process() {
    if !installed(PythonEngine::Spark, "ctrl_c_keeps_a_real_engines_outputs") {
        return;
    }
    let _permit = ENGINES.permit();
    let tmp = tempfile::tempdir().unwrap();
    // Up: Spark has run three batches, so results have come back.
    let batches = |out: &Path| {
        std::fs::read_to_string(out.join("jobs/spark-1s/engine-progress.jsonl")).is_ok_and(|t| t.lines().count() >= 3)
    };
    let (mut child, out) = start_long_spark_run(tmp.path(), &batches);
    signal(&child, "-INT");
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_no_process_left(&out);
    // What came back before the stop is in the results, marked interrupted.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["interrupted"]["engine"], "spark 1s", "{summary}");
    let run = &summary["runs"][0];
    let outputs = run["counts"]["outputs"].as_u64().unwrap();
    assert!(outputs > 0, "{run}");
    assert!(run["counts"]["events"].as_u64().unwrap() > 0, "{run}");
    assert!(run["notes"].to_string().contains("interrupted (Ctrl-C)"), "{run}");
    let sink = std::fs::read_to_string(out.join("sink-spark-1s.csv")).unwrap();
    assert_eq!(sink.lines().count() as u64, outputs + 1, "a header and every output");
    assert!(stderr.contains("interrupted at "), "{stderr}");
    // Off a terminal, the run's line gives what streamlab knows of a real engine.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("  `spark 1s`: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains(" events sent · ") && line.contains(&format!(" {outputs} outputs received")),
        "{line}"
    );
    assert!(line.ends_with(" · interrupted"), "{line}");
}

#[test]
fn a_killed_streamlab_leaves_no_engine_process() {
    if !installed(PythonEngine::Spark, "a_killed_streamlab_leaves_no_engine_process") {
        return;
    }
    let _permit = ENGINES.permit();
    let tmp = tempfile::tempdir().unwrap();
    // Up: Spark's driver JVM has started (it can outlive its Python driver): SparkSubmit's, not
    // the launcher's that builds its command line.
    let jvm = |out: &Path| {
        commands_under(out).iter().any(|(_, cmd)| {
            let java = cmd.split(' ').next().is_some_and(|p| p.ends_with("java"));
            java && cmd.contains("deploy.SparkSubmit") && !cmd.contains("launcher.Main")
        })
    };
    let (mut child, out) = start_long_spark_run(tmp.path(), &jvm);
    // SIGKILL: no streamlab code runs; the job's lifeline sees its stdin close and ends its group.
    signal(&child, "-KILL");
    child.wait().unwrap();
    assert_no_process_left(&out);
}

#[test]
fn a_missing_install_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/real-engines.toml");
    let output = Command::new(bin())
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env("STREAMLAB_ENGINES_DIR", tmp.path().join("no-engines"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("engine `spark 1s`"), "{stderr}");
    assert!(stderr.contains("the real spark is not ready"), "{stderr}");
    assert!(stderr.contains("streamlab engines install"), "{stderr}");
    assert!(!out.exists(), "nothing ran, nothing was written");
}
