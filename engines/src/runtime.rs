//! Where time and scheduling come from.
//!
//! Engines never read the OS clock and never sleep on their own: they ask a [`Clock`] what time
//! it is and to wait until an instant, and a [`Runtime`] to run a set of tasks on its workers.
//! The live runtime answers with the wall clock and OS threads (a benchmark); a simulated
//! runtime answers with virtual time (a simulator). The engine code is the same.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::time::Nanos;

/// A source of processing time.
pub trait Clock: Clone + Send + Sync {
    /// Nanoseconds since the run started.
    fn now(&self) -> Nanos;
    /// Blocks (or advances virtual time) until `t`; returns at once if `t` has passed.
    fn wait_until(&self, t: Nanos);
    /// Which clock this is: `"live"` or `"simulated"`.
    fn name(&self) -> &'static str;
}

/// A clock and a pool of workers that run tasks.
pub trait Runtime {
    /// The clock type.
    type Clock: Clock;
    /// The runtime's clock.
    fn clock(&self) -> &Self::Clock;
    /// Number of workers tasks run on.
    fn workers(&self) -> usize;
    /// Runs `tasks` on the workers and returns their results in task order. Each task first
    /// pays `per_task_overhead` (the modelled cost of launching it).
    fn run_tasks<T, F>(&mut self, tasks: Vec<F>, per_task_overhead: Nanos) -> Vec<T>
    where
        T: Send,
        F: FnOnce() -> T + Send;

    /// Shorthand for `clock().now()`.
    fn now(&self) -> Nanos {
        self.clock().now()
    }
    /// Shorthand for `clock().wait_until(t)`.
    fn wait_until(&self, t: Nanos) {
        self.clock().wait_until(t)
    }
}

/// Below this many nanoseconds `LiveClock::wait_until` yields instead of sleeping: Linux
/// oversleeps by ~50 µs, so a shorter sleep would overshoot, while yielding for longer would
/// burn a core in system calls.
const SPIN_BELOW: Nanos = 60_000;

/// The wall clock, with its origin at the start of the run.
#[derive(Clone, Copy, Debug)]
pub struct LiveClock {
    origin: Instant,
}

impl LiveClock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Clock for LiveClock {
    #[inline]
    fn now(&self) -> Nanos {
        self.origin.elapsed().as_nanos() as Nanos
    }

    fn wait_until(&self, t: Nanos) {
        loop {
            let now = self.now();
            if now >= t {
                return;
            }
            let remaining = t - now;
            if remaining > SPIN_BELOW {
                // Sleep most of the way; the OS wakes us late by tens of microseconds.
                std::thread::sleep(Duration::from_nanos(remaining - SPIN_BELOW / 2));
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn name(&self) -> &'static str {
        "live"
    }
}

/// Real threads on the wall clock.
#[derive(Debug)]
pub struct LiveRuntime {
    clock: LiveClock,
    workers: usize,
}

impl LiveRuntime {
    /// A runtime with `workers` worker threads per task set, its clock starting now.
    pub fn new(workers: usize) -> Self {
        Self::with_clock(LiveClock::start(), workers)
    }

    /// A runtime sharing an existing clock.
    pub fn with_clock(clock: LiveClock, workers: usize) -> Self {
        Self {
            clock,
            workers: workers.max(1),
        }
    }
}

impl Runtime for LiveRuntime {
    type Clock = LiveClock;

    fn clock(&self) -> &LiveClock {
        &self.clock
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn run_tasks<T, F>(&mut self, tasks: Vec<F>, per_task_overhead: Nanos) -> Vec<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let clock = self.clock;
        let run = |f: F| {
            if per_task_overhead > 0 {
                clock.wait_until(clock.now() + per_task_overhead);
            }
            f()
        };
        let threads = self.workers.min(tasks.len());
        if threads <= 1 {
            return tasks.into_iter().map(run).collect();
        }
        let n = tasks.len();
        let slots: Vec<Mutex<Option<F>>> = tasks.into_iter().map(|f| Mutex::new(Some(f))).collect();
        let results: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let f = slots[i].lock().expect("task slot").take().expect("task taken once");
                    let r = run(f);
                    *results[i].lock().expect("result slot") = Some(r);
                });
            }
        });
        results
            .into_iter()
            .map(|m| m.into_inner().expect("result slot").expect("every task ran"))
            .collect()
    }
}

/// A clock that only moves when told to: `wait_until` jumps straight to the instant.
///
/// Deterministic and instantaneous, it lets tests drive an engine through exact trigger
/// boundaries on virtual time. Work itself takes no virtual time on it (there is no cost
/// model here); the simulated runtime builds on it and charges modelled costs.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ManualClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Nanos) {
        self.now.fetch_add(d, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.now.load(Ordering::SeqCst)
    }

    fn wait_until(&self, t: Nanos) {
        self.now.fetch_max(t, Ordering::SeqCst);
    }

    fn name(&self) -> &'static str {
        "manual"
    }
}

/// A single-threaded runtime on a [`ManualClock`]: tasks run one after another, in order.
#[derive(Clone, Debug)]
pub struct ManualRuntime {
    clock: ManualClock,
    workers: usize,
}

impl ManualRuntime {
    /// A runtime reporting `workers` workers, its clock at 0.
    pub fn new(workers: usize) -> Self {
        Self {
            clock: ManualClock::new(),
            workers: workers.max(1),
        }
    }
}

impl Runtime for ManualRuntime {
    type Clock = ManualClock;

    fn clock(&self) -> &ManualClock {
        &self.clock
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn run_tasks<T, F>(&mut self, tasks: Vec<F>, per_task_overhead: Nanos) -> Vec<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let waves = tasks.len().div_ceil(self.workers) as u64;
        let results = tasks.into_iter().map(|f| f()).collect();
        self.clock.advance(per_task_overhead * waves);
        results
    }
}
