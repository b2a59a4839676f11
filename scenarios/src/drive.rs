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
//! results are the same as in one piece. The engines themselves are built by their
//! [`crate::executor`].

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

/// Runs a live engine over `log` on a thread of its own while this one hands what its sink
/// delivers to `on_output`, chunk by chunk: nothing it delivers is kept after it is handed on.
fn stream_whole(
    run_whole: WholeRun<'_>,
    log: &SourceLog,
    on_output: &mut dyn FnMut(Vec<Delivered>) -> Result<()>,
) -> Result<std::result::Result<EngineRun, String>> {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<Delivered>>(CHUNKS_IN_FLIGHT);
    let stream = OutputStream::new(move |d| {
        // The receiver only goes away once the engine has finished.
        let _ = tx.send(d.to_vec());
    });
    std::thread::scope(|s| {
        let engine = s.spawn(move || run_whole(log, Some(stream)));
        let mut failed = None;
        // Drained to the end even after an error, so the engine's sink never blocks for good.
        for chunk in rx.iter() {
            if failed.is_none() {
                failed = on_output(chunk).err();
            }
        }
        let run = engine.join().expect("the engine's thread panicked");
        failed.map_or(Ok(run), Err)
    })
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
    let RunContext {
        scenario,
        workload,
        until,
        clock,
        ..
    } = *ctx;
    let mut runs: Vec<Option<EngineRun>> = engines.iter().map(|_| None).collect();
    let mut segmented: Vec<(usize, Segmented)> = Vec::new();
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
                segmented.push((i, s));
            }
            Prepared::Whole(run_whole) => {
                on_start(engine);
                let live_feed = match clock {
                    ClockSetup::Live => LiveFeed::of(workload),
                    ClockSetup::Simulated { .. } => None,
                };
                if live_feed.is_none() {
                    full_log.get_or_insert_with(|| workload.full_log());
                }
                crate::rss::reset_peak();
                let start = crate::rss::resident();
                let discard = ctx.durability.discard;
                let whole = |log: &SourceLog| match clock {
                    ClockSetup::Live if discard => Ok(run_whole(log, Some(OutputStream::discard()))),
                    ClockSetup::Live => stream_whole(run_whole, log, &mut |d| on_output(i, d)),
                    ClockSetup::Simulated { .. } => Ok(run_whole(log, None)),
                };
                let (run, footprint) = match (live_feed, &full_log) {
                    (Some(feed), _) => {
                        let (run, footprint) = feed.run(whole);
                        (run, Some(footprint))
                    }
                    (None, Some(log)) => (whole(log), None),
                    (None, None) => unreachable!("the whole log is built above"),
                };
                let mut run = run?.map_err(refuse)?;
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
        let mut feed = workload.feed();
        let mut buf = Vec::new();
        let mut t = 0;
        while t < until {
            let to = workload.segment_end(t, SEGMENT, SEGMENT_EVENTS).min(until);
            buf.clear();
            feed.fill_until(to, &mut buf);
            log.append(buf.drain(..));
            let mut consumed = vec![usize::MAX; partitions];
            for (i, engine) in &mut segmented {
                let (delivered, read) = engine.advance(&log, to).map_err(|message| RunError::Engine {
                    path: scenario.path.clone(),
                    engine: engines[*i].name.clone(),
                    message,
                })?;
                on_output(*i, delivered)?;
                for (c, r) in consumed.iter_mut().zip(read) {
                    *c = (*c).min(r);
                }
            }
            log.release_before(&consumed);
            t = to;
        }
        for (i, engine) in segmented {
            let mut run = engine.finish();
            on_output(i, std::mem::take(&mut run.delivered))?;
            runs[i] = Some(run);
        }
    }
    Ok(runs.into_iter().map(|r| r.expect("every engine ran")).collect())
}
