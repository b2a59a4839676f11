//! Driving the engine runs of a scenario, on either clock.
//!
//! Live runs run on real threads, one after another (so they do not compete for the two
//! cores). A generated workload's events are produced as the wall clock reaches their schedule
//! ([`crate::live_feed`]: memory flat in the run's length); a backlog or a trace is held whole
//! (data at rest when the run starts). Their outputs are not kept: the engine runs on a
//! thread of its own and its sink hands what it delivers through an [`OutputStream`], a few
//! chunks in flight, to the caller's `on_output` on this thread (or, with `sink = "discard"`,
//! drops them), so a run's memory does not grow with the outputs it delivers. Simulated runs of triggered micro-batch queries and
//! of the per-record engine advance in segments of [`SEGMENT`] virtual time: the next segment's
//! events are appended to the source log, every engine runs up to the segment's end, what it
//! delivered is handed to the caller, and the events every reader is past are released. An
//! hour of a high-rate clickstream therefore needs only a few seconds of it in memory, and the
//! results are the same as in one piece. The next segment is generated on a thread of its own
//! while the engines run this one ([`crate::segments`]). The engines themselves are built by
//! their [`crate::executor`].

use streamlab_engines::pulse::RunPulse;
use streamlab_engines::run::{Delivered, EngineRun, OutputStream};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Nanos, NANOS_PER_SEC};

use crate::clock::ClockSetup;
use crate::engine::EngineSpec;
use crate::error_run::{Result, RunError};
use crate::executor::{
    check_failure_workers, executor, Durability, EngineRunContext, Prepared, RunContext, Segmented, WholeRun,
};
use crate::live_feed::{footprint_note, LiveFeed};
use crate::spec::Scenario;
use crate::transport::Transport;
use crate::watch::{LatencyWindow, WatchedRun};
use crate::workload::Workload;

/// Virtual time a simulated run advances at once, at most.
pub const SEGMENT: Nanos = 5 * NANOS_PER_SEC;

/// Events a segment holds, at most (about 130 MB of them).
pub const SEGMENT_EVENTS: f64 = 2e6;

/// Runs one engine configuration of `scenario` on `workload` until `until`, handing its
/// outputs to `on_output` as they are produced (the returned run's `delivered` is empty). No
/// checkpoints are kept and no failures injected.
pub fn run_engine(
    scenario: &Scenario,
    engine: &EngineSpec,
    workload: &Workload,
    until: Nanos,
    clock: &ClockSetup,
    on_output: &mut dyn FnMut(Vec<Delivered>) -> Result<()>,
) -> Result<EngineRun> {
    let durability = Durability::default();
    let ctx = RunContext {
        scenario,
        workload,
        until,
        clock,
        durability: &durability,
    };
    let mut runs = run_engines(&ctx, &[engine], &mut |_| {}, &mut |_, d| on_output(d))?;
    Ok(runs.pop().expect("one run per engine"))
}

/// The clock of an engine that names a cost profile of its own, on the simulated clock; `None`
/// when it runs on the scenario's clock.
pub fn engine_clock(
    scenario: &Scenario,
    engine: &EngineSpec,
    clock: &ClockSetup,
) -> std::result::Result<Option<ClockSetup>, String> {
    match (clock, &engine.profile) {
        (ClockSetup::Simulated { cluster, .. }, Some(spec)) => {
            let base = scenario.path.parent().unwrap_or(std::path::Path::new(""));
            let profile = crate::profile::load_profile(spec, base).map_err(|e| e.to_string())?;
            Ok(Some(ClockSetup::Simulated {
                profile: Box::new(profile),
                cluster: *cluster,
            }))
        }
        _ => Ok(None),
    }
}

/// Outputs in flight between a live engine's sink and the caller, in chunks of
/// [`OutputStream::CHUNK`]: a caller slower than the sink holds the engine back (its sink blocks),
/// as a slow sink would.
const CHUNKS_IN_FLIGHT: usize = 16;

/// A live discarding sink's stream: its outputs counted, their latency sampled, into the run's
/// pulse, and dropped.
fn discarding(watched: &WatchedRun) -> OutputStream {
    let pulse = watched.pulse.clone();
    // Every 64th output's latency: a discarding sink is where throughput is measured.
    let mut figures = ChunkFigures::new(64);
    OutputStream::new(move |d| figures.add(&pulse, d)).with_pulse(watched.pulse.clone())
}

/// What the driver publishes to a run's pulse from the outputs it is handed: their count, their
/// latest instant and, about four times a second, their p99.
pub(crate) struct ChunkFigures {
    window: LatencyWindow,
    published: std::time::Instant,
}

impl ChunkFigures {
    pub(crate) fn new(stride: usize) -> Self {
        Self {
            window: LatencyWindow::new(stride),
            published: std::time::Instant::now(),
        }
    }

    pub(crate) fn add(&mut self, pulse: &RunPulse, chunk: &[Delivered]) {
        pulse.add_outputs(chunk.len() as u64);
        if let Some(last) = chunk.last() {
            pulse.clock_at(last.at);
        }
        self.window.add(chunk);
        if self.published.elapsed() >= std::time::Duration::from_millis(250) {
            self.flush(pulse);
        }
    }

    fn flush(&mut self, pulse: &RunPulse) {
        self.window.publish(pulse);
        self.published = std::time::Instant::now();
    }
}

/// A finished run's figures, for a run whose engine published none while it ran (a simulated
/// run in one go).
fn publish_finished(pulse: &RunPulse, run: &EngineRun) {
    pulse.clock_at(run.active_span.1);
    pulse.events_total(run.counts.events);
    pulse.outputs_total(run.counts.outputs);
    pulse.falling_behind_total(run.counts.falling_behind);
}

/// Runs a live engine over `log` on a thread of its own while this one hands what its sink
/// delivers to `on_output`, chunk by chunk: nothing it delivers is kept after it is handed on.
fn stream_whole(
    run_whole: WholeRun<'_>,
    log: &SourceLog,
    watched: &WatchedRun,
    on_output: &mut dyn FnMut(Vec<Delivered>) -> Result<()>,
) -> Result<std::result::Result<EngineRun, String>> {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Delivered>>(CHUNKS_IN_FLIGHT);
    let stream = OutputStream::new(move |d| {
        // The receiver only goes away once the engine has finished.
        let _ = tx.send(d.to_vec());
    })
    .with_pulse(watched.pulse.clone());
    let mut figures = ChunkFigures::new(1);
    std::thread::scope(|s| {
        let engine = s.spawn(move || run_whole(log, Some(stream)));
        let mut failed = None;
        // Drained to the end even after an error, so the engine's sink never blocks for good.
        for chunk in rx.iter() {
            figures.add(&watched.pulse, &chunk);
            if failed.is_none() {
                failed = on_output(chunk).err();
            }
        }
        figures.flush(&watched.pulse);
        let run = engine.join().expect("the engine's thread panicked");
        failed.map_or(Ok(run), Err)
    })
}

/// A native engine on the live clock with `transport = "kafka"`: it reads the input topic and
/// writes to an output topic ([`crate::kafka_native`]); the job directory is made here (an error
/// is the run's). `None`: it reads the generator's log (the simulated clock, the loopback
/// transport, or a real engine, which reads Kafka its own way).
fn kafka_input<'a>(
    ctx: &RunContext<'a>,
    engine: &'a EngineSpec,
) -> Option<std::result::Result<crate::kafka_native::NativeOnKafka<'a>, String>> {
    let Transport::Kafka { bootstrap_servers } = &ctx.scenario.transport else {
        return None;
    };
    if engine.kind.is_real() || !matches!(ctx.clock, ClockSetup::Live) {
        return None;
    }
    if ctx.durability.resume {
        return Some(Err(
            "a run on `transport = \"kafka\"` cannot be resumed: its broker and topics were the run's own; run it afresh"
                .into(),
        ));
    }
    Some(
        crate::real_engine::job_dir(ctx.durability, &engine.name).map(|(dir, scratch)| {
            crate::kafka_native::NativeOnKafka {
                workload: ctx.workload,
                pipeline: &ctx.scenario.pipeline,
                bootstrap_servers: bootstrap_servers.as_deref(),
                name: &engine.name,
                dir,
                scratch,
                discard: ctx.durability.discard,
            }
        }),
    )
}

/// The log a live run reads whole (a backlog or a trace, over the loopback transport), built
/// once for a caller that runs the engines several times over it; `None` when the engines
/// read something else (a live source generated as the clock reaches it, a Kafka topic, the
/// simulated clock's segments).
pub fn whole_log(ctx: &RunContext<'_>) -> Option<SourceLog> {
    let live = matches!(ctx.clock, ClockSetup::Live);
    let whole = ctx.workload.feed_factory().is_none();
    (live && whole && !ctx.scenario.transport.is_kafka()).then(|| ctx.workload.full_log())
}

/// Runs several engine configurations of `scenario` on `workload` until `until`. Live runs go
/// one after another (so they do not compete for cores); simulated runs of triggered
/// micro-batch queries and per-record engines advance together, segment by segment, over one
/// source log generated once (`ctx` says what they share). `on_start` hears when each engine starts, `on_output` gets each
/// engine's outputs (by index) as they are produced.
pub fn run_engines(
    ctx: &RunContext<'_>,
    engines: &[&EngineSpec],
    on_start: &mut dyn FnMut(&EngineSpec),
    on_output: &mut dyn FnMut(usize, Vec<Delivered>) -> Result<()>,
) -> Result<Vec<EngineRun>> {
    Ok(run_engines_until_stopped(ctx, engines, None, on_start, on_output)?
        .into_iter()
        .flatten()
        .collect())
}

/// [`run_engines`], which a stop request ([`crate::watch::request_stop`]) ends early: the run
/// under way ends at its next batch, source step or segment with what it made, and the engines
/// not started by then are skipped (`None`). `held`: the workload's whole log, when the caller
/// holds it for several calls ([`whole_log`]); otherwise it is built here when an engine needs it.
pub fn run_engines_until_stopped(
    ctx: &RunContext<'_>,
    engines: &[&EngineSpec],
    held: Option<&SourceLog>,
    on_start: &mut dyn FnMut(&EngineSpec),
    on_output: &mut dyn FnMut(usize, Vec<Delivered>) -> Result<()>,
) -> Result<Vec<Option<EngineRun>>> {
    let RunContext {
        scenario,
        workload,
        until,
        clock,
        ..
    } = *ctx;
    let mut runs: Vec<Option<EngineRun>> = engines.iter().map(|_| None).collect();
    let mut segmented: Vec<(usize, Segmented, WatchedRun)> = Vec::new();
    let simulated = matches!(clock, ClockSetup::Simulated { .. });
    let watch = |engine: &EngineSpec| crate::watch::begin(&engine.name, engine.model(), until, simulated);
    let mut full_log: Option<SourceLog> = None;
    // An engine with a profile of its own is priced with it on the simulated clock.
    let own_clocks = engines
        .iter()
        .map(|engine| {
            engine_clock(scenario, engine, clock).map_err(|message| RunError::Engine {
                path: scenario.path.clone(),
                engine: engine.name.clone(),
                message,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for (i, engine) in engines.iter().enumerate() {
        if crate::watch::stop_requested() {
            break;
        }
        let refuse = |message: String| RunError::Engine {
            path: scenario.path.clone(),
            engine: engine.name.clone(),
            message,
        };
        let engine_ctx = EngineRunContext {
            run: RunContext {
                clock: own_clocks[i].as_ref().unwrap_or(clock),
                ..*ctx
            },
            engine,
        };
        let prepared =
            check_failure_workers(scenario, engine, clock).and_then(|()| executor(&engine.kind).prepare(engine_ctx));
        match prepared.map_err(refuse)? {
            Prepared::Segmented(s) => {
                on_start(engine);
                segmented.push((i, s, watch(engine)));
            }
            Prepared::Whole(run_whole) => {
                on_start(engine);
                let watched = watch(engine);
                let (run, footprint) = match kafka_input(ctx, engine) {
                    Some(on_kafka) => {
                        crate::rss::reset_peak();
                        let start = crate::rss::resident();
                        let run = on_kafka.and_then(|k| k.run(run_whole, &watched.pulse));
                        (Ok((run, start)), None)
                    }
                    None => {
                        let live_feed = match clock {
                            ClockSetup::Live => LiveFeed::of(workload),
                            ClockSetup::Simulated { .. } => None,
                        };
                        if live_feed.is_none() && held.is_none() {
                            full_log.get_or_insert_with(|| workload.full_log());
                        }
                        crate::rss::reset_peak();
                        let start = crate::rss::resident();
                        let discard = ctx.durability.discard;
                        let whole = |log: &SourceLog| match clock {
                            ClockSetup::Live if discard => Ok(run_whole(log, Some(discarding(&watched)))),
                            ClockSetup::Live => stream_whole(run_whole, log, &watched, &mut |d| on_output(i, d)),
                            ClockSetup::Simulated { .. } => Ok(run_whole(log, None)),
                        };
                        let (run, footprint) = match (live_feed, held.or(full_log.as_ref())) {
                            (Some(feed), _) => {
                                let (run, footprint) = feed.run(whole);
                                (run, Some(footprint))
                            }
                            (None, Some(log)) => (whole(log), None),
                            (None, None) => unreachable!("the whole log is built above"),
                        };
                        (run.map(|run| (run, start)), footprint)
                    }
                };
                let (run, start) = run?;
                if let Ok(run) = &run {
                    publish_finished(&watched.pulse, run);
                }
                watched.end();
                let mut run = match run {
                    // A real engine whose processes a Ctrl-C ended: the run stops here.
                    Err(_) if crate::watch::stop_requested() => break,
                    run => run.map_err(refuse)?,
                };
                if let (ClockSetup::Live, Some((_, at_start)), Some((peak, at_end))) =
                    (clock, start, crate::rss::resident())
                {
                    run.resident = Some((at_start, peak, at_end));
                }
                if let Some(f) = footprint {
                    run.notes
                        .push(footprint_note(&f, run.resident.map(|(_, peak, _)| peak)));
                }
                on_output(i, std::mem::take(&mut run.delivered))?;
                runs[i] = Some(run);
            }
        }
    }
    drop(full_log);
    if !segmented.is_empty() {
        let partitions = workload.partitions;
        let mut log = SourceLog::from_events(partitions, []);
        log.set_outages(workload.outages.clone());
        let mut windows: Vec<LatencyWindow> = segmented.iter().map(|_| LatencyWindow::new(1)).collect();
        // The next segment is generated on a thread of its own while the engines run this one.
        let reached =
            crate::segments::generated_ahead(workload, until, SEGMENT, SEGMENT_EVENTS, |segments, recycle| {
                let mut t = 0;
                for segment in segments.iter() {
                    if crate::watch::stop_requested() {
                        break;
                    }
                    let to = segment.to;
                    let mut buf = segment.events;
                    log.append(buf.drain(..));
                    recycle.give_back(buf);
                    let mut consumed = vec![usize::MAX; partitions];
                    for ((i, engine, watched), window) in segmented.iter_mut().zip(&mut windows) {
                        let (delivered, read) = engine.advance(&log, to).map_err(|message| RunError::Engine {
                            path: scenario.path.clone(),
                            engine: engines[*i].name.clone(),
                            message,
                        })?;
                        let pulse = &watched.pulse;
                        pulse.clock_at(to);
                        pulse.events_total(read.iter().map(|&r| r as u64).sum());
                        engine.publish(pulse);
                        pulse.add_outputs(delivered.len() as u64);
                        window.add(&delivered);
                        window.publish(pulse);
                        on_output(*i, delivered)?;
                        for (c, r) in consumed.iter_mut().zip(read) {
                            *c = (*c).min(r);
                        }
                    }
                    log.release_before(&consumed);
                    t = to;
                }
                Ok::<Nanos, RunError>(t)
            })?;
        if reached < until {
            for (_, _, watched) in &segmented {
                watched.pulse.stopped(reached);
            }
        }
        for (i, mut engine, watched) in segmented {
            engine.settle().map_err(|message| RunError::Engine {
                path: scenario.path.clone(),
                engine: engines[i].name.clone(),
                message,
            })?;
            let mut run = engine.finish();
            publish_finished(&watched.pulse, &run);
            watched.end();
            on_output(i, std::mem::take(&mut run.delivered))?;
            runs[i] = Some(run);
        }
    }
    Ok(runs)
}
