//! The live runtime: the wall clock and OS worker threads (a benchmark).
//!
//! Why: the same engine code that the simulator prices is run here for real, so its measured
//! time can be compared with the model. Invariants: work's modelled part is realized by waiting
//! on the wall clock; a straggler or slow state store stretches measured time by its factor; a
//! failed attempt (an injected task failure, or its worker lost while it ran) is dropped and its
//! task runs again, for real, with the attempt number one higher; results come back in task
//! order whatever thread ran them.
//!
//! Threads: by default every stage starts a thread per worker and the OS places them. With
//! pinned workers ([`LiveRuntime::with_pinned_workers`], a micro-batch engine's `pin_workers`)
//! the runtime keeps one thread per worker for the whole run, worker `w` on core `w` mod the
//! machine's cores, and each stage hands its worker loop to them: a Spark executor keeps its
//! task threads too, and the per-record engine's `pin_slots` pins its slots the same way. Why:
//! on the 2-core VM these figures come from, the kernel packs a newly started thread onto its
//! parent's busy core (`sched_vcpu_pack`), so a stage's second worker often started 1–5 ms late
//! and the stage's last task waited with it (traced per task; the two-core ratio of
//! `scenarios/throughput-stateless.toml` was 1.63–1.83× with a thread per stage and 1.81–1.99×
//! pinned in six alternated runs each; the YSB-like `throughput.toml`'s did not change).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon_core::{ThreadPool, ThreadPoolBuilder};

use super::failures::loss_begins;
use super::{Clock, Runtime, TaskContext};
use crate::cost::{Slowdown, Work};
use crate::time::Nanos;

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

    /// A clock that reads `elapsed` now: a run resumed after its process was killed keeps the
    /// time of the run it continues (its zero was `elapsed` ago).
    pub fn resumed(elapsed: Nanos) -> Self {
        let now = Instant::now();
        Self {
            origin: now.checked_sub(Duration::from_nanos(elapsed)).unwrap_or(now),
        }
    }
}

impl LiveClock {
    /// Waits until `t` without holding the core: sleeps even when `t` is microseconds away
    /// (waking up to ~60 µs late, the kernel's timer slack) instead of yielding in a loop. A
    /// per-record source polling at a high rate uses it, so its threads leave the cores to the
    /// tasks downstream: a yield loop on two cores shared by three threads starves them for
    /// whole scheduler slices (tens of milliseconds at p99); a short sleep costs tens of
    /// microseconds.
    pub fn sleep_until(&self, t: Nanos) {
        let now = self.now();
        if now < t {
            std::thread::sleep(Duration::from_nanos(t - now));
        }
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
    slowdowns: Vec<crate::cost::Slowdown>,
    /// Instants at which the next task attempt to start fails (latest first).
    task_failures: Vec<Nanos>,
    /// Lost workers (executors): `(worker, from, to)`.
    worker_losses: Vec<(usize, Nanos, Nanos)>,
    task_retries: u64,
    /// Worker and end of each task's successful attempt in the last stage.
    placements: Vec<(usize, Nanos)>,
    /// The pinned worker threads, kept for the run (none unless pinned, or with one worker).
    pool: Option<ThreadPool>,
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
            slowdowns: Vec::new(),
            task_failures: Vec::new(),
            worker_losses: Vec::new(),
            task_retries: 0,
            placements: Vec::new(),
            pool: None,
        }
    }

    /// Keeps one thread per worker for the whole run, worker `w` pinned to core `w` mod the
    /// machine's cores (live clock: a micro-batch engine's `pin_workers`). With one worker, or
    /// `pin` false, stages start threads of their own as before. Where the OS does not tell
    /// its cores, the threads are kept but not pinned. An error if the OS refuses the threads.
    pub fn with_pinned_workers(mut self, pin: bool) -> std::io::Result<Self> {
        if !pin || self.workers <= 1 {
            return Ok(self);
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let pool = ThreadPoolBuilder::new()
            .num_threads(self.workers)
            .thread_name(|w| format!("streamlab-worker-{w}"))
            .start_handler(move |w| {
                if !cores.is_empty() {
                    core_affinity::set_for_current(cores[w % cores.len()]);
                }
            })
            .build()
            .map_err(std::io::Error::other)?;
        // Every thread has run (and pinned itself) before the first stage is handed to them.
        pool.broadcast(|_| ());
        self.pool = Some(pool);
        Ok(self)
    }

    /// Makes one task attempt fail at each of `at`: the first attempt to start at or after the
    /// instant does its work, then fails; its result is dropped and the task runs again (as
    /// Spark retries a failed task up to `spark.task.maxFailures` without restarting the query).
    pub fn with_task_failures(mut self, mut at: Vec<Nanos>) -> Self {
        at.sort_unstable_by(|a, b| b.cmp(a));
        self.task_failures = at;
        self
    }

    /// Loses worker `w` from `from` until `to`, each entry `(w, from, to)`: an attempt running
    /// on it at `from` fails and its task runs again on another worker thread, and the worker
    /// takes no task while it is gone.
    pub fn with_worker_losses(mut self, losses: Vec<(usize, Nanos, Nanos)>) -> Self {
        self.worker_losses = losses;
        self
    }

    /// Makes work slower during the given periods, on the wall clock: a task on a straggling
    /// worker takes `factor` times as long as it measured (it waits out the difference), and
    /// keyed-state updates under a slow state store likewise.
    pub fn with_slowdowns(mut self, slowdowns: Vec<crate::cost::Slowdown>) -> Self {
        self.slowdowns = slowdowns;
        self
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

    fn run_untimed<T, F>(&self, parts: usize, part: F) -> Vec<T>
    where
        T: Send,
        F: Fn(usize) -> T + Sync,
    {
        if parts <= 1 || self.workers <= 1 {
            return (0..parts).map(part).collect();
        }
        if let Some(pool) = &self.pool {
            // One part per pinned worker thread.
            let part = &part;
            return (pool.broadcast(|w| (w.index() < parts).then(|| part(w.index()))))
                .into_iter()
                .flatten()
                .collect();
        }
        // Part 0 on this thread, the others on threads of their own (as many as the parts; a
        // caller splits its work into at most `workers` parts).
        let part = &part;
        std::thread::scope(|s| {
            let others: Vec<_> = (1..parts).map(|i| s.spawn(move || part(i))).collect();
            let mut results = vec![part(0)];
            results.extend(others.into_iter().map(|h| h.join().expect("an untimed part panicked")));
            results
        })
    }

    fn charge(&mut self, work: &Work) {
        if work.modelled > 0 {
            self.clock.wait_until(self.clock.now() + work.modelled);
        }
    }

    fn run_tasks<T, F>(&mut self, tasks: Vec<F>, per_task_overhead: Nanos) -> Vec<T>
    where
        T: Send,
        F: Fn(&TaskContext) -> T + Sync,
    {
        let clock = self.clock;
        let slowdowns = &self.slowdowns;
        let run = |f: &F, worker: usize, attempt: u32| {
            let start = clock.now();
            let ctx = TaskContext::live_slowed(clock, Slowdown::factor_at(slowdowns, worker, start, true))
                .with_attempt(attempt);
            ctx.charge(&Work::modelled(per_task_overhead));
            let r = f(&ctx);
            // A straggling worker: the task takes `factor` times what it measured.
            let factor = Slowdown::factor_at(slowdowns, worker, start, false);
            if factor > 1.0 {
                let took = clock.now().saturating_sub(start);
                clock.wait_until(clock.now() + (took as f64 * (factor - 1.0)) as Nanos);
            }
            (r, start)
        };
        let n = tasks.len();
        let threads = self.workers.min(n);
        if threads <= 1 && !self.attempts_can_fail() {
            self.placements.clear();
            return tasks
                .iter()
                .map(|f| {
                    let r = run(f, 0, 1).0;
                    self.placements.push((0, clock.now()));
                    r
                })
                .collect();
        }
        let results: Vec<Mutex<Option<(T, usize, Nanos)>>> = (0..n).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let unfinished = AtomicUsize::new(n);
        // Failed attempts wait here for a worker: `(task, attempt)`.
        let retries: Mutex<Vec<(usize, u32)>> = Mutex::new(Vec::new());
        let failures = Mutex::new(std::mem::take(&mut self.task_failures));
        let retried = AtomicU64::new(0);
        // Without injected failures or losses no attempt comes back: a worker that finds no
        // task left is done (polling until the others' last tasks end would only delay the
        // stage's end by up to a sleep of its own).
        let retries_possible = self.attempts_can_fail();
        let losses = &self.worker_losses;
        let lost_until = |w: usize, t: Nanos| {
            losses
                .iter()
                .find(|&&(lw, from, to)| lw == w && t >= from && t < to)
                .map(|&(_, _, to)| to)
        };
        // Worker `w`'s loop: takes retries first, then new tasks, until every task succeeded.
        let work = |w: usize| {
            while unfinished.load(Ordering::Acquire) > 0 {
                if let Some(to) = lost_until(w, clock.now()) {
                    // Gone: no task is placed here until the worker is back (or the stage ends).
                    clock.wait_until((clock.now() + 200_000).min(to));
                    continue;
                }
                let taken = retries.lock().expect("retry queue").pop().or_else(|| {
                    (next.load(Ordering::Relaxed) < n)
                        .then(|| next.fetch_add(1, Ordering::Relaxed))
                        .filter(|&i| i < n)
                        .map(|i| (i, 1))
                });
                let Some((i, attempt)) = taken else {
                    if !retries_possible {
                        break;
                    }
                    // Nothing to take now; a failed attempt may still come back.
                    std::thread::sleep(Duration::from_micros(50));
                    continue;
                };
                let (r, start) = run(&tasks[i], w, attempt);
                let injected = {
                    let mut f = failures.lock().expect("task failures");
                    let fails = f.last().is_some_and(|&t| start >= t);
                    if fails {
                        f.pop();
                    }
                    fails
                };
                let end = clock.now();
                let lost = loss_begins(losses, w, start, end);
                if injected || lost {
                    retried.fetch_add(1, Ordering::Relaxed);
                    retries.lock().expect("retry queue").push((i, attempt + 1));
                    continue;
                }
                *results[i].lock().expect("result slot") = Some((r, w, end));
                unfinished.fetch_sub(1, Ordering::Release);
            }
        };
        if threads <= 1 {
            work(0);
        } else if let Some(pool) = &self.pool {
            // The pinned threads, left waiting by the last stage: none to start.
            pool.broadcast(|w| {
                if w.index() < threads {
                    work(w.index());
                }
            });
        } else {
            std::thread::scope(|s| {
                for w in 0..threads {
                    let work = &work;
                    s.spawn(move || work(w));
                }
            });
        }
        self.task_failures = failures.into_inner().expect("task failures");
        self.task_retries += retried.into_inner();
        self.placements.clear();
        results
            .into_iter()
            .map(|m| {
                let (r, w, end) = m.into_inner().expect("result slot").expect("every task ran");
                self.placements.push((w, end));
                r
            })
            .collect()
    }

    fn task_retries(&self) -> u64 {
        self.task_retries
    }

    fn last_placements(&self) -> Vec<(usize, Nanos)> {
        self.placements.clone()
    }

    fn lost_between(&self, w: usize, from: Nanos, to: Nanos) -> bool {
        loss_begins(&self.worker_losses, w, from, to)
    }

    fn attempts_can_fail(&self) -> bool {
        !self.task_failures.is_empty() || !self.worker_losses.is_empty()
    }
}
