//! What an interrupted `streamlab run` keeps and says: the engine runs that finished or were
//! stopped keep their sink files, checkpoints and summary rows; the summary records when the
//! stop came, which run it ended early and where that run's clock was, and which runs never
//! started ([`Interrupted`]).

use streamlab_engines::run::EngineRun;
use streamlab_reports::summary::Interrupted;

use crate::spec::EngineSpec;
use crate::watch;

/// The summary's record of a stop request, and the note for the run it ended early, from the
/// engine runs that ran (`Some`) or were skipped (`None`).
pub fn interrupted(engines: &[&EngineSpec], runs: &[Option<EngineRun>]) -> (Interrupted, String) {
    let stopped = watch::stopped_runs();
    let last = stopped.last();
    let not_run: Vec<String> = engines
        .iter()
        .zip(runs)
        .filter(|(_, r)| r.is_none())
        .map(|(e, _)| e.name.clone())
        .collect();
    let at_s = last.map(|(_, at)| *at as f64 / 1e9);
    let note = match (last, at_s) {
        (Some(_), Some(s)) => format!(
            "interrupted (Ctrl-C) at {s:.1} s of the run's clock: its figures cover the run up to then; outputs not \
             checked against the reference evaluator"
        ),
        _ => "interrupted (Ctrl-C) after this engine run; the later ones did not run".to_string(),
    };
    let record = Interrupted {
        at_utc: watch::stop_requested_at().unwrap_or_default(),
        engine: last.map(|(name, _)| name.clone()),
        at_s,
        not_run,
    };
    (record, note)
}
