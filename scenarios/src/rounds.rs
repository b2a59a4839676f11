//! Measurement rounds (`repeat = N`): a live run's native engines run `N` times, and each
//! engine's throughput is reported as the median of its `N` runs.
//!
//! **Why.** A 20 M-event backlog drains through the fastest engines here in 50 to 250 ms. On a
//! shared two-core machine one stall of the host lasting tens of milliseconds moves a single
//! run's figure by a fifth, and a two-core to one-core ratio with it. Benchmark harnesses
//! repeat for that reason: criterion takes samples, Spark's `Benchmark` reports the best and
//! the average of its iterations, and JMH runs iterations. The rounds are *interleaved*: each
//! round runs every native engine once, in file order. A slow spell of the machine then slows
//! the engines of one round alike instead of all runs of one engine, and the ratios between
//! engines stay fair.
//!
//! **What is kept.** The rounds before the last are measurement rounds. They run the same
//! engines over the same input (a backlog or trace is built once for all rounds,
//! [`crate::drive::whole_log`]) and do the same work: their checkpoints and sink files go to
//! scratch space (`measurement-rounds/`), which is removed after each round. The last round is
//! the kept run. Its outputs, sink files, latency, memory and every other figure are what the
//! results directory holds. Only throughput (and throughput per core) is the median over all
//! rounds, and each run's note lists every round's figure. (Its start and peak resident
//! memory include what the process keeps from the earlier rounds, as a run's include what
//! the engines before it in the same scenario left.) A kept run that a Ctrl-C ends early
//! reports its own throughput, not a median with complete runs. A Ctrl-C during the
//! measurement rounds keeps nothing: the kept run has not started
//! ([`Rounds::interrupted_in`]).
//!
//! **What is not repeated.** Real engines run once, in the kept round: a run costs them tens
//! of seconds of JVM start and warm-up, against which a host stall is small. The simulated
//! clock runs once, since its figures are the same in every run. A resumed run continues the
//! killed run alone. Each of these says so in its run's notes.

use std::collections::BTreeMap;

use streamlab_engines::source::SourceLog;
use streamlab_reports::layout::ResultsLayout;

use crate::drive::run_engines_until_stopped;
use crate::error_run::{Result, RunError};
use crate::executor::{Durability, RunContext};
use crate::sink::RunOutputs;
use crate::spec::{EngineSpec, SinkKind};

/// The measurement rounds of one scenario run: each engine's throughput in every round before
/// the kept one.
#[derive(Clone, Debug, Default)]
pub struct Rounds {
    /// By engine run name, the events/s of each earlier round (absent: not repeated).
    earlier: BTreeMap<String, Vec<f64>>,
    /// Why `repeat` was not applied to this run (a note on every run), if it was not.
    not_applied: Option<String>,
    /// `repeat > 1`: a real engine's runs say that they were not repeated.
    asked: bool,
    /// The measurement round a stop request (Ctrl-C) ended, counting from 1, if one did.
    interrupted_in: Option<u32>,
}

/// An engine run's throughput as reported: the median over its rounds, and the rounds'
/// figures (empty when it ran once).
#[derive(Clone, Debug, PartialEq)]
pub struct Throughput {
    /// Events per second reported for the run.
    pub eps: f64,
    /// Every round's events per second in round order, the kept run's last; empty when the
    /// engine ran once.
    pub runs: Vec<f64>,
}

impl Rounds {
    /// No rounds: every engine ran once.
    pub fn none() -> Self {
        Self::default()
    }

    /// `repeat` was asked for but not applied to this run, for `why` (said on every run).
    pub fn not_applied(repeat: u32, why: &str) -> Self {
        Self {
            not_applied: (repeat > 1).then(|| format!("repeat = {repeat} not applied: {why}; this is one run")),
            ..Self::default()
        }
    }

    /// The measurement round a stop request (Ctrl-C) ended, counting from 1: the kept run did
    /// not start, so nothing of the run is kept.
    pub fn interrupted_in(&self) -> Option<u32> {
        self.interrupted_in
    }

    /// What the kept run of `spec`, whose throughput is `kept`, reports: its throughput (the
    /// median over the rounds; its own alone when a stop request ended it early, `stopped`)
    /// and the note that says so, if any.
    pub fn report(&self, spec: &EngineSpec, kept: f64, stopped: bool) -> (Throughput, Option<String>) {
        if stopped && self.earlier.contains_key(&spec.name) {
            let note = "throughput: this interrupted run's own, not the median of the measurement rounds before it";
            return (
                Throughput {
                    eps: kept,
                    runs: Vec::new(),
                },
                Some(note.to_string()),
            );
        }
        let t = self.throughput(&spec.name, kept);
        let note = self.note(spec, &t);
        (t, note)
    }

    /// The throughput of engine run `name`: the median over its earlier rounds and the kept
    /// run, whose figure is `kept`.
    fn throughput(&self, name: &str, kept: f64) -> Throughput {
        match self.earlier.get(name) {
            Some(earlier) if !earlier.is_empty() => {
                let mut runs = earlier.clone();
                runs.push(kept);
                Throughput {
                    eps: median(&runs),
                    runs,
                }
            }
            _ => Throughput {
                eps: kept,
                runs: Vec::new(),
            },
        }
    }

    /// What the kept run of `spec`, reporting `t`, says about its rounds, if anything.
    fn note(&self, spec: &EngineSpec, t: &Throughput) -> Option<String> {
        if let Some(why) = &self.not_applied {
            return Some(why.clone());
        }
        if t.runs.is_empty() {
            return (self.asked && spec.kind.is_real()).then(|| {
                "throughput: one run (`repeat` rounds the native engines; a real engine runs once, in the last round)"
                    .to_string()
            });
        }
        let figures: Vec<String> = t.runs.iter().map(|eps| format!("{:.1}", eps / 1e6)).collect();
        Some(format!(
            "throughput and per core: the median of {} runs over the same input, in rounds that each run every \
             native engine once (this engine's, in M events/s: {}); the last is the kept run, whose latency, memory \
             and other figures these are",
            t.runs.len(),
            figures.join(", ")
        ))
    }
}

/// The middle value of `xs` (the mean of the two middle ones for an even count); 0 for none.
fn median(xs: &[f64]) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Where the measurement rounds keep their files, and whether the kept run checks its outputs
/// against the reference evaluator (the rounds then do the same work, into outputs they drop:
/// [`RunOutputs`]).
#[derive(Clone, Copy, Debug)]
pub struct RoundWork<'a> {
    /// Where the rounds keep their checkpoints and sink files (under `measurement-rounds/`).
    pub layout: &'a ResultsLayout,
    /// The kept run checks its outputs against the reference evaluator.
    pub checked: bool,
}

/// The scratch space of the rounds, removed however a round ends.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // Nothing of a measurement round is kept; a directory that was never made is fine.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `repeat − 1` measurement rounds of `ctx`'s scenario before its kept run: every
/// native engine of `engines` once per round, in order, over `held` (the whole log, when the
/// engines read one). `ctx` is the kept run's context; the rounds keep their checkpoints and
/// sink files under `work.layout`'s scratch space instead, removed after each round and on
/// every error. A scenario with `[[failure]]`s is refused (its rounds would run failure-free
/// beside a kept run with failures). A stop request ends the rounds where they are
/// ([`Rounds::interrupted_in`]).
pub fn measure(
    ctx: &RunContext<'_>,
    engines: &[&EngineSpec],
    held: Option<&SourceLog>,
    work: RoundWork<'_>,
    on_start: &mut dyn FnMut(&EngineSpec),
) -> Result<Rounds> {
    let scenario = ctx.scenario;
    if !scenario.failures.is_empty() {
        return Err(RunError::Unsupported {
            path: scenario.path.clone(),
            message: "`repeat` repeats a failure-free run: remove `repeat` or the [[failure]] tables".into(),
        });
    }
    let mut rounds = Rounds {
        asked: scenario.repeat > 1,
        ..Rounds::default()
    };
    let natives: Vec<&EngineSpec> = engines.iter().copied().filter(|e| !e.kind.is_real()).collect();
    if natives.is_empty() {
        return Ok(rounds);
    }
    let discard = scenario.sink == SinkKind::Discard;
    let scratch = Scratch(work.layout.measurement_rounds());
    let io = |source| RunError::Io {
        path: scratch.0.clone(),
        source,
    };
    for round in 1..scenario.repeat {
        std::fs::create_dir_all(&scratch.0).map_err(io)?;
        let durability = Durability {
            checkpoint_root: Some(scratch.0.join(ResultsLayout::CHECKPOINTS)),
            inject_failures: false,
            resume: false,
            sink_dir: (!discard).then(|| scratch.0.clone()),
            discard,
        };
        let round_ctx = RunContext {
            durability: &durability,
            ..*ctx
        };
        let scratch_layout = ResultsLayout::new(&scratch.0);
        let mut outputs = RunOutputs::create(&scratch_layout, &natives, scenario, true, work.checked)?;
        let runs = run_engines_until_stopped(&round_ctx, &natives, held, on_start, &mut |i, d| outputs.add(i, &d))?;
        outputs.finish(&scenario.pipeline)?;
        std::fs::remove_dir_all(&scratch.0).map_err(io)?;
        if crate::watch::stop_requested() {
            rounds.interrupted_in = Some(round);
            break;
        }
        for (spec, run) in natives.iter().zip(runs) {
            if let Some(run) = run {
                let figures = rounds.earlier.entry(spec.name.clone()).or_default();
                figures.push(run.throughput_eps());
            }
        }
    }
    Ok(rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn a_repeated_engine_reports_the_median_with_every_round_and_the_kept_run_last() {
        let rounds = Rounds {
            earlier: BTreeMap::from([("mb".to_string(), vec![100.0, 300.0])]),
            asked: true,
            ..Rounds::default()
        };
        assert_eq!(
            rounds.throughput("mb", 200.0),
            Throughput {
                eps: 200.0,
                runs: vec![100.0, 300.0, 200.0]
            }
        );
        assert_eq!(
            rounds.throughput("pr", 50.0),
            Throughput {
                eps: 50.0,
                runs: Vec::new()
            }
        );
        assert_eq!(Rounds::none().throughput("mb", 9.0).eps, 9.0);
    }

    #[test]
    fn an_interrupted_kept_run_reports_its_own_throughput_and_a_real_engine_says_it_ran_once() {
        let text = "name = \"t\"\nduration = \"1s\"\nrepeat = 3\n[[engine]]\nname = \"mb\"\nmodel = \"micro-batch\"\n\
                    [[engine]]\nname = \"spark\"\nmodel = \"spark\"\n";
        let scenario = crate::spec::Scenario::parse(std::path::Path::new("t.toml"), text).unwrap();
        let (mb, spark) = (&scenario.engines[0], &scenario.engines[1]);
        let rounds = Rounds {
            earlier: BTreeMap::from([("mb".to_string(), vec![100.0, 300.0])]),
            asked: true,
            ..Rounds::default()
        };
        let (whole, note) = rounds.report(mb, 200.0, false);
        assert_eq!((whole.eps, whole.runs.len()), (200.0, 3));
        assert!(note.unwrap().contains("the median of 3 runs"));
        let (stopped, note) = rounds.report(mb, 20.0, true);
        assert_eq!(
            stopped,
            Throughput {
                eps: 20.0,
                runs: Vec::new()
            }
        );
        assert!(note.unwrap().contains("this interrupted run's own"));
        let (real, note) = rounds.report(spark, 5.0, false);
        assert_eq!((real.eps, real.runs.len()), (5.0, 0));
        assert!(note.unwrap().contains("a real engine runs once"));
        assert_eq!(Rounds::none().report(spark, 5.0, false).1, None);
    }

    #[test]
    fn a_skipped_repeat_says_why_on_every_run() {
        let rounds = Rounds::not_applied(5, "the simulated clock gives the same figures in every run");
        assert_eq!(rounds.throughput("mb", 9.0).runs, Vec::<f64>::new());
        assert!(Rounds::not_applied(1, "x").not_applied.is_none());
        assert_eq!(
            rounds.not_applied.as_deref(),
            Some("repeat = 5 not applied: the simulated clock gives the same figures in every run; this is one run")
        );
    }
}
