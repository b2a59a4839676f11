//! The engine runs under way, for whoever shows progress, and the process-wide stop request
//! (Ctrl-C).
//!
//! [`crate::drive`] registers every engine run it starts ([`begin`]) with a fresh
//! [`RunPulse`], feeds it what only the driver sees (outputs and their latency as chunks are
//! handed over; on the simulated clock, each segment's end and how far each engine has read),
//! hands it to the engine inside its output stream (the live engines publish events read,
//! batches falling behind and checkpoints completed themselves), and marks it ended
//! ([`WatchedRun::end`]). A display polls [`runs`]; nothing else reads the registry, so a
//! process that shows no progress pays only the registration.
//!
//! A stop request ([`request_stop`]) is remembered for the whole process: every pulse under
//! way is told at once and every later one is born stopped, so the run under way ends at its
//! next batch, source step or segment, and the engines not yet started are skipped
//! ([`stop_requested`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use streamlab_engines::pulse::RunPulse;
use streamlab_engines::run::Delivered;
use streamlab_engines::time::Nanos;

/// One engine run as a display sees it.
#[derive(Clone, Debug)]
pub struct WatchedRun {
    /// The engine run's name.
    pub engine: String,
    /// Its model (`micro-batch`, `per-record`, `spark`, …).
    pub model: String,
    /// Where its clock ends: the scenario's duration plus drain.
    pub until: Nanos,
    /// Whether its clock is virtual.
    pub simulated: bool,
    /// Its figures.
    pub pulse: Arc<RunPulse>,
    ended: Arc<AtomicBool>,
}

impl WatchedRun {
    /// Whether the run has ended.
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Marks the run ended and takes it off the registry (a run that stopped early on request
    /// is remembered, for [`stopped_runs`]).
    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
        if let Some(at) = self.pulse.stopped_at() {
            STOPPED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((self.engine.clone(), at));
        }
        registry().retain(|r| !Arc::ptr_eq(&r.pulse, &self.pulse));
        tell(self, RunEvent::Ended);
    }
}

static RUNS: Mutex<Vec<WatchedRun>> = Mutex::new(Vec::new());
static STOPPED: Mutex<Vec<(String, Nanos)>> = Mutex::new(Vec::new());

/// The engine runs that stopped early on a stop request, and where their clocks were then.
pub fn stopped_runs() -> Vec<(String, Nanos)> {
    STOPPED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}
static STOP: AtomicBool = AtomicBool::new(false);

fn registry() -> std::sync::MutexGuard<'static, Vec<WatchedRun>> {
    RUNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a display is told as it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEvent {
    /// The run started.
    Started,
    /// The run ended; its pulse holds its final figures.
    Ended,
}

/// Who hears [`RunEvent`]s (on the driver's thread: it must be quick).
pub type RunObserver = dyn Fn(&WatchedRun, RunEvent) + Send + Sync;

static OBSERVER: Mutex<Option<Arc<RunObserver>>> = Mutex::new(None);

/// Makes `observer` hear every engine run that starts and ends in this process from now on.
pub fn observe(observer: Arc<RunObserver>) {
    *OBSERVER.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(observer);
}

fn tell(run: &WatchedRun, event: RunEvent) {
    let observer = OBSERVER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(observer) = observer {
        observer(run, event);
    }
}

/// Registers an engine run that starts now.
pub fn begin(engine: &str, model: &str, until: Nanos, simulated: bool) -> WatchedRun {
    let pulse = Arc::new(RunPulse::new());
    if stop_requested() {
        pulse.request_stop();
    }
    let run = WatchedRun {
        engine: engine.to_string(),
        model: model.to_string(),
        until,
        simulated,
        pulse,
        ended: Arc::new(AtomicBool::new(false)),
    };
    registry().push(run.clone());
    tell(&run, RunEvent::Started);
    run
}

/// The engine runs under way, in the order they started.
pub fn runs() -> Vec<WatchedRun> {
    registry().clone()
}

/// Asks every run under way, and every later one, to stop.
pub fn request_stop() {
    STOPPED_AT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert_with(crate::results::utc_now);
    STOP.store(true, Ordering::Release);
    for run in registry().iter() {
        run.pulse.request_stop();
    }
}

/// Whether a stop was requested in this process. The interrupt handler ends the real engines'
/// process groups before it asks for the stop: a handler that has begun counts as a request.
pub fn stop_requested() -> bool {
    if !STOP.load(Ordering::Acquire) && streamlab_real_engines::groups::interrupted() {
        request_stop();
    }
    STOP.load(Ordering::Acquire)
}

static STOPPED_AT: Mutex<Option<String>> = Mutex::new(None);

/// When the first stop was requested, UTC (RFC 3339).
pub fn stop_requested_at() -> Option<String> {
    STOPPED_AT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Buckets of the latency window: four per power of two, from 1 ns to about 2^63 ns.
const BUCKETS: usize = 256;

/// The latency p99 of the outputs delivered most recently, counted in logarithmic buckets
/// (within 19% of the exact value) and published to a pulse a window at a time.
#[derive(Debug)]
pub struct LatencyWindow {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
    /// Record every `stride`-th output (a discarding sink's outputs are sampled, so the
    /// display costs its engine next to nothing).
    stride: usize,
}

impl LatencyWindow {
    /// A window recording every `stride`-th output of a chunk (at least 1).
    pub fn new(stride: usize) -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            stride: stride.max(1),
        }
    }

    fn bucket(ns: Nanos) -> usize {
        let ns = ns.max(1);
        let log = 63 - ns.leading_zeros() as usize;
        let frac = if log >= 2 {
            (ns >> (log - 2)) & 3
        } else {
            (ns << (2 - log)) & 3
        } as usize;
        (log * 4 + frac).min(BUCKETS - 1)
    }

    fn upper(bucket: usize) -> Nanos {
        let (log, frac) = (bucket / 4, (bucket % 4) as u128);
        let upper = ((1u128 << log) * (5 + frac)).div_ceil(4);
        upper.min(u128::from(Nanos::MAX)) as Nanos
    }

    /// Counts a chunk of delivered outputs.
    pub fn add(&mut self, delivered: &[Delivered]) {
        for d in delivered.iter().step_by(self.stride) {
            let latency = d.at.saturating_sub(d.output.origin().arrival);
            self.counts[Self::bucket(latency)] += 1;
            self.total += 1;
        }
    }

    /// The p99 of what was counted since the last publication, to `pulse`, and a fresh window;
    /// nothing when nothing was counted.
    pub fn publish(&mut self, pulse: &RunPulse) {
        if self.total == 0 {
            return;
        }
        let rank = (self.total * 99).div_ceil(100);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                pulse.latest_p99(Self::upper(b));
                break;
            }
        }
        self.counts.fill(0);
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamlab_engines::event::{Event, EventKind};
    use streamlab_engines::operators::{Lineage, Output, Row};

    /// An output delivered `latency_ms` after its event's arrival at 0.
    fn delivered(latency_ms: u64) -> Delivered {
        let event = Event {
            seq: 0,
            event_time: 0,
            arrival: 0,
            partition: 0,
            user: 0,
            session: 0,
            page: 0,
            ad: 0,
            kind: EventKind::View,
            dwell_ms: 0,
            price_cents: 0,
        };
        let row = Row {
            event,
            campaign: 0,
            lineage: Lineage::default(),
        };
        Delivered {
            at: latency_ms * 1_000_000,
            output: Output::Row(row),
        }
    }

    #[test]
    fn the_window_p99_is_within_a_bucket_of_the_exact_one() {
        let pulse = RunPulse::new();
        let mut w = LatencyWindow::new(1);
        let chunk: Vec<Delivered> = (1..=100).map(delivered).collect();
        w.add(&chunk);
        w.publish(&pulse);
        let p99 = pulse.read().p99.unwrap() as f64 / 1e6;
        assert!((99.0..=99.0 * 1.25).contains(&p99), "{p99}");
        // A fresh window: nothing counted, nothing published.
        w.publish(&pulse);
        assert_eq!(pulse.read().p99.unwrap() as f64 / 1e6, p99);
    }

    #[test]
    fn buckets_grow_with_latency_and_bound_it_from_above() {
        for ns in [1u64, 2, 3, 7, 1000, 123_456_789, u64::MAX / 2] {
            let b = LatencyWindow::bucket(ns);
            assert!(LatencyWindow::upper(b) >= ns, "{ns}");
            assert!(LatencyWindow::bucket(ns * 2) > b || b == BUCKETS - 1);
        }
    }
}
