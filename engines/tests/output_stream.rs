//! Outputs streamed out of a run as they are delivered ([`OutputStream`]): the stream receives
//! exactly the outputs the reference evaluator computes, each once, with a latency recorded for
//! every one, and the run keeps none of them — for both engines, on one worker and on two,
//! with the per-record sink chained into the sources (`chain_sink`) or behind an exchange.

use std::sync::{Arc, Mutex};

use streamlab_engines::cluster::Cluster;
use streamlab_engines::cost::CostModel;
use streamlab_engines::dataflow::config::SinkGuarantee;
use streamlab_engines::dataflow::live::{run_live_durable, IncarnationPlan, LiveFaults};
use streamlab_engines::dataflow::sim::run_simulated;
use streamlab_engines::dataflow::{DataflowConfig, JobContext};
use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::{Event, EventKind};
use streamlab_engines::microbatch::{MicroBatchConfig, MicroBatchEngine, Trigger};
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::reference::evaluate;
use streamlab_engines::run::{Delivered, EngineRun, OutputStream};
use streamlab_engines::runtime::{LiveClock, LiveRuntime};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{ms, Span, NANOS_PER_SEC};

/// 20,000 events over four partitions, every kind, ads 0..12 (ads 10 and 11 have no campaign),
/// all arrived at 0 (a backlog).
fn events() -> Vec<Event> {
    (0..20_000u64)
        .map(|seq| Event {
            seq,
            event_time: seq as i64,
            arrival: 0,
            partition: (seq % 4) as u32,
            user: (seq % 97) as u32,
            session: seq / 10,
            page: (seq % 13) as u32,
            ad: (seq % 12) as u32,
            kind: EventKind::CLICKSTREAM[(seq % 7 % 4) as usize],
            dwell_ms: 5,
            price_cents: 0,
        })
        .collect()
}

fn table() -> CampaignTable {
    CampaignTable::new((0..10).map(|ad| ad / 2).collect())
}

/// Filter views, look the campaign up, project.
fn stateless() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(vec![EventKind::View]),
        lookup_join: true,
        project: vec![Field::Seq, Field::Campaign],
        ..Default::default()
    }
}

/// A stream that collects the sequence numbers it is handed.
fn collecting() -> (OutputStream, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    let stream = OutputStream::new(move |chunk: &[Delivered]| {
        assert!(chunk.len() <= OutputStream::CHUNK);
        let mut seen = into.lock().unwrap();
        for d in chunk {
            match &d.output {
                Output::Row(r) => seen.push(r.event.seq),
                other => panic!("a stateless pipeline delivered {other:?}"),
            }
        }
    });
    (stream, seen)
}

/// The stream saw exactly the reference's rows, once each; the run kept none and timed all.
fn assert_streamed(run: &EngineRun, seen: &Mutex<Vec<u64>>) {
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    let expected = evaluate(&stateless(), &table(), &events()).rows;
    assert!(!expected.is_empty());
    assert_eq!(seen, expected);
    assert!(run.delivered.is_empty(), "a streamed run keeps no output");
    assert_eq!(run.counts.outputs, expected.len() as u64);
    assert_eq!(run.latency.outputs, expected.len() as u64, "a latency for every output");
}

/// The sequence numbers of the rows a run kept, ascending.
fn kept_seqs(run: &EngineRun) -> Vec<u64> {
    let mut seqs: Vec<u64> = run
        .delivered
        .iter()
        .map(|d| match &d.output {
            Output::Row(r) => r.event.seq,
            other => panic!("a stateless pipeline delivered {other:?}"),
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

fn log() -> SourceLog {
    SourceLog::from_events(4, events())
}

#[test]
fn a_streamed_micro_batch_query_hands_every_row_on_once_and_keeps_none() {
    for workers in [1, 2] {
        let cfg = MicroBatchConfig {
            trigger: Trigger::AvailableNow {
                max_records_per_batch: Some(3_000),
            },
            workers,
            ..Default::default()
        };
        let mut engine = MicroBatchEngine::new("mb", cfg, &stateless(), &table(), 4).unwrap();
        let (stream, seen) = collecting();
        engine.set_output_stream(Some(stream));
        let run = engine.run(&mut LiveRuntime::new(workers), &log(), 60 * NANOS_PER_SEC);
        assert!(run.counts.batches > 1, "several batches reuse the selection buffers");
        assert_streamed(&run, &seen);
    }
}

#[test]
fn a_streamed_micro_batch_query_delivers_what_an_unstreamed_one_keeps() {
    let cfg = MicroBatchConfig {
        trigger: Trigger::AvailableNow {
            max_records_per_batch: Some(5_000),
        },
        workers: 1,
        ..Default::default()
    };
    let kept = MicroBatchEngine::new("mb", cfg, &stateless(), &table(), 4)
        .unwrap()
        .run(&mut LiveRuntime::new(1), &log(), 60 * NANOS_PER_SEC);
    assert_eq!(kept_seqs(&kept), evaluate(&stateless(), &table(), &events()).rows);
}

#[test]
fn a_streamed_per_record_job_hands_every_row_on_once_with_its_sink_chained_or_not() {
    for (parallelism, chain_sink) in [(1, false), (2, false), (2, true)] {
        let cfg = DataflowConfig {
            parallelism,
            chain_sink,
            ..Default::default()
        };
        let job = JobContext::new("pr", &cfg, &stateless(), &table(), 4);
        let (stream, seen) = collecting();
        let plan = IncarnationPlan {
            until: 60 * NANOS_PER_SEC,
            bounded: true,
            checkpoint_dir: None,
            restore_from: None,
            on_commit: None,
            stream: Some(stream),
        };
        let run = run_live_durable(&job, &log(), LiveClock::start(), plan, &LiveFaults::default())
            .unwrap()
            .run;
        assert_streamed(&run, &seen);
    }
}

#[test]
fn chained_sinks_on_virtual_time_deliver_the_reference_rows_merged() {
    let cfg = DataflowConfig {
        parallelism: 3,
        chain_sink: true,
        ..Default::default()
    };
    let job = JobContext::new("pr", &cfg, &stateless(), &table(), 4);
    let run = run_simulated(&job, &log(), &CostModel::FREE, Cluster::default(), ms(60_000), true).unwrap();
    let seqs = kept_seqs(&run);
    assert_eq!(seqs, evaluate(&stateless(), &table(), &events()).rows);
    assert_eq!(run.latency.outputs, seqs.len() as u64);
}

#[test]
fn a_chained_sink_is_refused_for_a_keyed_pipeline_and_for_exactly_once() {
    let keyed = PipelineSpec {
        aggregate: Some(Aggregation {
            key_by: Field::Campaign,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(1_000),
            },
            function: AggFunc::Count,
            field: None,
        }),
        ..stateless()
    };
    let cfg = DataflowConfig {
        parallelism: 2,
        chain_sink: true,
        ..Default::default()
    };
    let job = JobContext::new("pr", &cfg, &keyed, &table(), 4);
    let err = run_simulated(&job, &log(), &CostModel::FREE, Cluster::default(), ms(60_000), true).unwrap_err();
    assert_eq!(err.key, "chain_sink");
    assert!(err.message.contains("only a stateless pipeline"), "{}", err.message);

    let exactly_once = DataflowConfig {
        sink: SinkGuarantee::ExactlyOnce,
        checkpoint_interval: Some(Span::from_ms(1_000)),
        ..cfg
    };
    let err = exactly_once.validate().unwrap_err();
    assert_eq!(err.key, "chain_sink");
    assert!(err.message.contains("at_least_once"), "{}", err.message);
}
