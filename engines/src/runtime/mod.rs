//! Where time and scheduling come from.
//!
//! Engines never read the OS clock and never sleep on their own: they ask a [`Clock`] what time
//! it is and to wait until an instant, and a [`Runtime`] to run a set of tasks on its workers.
//! The live runtime answers with the wall clock and OS threads (a benchmark); a simulated
//! runtime answers with virtual time (a simulator). The engine code is the same.
//!
//! Why: a run on virtual time must be deterministic (its outputs are pinned byte for byte), so
//! no engine may read `Instant::now` or sleep; everything that moves time goes through these two
//! traits. The rooms:
//!
//! - this module: the [`Clock`] and [`Runtime`] traits every engine is generic over;
//! - [`task`]: the [`TaskContext`] a task sees (its own clock, where it reports work);
//! - [`failures`]: what the injected task failures and worker losses mean to both runtimes;
//! - [`live`]: the wall clock and OS worker threads ([`LiveClock`], [`LiveRuntime`]);
//! - [`sim`]: virtual time and simulated workers ([`VirtualClock`], [`SimRuntime`]).
//!
//! Invariant: every public item keeps its path `streamlab_engines::runtime::X` (re-exported
//! here), whichever room it lives in.

mod failures;
mod live;
mod sim;
mod task;

pub use live::{LiveClock, LiveRuntime};
pub use sim::{SimRuntime, VirtualClock};
pub use task::TaskContext;

use crate::cost::Work;
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

    /// Runs `part(0..parts)` — work that is not the query's own but the measurement's (timing
    /// delivered outputs, handing them on) — spread over the workers, and returns the results
    /// in part order. Nothing is charged, no failure is injected, no placement recorded. One
    /// after another by default (the simulated runtime: its time does not pass for this).
    fn run_untimed<T, F>(&self, parts: usize, part: F) -> Vec<T>
    where
        T: Send,
        F: Fn(usize) -> T + Sync,
    {
        (0..parts).map(part).collect()
    }

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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cost::Slowdown;

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
    fn pinned_workers_run_every_task_and_part_in_order_and_retry_a_failed_attempt() {
        let mut rt = LiveRuntime::new(2)
            .with_task_failures(vec![0])
            .with_pinned_workers(true)
            .expect("two pinned worker threads");
        for _ in 0..3 {
            // The same threads serve stage after stage.
            let (out, _) = attempts(&mut rt, 5);
            assert_eq!(out.iter().map(|&(i, _)| i).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
            assert!(rt.last_placements().iter().all(|&(w, _)| w < 2));
        }
        assert_eq!(rt.task_retries(), 1);
        assert_eq!(rt.run_untimed(2, |part| part * 10), [0, 10]);
        // One worker: nothing to pin, tasks run on the caller's thread as before.
        let mut one = LiveRuntime::new(1)
            .with_pinned_workers(true)
            .expect("no threads to start");
        assert_eq!(attempts(&mut one, 2).1, [1, 1]);
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
