//! Ctrl-C (and SIGTERM): what streamlab does and says.
//!
//! Every command first ends the process groups of the real engines it started (Spark's and
//! Flink's JVMs, a Kafka broker), by group id (`streamlab_real_engines::groups`). `streamlab
//! run` then stops cleanly: the engine run under way ends at its next batch, source step or
//! simulated segment as it would at the end of its duration, the engine runs not yet started
//! are skipped, and the results directory is written as usual — sink files, checkpoints,
//! `summary.json` with an `interrupted` record — before streamlab exits with status 130. A
//! second Ctrl-C, or one during any other command, exits at once.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use streamlab_reports::summary::Interrupted;

/// Set by a command that stops cleanly on the first Ctrl-C.
static CLEAN: AtomicBool = AtomicBool::new(false);
/// Set once the first Ctrl-C has asked for a clean stop.
static ASKED: AtomicBool = AtomicBool::new(false);

/// The command under way stops cleanly on the first Ctrl-C.
pub fn stop_cleanly() {
    CLEAN.store(true, Ordering::Release);
}

/// Whether a clean stop was asked for.
pub fn asked() -> bool {
    ASKED.load(Ordering::Acquire)
}

/// The interrupt handler's say (after the engine groups were ended): whether to exit now.
pub fn on_interrupt() -> bool {
    if CLEAN.load(Ordering::Acquire) && !ASKED.swap(true, Ordering::AcqRel) {
        streamlab_scenarios::watch::request_stop();
        eprintln!(
            "\ninterrupted: stopping the engine run under way at its next batch or step and writing the results \
             so far (Ctrl-C again to quit at once, keeping only what is already on disk)"
        );
        return false;
    }
    eprintln!("interrupted: every engine process streamlab started has been ended");
    true
}

/// Says what an interrupted run kept and how to go on.
pub fn explain(stop: &Interrupted, dir: &Path, scenario: &Path, live: bool) {
    let (dir, scenario) = (dir.display(), scenario.display());
    let mut line = format!("interrupted at {}", stop.at_utc);
    if let (Some(engine), Some(at)) = (&stop.engine, stop.at_s) {
        line.push_str(&format!(": `{engine}` stopped at {at:.1} s of its clock"));
    }
    if !stop.not_run.is_empty() {
        let names: Vec<String> = stop.not_run.iter().map(|n| format!("`{n}`")).collect();
        line.push_str(&format!("; not run: {}", names.join(", ")));
    }
    eprintln!("{line}");
    eprintln!(
        "kept:    {dir}/ — summary.json (with when it was interrupted) and the sink files cover what ran up to then; \
         `streamlab report {dir}` reports it"
    );
    if live {
        eprintln!(
            "resume:  streamlab run {scenario} --resume {dir}   (streamlab's own engines continue from the checkpoints \
             in {dir}/checkpoints to the end of the scenario's duration, the time they were stopped showing as backlog; \
             a real engine (Spark, Flink, Kafka Streams) runs again from the start of its schedule)"
        );
        eprintln!("or:      streamlab run {scenario} --duration <shorter>   (a new run, afresh)");
    } else {
        eprintln!(
            "again:   streamlab run {scenario}   (a simulated run starts afresh: it takes seconds; --duration makes it \
             shorter)"
        );
    }
}
