//! Checkpoints of the live per-record driver: aligned barriers on real threads, an exactly-once
//! sink that commits on completed checkpoints, `chk-<id>/_metadata` written as the simulated
//! driver writes it, and a restart from a checkpoint directory that neither loses nor repeats
//! an output.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use streamlab_engines::dataflow::config::SinkGuarantee;
use streamlab_engines::dataflow::live::{run_live, run_live_with_checkpoints, LiveRunError};
use streamlab_engines::dataflow::{DataflowConfig, JobContext};
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::reference::{evaluate, WindowId};
use streamlab_engines::run::{Delivered, EngineRun};
use streamlab_engines::runtime::LiveClock;
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};

use common::{events, BOUND_MS};

/// The arrival schedule replayed 5× faster (3 s of input in 0.6 s, several checkpoints at
/// 100 ms); event times, and with them every windowing decision, are unchanged.
fn compressed(events: &[Event], partitions: usize) -> SourceLog {
    SourceLog::from_events(
        partitions,
        events.iter().map(|e| Event {
            arrival: e.arrival / 5,
            ..*e
        }),
    )
}

fn pipelines() -> Vec<(&'static str, PipelineSpec)> {
    let stateful = |filter: Option<Vec<EventKind>>, join: bool, agg: Aggregation| PipelineSpec {
        filter_kinds: filter,
        lookup_join: join,
        project: vec![],
        aggregate: Some(agg),
        ..Default::default()
    };
    vec![
        (
            "clicks per campaign, tumbling count, lookup join",
            stateful(
                Some(vec![EventKind::Click]),
                true,
                Aggregation {
                    key_by: Field::Campaign,
                    window: WindowSpec::Tumbling {
                        size: Span::from_ms(1000),
                    },
                    function: AggFunc::Count,
                    field: None,
                },
            ),
        ),
        (
            "spend per user, sliding sum",
            stateful(
                Some(vec![EventKind::AddToCart, EventKind::Purchase]),
                false,
                Aggregation {
                    key_by: Field::User,
                    window: WindowSpec::Sliding {
                        size: Span::from_ms(2000),
                        slide: Span::from_ms(500),
                    },
                    function: AggFunc::Sum,
                    field: Some(Field::PriceCents),
                },
            ),
        ),
    ]
}

fn config(parallelism: usize) -> DataflowConfig {
    DataflowConfig {
        parallelism,
        buffer_timeout: Span::from_ms(1),
        auto_watermark_interval: Span::from_ms(1),
        out_of_orderness: Span::from_ms(BOUND_MS),
        checkpoint_interval: Some(Span::from_ms(100)),
        sink: SinkGuarantee::ExactlyOnce,
        ..Default::default()
    }
}

/// Windows delivered (committed), over any number of runs; a window delivered twice is a
/// duplicate and fails the test.
fn committed_windows<'a>(what: &str, delivered: impl Iterator<Item = &'a Delivered>) -> BTreeMap<WindowId, (u64, f64)> {
    let mut out = BTreeMap::new();
    for d in delivered {
        let Output::Window(w) = d.output else {
            panic!("{what}: a stateful pipeline delivered a row")
        };
        assert!(!w.is_update, "{what}: no early firings configured");
        let previous = out.insert((w.key, w.start, w.end), (w.count, w.value));
        assert!(
            previous.is_none(),
            "{what}: window {:?} delivered twice",
            (w.key, w.start, w.end)
        );
    }
    out
}

fn checkpoint_entries(run: &EngineRun) -> Vec<&serde_json::Value> {
    run.progress.iter().filter(|p| p["type"] == "checkpoint").collect()
}

/// Ids of the completed checkpoints in `dir` (those with a `_metadata`).
fn manifests(dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let id = e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()?;
            e.path().join("_metadata").exists().then_some(id)
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn exactly_once_live_run_commits_the_reference_windows_and_writes_checkpoints() {
    let (events, table, partitions) = events(3);
    let log = compressed(&events, partitions);
    for (name, pipeline) in pipelines() {
        let expected = evaluate(&pipeline, &table, &events);
        for parallelism in [1, 2] {
            let what = format!("{name}, parallelism {parallelism}");
            let dir = tempfile::tempdir().unwrap();
            let run = run_live_with_checkpoints(
                &JobContext::new("pr", &config(parallelism), &pipeline, &table, log.partitions()),
                &log,
                LiveClock::start(),
                log.last_arrival() + 30 * NANOS_PER_SEC,
                true,
                Some(dir.path().to_path_buf()),
                None,
            )
            .unwrap();
            assert_eq!(
                committed_windows(&what, run.delivered.iter()),
                expected.windows,
                "{what}"
            );
            assert_eq!(run.counts.outputs, expected.windows.len() as u64, "{what}");
            assert_eq!(run.counts.events, events.len() as u64, "{what}");

            let entries = checkpoint_entries(&run);
            assert!(!entries.is_empty(), "{what}: no checkpoint completed");
            for e in &entries {
                for key in [
                    "triggerTimeMs",
                    "completedTimeMs",
                    "startDelayMs",
                    "alignmentMs",
                    "syncMs",
                    "asyncMs",
                    "durationMs",
                    "bytes",
                    "stateBytes",
                ] {
                    assert!(!e[key].is_null(), "{what}: checkpoint entry without {key}: {e}");
                }
                assert_eq!(e["run"], "pr");
            }
            let mut ids: Vec<u64> = entries.iter().map(|e| e["id"].as_u64().unwrap()).collect();
            ids.sort_unstable();
            assert_eq!(
                manifests(dir.path()),
                ids,
                "{what}: one manifest per completed checkpoint"
            );

            // The manifest is the simulated driver's format.
            let last = *ids.last().unwrap();
            let chk = dir.path().join(format!("chk-{last}"));
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(chk.join("_metadata")).unwrap()).unwrap();
            assert_eq!(meta["formatVersion"], 1);
            assert_eq!(meta["id"], last);
            let positions = meta["sources"].as_array().unwrap();
            assert_eq!(positions.len(), partitions, "{what}: one position per partition");
            for s in meta["subtasks"].as_array().unwrap() {
                let k = s["subtask"].as_u64().unwrap() as usize;
                assert!(
                    (parallelism..2 * parallelism).contains(&k),
                    "{what}: subtask {k} is no window"
                );
                assert_eq!(s["file"], format!("subtask-{k}.state"));
                assert!(s["watermark"].is_i64());
                assert!(chk.join(format!("subtask-{k}.state")).exists());
            }
        }
    }
}

#[test]
fn a_run_restored_from_a_checkpoint_completes_the_output_exactly_once() {
    let (events, table, partitions) = events(4);
    let log = compressed(&events, partitions);
    for (name, pipeline) in pipelines() {
        let expected = evaluate(&pipeline, &table, &events);
        for parallelism in [1, 2] {
            let what = format!("{name}, parallelism {parallelism}");
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(parallelism);
            // The first run stops before its input ends, as a crash would stop it: what no
            // completed checkpoint covers stays uncommitted.
            let first = run_live_with_checkpoints(
                &JobContext::new("first", &cfg, &pipeline, &table, log.partitions()),
                &log,
                LiveClock::start(),
                log.last_arrival() * 4 / 5,
                false,
                Some(dir.path().to_path_buf()),
                None,
            )
            .unwrap();
            let latest = checkpoint_entries(&first)
                .iter()
                .map(|e| e["id"].as_u64().unwrap())
                .max()
                .unwrap_or_else(|| panic!("{what}: no checkpoint completed"));
            assert!(manifests(dir.path()).contains(&latest));

            let second = run_live_with_checkpoints(
                &JobContext::new("second", &cfg, &pipeline, &table, log.partitions()),
                &log,
                LiveClock::start(),
                log.last_arrival() + 30 * NANOS_PER_SEC,
                true,
                Some(dir.path().to_path_buf()),
                Some(latest),
            )
            .unwrap();
            assert!(
                second.counts.events < events.len() as u64,
                "{what}: the restored sources resume where the checkpoint left them"
            );
            // Checkpoint ids continue after the one restored from.
            assert!(checkpoint_entries(&second)
                .iter()
                .all(|e| e["id"].as_u64().unwrap() > latest));
            let combined = committed_windows(&what, first.delivered.iter().chain(&second.delivered));
            assert_eq!(combined, expected.windows, "{what}: exactly once across the restart");
        }
    }
}

#[test]
fn restoring_needs_a_completed_checkpoint_in_the_directory() {
    let (events, table, partitions) = events(5);
    let log = compressed(&events, partitions);
    let (_, pipeline) = pipelines().remove(0);
    let dir = tempfile::tempdir().unwrap();
    let run = |restore_from, dir: Option<&Path>| {
        run_live_with_checkpoints(
            &JobContext::new("pr", &config(2), &pipeline, &table, log.partitions()),
            &log,
            LiveClock::start(),
            NANOS_PER_SEC,
            true,
            dir.map(Path::to_path_buf),
            restore_from,
        )
    };
    assert!(matches!(
        run(Some(7), Some(dir.path())),
        Err(LiveRunError::Checkpoint(_))
    ));
    assert!(matches!(run(Some(7), None), Err(LiveRunError::Config(_))));
    // A damaged manifest is refused.
    std::fs::create_dir_all(dir.path().join("chk-1")).unwrap();
    std::fs::write(dir.path().join("chk-1/_metadata"), "{not json").unwrap();
    let err = run(Some(1), Some(dir.path())).unwrap_err().to_string();
    assert!(err.contains("corrupt"), "{err}");
}

#[test]
fn run_live_still_takes_checkpoints_without_a_directory() {
    let (events, table, partitions) = events(6);
    let log = compressed(&events, partitions);
    let (name, pipeline) = pipelines().remove(0);
    let expected = evaluate(&pipeline, &table, &events);
    let run = run_live(
        &JobContext::new("pr", &config(2), &pipeline, &table, log.partitions()),
        &log,
        LiveClock::start(),
        log.last_arrival() + 30 * NANOS_PER_SEC,
        true,
    )
    .unwrap();
    assert_eq!(committed_windows(name, run.delivered.iter()), expected.windows);
    assert!(!checkpoint_entries(&run).is_empty());
}
