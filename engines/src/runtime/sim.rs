//! The simulated runtime: virtual time and simulated workers (a simulator).
//!
//! Why: a run on virtual time is deterministic and fast, so every simulated scenario's outputs
//! can be pinned byte for byte. Invariants: tasks run one after another on the calling thread
//! in task order; each is placed by list scheduling (the worker free first, ties to the lowest),
//! priced by the cost model with the slowdowns in force where and when it starts, and charged in
//! that order (launch, then its work; a failed attempt's time is paid again); the runtime's
//! clock then moves to the stage's makespan. Changing that order changes every pinned output.

use std::sync::atomic::{AtomicU64, Ordering};

use super::failures::loss_begins;
use super::{Clock, Runtime, TaskContext};
use crate::cost::{CostModel, Slowdown, Work};
use crate::time::Nanos;

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
