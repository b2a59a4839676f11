//! Differential test of the window operator's two state backends: a heap operator and an LSM
//! operator are driven by the same seeded random sequence of inserts, watermark advances,
//! emissions, deltas, snapshots and restores, and must agree on every output, return value,
//! counter, delta and snapshot.

mod common;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::operators::window::{EmitPolicy, StateBackendKind, TimeSemantics, WindowedAggregation};
use streamlab_engines::operators::{Lineage, Row, WindowResult};
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, WindowSpec};
use streamlab_engines::state::LsmOptions;
use streamlab_engines::time::Span;

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("streamlab-state-backend-test-{}-{name}", std::process::id()))
}

/// Small memtables and blocks, so a short run flushes, reads runs and compacts.
fn tiny() -> LsmOptions {
    LsmOptions {
        memtable_bytes: 2 << 10,
        block_bytes: 256,
        sync_checkpoints: false,
        ..LsmOptions::default()
    }
}

fn row(rng: &mut Pcg64, clock: i64) -> Row {
    let event = Event {
        seq: rng.random_range(0..1_000_000),
        event_time: clock - rng.random_range(0..3_000),
        arrival: rng.random_range(0..200u64), // few distinct arrivals: lineage ties happen
        partition: 0,
        user: rng.random_range(0..12),
        session: 1,
        page: 1,
        ad: 1,
        kind: EventKind::Click,
        dwell_ms: rng.random_range(0..8),
        price_cents: 0,
    };
    let lineage = Lineage {
        arrival: event.arrival,
        ingest: rng.random_range(0..1_000),
        handoff: rng.random_range(0..1_000),
        recv: rng.random_range(0..1_000),
    };
    Row {
        event,
        campaign: 0,
        lineage,
    }
}

/// Asserts two output lists are equal, naming the first position where they differ (the lists
/// grow long, and a whole-list diff hides it).
fn same_outputs(heap: &[WindowResult], lsm: &[WindowResult], ctx: &str) {
    if let Some(at) = (0..heap.len().max(lsm.len())).find(|&i| heap.get(i) != lsm.get(i)) {
        panic!(
            "{ctx}: first difference at output {at} of {} (heap) / {} (lsm):\n heap {:?}\n lsm  {:?}",
            heap.len(),
            lsm.len(),
            heap.get(at),
            lsm.get(at)
        );
    }
}

/// Drives `heap` and `lsm` side by side for `steps` random operations.
fn run_pair(seed: u64, mut heap: WindowedAggregation, mut lsm: WindowedAggregation, steps: usize) {
    let mut rng = Pcg64::seed_from_u64(seed);
    let (mut out_h, mut out_l): (Vec<WindowResult>, Vec<WindowResult>) = (Vec::new(), Vec::new());
    let mut clock: i64 = 10_000;
    let mut watermark = i64::MIN;
    let mut tracking = false;
    for step in 0..steps {
        let now = step as u64 * 1_000;
        let ctx = |what: &str| format!("seed {seed}, step {step}: {what}");
        let op = rng.random_range(0..100);
        match op {
            0..=64 => {
                clock += rng.random_range(0..200);
                let r = row(&mut rng, clock);
                let a = heap.insert(&r, now, &mut out_h);
                let b = lsm.insert(&r, now, &mut out_l);
                assert_eq!(a, b, "{}", ctx("insert accepted"));
            }
            65..=79 => {
                watermark = watermark.max(clock - rng.random_range(0..4_000));
                heap.advance_watermark(watermark, now, &mut out_h);
                lsm.advance_watermark(watermark, now, &mut out_l);
            }
            80..=84 => {
                heap.emit_updates(now, &mut out_h);
                lsm.emit_updates(now, &mut out_l);
            }
            85..=86 => {
                heap.emit_all(now, &mut out_h);
                lsm.emit_all(now, &mut out_l);
            }
            87..=90 => {
                if !tracking {
                    heap.track_changes();
                    lsm.track_changes();
                    tracking = true;
                }
                assert_eq!(heap.take_delta(), lsm.take_delta(), "{}", ctx("delta"));
            }
            91..=95 => {
                assert_eq!(heap.snapshot(), lsm.snapshot(), "{}", ctx("snapshot"));
                assert_eq!(heap.state_rows(), lsm.state_rows(), "{}", ctx("state rows"));
            }
            96..=97 => {
                // Restore both from the heap's snapshot (a checkpoint crossing backends).
                let snap = heap.snapshot();
                let wm = heap.watermark();
                heap.restore(snap.iter().cloned(), wm);
                lsm.restore(snap, wm);
            }
            _ => {
                // Restore both from the LSM's snapshot.
                let snap = lsm.snapshot();
                let wm = lsm.watermark();
                heap.restore(snap.iter().cloned(), wm);
                lsm.restore(snap, wm);
            }
        }
        same_outputs(&out_h, &out_l, &ctx("outputs"));
        assert_eq!(heap.take_counters(), lsm.take_counters(), "{}", ctx("counters"));
        assert_eq!(heap.watermark(), lsm.watermark());
    }
    heap.advance_watermark(i64::MAX - (1 << 40), steps as u64 * 1_000, &mut out_h);
    lsm.advance_watermark(i64::MAX - (1 << 40), steps as u64 * 1_000, &mut out_l);
    heap.emit_all(0, &mut out_h);
    lsm.emit_all(0, &mut out_l);
    assert_eq!(out_h, out_l, "seed {seed}: final outputs");
    assert_eq!(heap.snapshot(), lsm.snapshot(), "seed {seed}: final snapshot");
    assert_eq!(heap.state_rows(), lsm.state_rows());
    assert!(heap.state_stats().is_none());
    let stats = lsm.state_stats().expect("the LSM backend reports store stats");
    assert!(stats.puts > 0 && stats.gets > 0, "{stats:?}");
}

fn windows() -> [WindowSpec; 3] {
    [
        WindowSpec::Tumbling {
            size: Span::from_ms(2_000),
        },
        WindowSpec::Sliding {
            size: Span::from_ms(3_000),
            slide: Span::from_ms(1_000),
        },
        WindowSpec::Session {
            gap: Span::from_ms(700),
        },
    ]
}

#[test]
fn heap_and_lsm_backends_agree_on_random_operation_sequences() {
    let functions = [AggFunc::Count, AggFunc::Sum, AggFunc::DistinctCount];
    let policies = [EmitPolicy::OnWatermark, EmitPolicy::OnUpdate, EmitPolicy::Complete];
    let semantics = [TimeSemantics::SPARK, TimeSemantics::flink(1_500)];
    let mut case = 0u64;
    for window in windows() {
        for function in functions {
            for policy in policies {
                for sem in semantics {
                    case += 1;
                    let spec = Aggregation {
                        key_by: Field::User,
                        window,
                        function,
                        field: (function != AggFunc::Count).then_some(Field::DwellMs),
                    };
                    let dir = scratch(&format!("case-{case}"));
                    let heap = WindowedAggregation::new(spec, sem, policy);
                    let lsm = WindowedAggregation::new(spec, sem, policy)
                        .with_lsm_options(dir.clone(), tiny())
                        .unwrap();
                    assert_eq!(lsm.backend(), StateBackendKind::Lsm);
                    run_pair(0x5eed_0000 + case, heap, lsm, 1_000);
                    std::fs::remove_dir_all(&dir).unwrap();
                }
            }
        }
    }
}

#[test]
fn the_lsm_store_flushes_and_compacts_and_reports_its_bytes() {
    let spec = Aggregation {
        key_by: Field::User,
        window: WindowSpec::Sliding {
            size: Span::from_ms(3_000),
            slide: Span::from_ms(500),
        },
        function: AggFunc::DistinctCount,
        field: Some(Field::Seq),
    };
    let dir = scratch("stats");
    let mut lsm = WindowedAggregation::new(spec, TimeSemantics::flink(0), EmitPolicy::OnWatermark)
        .with_lsm_options(dir.clone(), tiny())
        .unwrap();
    let mut heap = WindowedAggregation::new(spec, TimeSemantics::flink(0), EmitPolicy::OnWatermark);
    let mut rng = Pcg64::seed_from_u64(7);
    let (mut out_h, mut out_l) = (Vec::new(), Vec::new());
    for i in 0..4_000i64 {
        let r = row(&mut rng, 10_000 + i * 5);
        heap.insert(&r, 0, &mut out_h);
        lsm.insert(&r, 0, &mut out_l);
        if i % 100 == 99 {
            heap.advance_watermark(i * 5, 0, &mut out_h);
            lsm.advance_watermark(i * 5, 0, &mut out_l);
        }
    }
    assert_eq!(out_h, out_l);
    assert_eq!(heap.snapshot(), lsm.snapshot());
    let stats = lsm.state_stats().unwrap();
    assert!(stats.flushes > 0, "{stats:?}");
    assert!(stats.compactions > 0, "{stats:?}");
    assert!(stats.bytes_written_total > 0 && stats.deletes > 0, "{stats:?}");
    assert_eq!(stats.watermark, Some(3_999 * 5));
    assert!(lsm.state_bytes() as u64 >= stats.live_bytes);
    drop(lsm);
    assert!(dir.exists(), "a caller-given directory is left to the caller");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn with_backend_lsm_uses_a_private_temp_dir_removed_on_drop() {
    let spec = Aggregation {
        key_by: Field::User,
        window: WindowSpec::Tumbling {
            size: Span::from_ms(1_000),
        },
        function: AggFunc::Count,
        field: None,
    };
    let heap = WindowedAggregation::new(spec, TimeSemantics::SPARK, EmitPolicy::OnWatermark)
        .with_backend(StateBackendKind::Heap)
        .unwrap();
    assert_eq!(heap.backend(), StateBackendKind::Heap);
    let before: Vec<_> = common::lsm_scratch_dirs();
    let a = WindowedAggregation::new(spec, TimeSemantics::SPARK, EmitPolicy::OnWatermark)
        .with_backend(StateBackendKind::Lsm)
        .unwrap();
    let b = WindowedAggregation::new(spec, TimeSemantics::SPARK, EmitPolicy::OnWatermark)
        .with_backend(StateBackendKind::Lsm)
        .unwrap();
    let created: Vec<_> = common::lsm_scratch_dirs()
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    assert_eq!(created.len(), 2, "one directory per operator: {created:?}");
    run_pair(
        11,
        WindowedAggregation::new(spec, TimeSemantics::SPARK, EmitPolicy::OnWatermark),
        a,
        300,
    );
    drop(b);
    let left: Vec<_> = common::lsm_scratch_dirs()
        .into_iter()
        .filter(|d| created.contains(d))
        .collect();
    assert!(left.is_empty(), "scratch directories removed on drop: {left:?}");
}

#[test]
fn state_backend_config_key_parses_in_both_engines() {
    use streamlab_engines::dataflow::DataflowConfig;
    use streamlab_engines::microbatch::MicroBatchConfig;
    assert_eq!(MicroBatchConfig::default().state_backend, StateBackendKind::Heap);
    assert_eq!(DataflowConfig::default().state_backend, StateBackendKind::Heap);
    let mb: MicroBatchConfig = serde_json::from_str(r#"{"state_backend": "lsm"}"#).unwrap();
    assert_eq!(mb.state_backend, StateBackendKind::Lsm);
    let df: DataflowConfig = serde_json::from_str(r#"{"state_backend": "heap"}"#).unwrap();
    assert_eq!(df.state_backend, StateBackendKind::Heap);
    assert!(serde_json::from_str::<DataflowConfig>(r#"{"state_backend": "rocksdb"}"#).is_err());
}

#[test]
fn micro_batch_engine_delivers_the_same_outputs_on_either_backend() {
    use streamlab_engines::dimension::CampaignTable;
    use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, OutputMode, Trigger};
    use streamlab_engines::pipeline::PipelineSpec;
    use streamlab_engines::runtime::SimRuntime;
    use streamlab_engines::source::SourceLog;
    use streamlab_engines::time::ms;

    let mut rng = Pcg64::seed_from_u64(3);
    let events: Vec<Event> = (0..2_000u64)
        .map(|i| {
            let mut e = row(&mut rng, 5_000 + i as i64 * 7).event;
            e.seq = i;
            e.arrival = ms(i * 2);
            e
        })
        .collect();
    let log = SourceLog::from_events(1, events.iter().copied());
    for mode in [OutputMode::Append, OutputMode::Update, OutputMode::Complete] {
        let pipeline = PipelineSpec {
            aggregate: Some(Aggregation {
                key_by: Field::User,
                window: WindowSpec::Sliding {
                    size: Span::from_ms(2_000),
                    slide: Span::from_ms(500),
                },
                function: AggFunc::DistinctCount,
                field: Some(Field::DwellMs),
            }),
            ..Default::default()
        };
        let run = |state_backend| {
            let cfg = MicroBatchConfig {
                trigger: Trigger::ProcessingTime {
                    interval: Span::from_ms(200),
                },
                output_mode: mode,
                watermark_delay: Span::from_ms(1_000),
                state_backend,
                ..Default::default()
            };
            let mut engine = MicroBatchEngine::new("mb", cfg, &pipeline, &CampaignTable::default(), 1).unwrap();
            engine.run(&mut SimRuntime::free(1), &log, ms(10_000))
        };
        let (heap, lsm) = (run(StateBackendKind::Heap), run(StateBackendKind::Lsm));
        assert!(!heap.delivered.is_empty(), "{mode:?}");
        assert_eq!(heap.delivered, lsm.delivered, "{mode:?}");
        assert_eq!(heap.counts, lsm.counts, "{mode:?}");
    }
}
