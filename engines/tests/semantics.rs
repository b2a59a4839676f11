//! The engines' documented semantics, checked on virtual time (a manual clock) or by driving a
//! subtask message by message: trigger boundaries, the overrun rule, Spark's default trigger
//! (batches back to back, polling when idle), the watermark's one-batch lag, no-data batches,
//! late data in each engine, network-buffer flushing.

use std::collections::BTreeMap;

use streamlab_engines::dataflow::network::{BufferPool, Message, OutputGate};
use streamlab_engines::dataflow::tasks::{KeyedPlan, ResultOutput, WindowTask};
use streamlab_engines::dataflow::DataflowConfig;
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, OutputMode, SchedulingOverhead, Trigger};
use streamlab_engines::operators::{Lineage, Output, Row};
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::reference::evaluate;
use streamlab_engines::run::EngineRun;
use streamlab_engines::runtime::{LiveRuntime, SimRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{ms, Span};

/// An event with event time `et` ms arriving at `arrival_ms`, in partition 0.
fn event(seq: u64, et: i64, arrival_ms: u64) -> Event {
    Event {
        seq,
        event_time: et,
        arrival: ms(arrival_ms),
        partition: 0,
        user: 1,
        session: 1,
        page: 1,
        ad: 1,
        kind: EventKind::Click,
        dwell_ms: 10,
        price_cents: 0,
    }
}

fn log(events: &[Event]) -> SourceLog {
    SourceLog::from_events(1, events.iter().copied())
}

fn count_per_10s() -> PipelineSpec {
    PipelineSpec {
        aggregate: Some(Aggregation {
            key_by: Field::User,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(10_000),
            },
            function: AggFunc::Count,
            field: None,
        }),
        ..Default::default()
    }
}

fn micro_batch(interval_ms: u64) -> MicroBatchConfig {
    MicroBatchConfig {
        trigger: Trigger::ProcessingTime {
            interval: Span::from_ms(interval_ms),
        },
        shuffle_partitions: 1,
        workers: 1,
        ..Default::default()
    }
}

fn run_mb(cfg: MicroBatchConfig, pipeline: &PipelineSpec, events: &[Event], until_ms: u64) -> EngineRun {
    let mut engine = MicroBatchEngine::new("mb", cfg, pipeline, &CampaignTable::default(), 1).unwrap();
    engine.run(&mut SimRuntime::free(1), &log(events), ms(until_ms))
}

fn batch_field(run: &EngineRun, field: &str) -> Vec<f64> {
    run.progress.iter().map(|p| p[field].as_f64().unwrap()).collect()
}

#[test]
fn processing_time_trigger_starts_batches_on_interval_multiples_and_skips_empty_ones() {
    let events = [event(0, 150, 150), event(1, 420, 420), event(2, 1010, 1010)];
    let run = run_mb(micro_batch(100), &PipelineSpec::default(), &events, 2000);
    assert_eq!(batch_field(&run, "timestamp"), vec![200.0, 500.0, 1100.0]);
    assert_eq!(run.counts.batches, 3, "no batch runs without new data");
    // Trigger wait of the event at 150 ms is 50 ms; of 420 ms, 80 ms; of 1010 ms, 90 ms.
    let mean_wait = run
        .latency
        .component_mean(streamlab_engines::latency::Component::TriggerWait)
        / 1e6;
    assert!((mean_wait - (50.0 + 80.0 + 90.0) / 3.0).abs() < 0.2, "{mean_wait}");
}

#[test]
fn overrunning_batch_is_followed_at_once_and_counted_as_falling_behind() {
    let events: Vec<Event> = (0..100).map(|i| event(i, i as i64 * 10, i * 10)).collect();
    let mut cfg = micro_batch(100);
    cfg.scheduling = SchedulingOverhead {
        per_batch: Span::from_ms(150),
        per_task: Span::default(),
    };
    let run = run_mb(cfg, &PipelineSpec::default(), &events, 1000);
    let starts = batch_field(&run, "timestamp");
    assert_eq!(
        &starts[..4],
        &[0.0, 150.0, 300.0, 450.0],
        "each batch starts when the previous one ends"
    );
    assert_eq!(run.counts.falling_behind, run.counts.batches);
    assert!(run.progress.iter().all(|p| p["fallingBehind"] == true));
    assert_eq!(run.progress[1]["modelledSchedulingMs"], 150.0);
}

#[test]
fn watermark_computed_in_one_batch_applies_from_the_next_and_a_no_data_batch_emits() {
    let events = [event(0, 100, 100), event(1, 10_500, 1_500)];
    let run = run_mb(micro_batch(100), &count_per_10s(), &events, 3000);
    let wms: Vec<i64> = run
        .progress
        .iter()
        .map(|p| p["eventTime"]["watermark"].as_i64().unwrap())
        .collect();
    assert_eq!(
        wms,
        vec![0, 100, 100, 10_500],
        "batch N runs with the watermark of batch N-1"
    );
    let rows: Vec<u64> = run
        .progress
        .iter()
        .map(|p| p["numInputRows"].as_u64().unwrap())
        .collect();
    // Spark's StateStoreSaveExec.shouldRunAnotherBatch: a no-data batch whenever the watermark
    // advanced, whether or not a window closes.
    assert_eq!(rows, vec![1, 0, 1, 0], "no-data batches follow each watermark move");
    assert_eq!(batch_field(&run, "timestamp"), vec![100.0, 200.0, 1500.0, 1600.0]);
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].at, ms(1600));
    let Output::Window(w) = run.delivered[0].output else {
        panic!()
    };
    assert_eq!((w.start, w.end, w.count), (0, 10_000, 1));
}

#[test]
fn stateless_query_runs_no_no_data_batch() {
    let events = [event(0, 100, 100), event(1, 10_500, 1_500)];
    let run = run_mb(micro_batch(100), &PipelineSpec::default(), &events, 3000);
    assert_eq!(run.counts.batches, 2);
}

#[test]
fn spark_drops_rows_whose_window_the_watermark_already_closed() {
    let events = [event(0, 1_000, 100), event(1, 12_000, 200), event(2, 2_000, 500)];
    let run = run_mb(micro_batch(100), &count_per_10s(), &events, 1000);
    assert_eq!(run.counts.late_dropped, 1);
    let last = run.progress.last().unwrap();
    assert_eq!(last["stateOperators"][0]["numRowsDroppedByWatermark"], 1);
    let windows: Vec<(i64, u64)> = run
        .delivered
        .iter()
        .map(|d| match d.output {
            Output::Window(w) => (w.start, w.count),
            Output::Row(_) | Output::Record(_) => panic!(),
        })
        .collect();
    assert_eq!(windows, vec![(0, 1)], "the late row does not change the emitted window");
}

#[test]
fn append_update_and_complete_modes_emit_what_spark_emits() {
    let events = [event(0, 1_000, 100), event(1, 2_000, 200), event(2, 12_000, 300)];
    let emitted = |mode| {
        let mut cfg = micro_batch(100);
        cfg.output_mode = mode;
        let run = run_mb(cfg, &count_per_10s(), &events, 1000);
        run.delivered
            .iter()
            .map(|d| match d.output {
                Output::Window(w) => ((d.at / 1_000_000) as i64, w.start, w.count),
                Output::Row(_) | Output::Record(_) => panic!(),
            })
            .collect::<Vec<_>>()
    };
    // Append: [0,10s) once, after the watermark passed it (batch at 400 ms runs with wm 12000).
    assert_eq!(emitted(OutputMode::Append), vec![(400, 0, 2)]);
    // Update: every batch emits the windows it changed.
    assert_eq!(
        emitted(OutputMode::Update),
        vec![(100, 0, 1), (200, 0, 2), (300, 10_000, 1)]
    );
    // Complete: every batch emits the whole table; nothing is evicted.
    assert_eq!(
        emitted(OutputMode::Complete),
        vec![(100, 0, 1), (200, 0, 2), (300, 0, 2), (300, 10_000, 1)]
    );
}

#[test]
fn available_now_processes_everything_in_capped_batches_then_stops() {
    let events: Vec<Event> = (0..10).map(|i| event(i, i as i64, i)).collect();
    let mut cfg = micro_batch(100);
    cfg.trigger = Trigger::AvailableNow {
        max_records_per_batch: Some(4),
    };
    let run = run_mb(cfg, &PipelineSpec::default(), &events, 100_000);
    let rows: Vec<u64> = run
        .progress
        .iter()
        .map(|p| p["numInputRows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, vec![4, 4, 2]);
    assert_eq!(run.delivered.len(), 10);
    assert_eq!(
        batch_field(&run, "timestamp")[0],
        9.0,
        "starts once all data has arrived"
    );
}

#[test]
fn continuous_trigger_refuses_a_stateful_query() {
    let mut cfg = micro_batch(100);
    cfg.trigger = Trigger::Continuous {
        checkpoint_interval: Span::from_ms(1000),
    };
    let err = MicroBatchEngine::new("mb", cfg, &count_per_10s(), &CampaignTable::default(), 1).unwrap_err();
    assert_eq!(err.key, "trigger");
    assert!(err.message.contains("aggregates"), "{}", err.message);
}

fn row(seq: u64, et: i64) -> Row {
    Row {
        event: event(seq, et, 0),
        campaign: 0,
        lineage: Lineage::default(),
    }
}

fn flink_window_task(allowed_lateness_ms: u64) -> WindowTask {
    let cfg = DataflowConfig {
        allowed_lateness: Span::from_ms(allowed_lateness_ms),
        ..Default::default()
    };
    let agg = count_per_10s().aggregate.unwrap();
    WindowTask::new(
        0,
        1,
        KeyedPlan::aggregate(agg),
        &cfg,
        ResultOutput::Chained(Box::default()),
    )
}

fn data(rows: Vec<Row>) -> Message<Row> {
    Message::Data { from: 0, items: rows }
}

fn results(task: WindowTask) -> (Vec<(i64, u64, bool)>, Vec<Row>, u64) {
    let (sink, outcome) = task.finish();
    let (side, late) = (outcome.side_output, outcome.late_dropped);
    let out = sink
        .unwrap()
        .delivered
        .iter()
        .map(|d| match d.output {
            Output::Window(w) => (w.start, w.count, w.is_update),
            Output::Row(_) | Output::Record(_) => panic!(),
        })
        .collect();
    (out, side, late)
}

#[test]
fn flink_fires_at_the_window_max_timestamp_and_sends_late_records_to_the_side_output() {
    let mut task = flink_window_task(0);
    task.on_message(data(vec![row(0, 1_000)]), 1);
    task.on_message(
        Message::Watermark {
            from: 0,
            watermark: 9_998,
        },
        2,
    );
    task.on_message(
        Message::Watermark {
            from: 0,
            watermark: 9_999,
        },
        3,
    ); // max timestamp of [0, 10000)
    task.on_message(data(vec![row(1, 2_000)]), 4);
    let (out, side, late) = results(task);
    assert_eq!(out, vec![(0, 1, false)]);
    assert_eq!(side.iter().map(|r| r.event.seq).collect::<Vec<_>>(), vec![1]);
    assert_eq!(late, 1);
}

#[test]
fn flink_allowed_lateness_refires_the_window_then_cleans_it_up() {
    let mut task = flink_window_task(5_000);
    task.on_message(data(vec![row(0, 1_000)]), 1);
    task.on_message(
        Message::Watermark {
            from: 0,
            watermark: 9_999,
        },
        2,
    );
    task.on_message(data(vec![row(1, 2_000)]), 3); // late but within allowed lateness: late firing
    task.on_message(
        Message::Watermark {
            from: 0,
            watermark: 14_999,
        },
        4,
    ); // cleanup point
    task.on_message(data(vec![row(2, 3_000)]), 5); // too late now
    let (out, side, late) = results(task);
    assert_eq!(out, vec![(0, 1, false), (0, 2, true)]);
    assert_eq!(side.len(), 1);
    assert_eq!(late, 1);
}

#[test]
fn a_window_first_seen_within_allowed_lateness_fires_once_on_arrival() {
    let mut task = flink_window_task(15_000);
    let wm = |watermark| Message::Watermark { from: 0, watermark };
    task.on_message(data(vec![row(0, 11_000)]), 1); // window [10000, 20000)
    task.on_message(wm(19_999), 2); // fires [10000, 20000); [0, 10000) has no state yet
    task.on_message(data(vec![row(1, 2_000)]), 3); // [0, 10000): past its fire point, within lateness
    task.on_message(wm(20_500), 4); // its fire point long passed: no second firing
    task.on_message(wm(24_999), 5); // its cleanup point: it leaves the state
    task.on_message(data(vec![row(2, 3_000)]), 6); // too late now
    let (out, side, late) = results(task);
    // Flink's EventTimeTrigger.onElement fires at once when the watermark is past the window;
    // the window's first result is not an update.
    assert_eq!(out, vec![(10_000, 1, false), (0, 1, false)]);
    assert_eq!(side.iter().map(|r| r.event.seq).collect::<Vec<_>>(), vec![2]);
    assert_eq!(late, 1);
}

#[test]
fn network_buffer_ships_when_full_on_flush_and_before_a_watermark() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut gate = OutputGate::new(0, vec![tx], 3, false, BufferPool::new());
    let sizes = |rx: &crossbeam_channel::Receiver<Message<u32>>| {
        rx.try_iter()
            .map(|m| match m {
                Message::Data { items, .. } => items.len() as i64,
                Message::Watermark { .. } => -1,
                _ => -2,
            })
            .collect::<Vec<_>>()
    };
    gate.push(0, 1);
    gate.push(0, 2);
    assert_eq!(sizes(&rx), Vec::<i64>::new(), "a partly filled buffer waits");
    gate.push(0, 3);
    assert_eq!(sizes(&rx), vec![3], "a full buffer ships");
    gate.push(0, 4);
    gate.flush_all();
    assert_eq!(sizes(&rx), vec![1], "the flusher ships a partial buffer");
    gate.push(0, 5);
    gate.broadcast_watermark(10);
    assert_eq!(sizes(&rx), vec![1, -1], "records go before the watermark");

    let (tx, rx) = crossbeam_channel::unbounded();
    let mut eager = OutputGate::new(0, vec![tx], 3, true, BufferPool::new());
    eager.push(0, 1);
    eager.push(0, 2);
    assert_eq!(sizes(&rx), vec![1, 1], "buffer_timeout = 0 ships every record");
}

#[test]
fn at_low_load_trigger_wait_averages_half_the_interval_and_p99_is_the_interval() {
    // 2,000 events/s for 10 s, stateless, 1 s trigger, on virtual time.
    let events: Vec<Event> = (0..20_000)
        .map(|i| Event {
            arrival: i * 500_000,
            ..event(i, (i / 2) as i64, 0)
        })
        .collect();
    let run = run_mb(micro_batch(1000), &PipelineSpec::default(), &events, 12_000);
    let wait = run
        .latency
        .component_mean(streamlab_engines::latency::Component::TriggerWait)
        / 1e6;
    assert!((wait - 500.0).abs() < 5.0, "mean trigger wait {wait} ms");
    let p99 = run.latency.total.value_at_quantile(0.99) as f64 / 1e6;
    assert!((p99 - 990.0).abs() < 5.0, "p99 {p99} ms");
    assert_eq!(run.delivered.len(), 20_000);
}

#[test]
fn continuous_trigger_delivers_each_record_as_it_arrives_and_commits_epochs() {
    let events: Vec<Event> = (0..100).map(|i| event(i, i as i64 * 10, i * 10 + 5)).collect();
    let mut cfg = micro_batch(100);
    cfg.trigger = Trigger::Continuous {
        checkpoint_interval: Span::from_ms(100),
    };
    cfg.workers = 1;
    let run = run_mb(cfg, &PipelineSpec::default(), &events, 1_200);
    assert_eq!(run.delivered.len(), 100);
    assert!(
        run.delivered.iter().all(|d| match d.output {
            Output::Row(r) => d.at == r.lineage.arrival,
            Output::Window(_) | Output::Record(_) => false,
        }),
        "no batching: each record is written when it arrives (work is free on this clock)"
    );
    let epochs: Vec<u64> = run.progress.iter().filter_map(|p| p["epoch"].as_u64()).collect();
    assert_eq!(epochs, (1..=11).collect::<Vec<_>>());
    assert_eq!(run.counts.batches, 0);
}

#[test]
fn continuous_trigger_needs_a_core_per_partition() {
    let mut cfg = micro_batch(100);
    cfg.trigger = Trigger::Continuous {
        checkpoint_interval: Span::from_ms(100),
    };
    cfg.workers = 1;
    let err = MicroBatchEngine::new("mb", cfg, &PipelineSpec::default(), &CampaignTable::default(), 2).unwrap_err();
    assert_eq!(err.key, "workers");
}

#[test]
fn kafka_streams_commit_interval_forwards_cached_updates_at_each_commit() {
    let cfg = DataflowConfig {
        commit_interval: Some(Span::from_ms(100)),
        ..Default::default()
    };
    let agg = count_per_10s().aggregate.unwrap();
    let mut task = WindowTask::new(
        0,
        1,
        KeyedPlan::aggregate(agg),
        &cfg,
        ResultOutput::Chained(Box::default()),
    );
    task.on_message(data(vec![row(0, 1_000), row(1, 2_000)]), ms(10));
    assert_eq!(task.next_deadline(), Some(ms(100)));
    task.on_tick(ms(100));
    task.on_message(data(vec![row(2, 3_000)]), ms(150));
    task.on_tick(ms(150)); // not due yet
    task.on_tick(ms(200));
    task.on_tick(ms(300)); // nothing changed: nothing forwarded
    task.on_message(data(vec![row(3, 4_000)]), ms(310));
    task.on_message(
        Message::Watermark {
            from: 0,
            watermark: 9_999,
        },
        ms(320),
    ); // closes the window
    let (out, _, _) = results(task);
    assert_eq!(
        out,
        vec![(0, 2, true), (0, 3, true), (0, 4, true)],
        "updates at commits; the last one leaves with the window"
    );
}

#[test]
fn without_an_external_shuffle_service_a_lost_worker_takes_its_map_output_along() {
    // Four partitions of 100 events, all arrived; map tasks of 1 ms each (10 µs per record,
    // modelled) on two workers: worker 1 runs partitions 1 (0–1 ms) and 3 (1–2 ms). It is lost
    // at 1.5 ms: partition 3's attempt dies and reruns on worker 0 either way; partition 1's
    // finished output is gone too unless an external shuffle service serves it.
    let events: Vec<Event> = (0..400)
        .map(|i| Event {
            partition: (i % 4) as u32,
            user: (i % 7) as u32,
            arrival: 0,
            ..event(i, i as i64 * 10, 0)
        })
        .collect();
    let run = |external_shuffle_service: bool| {
        let cfg = MicroBatchConfig {
            trigger: Trigger::AvailableNow {
                max_records_per_batch: None,
            },
            shuffle_partitions: 2,
            workers: 2,
            modelled_cost_per_record: Span(10_000),
            external_shuffle_service,
            ..Default::default()
        };
        let mut engine = MicroBatchEngine::new("mb", cfg, &count_per_10s(), &CampaignTable::default(), 4).unwrap();
        let mut rt = SimRuntime::free(2).with_worker_losses(vec![(1, 1_500_000, ms(100_000))]);
        let out = engine.run(&mut rt, &SourceLog::from_events(4, events.iter().copied()), ms(60_000));
        let first_batch_ms = out.progress[0]["durationMs"]["addBatch"].as_f64().unwrap();
        (out, first_batch_ms, rt.task_retries)
    };
    let (kept, kept_ms, kept_retries) = run(true);
    let (lost, lost_ms, lost_retries) = run(false);
    let windows = |r: &EngineRun| {
        let mut w: Vec<_> = r.delivered.iter().map(|d| format!("{:?}", d.output)).collect();
        w.sort();
        w
    };
    assert_eq!(windows(&kept), windows(&lost), "the same results either way");
    assert_eq!(
        (kept_retries, kept.counts.task_retries),
        (1, 0),
        "only the running attempt reran"
    );
    assert_eq!(
        (lost_retries, lost.counts.task_retries),
        (1, 1),
        "and the lost map output's task"
    );
    // Each rerun map task reads its partition's 100 events again.
    assert_eq!((kept.counts.replayed, lost.counts.replayed), (100, 200));
    assert!(
        lost_ms >= kept_ms + 1.0,
        "the rerun costs its time: {lost_ms} vs {kept_ms} ms"
    );
}

/// Spark's default trigger (`ProcessingTime(0)`) on one worker with one shuffle partition.
fn default_trigger() -> MicroBatchConfig {
    MicroBatchConfig {
        trigger: Trigger::SPARK_DEFAULT,
        ..micro_batch(100)
    }
}

#[test]
fn default_trigger_starts_each_batch_when_the_previous_ends_and_never_falls_behind() {
    let events: Vec<Event> = (0..100).map(|i| event(i, i as i64 * 10, i * 10)).collect();
    let mut cfg = default_trigger();
    cfg.scheduling = SchedulingOverhead {
        per_batch: Span::from_ms(150),
        per_task: Span::default(),
    };
    let run = run_mb(cfg, &PipelineSpec::default(), &events, 1000);
    let starts = batch_field(&run, "timestamp");
    let durations: Vec<f64> = run
        .progress
        .iter()
        .map(|p| p["durationMs"]["triggerExecution"].as_f64().unwrap())
        .collect();
    assert_eq!(&starts[..4], &[0.0, 150.0, 300.0, 450.0]);
    for i in 1..starts.len() {
        assert_eq!(
            starts[i],
            starts[i - 1] + durations[i - 1],
            "batch {i} starts as batch {} ends",
            i - 1
        );
    }
    assert_eq!(
        batch_field(&run, "triggerTimeMs"),
        starts,
        "a batch's trigger instant is its start: it never waits for one"
    );
    assert_eq!(run.counts.falling_behind, 0, "no interval to fall behind");
    assert!(run.progress.iter().all(|p| p["fallingBehind"] == false));
}

#[test]
fn default_trigger_wait_runs_from_arrival_to_the_start_of_the_batch_that_takes_the_record() {
    let events: Vec<Event> = (0..100).map(|i| event(i, i as i64 * 10, i * 10 + 3)).collect();
    let mut cfg = default_trigger();
    cfg.scheduling = SchedulingOverhead {
        per_batch: Span::from_ms(40),
        per_task: Span::default(),
    };
    let run = run_mb(cfg, &PipelineSpec::default(), &events, 2000);
    let starts: Vec<u64> = batch_field(&run, "timestamp").iter().map(|&t| ms(t as u64)).collect();
    assert_eq!(run.delivered.len(), 100);
    let mut expected_wait = 0;
    for d in &run.delivered {
        let Output::Row(r) = d.output else { panic!() };
        let taken_by = *starts.iter().find(|&&s| s >= r.lineage.arrival).unwrap();
        assert_eq!(
            r.lineage.ingest, taken_by,
            "record {} goes to the first batch after it",
            r.event.seq
        );
        assert_eq!(r.lineage.handoff, r.lineage.ingest);
        expected_wait += taken_by - r.lineage.arrival;
    }
    use streamlab_engines::latency::Component;
    let wait = run.latency.component_mean(Component::TriggerWait);
    assert!((wait - expected_wait as f64 / 100.0).abs() < 1.0, "{wait} ns");
    assert_eq!(
        run.latency.component_mean(Component::Queueing),
        0.0,
        "nothing waits behind an overrun"
    );
    // The first record arrives at 3 ms: the idle source is polled at 0 and 10 ms.
    assert_eq!(starts[0], ms(10));
}

#[test]
fn default_trigger_polls_an_idle_source_every_polling_delay() {
    let events = [event(0, 0, 0), event(1, 1_003, 1_003), event(2, 1_500, 1_500)];
    let run = run_mb(default_trigger(), &PipelineSpec::default(), &events, 3000);
    assert_eq!(
        batch_field(&run, "timestamp"),
        vec![0.0, 1010.0, 1500.0],
        "no batch without new data; polls at 10 ms steps from the last batch"
    );
    let mut cfg = default_trigger();
    cfg.polling_delay = Span::from_ms(25);
    let run = run_mb(cfg, &PipelineSpec::default(), &events, 3000);
    assert_eq!(batch_field(&run, "timestamp"), vec![0.0, 1025.0, 1500.0]);
}

#[test]
fn default_trigger_runs_a_no_data_batch_when_the_watermark_moved() {
    let events = [event(0, 100, 100), event(1, 10_500, 1_500)];
    let run = run_mb(default_trigger(), &count_per_10s(), &events, 3000);
    let rows: Vec<u64> = run
        .progress
        .iter()
        .map(|p| p["numInputRows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, vec![1, 0, 1, 0], "each watermark move is acted on at once");
    assert_eq!(batch_field(&run, "timestamp"), vec![100.0, 100.0, 1500.0, 1500.0]);
    assert_eq!(run.delivered.len(), 1);
    assert_eq!(run.delivered[0].at, ms(1500));
}

#[test]
fn default_trigger_refuses_a_zero_polling_delay() {
    let mut cfg = default_trigger();
    cfg.polling_delay = Span(0);
    let err = MicroBatchEngine::new("mb", cfg, &PipelineSpec::default(), &CampaignTable::default(), 1).unwrap_err();
    assert_eq!(err.key, "polling_delay");
    let mut timed = micro_batch(100);
    timed.polling_delay = Span(0);
    assert!(MicroBatchEngine::new("mb", timed, &PipelineSpec::default(), &CampaignTable::default(), 1).is_ok());
}

#[test]
fn default_trigger_stability_note_says_batches_run_back_to_back() {
    let note = Trigger::SPARK_DEFAULT.stability_note(120.0).unwrap();
    assert!(note.contains("mean 120 ms") && note.contains("back to back"), "{note}");
    assert!(
        !note.contains("falling behind") && !note.contains("cannot keep up"),
        "{note}"
    );
    let timed = Trigger::ProcessingTime {
        interval: Span::from_ms(100),
    };
    assert_eq!(
        timed.stability_note(120.0).unwrap(),
        "batch processing time: mean 120 ms against a 100ms trigger interval \
         (processing time > trigger interval: each batch starts as soon as the previous one ends)"
    );
    assert_eq!(Trigger::Once.stability_note(120.0), None);
}

/// A seeded, disordered stream: `n` events over 4 partitions, one every 100 µs, with event
/// times up to 200 ms behind arrival, 50 users.
fn disordered(n: u64, seed: u64) -> Vec<Event> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let arrival = i * 100_000;
            let event_time = 1_000 + (arrival / 1_000_000) as i64 - rng.random_range(0..200);
            Event {
                partition: (i % 4) as u32,
                user: rng.random_range(0..50),
                price_cents: rng.random_range(0..1_000),
                ..event(i, event_time, 0)
            }
        })
        .map(|e| Event {
            arrival: e.seq * 100_000,
            ..e
        })
        .collect()
}

/// Spend per user in 1 s tumbling windows.
fn spend_per_user() -> PipelineSpec {
    PipelineSpec {
        aggregate: Some(Aggregation {
            key_by: Field::User,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(1_000),
            },
            function: AggFunc::Sum,
            field: Some(Field::PriceCents),
        }),
        ..Default::default()
    }
}

/// The default trigger with Spark-like batch costs, on four partitions and two workers: each
/// batch takes 20 ms plus 20 µs per record, so batches grow and shrink with what arrived while
/// the previous one ran.
fn busy_default_trigger(mode: OutputMode) -> MicroBatchConfig {
    MicroBatchConfig {
        trigger: Trigger::SPARK_DEFAULT,
        output_mode: mode,
        watermark_delay: Span::from_ms(200),
        shuffle_partitions: 3,
        workers: 2,
        scheduling: SchedulingOverhead {
            per_batch: Span::from_ms(20),
            per_task: Span::default(),
        },
        modelled_cost_per_record: Span(20_000),
        ..Default::default()
    }
}

#[test]
fn default_trigger_results_equal_the_reference_evaluator_on_virtual_time() {
    let events = disordered(30_000, 7);
    let log = SourceLog::from_events(4, events.iter().copied());
    let table = CampaignTable::default();
    let until = log.last_arrival() + ms(2_000);
    let sliding_count = PipelineSpec {
        aggregate: Some(Aggregation {
            key_by: Field::User,
            window: WindowSpec::Sliding {
                size: Span::from_ms(1_000),
                slide: Span::from_ms(500),
            },
            function: AggFunc::Count,
            field: None,
        }),
        ..Default::default()
    };
    for pipeline in [spend_per_user(), sliding_count] {
        let expected = evaluate(&pipeline, &table, &events);
        let mut engine =
            MicroBatchEngine::new("mb", busy_default_trigger(OutputMode::Complete), &pipeline, &table, 4).unwrap();
        let run = engine.run(&mut SimRuntime::free(2), &log, until);
        assert_eq!(run.final_table(), expected.windows);
        assert_eq!(run.counts.falling_behind, 0);
        assert!(run.counts.batches > 10, "{} batches", run.counts.batches);

        let mut engine =
            MicroBatchEngine::new("mb", busy_default_trigger(OutputMode::Append), &pipeline, &table, 4).unwrap();
        let run = engine.run(&mut SimRuntime::free(2), &log, until);
        let closed: BTreeMap<_, _> = expected
            .windows
            .iter()
            .filter(|((_, _, end), _)| *end <= run.final_watermark)
            .map(|(k, v)| (*k, *v))
            .collect();
        assert!(!closed.is_empty());
        let mut emitted = BTreeMap::new();
        for d in &run.delivered {
            if let Output::Window(w) = d.output {
                assert!(
                    emitted.insert((w.key, w.start, w.end), (w.count, w.value)).is_none(),
                    "emitted twice"
                );
            }
        }
        assert_eq!(emitted, closed);
        assert_eq!(
            run.counts.late_dropped, 0,
            "disorder within the watermark delay drops nothing"
        );
    }
}

#[test]
fn default_trigger_on_live_threads_computes_what_the_reference_evaluator_computes() {
    // 3,000 events over 300 ms of wall time, in back-to-back batches.
    let events = disordered(3_000, 11);
    let log = SourceLog::from_events(4, events.iter().copied());
    let table = CampaignTable::default();
    let expected = evaluate(&spend_per_user(), &table, &events);
    let mut cfg = busy_default_trigger(OutputMode::Complete);
    cfg.scheduling = SchedulingOverhead::default();
    cfg.modelled_cost_per_record = Span::default();
    let mut engine = MicroBatchEngine::new("mb", cfg, &spend_per_user(), &table, 4).unwrap();
    let run = engine.run(&mut LiveRuntime::new(2), &log, log.last_arrival() + ms(300));
    assert_eq!(run.final_table(), expected.windows);
    assert_eq!(run.counts.falling_behind, 0);
    assert_eq!(run.counts.events, events.len() as u64);

    let stateless = PipelineSpec::default();
    let mut engine = MicroBatchEngine::new("mb", default_trigger(), &stateless, &table, 4).unwrap();
    let run = engine.run(&mut LiveRuntime::new(2), &log, log.last_arrival() + ms(300));
    let mut seqs: Vec<u64> = run
        .delivered
        .iter()
        .map(|d| match d.output {
            Output::Row(r) => r.event.seq,
            Output::Window(_) | Output::Record(_) => panic!(),
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, evaluate(&stateless, &table, &events).rows);
}
