//! Criterion benchmarks named after the performance targets (see the README's performance
//! table): each group measures one target the way the target states it.
//!
//! * `ysb` — target 2: the Yahoo-Streaming-Benchmark-like pipeline (filter views → ad →
//!   campaign lookup → 10 s tumbling count per campaign) over in-memory events that have all
//!   arrived, so the figure is processing speed: each engine on one core (the process pinned
//!   to core 0, so the per-record engine's source and window threads share it) and with
//!   parallelism 2 on both cores. Throughput is in events per second. The micro-batch map
//!   tasks run it a column at a time (`operators/columnar`); every window either engine
//!   delivers is asserted equal to the reference evaluator's, with a latency recorded for each.
//!
//! * `stateless` — target 1: the stateless pipeline (filter views → campaign lookup → project)
//!   over the same in-memory backlog, every output delivered to a discarding sink (Spark's
//!   `noop`, Flink's `DiscardingSink`: made visible, latency recorded, handed on in chunks
//!   through an [`OutputStream`] whose receiver digests them) — equal sink work for both
//!   engines. The digest (count, sum and sum of squares of the sequence numbers) is asserted
//!   equal to the reference evaluator's. One core and parallelism 2, as `ysb`.
//! * `micro_batch_fixed_cost` — a live micro-batch query with its offset and commit logs (and
//!   sink markers) written to a real checkpoint directory, one record per batch
//!   (Trigger.AvailableNow with `maxOffsetsPerTrigger` 1): the reported time is per batch.
//! * `per_record_latency` — a live stateless per-record job at 1 M events/s with the buffer
//!   timeout at 0, parallelism 2 (source → exchange → sink): the reported *time* is the run's
//!   p99 latency (each iteration is a 3 s run; criterion's time is that p99, not the run time).
//! * `measurement_overhead` — the same stateless runs with latency recording on and off
//!   ([`streamlab_engines::latency::set_recording`]); their ratio is what recording costs.
//!
//! * `simulator` — target 4: both engines on virtual time, priced by the `local` cost profile,
//!   over ten simulated seconds of the quickstart pipeline (filter clicks → campaign lookup →
//!   2 s tumbling count per campaign) at 100,000 events/s, generated beforehand (the generator
//!   has its own bench): simulated events per wall-clock second. The outputs are the golden
//!   ones (`tests/simulated_outputs.rs` pins the same engine code).
//!
//! Heap state per key is `cargo bench --bench state_bytes` (its own binary, so the resident memory it reports is a
//! fresh process's).
//!
//! Run with `cargo bench --bench targets`.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput};
use std::sync::{Arc, Mutex};

use streamlab_engines::cluster::Cluster;
use streamlab_engines::dataflow::live::{run_live, run_live_durable, IncarnationPlan, LiveFaults};
use streamlab_engines::dataflow::sim::run_simulated;
use streamlab_engines::dataflow::{DataflowConfig, JobContext};
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::microbatch::checkpoint::CheckpointDir;
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, Trigger};
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::reference;
use streamlab_engines::run::{Delivered, EngineRun, OutputStream};
use streamlab_engines::runtime::{LiveClock, LiveRuntime, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Span, NANOS_PER_SEC};
use streamlab_scenarios::profile::load_profile;
use streamlab_workloads::{campaign_table, generate, ClickstreamConfig, RateProfile};

mod pipelines;
use pipelines::quickstart_pipeline;

/// Events per YSB iteration: about 40 s of event time at 100,000 events/s.
const YSB_EVENTS: usize = 4_000_000;

/// The YSB-like pipeline.
fn ysb_pipeline() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(vec![EventKind::View]),
        lookup_join: true,
        project: vec![],
        aggregate: Some(Aggregation {
            key_by: Field::Campaign,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(10_000),
            },
            function: AggFunc::Count,
            field: None,
        }),
        ..Default::default()
    }
}

/// Runs `f` on `cores` cores: with one, on a thread pinned to the first core (threads it
/// spawns inherit the pin); with more, as it is.
fn on_cores<T: Send>(cores: usize, f: impl FnOnce() -> T + Send) -> T {
    let first = core_affinity::get_core_ids().and_then(|ids| ids.first().copied());
    match first.filter(|_| cores == 1) {
        Some(core) => std::thread::scope(|s| {
            s.spawn(move || {
                core_affinity::set_for_current(core);
                f()
            })
            .join()
            .expect("pinned run")
        }),
        None => f(),
    }
}

/// The two measurements of a throughput target: one core, and parallelism 2 on two.
const CORES: [(&str, usize); 2] = [("one_core", 1), ("parallelism_2", 2)];

/// A per-record job at `parallelism` with each task slot's threads on one core: with
/// parallelism 2, one slot per core; eight network buffers per channel, as
/// `scenarios/throughput.toml` has them.
fn pinned(parallelism: usize) -> DataflowConfig {
    DataflowConfig {
        parallelism,
        pin_slots: true,
        buffers_per_channel: 8,
        ..Default::default()
    }
}

/// A micro-batch runtime of `workers` workers, each kept on a core of its own above one
/// worker (`pin_workers`, as `scenarios/throughput.toml` has it).
fn pinned_workers(workers: usize) -> LiveRuntime {
    LiveRuntime::new(workers)
        .with_pinned_workers(workers > 1)
        .expect("the worker threads start")
}

/// A group of throughput benches over `events` events, ten samples each.
fn target_group<'a>(c: &'a mut Criterion, name: &str, events: usize) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(events as u64));
    group.sample_size(10);
    group
}

/// What a digesting sink saw: outputs, and the sum and sum of squares of their sequence
/// numbers (wrapping) — equal to the reference's only if the same rows were delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RowDigest {
    count: u64,
    sum: u64,
    squares: u64,
}

impl RowDigest {
    fn add(&mut self, seq: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(seq);
        self.squares = self.squares.wrapping_add(seq.wrapping_mul(seq));
    }
}

/// A discarding sink that digests what it is handed, and the digest it fills.
fn digesting_sink() -> (OutputStream, Arc<Mutex<RowDigest>>) {
    let digest = Arc::new(Mutex::new(RowDigest::default()));
    let into = digest.clone();
    let stream = OutputStream::new(move |chunk: &[Delivered]| {
        let mut d = into.lock().unwrap();
        for o in chunk {
            if let Output::Row(r) = &o.output {
                d.add(r.event.seq);
            }
        }
    });
    (stream, digest)
}

fn stateless(c: &mut Criterion) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: 100_000.0,
        },
        ..Default::default()
    };
    let events = generate(&cfg, 7, YSB_EVENTS as u64 * NANOS_PER_SEC / 100_000);
    let table = campaign_table(&cfg, 7);
    let partitions = cfg.partitions as usize;
    let mut pipeline = stateless_pipeline();
    pipeline.project = vec![Field::Seq, Field::EventTime, Field::User, Field::Campaign];
    let mut expected = RowDigest::default();
    for &seq in &reference::evaluate(&pipeline, &table, &events).rows {
        expected.add(seq);
    }
    let mut log = SourceLog::from_events(partitions, events.iter().map(|e| Event { arrival: 0, ..*e }));
    // As `streamlab run` holds a backlog (`Workload::full_log`): the scanned fields as columns.
    log.hold_scan_columns();
    drop(events);
    let mb = |workers: usize| MicroBatchConfig {
        trigger: Trigger::AvailableNow {
            max_records_per_batch: Some(1_000_000),
        },
        workers,
        ..Default::default()
    };
    // Flink chains a sink of the sources' parallelism into them: each slot delivers its own.
    let pr = |parallelism: usize| DataflowConfig {
        chain_sink: true,
        ..pinned(parallelism)
    };
    let mut group = target_group(c, "stateless", log.len());
    for (name, cores) in CORES {
        group.bench_function(format!("micro_batch_{name}"), |b| {
            b.iter_batched(
                || {
                    let (stream, digest) = digesting_sink();
                    let mut engine = MicroBatchEngine::new("mb", mb(cores), &pipeline, &table, partitions).unwrap();
                    engine.set_output_stream(Some(stream));
                    (engine, digest)
                },
                |(mut engine, digest)| {
                    on_cores(cores, || {
                        let run = engine.run(&mut pinned_workers(cores), &log, 600 * NANOS_PER_SEC);
                        assert_eq!(*digest.lock().unwrap(), expected);
                        assert_eq!(run.latency.outputs, expected.count, "a latency for every output");
                        run
                    })
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("per_record_{name}"), |b| {
            b.iter(|| {
                on_cores(cores, || {
                    let (stream, digest) = digesting_sink();
                    let job = JobContext::new("pr", &pr(cores), &pipeline, &table, log.partitions());
                    let plan = IncarnationPlan {
                        until: 600 * NANOS_PER_SEC,
                        bounded: true,
                        checkpoint_dir: None,
                        restore_from: None,
                        on_commit: None,
                        stream: Some(stream),
                    };
                    let run = run_live_durable(&job, &log, LiveClock::start(), plan, &LiveFaults::default())
                        .unwrap()
                        .run;
                    assert_eq!(*digest.lock().unwrap(), expected);
                    assert_eq!(run.latency.outputs, expected.count, "a latency for every output");
                    run
                })
            })
        });
    }
    group.finish();
}

fn ysb(c: &mut Criterion) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: 100_000.0,
        },
        ..Default::default()
    };
    let events = generate(&cfg, 7, YSB_EVENTS as u64 * NANOS_PER_SEC / 100_000);
    let table = campaign_table(&cfg, 7);
    let partitions = cfg.partitions as usize;
    let pipeline = ysb_pipeline();
    let expected = reference::evaluate(&pipeline, &table, &events).windows;
    let mut log = SourceLog::from_events(partitions, events.iter().map(|e| Event { arrival: 0, ..*e }));
    // As `streamlab run` holds a backlog (`Workload::full_log`): the scanned fields as columns.
    log.hold_scan_columns();
    drop(events);
    // Every window delivered is the reference's, and each has its latency.
    let check = |run: &EngineRun| {
        assert!(run.counts.outputs > 0);
        assert_eq!(
            run.latency.outputs,
            run.delivered.len() as u64,
            "a latency for every output"
        );
        for d in &run.delivered {
            let Output::Window(w) = d.output else {
                panic!("the YSB pipeline delivered a non-window output");
            };
            assert_eq!(expected.get(&(w.key, w.start, w.end)), Some(&(w.count, w.value)));
        }
    };
    // Generous bounds: the generator's disorder never makes an event late, so every engine
    // counts every view (the outputs equal the reference evaluator's).
    let bound = Span::from_ms(5_000);
    let mb = |workers: usize| MicroBatchConfig {
        trigger: Trigger::AvailableNow {
            max_records_per_batch: None,
        },
        shuffle_partitions: workers,
        workers,
        watermark_delay: bound,
        ..Default::default()
    };
    let pr = |parallelism: usize| DataflowConfig {
        out_of_orderness: bound,
        ..pinned(parallelism)
    };

    let mut group = target_group(c, "ysb", log.len());
    for (name, cores) in CORES {
        group.bench_function(format!("micro_batch_{name}"), |b| {
            b.iter_batched(
                || MicroBatchEngine::new("mb", mb(cores), &pipeline, &table, partitions).unwrap(),
                |mut engine| {
                    on_cores(cores, || {
                        let run = engine.run(&mut pinned_workers(cores), &log, 600 * NANOS_PER_SEC);
                        check(&run);
                        run
                    })
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("per_record_{name}"), |b| {
            b.iter(|| {
                on_cores(cores, || {
                    let run = per_record_run(&pr(cores), &pipeline, &table, &log, 600);
                    check(&run);
                    run
                })
            })
        });
    }
    group.finish();
}

/// The stateless pipeline of the latency and overhead targets: filter views → campaign lookup.
fn stateless_pipeline() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(vec![EventKind::View]),
        lookup_join: true,
        project: vec![],
        aggregate: None,
        ..Default::default()
    }
}

/// `n` seconds of clickstream at `rate` events/s, and its campaign table.
fn clickstream(rate: f64, secs: u64) -> (Vec<Event>, streamlab_engines::dimension::CampaignTable, usize) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: rate,
        },
        ..Default::default()
    };
    (
        generate(&cfg, 11, secs * NANOS_PER_SEC),
        campaign_table(&cfg, 11),
        cfg.partitions as usize,
    )
}

fn micro_batch_fixed_cost(c: &mut Criterion) {
    let (events, table, partitions) = clickstream(100_000.0, 1);
    let pipeline = stateless_pipeline();
    let cfg = MicroBatchConfig {
        trigger: Trigger::AvailableNow {
            max_records_per_batch: Some(1),
        },
        shuffle_partitions: 2,
        workers: 2,
        ..Default::default()
    };
    let mut group = c.benchmark_group("micro_batch_fixed_cost");
    group.sample_size(10);
    group.bench_function("live_with_checkpoint_logs", |b| {
        b.iter_custom(|iters| {
            // `iters` batches, run in queries of at most 2,000 batches each.
            let (mut took, mut batches, mut left) = (Duration::ZERO, 0u64, iters);
            while left > 0 {
                let n = left.min(2_000) as usize;
                left -= n as u64;
                let log = SourceLog::from_events(partitions, events[..n].iter().map(|e| Event { arrival: 0, ..*e }));
                let dir = tempfile::tempdir().unwrap();
                let checkpoint = CheckpointDir::open(dir.path(), "fixed-cost").unwrap();
                let mut engine = MicroBatchEngine::new("mb", cfg, &pipeline, &table, partitions)
                    .unwrap()
                    .with_checkpoint(checkpoint);
                let started = Instant::now();
                let run = engine.run(&mut LiveRuntime::new(2), &log, 3600 * NANOS_PER_SEC);
                took += started.elapsed();
                batches += run.counts.batches;
                assert!(dir.path().join("commits").read_dir().unwrap().count() as u64 >= run.counts.batches);
            }
            took.mul_f64(iters as f64 / batches.max(1) as f64)
        })
    });
    group.finish();
}

/// A live per-record run of `pipeline` over `log`, bounded (the job ends with its input, or
/// after `secs` seconds).
fn per_record_run(
    cfg: &DataflowConfig,
    pipeline: &PipelineSpec,
    table: &streamlab_engines::dimension::CampaignTable,
    log: &SourceLog,
    secs: u64,
) -> EngineRun {
    run_live(
        &JobContext::new("pr", cfg, pipeline, table, log.partitions()),
        log,
        LiveClock::start(),
        secs * NANOS_PER_SEC,
        true,
    )
    .unwrap()
}

/// A live stateless per-record run at 1 M events/s, buffer timeout 0, parallelism 2.
fn live_stateless_run(log: &SourceLog, table: &streamlab_engines::dimension::CampaignTable) -> EngineRun {
    let cfg = DataflowConfig {
        parallelism: 2,
        buffer_timeout: Span::from_ms(0),
        ..Default::default()
    };
    per_record_run(&cfg, &stateless_pipeline(), table, log, 4)
}

fn per_record_latency(c: &mut Criterion) {
    // Three seconds of events per run: the p99 of a steady state, not of thread start-up.
    let (events, table, partitions) = clickstream(1_000_000.0, 3);
    let log = SourceLog::from_events(partitions, events);
    let mut group = c.benchmark_group("per_record_latency");
    group.sample_size(10);
    group.bench_function("p99_stateless_1m_events_per_s_buffer_timeout_0", |b| {
        b.iter_custom(|iters| {
            let mut p99 = Duration::ZERO;
            for _ in 0..iters {
                let run = live_stateless_run(&log, &table);
                assert!(run.counts.outputs > 0);
                p99 += Duration::from_nanos(run.latency.total.value_at_quantile(0.99));
            }
            p99
        })
    });
    group.finish();
}

fn measurement_overhead(c: &mut Criterion) {
    let (events, table, partitions) = clickstream(1_000_000.0, 2);
    let log = SourceLog::from_events(partitions, events.iter().map(|e| Event { arrival: 0, ..*e }));
    let pipeline = stateless_pipeline();
    let mb = MicroBatchConfig {
        trigger: Trigger::AvailableNow {
            max_records_per_batch: None,
        },
        shuffle_partitions: 1,
        workers: 1,
        ..Default::default()
    };
    let pr = DataflowConfig {
        parallelism: 1,
        ..Default::default()
    };
    let mut group = c.benchmark_group("measurement_overhead");
    group.throughput(Throughput::Elements(log.len() as u64));
    group.sample_size(10);
    for (name, on) in [("recording_on", true), ("recording_off", false)] {
        group.bench_function(format!("micro_batch_{name}"), |b| {
            streamlab_engines::latency::set_recording(on);
            b.iter_batched(
                || MicroBatchEngine::new("mb", mb, &pipeline, &table, partitions).unwrap(),
                |mut engine| engine.run(&mut LiveRuntime::new(1), &log, 600 * NANOS_PER_SEC),
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("per_record_{name}"), |b| {
            streamlab_engines::latency::set_recording(on);
            b.iter(|| per_record_run(&pr, &pipeline, &table, &log, 600))
        });
    }
    streamlab_engines::latency::set_recording(true);
    group.finish();
}

/// Target 4: simulated events per wall-clock second, both engines, on the quickstart pipeline.
fn simulator(c: &mut Criterion) {
    let cfg = ClickstreamConfig {
        rate: RateProfile::Constant {
            events_per_second: 100_000.0,
        },
        ..Default::default()
    };
    let events = generate(&cfg, 42, 10 * NANOS_PER_SEC);
    let table = campaign_table(&cfg, 42);
    let partitions = cfg.partitions as usize;
    let log = SourceLog::from_events(partitions, events);
    let pipeline = quickstart_pipeline();
    let costs = load_profile("local", std::path::Path::new("."))
        .expect("built-in profile")
        .costs;
    let until = 12 * NANOS_PER_SEC;
    let mb = MicroBatchConfig {
        trigger: Trigger::ProcessingTime {
            interval: Span::from_ms(1000),
        },
        watermark_delay: Span::from_ms(200),
        ..Default::default()
    };
    let pr = DataflowConfig {
        out_of_orderness: Span::from_ms(200),
        ..Default::default()
    };
    let run_mb = || {
        MicroBatchEngine::new("mb", mb, &pipeline, &table, partitions)
            .unwrap()
            .run(&mut SimRuntime::new(2, costs), &log, until)
    };
    let run_pr = || {
        run_simulated(
            &JobContext::new("pr", &pr, &pipeline, &table, log.partitions()),
            &log,
            &costs,
            Cluster::default(),
            until,
            false,
        )
        .unwrap()
    };
    // Both deliver windows (each one's exact results are pinned by the goldens).
    assert!(run_mb().counts.outputs > 0 && run_pr().counts.outputs > 0);
    let mut group = target_group(c, "simulator", log.len());
    group.bench_function("micro_batch_quickstart_virtual_time", |b| b.iter(run_mb));
    group.bench_function("per_record_quickstart_virtual_time", |b| b.iter(run_pr));
    group.finish();
}

criterion_group!(
    benches,
    simulator,
    stateless,
    ysb,
    micro_batch_fixed_cost,
    per_record_latency,
    measurement_overhead
);
criterion_main!(benches);
