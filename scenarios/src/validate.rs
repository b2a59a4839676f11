//! The fidelity check: the same scenario on both clocks.
//!
//! Each engine configuration runs live (wall clock, real threads) and simulated (virtual time,
//! the scenario's cost profile). The outputs must be the same — the same rows of a stateless
//! pipeline; for a windowed one, the same final value of every window (update and commit
//! modes may split their updates differently between the clocks, their last values agree) —
//! and the latency percentiles should agree within [`TOLERANCE`] when the live run is not
//! overloaded.

use std::collections::BTreeMap;

use streamlab_engines::operators::{Output, Shape};
use streamlab_engines::reference::{self, ReferenceResult};

use crate::runner::REFERENCE_CHECK_EVENTS;
use streamlab_engines::run::{Delivered, EngineRun};
use streamlab_engines::time::Span;
use streamlab_reports::summary::LatencySummary;

use crate::clock::clock_setup;
use crate::drive::run_engine;
use crate::error_run::Result;
use crate::spec::{ClockKind, EngineSpec, Scenario};
use crate::workload::Workload;

/// The relative error of p50 and p99 within which the two clocks are said to agree.
pub const TOLERANCE: f64 = 0.15;

/// One engine configuration on both clocks.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The engine run's name.
    pub name: String,
    /// Latency on the wall clock.
    pub live: LatencySummary,
    /// Latency on virtual time.
    pub simulated: LatencySummary,
    /// Outputs of the live run (canonical form).
    pub live_outputs: usize,
    /// Outputs of the simulated run (canonical form).
    pub simulated_outputs: usize,
    /// Whether the canonical outputs are identical.
    pub outputs_equal: bool,
    /// The live run's outputs against the reference evaluator (a note, as `streamlab run`
    /// writes it).
    pub live_reference: String,
    /// The simulated run's outputs against the reference evaluator.
    pub simulated_reference: String,
}

impl Comparison {
    /// Relative error of the simulated value against the live one.
    pub fn relative_error(live: f64, simulated: f64) -> f64 {
        if live == 0.0 {
            if simulated == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (simulated - live).abs() / live
        }
    }

    /// True when p50 and p99 agree within [`TOLERANCE`].
    pub fn latency_agrees(&self) -> bool {
        Self::relative_error(self.live.p50, self.simulated.p50) <= TOLERANCE
            && Self::relative_error(self.live.p99, self.simulated.p99) <= TOLERANCE
    }
}

/// What a run's outputs must agree on across clocks.
#[derive(Debug, Default, PartialEq)]
pub struct CanonicalOutput {
    /// Stateless: sequence numbers of the rows, sorted.
    pub rows: Vec<u64>,
    /// Windowed: the last (count, value) of every window.
    pub windows: BTreeMap<(i64, i64, i64), (u64, u64)>,
    /// Joins and top-N: every record result's identity (shape, left and right sequence
    /// numbers, window start), as delivered (duplicates kept).
    pub records: Vec<(Shape, u64, u64, i64)>,
}

impl CanonicalOutput {
    /// Folds delivered outputs in.
    pub fn add(&mut self, delivered: &[Delivered]) {
        for d in delivered {
            match d.output {
                Output::Row(r) => self.rows.push(r.event.seq),
                Output::Window(w) => {
                    self.windows
                        .insert((w.key, w.start, w.end), (w.count, w.value.to_bits()));
                }
                Output::Record(r) => self.records.push(r.identity()),
            }
        }
    }

    fn len(&self) -> usize {
        self.rows.len() + self.windows.len() + self.records.len()
    }

    /// How many outputs were folded in (rows, windows and records).
    pub fn len_all(&self) -> usize {
        self.len()
    }

    /// One note comparing these outputs with the reference evaluator's exact result: every
    /// row or window delivered must be the reference's (final value, no duplicate); what was
    /// not delivered is what the engine had not closed or read when the run ended. `late_dropped`
    /// records dropped as late explain windows whose value differs.
    pub fn against_reference(&self, reference: &ReferenceResult, late_dropped: u64) -> String {
        if !self.windows.is_empty() || !reference.windows.is_empty() {
            let different = self
                .windows
                .iter()
                .filter(|(id, (count, value))| {
                    reference
                        .windows
                        .get(id)
                        .is_none_or(|&(c, v)| c != *count || v.to_bits() != *value)
                })
                .count();
            let open = reference
                .windows
                .keys()
                .filter(|id| !self.windows.contains_key(id))
                .count();
            let verdict = match (different, late_dropped) {
                (0, _) => format!(
                    "outputs agree with the reference evaluator: {} windows with its final values",
                    self.windows.len()
                ),
                (d, 0) => format!(
                    "OUTPUTS DIFFER from the reference evaluator: {d} of {} windows have another value or are not in it",
                    self.windows.len()
                ),
                (d, late) => format!(
                    "{d} of {} windows differ from the reference evaluator, which counts every event: the engine \
                     dropped {late} late records, as its lateness rule says",
                    self.windows.len()
                ),
            };
            return match open {
                0 => verdict,
                n => format!("{verdict} ({n} later windows not closed when the run ended)"),
            };
        }
        if !self.records.is_empty() || !reference.records.is_empty() {
            return self.records_against(reference, late_dropped);
        }
        let mut rows = self.rows.clone();
        rows.sort_unstable();
        let delivered = rows.len();
        rows.dedup();
        let duplicates = delivered - rows.len();
        let expected: std::collections::BTreeSet<u64> = reference.rows.iter().copied().collect();
        let unexpected = rows.iter().filter(|s| !expected.contains(s)).count();
        let missing = expected.len() - (rows.len() - unexpected);
        if duplicates == 0 && unexpected == 0 {
            match missing {
                0 => format!("outputs agree with the reference evaluator: {delivered} rows"),
                n => format!(
                    "outputs agree with the reference evaluator: {delivered} rows ({n} more not yet delivered when the run ended)"
                ),
            }
        } else {
            format!("OUTPUTS DIFFER from the reference evaluator: {unexpected} rows not in it, {duplicates} duplicated")
        }
    }

    fn records_against(&self, reference: &ReferenceResult, late_dropped: u64) -> String {
        let mut got = self.records.clone();
        got.sort_unstable();
        let delivered = got.len();
        got.dedup();
        let duplicates = delivered - got.len();
        let expected: std::collections::BTreeSet<_> = reference.records.iter().copied().collect();
        let unexpected = got.iter().filter(|r| !expected.contains(r)).count();
        let missing = expected.len() - (got.len() - unexpected);
        match (duplicates, unexpected, late_dropped) {
            (0, 0, _) => match missing {
                0 => format!("outputs agree with the reference evaluator: {delivered} results"),
                n => format!(
                    "outputs agree with the reference evaluator: {delivered} results ({n} more not yet emitted when the run ended)"
                ),
            },
            (0, u, late) if late > 0 => format!(
                "{u} of {delivered} results differ from the reference evaluator, which counts every event: the engine dropped {late} late records, as its lateness rule says"
            ),
            (d, u, _) => format!("OUTPUTS DIFFER from the reference evaluator: {u} results not in it, {d} duplicated"),
        }
    }
}

/// Runs every engine of `scenario` on both clocks and compares them.
pub fn validate(
    scenario: &Scenario,
    seed: u64,
    duration: Span,
    mut on_run: impl FnMut(&EngineSpec, ClockKind),
) -> Result<Vec<Comparison>> {
    let live = clock_setup(scenario, ClockKind::Live)?;
    let simulated = clock_setup(scenario, ClockKind::Simulated)?;
    let workload = Workload::build(scenario, seed, duration)?;
    let until = duration.nanos() + scenario.drain.nanos();
    let events = workload.expected_events();
    let reference = (events <= REFERENCE_CHECK_EVENTS)
        .then(|| reference::evaluate(&scenario.pipeline, &workload.table, &workload.events()));
    let check = |run: &EngineRun, canonical: &CanonicalOutput| match &reference {
        Some(r) => canonical.against_reference(r, run.counts.late_dropped),
        None => format!(
            "not checked against the reference evaluator: {events} events (it runs up to {REFERENCE_CHECK_EVENTS})"
        ),
    };
    let mut out = Vec::new();
    for engine in &scenario.engines {
        let mut run = |clock, kind| -> Result<(EngineRun, CanonicalOutput)> {
            on_run(engine, kind);
            let mut canonical = CanonicalOutput::default();
            let run = run_engine(scenario, engine, &workload, until, clock, &mut |d| {
                canonical.add(&d);
                Ok(())
            })?;
            canonical.rows.sort_unstable();
            canonical.records.sort_unstable();
            Ok((run, canonical))
        };
        let (live_run, live_out) = run(&live, ClockKind::Live)?;
        let (sim_run, sim_out) = run(&simulated, ClockKind::Simulated)?;
        out.push(Comparison {
            name: engine.name.clone(),
            live: LatencySummary::from_histogram(&live_run.latency.total),
            simulated: LatencySummary::from_histogram(&sim_run.latency.total),
            live_outputs: live_out.len(),
            simulated_outputs: sim_out.len(),
            outputs_equal: live_out == sim_out,
            live_reference: check(&live_run, &live_out),
            simulated_reference: check(&sim_run, &sim_out),
        });
    }
    Ok(out)
}

/// The side-by-side table `streamlab validate` prints.
pub fn comparison_table(rows: &[Comparison]) -> String {
    let mut s = format!(
        "{:<24} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7}  {}\n",
        "engine", "p50 live", "p50 sim", "err", "p95 live", "p95 sim", "err", "p99 live", "p99 sim", "err", "outputs"
    );
    for c in rows {
        let e = |l: f64, r: f64| format!("{:.1}%", 100.0 * Comparison::relative_error(l, r));
        let verdict = if c.outputs_equal {
            format!("equal ({})", c.live_outputs)
        } else {
            format!("DIFFER (live {}, simulated {})", c.live_outputs, c.simulated_outputs)
        };
        s += &format!(
            "{:<24} {:>10.3} {:>10.3} {:>7} {:>10.3} {:>10.3} {:>7} {:>10.3} {:>10.3} {:>7}  {}\n",
            c.name,
            c.live.p50,
            c.simulated.p50,
            e(c.live.p50, c.simulated.p50),
            c.live.p95,
            c.simulated.p95,
            e(c.live.p95, c.simulated.p95),
            c.live.p99,
            c.simulated.p99,
            e(c.live.p99, c.simulated.p99),
            verdict
        );
    }
    s + &format!(
        "latency in ms; the clocks agree when p50 and p99 are within {:.0}%\n",
        TOLERANCE * 100.0
    )
}
