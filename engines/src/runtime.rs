//! Where time and scheduling come from.
//!
//! Engines never read the OS clock and never sleep on their own: they ask a [`Clock`] what time
//! it is and to wait until an instant, and a [`Runtime`] to run a set of tasks on its workers.
//! The live runtime answers with the wall clock and OS threads (a benchmark); a simulated
//! runtime answers with virtual time (a simulator). The engine code is the same.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cost::{CostModel, Slowdown, Work};
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

/// What a task sees of its runtime: its own clock, and where to report the work it did.
///
/// On the live runtime the clock is the wall clock and only the modelled part of reported work
/// is realized (by waiting). On the simulated runtime every task has its own virtual clock,
/// started when a simulated worker picks the task up and advanced by the price of its work.
#[derive(Debug)]
pub struct TaskContext {
    clock: TaskClock,
    /// Which attempt of its task this is: 1, or more after a failed attempt.
    attempt: u32,
}

#[derive(Debug)]
enum TaskClock {
    /// The wall clock; work is stretched by `state_factor` for keyed-state updates (a slow
    /// state store in force when the task started).
    Live {
        clock: LiveClock,
        state_factor: f64,
    },
    Virtual {
        now: AtomicU64,
        cost: CostModel,
    },
}

impl TaskContext {
    /// A task on the wall clock.
    pub fn live(clock: LiveClock) -> Self {
        Self {
            clock: TaskClock::Live {
                clock,
                state_factor: 1.0,
            },
            attempt: 1,
        }
    }

    /// A task on its own virtual clock starting at `start`, priced by `cost`.
    pub fn simulated(start: Nanos, cost: CostModel) -> Self {
        Self {
            clock: TaskClock::Virtual {
                now: AtomicU64::new(start),
                cost,
            },
            attempt: 1,
        }
    }

    /// The same task's attempt number `attempt` (a retry after a failed attempt).
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Which attempt of its task this is: 1 normally, 2 or more when an earlier attempt failed
    /// (a task failure, or its worker lost while it ran). A retrying task starts from the same
    /// input and must not see what the failed attempt did to its state.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The task's current time.
    pub fn now(&self) -> Nanos {
        match &self.clock {
            TaskClock::Live { clock: c, .. } => c.now(),
            TaskClock::Virtual { now, .. } => now.load(Ordering::Relaxed),
        }
    }

    /// Waits until `t`.
    pub fn wait_until(&self, t: Nanos) {
        match &self.clock {
            TaskClock::Live { clock: c, .. } => c.wait_until(t),
            TaskClock::Virtual { now, .. } => {
                now.fetch_max(t, Ordering::Relaxed);
            }
        }
    }

    /// How soon after a poll that found nothing a caught-up task polls again: the cost
    /// profile's source poll interval on virtual time, none on the wall clock (where sleeping
    /// has its own granularity).
    pub fn poll_interval(&self) -> Nanos {
        match &self.clock {
            TaskClock::Live { .. } => 0,
            TaskClock::Virtual { cost, .. } => cost.source_poll_interval_ns.round() as Nanos,
        }
    }

    /// A task on the wall clock whose keyed-state updates run `state_factor` times slower.
    pub fn live_slowed(clock: LiveClock, state_factor: f64) -> Self {
        Self {
            clock: TaskClock::Live { clock, state_factor },
            attempt: 1,
        }
    }

    /// Keyed-state updates that took `measured` ns on the wall clock, under a slow state store
    /// in force: waits out the extra time and returns the whole (a no-op on virtual time, where
    /// the price already includes it).
    pub fn stretch_state(&self, measured: Nanos) -> Nanos {
        match &self.clock {
            TaskClock::Live { clock, state_factor } if *state_factor > 1.0 => {
                let extra = (measured as f64 * (state_factor - 1.0)) as Nanos;
                clock.wait_until(clock.now() + extra);
                measured + extra
            }
            _ => measured,
        }
    }

    /// Whether the task runs on the wall clock (time is measured) rather than virtual time
    /// (time is priced).
    pub fn is_live(&self) -> bool {
        matches!(self.clock, TaskClock::Live { .. })
    }

    /// What `work` costs this task on virtual time (slowdowns in force included); 0 on the wall
    /// clock, where work takes the time it takes.
    pub fn price(&self, work: &Work) -> Nanos {
        match &self.clock {
            TaskClock::Live { .. } => 0,
            TaskClock::Virtual { cost, .. } => cost.price(work),
        }
    }

    /// Reports work done.
    pub fn charge(&self, work: &Work) {
        match &self.clock {
            TaskClock::Live { clock: c, .. } => {
                if work.modelled > 0 {
                    c.wait_until(c.now() + work.modelled);
                }
            }
            TaskClock::Virtual { now, cost } => {
                now.fetch_add(cost.price(work), Ordering::Relaxed);
            }
        }
    }
}

/// A clock, a pool of workers that run tasks, and a way to account for work.
pub trait Runtime {
    /// The clock type.
    type Clock: Clock;
    /// The runtime's clock.
    fn clock(&self) -> &Self::Clock;
    /// Number of workers tasks run on.
    fn workers(&self) -> usize;
    /// Accounts for work the driver did: the simulated runtime advances its clock by the
    /// work's price; the live runtime only waits out its modelled part.
    fn charge(&mut self, work: &Work);
    /// Runs `tasks` on the workers and returns their results in task order. Each task first
    /// pays `per_task_overhead` (a configured, modelled launch cost). A task whose attempt
    /// fails (an injected task failure, or its worker lost while it ran) is run again, for
    /// real, with [`TaskContext::attempt`] one higher; the failed attempt's result is dropped.
    fn run_tasks<T, F>(&mut self, tasks: Vec<F>, per_task_overhead: Nanos) -> Vec<T>
    where
        T: Send,
        F: Fn(&TaskContext) -> T + Sync;

    /// Task attempts that failed and were run again so far.
    fn task_retries(&self) -> u64 {
        0
    }

    /// For each task of the last [`Runtime::run_tasks`], the worker its successful attempt ran
    /// on and when it ended (empty where the runtime does not track it).
    fn last_placements(&self) -> Vec<(usize, Nanos)> {
        Vec::new()
    }

    /// Whether worker `w` was lost after `from` and at or before `to`.
    fn lost_between(&self, _w: usize, _from: Nanos, _to: Nanos) -> bool {
        false
    }

    /// Whether a task attempt can fail on this runtime (failures or worker losses are
    /// injected), so a stateful task must be able to start over from its last version.
    fn attempts_can_fail(&self) -> bool {
        false
    }

    /// The modelled cost of launching one task that this runtime adds by itself (a cluster
    /// profile's task launch cost on the simulated runtime; none on the live one).
    fn modelled_task_launch(&self) -> Nanos {
        0
    }

    /// Shorthand for `clock().now()`.
    fn now(&self) -> Nanos {
        self.clock().now()
    }
    /// Shorthand for `clock().wait_until(t)`.
    fn wait_until(&self, t: Nanos) {
        self.clock().wait_until(t)
    }
}

/// Whether one of `losses` (`(worker, from, to)`) of worker `w` begins after `from`, by `to`.
fn loss_begins(losses: &[(usize, Nanos, Nanos)], w: usize, from: Nanos, to: Nanos) -> bool {
    losses.iter().any(|&(lw, f, _)| lw == w && f > from && f <= to)
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
        }
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

/// Virtual time: a clock that only moves when told to; `wait_until` jumps straight there.
#[derive(Clone, Debug, Default)]
pub struct VirtualClock {
    now: std::sync::Arc<AtomicU64>,
}

impl VirtualClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Nanos) {
        self.now.fetch_add(d, Ordering::Relaxed);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Nanos {
        self.now.load(Ordering::Relaxed)
    }

    fn wait_until(&self, t: Nanos) {
        self.now.fetch_max(t, Ordering::Relaxed);
    }

    fn name(&self) -> &'static str {
        "simulated"
    }
}

/// The simulated runtime: virtual time, single-threaded, deterministic.
///
/// Tasks run one after another on this thread; each is assigned to the simulated worker that
/// becomes free first (list scheduling, ties to the lowest worker), starts its own virtual
/// clock there, and is charged the price of the work it reports. The runtime's clock then
/// moves to the moment the last worker finishes: the stage's makespan.
#[derive(Clone, Debug)]
pub struct SimRuntime {
    clock: VirtualClock,
    workers: usize,
    cost: CostModel,
    slowdowns: Vec<Slowdown>,
    /// Instants at which the next task to start fails once (latest first, popped in order).
    task_failures: Vec<Nanos>,
    /// Lost workers (executors): `(worker, from, to)`.
    worker_losses: Vec<(usize, Nanos, Nanos)>,
    /// Task attempts that failed and were retried.
    pub task_retries: u64,
    /// Worker and end of each task's successful attempt in the last stage.
    placements: Vec<(usize, Nanos)>,
}

impl SimRuntime {
    /// A runtime with `workers` simulated workers, pricing work with `cost`.
    pub fn new(workers: usize, cost: CostModel) -> Self {
        Self {
            clock: VirtualClock::new(),
            workers: workers.max(1),
            cost,
            slowdowns: Vec::new(),
            task_failures: Vec::new(),
            worker_losses: Vec::new(),
            task_retries: 0,
            placements: Vec::new(),
        }
    }

    /// Loses worker `w` (an executor) from `from` until `to`: a task running on it then fails
    /// and runs again, from the start, on another worker, and no task is placed on it while it is
    /// gone (until the cluster manager has relaunched it). Each entry is `(w, from, to)`.
    pub fn with_worker_losses(mut self, losses: Vec<(usize, Nanos, Nanos)>) -> Self {
        self.worker_losses = losses;
        self
    }

    /// When worker `w`, free from `t`, can next take a task (after any loss covering `t`).
    fn available(&self, w: usize, mut t: Nanos) -> Nanos {
        while let Some(&(_, _, to)) = self
            .worker_losses
            .iter()
            .find(|&&(lw, from, to)| lw == w && t >= from && t < to)
        {
            t = to;
        }
        t
    }

    /// Makes one task fail at each of `at`: the first task to start at or after the instant
    /// fails when it has done its work and is run again (Spark retries a failed task, up to
    /// `spark.task.maxFailures`, without restarting the query) — its time is paid twice.
    pub fn with_task_failures(mut self, mut at: Vec<Nanos>) -> Self {
        at.sort_unstable_by(|a, b| b.cmp(a));
        self.task_failures = at;
        self
    }

    /// Makes work slower during the given periods (stragglers, a slow state store): a task is
    /// priced by the slowdowns in force when it starts on its worker.
    pub fn with_slowdowns(mut self, slowdowns: Vec<Slowdown>) -> Self {
        self.slowdowns = slowdowns;
        self
    }

    /// A runtime where work is free: time moves only by waiting (for tests of pure timing
    /// rules).
    pub fn free(workers: usize) -> Self {
        Self::new(workers, CostModel::FREE)
    }

    /// The cost model.
    pub fn cost(&self) -> &CostModel {
        &self.cost
    }
}

impl Runtime for SimRuntime {
    type Clock = VirtualClock;

    fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn charge(&mut self, work: &Work) {
        let cost = self.cost.at(&self.slowdowns, usize::MAX, self.clock.now());
        self.clock.advance(cost.price(work));
    }

    fn modelled_task_launch(&self) -> Nanos {
        self.cost.task_launch_ns.round() as Nanos
    }

    fn task_retries(&self) -> u64 {
        self.task_retries
    }

    fn attempts_can_fail(&self) -> bool {
        !self.task_failures.is_empty() || !self.worker_losses.is_empty()
    }

    fn last_placements(&self) -> Vec<(usize, Nanos)> {
        self.placements.clone()
    }

    fn lost_between(&self, w: usize, from: Nanos, to: Nanos) -> bool {
        loss_begins(&self.worker_losses, w, from, to)
    }

    fn run_tasks<T, F>(&mut self, tasks: Vec<F>, per_task_overhead: Nanos) -> Vec<T>
    where
        T: Send,
        F: Fn(&TaskContext) -> T + Sync,
    {
        let start = self.clock.now();
        let mut free_at = vec![start; self.workers.min(tasks.len()).max(1)];
        let launch = Work {
            tasks_launched: 1,
            modelled: per_task_overhead,
            ..Default::default()
        };
        let attempt = |rt: &Self, f: &F, w: usize, at: Nanos, attempt: u32| {
            let ctx = TaskContext::simulated(at, rt.cost.at(&rt.slowdowns, w, at)).with_attempt(attempt);
            ctx.charge(&launch);
            let r = f(&ctx);
            (r, ctx.now())
        };
        self.placements.clear();
        let results = tasks
            .iter()
            .map(|f| {
                let (w, at) = free_at
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| (i, self.available(i, t)))
                    .min_by_key(|&(i, t)| (t, i))
                    .expect("a worker");
                let (mut r, mut end) = attempt(self, f, w, at, 1);
                if self.task_failures.last().is_some_and(|&t| at >= t) {
                    // The attempt failed at its end; the task runs again on the same worker.
                    self.task_failures.pop();
                    self.task_retries += 1;
                    (r, end) = attempt(self, f, w, end, 2);
                }
                free_at[w] = end;
                // The worker was lost while the task ran: the attempt dies, the task runs again
                // on another worker.
                let lost = self
                    .worker_losses
                    .iter()
                    .find(|&&(lw, from, _)| lw == w && from > at && from < end)
                    .copied();
                if let Some((_, from, _)) = lost {
                    free_at[w] = from;
                    self.task_retries += 1;
                    let (other, start) = free_at
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| i != w || free_at.len() == 1)
                        .map(|(i, &t)| (i, self.available(i, t.max(from))))
                        .min_by_key(|&(i, t)| (t, i))
                        .expect("a worker");
                    (r, free_at[other]) = attempt(self, f, other, start, 2);
                    self.placements.push((other, free_at[other]));
                } else {
                    self.placements.push((w, end));
                }
                r
            })
            .collect();
        self.clock.wait_until(free_at.into_iter().max().unwrap_or(start));
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four tasks of 100 time units on two workers; each waits its length.
    fn stage(rt: &mut SimRuntime) -> Nanos {
        let tasks: Vec<_> = (0..4)
            .map(|_| |ctx: &TaskContext| ctx.wait_until(ctx.now() + 100))
            .collect();
        rt.run_tasks(tasks, 0);
        rt.now()
    }

    #[test]
    fn a_slow_state_store_stretches_measured_state_time_on_the_wall_clock() {
        let ctx = TaskContext::live_slowed(LiveClock::start(), 3.0);
        assert_eq!(ctx.stretch_state(1_000), 3_000);
        assert_eq!(TaskContext::live(LiveClock::start()).stretch_state(1_000), 1_000);
        let slow = [
            Slowdown {
                from: 10,
                to: 20,
                factor: 4.0,
                worker: Some(1),
                state_only: false,
            },
            Slowdown {
                from: 15,
                to: 30,
                factor: 2.0,
                worker: None,
                state_only: true,
            },
        ];
        assert_eq!(Slowdown::factor_at(&slow, 1, 12, false), 4.0);
        assert_eq!(Slowdown::factor_at(&slow, 0, 12, false), 1.0);
        assert_eq!(Slowdown::factor_at(&slow, 1, 16, true), 8.0);
        assert_eq!(Slowdown::factor_at(&slow, 0, 16, false), 1.0);
        assert_eq!(Slowdown::factor_at(&slow, 0, 25, true), 2.0);
    }

    /// Runs `n` tasks that note each attempt; returns what they returned and the attempts.
    fn attempts<R: Runtime>(rt: &mut R, n: usize) -> (Vec<(usize, u32)>, Vec<u32>) {
        let seen: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let seen = &seen;
                move |ctx: &TaskContext| {
                    seen[i].fetch_add(1, Ordering::Relaxed);
                    ctx.wait_until(ctx.now() + 100);
                    (i, ctx.attempt())
                }
            })
            .collect();
        let out = rt.run_tasks(tasks, 0);
        (out, seen.iter().map(|a| a.load(Ordering::Relaxed) as u32).collect())
    }

    #[test]
    fn a_failed_attempt_runs_its_task_again_for_real_on_both_clocks() {
        // Live: the first attempt to start at or after 0 fails; its task runs twice.
        let mut rt = LiveRuntime::new(2).with_task_failures(vec![0]);
        assert!(rt.attempts_can_fail());
        let (out, seen) = attempts(&mut rt, 4);
        assert_eq!(rt.task_retries(), 1);
        assert_eq!(seen.iter().sum::<u32>(), 5);
        assert_eq!(out.iter().map(|&(i, _)| i).collect::<Vec<_>>(), [0, 1, 2, 3]);
        let retried: Vec<_> = out.iter().filter(|&&(_, a)| a == 2).collect();
        assert_eq!(retried.len(), 1, "{out:?}");
        // One worker thread only: the retry still happens.
        let mut rt = LiveRuntime::new(1).with_task_failures(vec![0]);
        let (_, seen) = attempts(&mut rt, 2);
        assert_eq!((rt.task_retries(), seen.iter().sum::<u32>()), (1, 3));
        // Simulated: the retry is a second real call, priced again.
        let mut rt = SimRuntime::free(2).with_task_failures(vec![0]);
        let (out, seen) = attempts(&mut rt, 4);
        assert_eq!(seen, [2, 1, 1, 1]);
        assert_eq!(out[0], (0, 2));
        assert_eq!(rt.now(), 300);
    }

    #[test]
    fn a_lost_worker_costs_the_rerun_of_its_task_and_takes_no_new_ones() {
        assert_eq!(stage(&mut SimRuntime::free(2)), 200);
        // Worker 1 is lost at 50 and back at 1000: its first task reruns on worker 0, which
        // then runs the rest alone.
        let mut rt = SimRuntime::free(2).with_worker_losses(vec![(1, 50, 1000)]);
        assert_eq!(stage(&mut rt), 400);
        assert_eq!(rt.task_retries, 1);
        // Back at 150: the lost task reruns on worker 0 (100..200); worker 1 takes tasks again.
        let mut rt = SimRuntime::free(2).with_worker_losses(vec![(1, 50, 150)]);
        assert_eq!(stage(&mut rt), 300);
    }
}
