//! The native micro-batch and per-record engines on Kafka (`[workload] transport = "kafka"`,
//! live clock): they read the input topic through streamlab's consumer and write their results
//! to an output topic that streamlab reads and stamps, as the real engines do.
//!
//! One run, in order (none of steps 1–2 is timed):
//! 1. the broker is started in the engine's job directory (or the user's cluster used) and the
//!    run's two topics created (`streamlab_real_engines::kafka::cluster`);
//! 2. the output consumer, the input consumer (publishing into the live source the engine
//!    reads: `kafka::input`) and the sink's producer (`kafka::sink`) connect;
//! 3. the open-loop producer starts the run clock and writes the schedule to the input topic;
//!    the engine runs at once on its own clock; its sink hands every delivered output to the
//!    sink's producer;
//! 4. when the engine has run its course, the producers are waited for, and the output consumer
//!    until it has received everything produced; the broker is ended with its group.
//!
//! **What is measured.** Latency keeps its definition: an output's scheduled arrival (its last
//! contributing event's) → its receipt from the output topic, on the run clock. It is split into
//! the engine's own components (each output's share up to its sink's delivery, measured on the
//! engine's clock) and [`Component::Broker`], the output's hop: sink → produce → log append →
//! fetched by streamlab, measured per output (the sink writes in delivery order to one partition,
//! so the i-th line received is the i-th output delivered). The input's hop (produce → append →
//! fetched by the engine's consumer) is not a component of its own: the engine sees an event only
//! once it is fetched, so that wait is inside its first component (trigger wait, queueing); it is
//! measured per event and reported in a note beside the output hop's log-append figures
//! ([`crate::real_measured::broker_share`], as for Kafka Streams). The engine's clock starts just
//! after the run clock's zero (it is built after the producer starts); the note gives the gap,
//! which the broker component holds rather than the engine's.
//!
//! **Outputs** are rebuilt from the received lines (`read_outputs`, the real engines' parser) and
//! handed back as the run's `delivered`, stamped at receipt: the sink file, the reference check
//! and the recovery ledger read what came out of the topic.
//!
//! **Replay after a failure.** A restarted engine rewinds to its checkpoint's offsets and reads
//! them from the input topic again (the live source keeps nothing behind its readers; a rewind
//! is served by a fresh consumer from the topic: `kafka::input`). A micro-batch query's
//! idempotent sink and a per-record job's exactly-once sink hand the sink only committed
//! outputs, so the topic holds each once; an at-least-once job's duplicates reach it, as they
//! would reach Kafka.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use streamlab_engines::latency::Component;
use streamlab_engines::live_source::{LiveSource, SourceFootprint};
use streamlab_engines::operators::Output;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::pulse::RunPulse;
use streamlab_engines::run::{EngineRun, OutputStream};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::event_time_as_nanos;
use streamlab_real_engines::kafka::input::{topic_feed, InputConsumer, InputReport};
use streamlab_real_engines::kafka::producer::{ProducerReport, ScheduleProducer};
use streamlab_real_engines::kafka::sink::TopicSink;
use streamlab_real_engines::kafka::{consumer::OutputConsumer, KafkaCluster, KafkaDist, RunTopics};
use streamlab_real_engines::outputs::read_outputs;
use streamlab_real_engines::CacheDir;
use streamlab_workloads::feeder::RunClock;

use crate::drive::ChunkFigures;
use crate::executor::WholeRun;
use crate::workload::Workload;

/// How long, after the engine has finished, the output consumer may take to receive what the
/// sink produced.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One native engine run on Kafka.
pub(crate) struct NativeOnKafka<'a> {
    /// The run's workload (its events are produced to the input topic).
    pub workload: &'a Workload,
    /// The pipeline (the output rows' columns).
    pub pipeline: &'a PipelineSpec,
    /// The user's cluster; `None`: a broker of streamlab's own.
    pub bootstrap_servers: Option<&'a str>,
    /// The engine's name (topics, messages).
    pub name: &'a str,
    /// Its job directory (the broker's directory is under it).
    pub dir: PathBuf,
    /// The job directory again when it is a scratch one, removed after the run.
    pub scratch: Option<PathBuf>,
    /// The sink discards (`sink = "discard"`): the outputs are produced, received and timed,
    /// and not handed back.
    pub discard: bool,
}

impl NativeOnKafka<'_> {
    /// Runs the engine `run_whole` over the input topic, its outputs to the output topic; returns
    /// its run (outputs as received, latency to receipt).
    pub(crate) fn run(&self, run_whole: WholeRun<'_>, pulse: &Arc<RunPulse>) -> Result<EngineRun, String> {
        let run = self.run_on_broker(run_whole, pulse);
        if let Some(scratch) = &self.scratch {
            let _ = std::fs::remove_dir_all(scratch);
        }
        run
    }

    fn run_on_broker(&self, run_whole: WholeRun<'_>, pulse: &Arc<RunPulse>) -> Result<EngineRun, String> {
        let kafka = |e: streamlab_real_engines::RealEngineError| e.to_string();
        let cache = CacheDir::from_env().map_err(kafka)?;
        crate::kafka_streams::check_ready(&cache)?;
        let dist = KafkaDist::in_cache(&cache);
        let events = self.workload.events();
        let partitions = self.workload.partitions as u32;

        let cluster = KafkaCluster::start(self.bootstrap_servers, &dist, &self.dir.join("kafka")).map_err(kafka)?;
        let bootstrap = cluster.bootstrap();
        let topics = RunTopics::named(self.name, partitions);
        cluster.create_topics(&topics).map_err(kafka)?;
        let clock = RunClock::new(0);
        let output = OutputConsumer::start(&bootstrap, &topics.output, partitions, clock.clone()).map_err(kafka)?;
        let source = Arc::new(
            LiveSource::new(
                self.workload.partitions,
                self.workload.duration,
                topic_feed(&bootstrap, &topics.input, partitions),
            )
            .retaining(0),
        );
        let mut log = SourceLog::live(Arc::clone(&source));
        log.set_outages(self.workload.outages.clone());
        let input = InputConsumer::start(
            &bootstrap,
            &topics.input,
            partitions,
            Arc::clone(&source),
            clock.clone(),
        )
        .map_err(kafka)?;
        let sink = Arc::new(TopicSink::start(&bootstrap, &topics.output, self.pipeline).map_err(kafka)?);
        let stream = {
            let (sink, figures_pulse) = (Arc::clone(&sink), Arc::clone(pulse));
            let mut figures = ChunkFigures::new(1);
            OutputStream::new(move |chunk| {
                figures.add(&figures_pulse, chunk);
                sink.send(chunk);
            })
            .with_pulse(Arc::clone(pulse))
            .at_once()
        };

        let producer =
            ScheduleProducer::start(&bootstrap, &topics.input, &events, partitions, clock.clone()).map_err(kafka)?;
        let engine_start = clock.now();
        let run = run_whole(&log, Some(stream));

        let produced = sink.finish().map_err(kafka)?;
        let producer = producer.wait().map_err(kafka)?;
        let input = input.stop().map_err(kafka)?;
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while output.received() < produced.delivered_at.len() as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let consumed = output.stop().map_err(kafka)?;
        let cluster_note = cluster.describe();
        drop(cluster);
        let footprint = source.footprint();
        let mut run = run?;

        let received = read_outputs(self.pipeline, &self.workload.table, &events, &consumed.lines)?;
        let mut latency = run.latency.toward_receipt(Component::Broker);
        let mut hops = Vec::with_capacity(received.delivered.len());
        for (d, &at) in received.delivered.iter().zip(&produced.delivered_at) {
            let hop = d.at.saturating_sub(at);
            hops.push(hop);
            let window_end = match &d.output {
                Output::Window(w) if !w.is_update => Some(event_time_as_nanos(w.end)),
                _ => None,
            };
            latency.record_receipt(
                d.at,
                d.at.saturating_sub(d.output.origin().arrival),
                Component::Broker,
                hop,
                window_end,
            );
        }
        run.latency = latency;
        run.delivered = if self.discard { Vec::new() } else { received.delivered };
        run.notes.extend(notes(&Figures {
            cluster: cluster_note,
            input: &input,
            producer: &producer,
            hops: &hops,
            append_hops: &consumed.output_hop_ns,
            produced: produced.delivered_at.len(),
            received: consumed.lines.len(),
            engine_start,
            footprint,
        }));
        if !received.differing_rows.is_empty() {
            run.notes.push(format!(
                "{} rows read back from the output topic differ from their events: {}",
                received.differing_rows.len(),
                received.differing_rows.join("; ")
            ));
        }
        Ok(run)
    }
}

/// What a native run on Kafka measured beside its engine.
struct Figures<'a> {
    cluster: String,
    input: &'a InputReport,
    producer: &'a ProducerReport,
    /// Every output's broker hop (sink → received), ns.
    hops: &'a [u64],
    append_hops: &'a [u64],
    produced: usize,
    received: usize,
    /// When the engine's clock started, on the run clock (at the latest).
    engine_start: u64,
    footprint: SourceFootprint,
}

/// The notes of a native run on Kafka.
fn notes(f: &Figures<'_>) -> Vec<String> {
    let ms = |ns: f64| ns / 1e6;
    let lag = &f.input.fetch_lag;
    let mut hops = f.hops.to_vec();
    hops.sort_unstable();
    let at = |q: f64| {
        hops.get(((hops.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |&n| ms(n as f64))
    };
    let mean = hops.iter().sum::<u64>() as f64 / hops.len().max(1) as f64;
    let mut notes = vec![
        f.cluster.clone(),
        format!(
            "read from the input topic by streamlab's consumer: {} events; fetched − scheduled arrival (the input's broker \
             hop, inside the engine's first latency component) mean {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            f.input.events,
            ms(lag.mean),
            ms(lag.p99 as f64),
            ms(lag.max as f64)
        ),
        format!(
            "latency to receipt from the output topic: the `broker` component is each output's hop from the sink to \
             streamlab's consumer (produce → log append → fetch), p50 {:.3} ms, p99 {:.3} ms, mean {:.3} ms over {} \
             outputs; the engine's clock started {:.3} ms after the run clock's zero (in that component)",
            at(0.5),
            at(0.99),
            ms(mean),
            hops.len(),
            ms(f.engine_start as f64)
        ),
        crate::real_measured::broker_share(f.append_hops, f.producer),
    ];
    let held = f.footprint.peak_held_events;
    notes.push(format!(
        "live source published by the input consumer: at most {held} events held ({:.1} MiB: fetched and not yet read \
         past; nothing is kept behind the engine's reads); {} events fetched from the topic again for rewinds",
        SourceFootprint::bytes(held) as f64 / (1 << 20) as f64,
        f.footprint.regenerated
    ));
    if f.received != f.produced {
        notes.push(format!(
            "{} outputs produced to the output topic, {} received within {DRAIN_TIMEOUT:?}: the latency figures cover the received",
            f.produced, f.received
        ));
    }
    notes
}
