//! What a task sees of its runtime: its own clock, and where to report the work it did.
//!
//! Why a room of its own: the same [`TaskContext`] is handed to a task by both runtimes, and the
//! operators only ever talk to it, never to a runtime. Invariants: on the wall clock only the
//! modelled part of reported work is realized (by waiting) and measured time is never priced; on
//! virtual time a task's clock moves only by the price of the work it reports (or by waiting),
//! so the same work in the same order always ends at the same instant.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Clock, LiveClock};
use crate::cost::{CostModel, Work};
use crate::time::Nanos;

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
