//! Injected task failures and worker losses, as both runtimes read them.
//!
//! Why a room of its own: the live and the simulated runtime must agree on what a lost worker
//! means to the engine above them (a task attempt dies when its worker's loss *begins* while it
//! runs, and the task runs again), so the rule [`Runtime::lost_between`] answers with is
//! written once here. Invariant: a loss `(worker, from, to)` counts for the interval
//! `(start, end]` exactly when it begins inside it (`start < from <= end`).
//!
//! [`Runtime::lost_between`]: super::Runtime::lost_between

use crate::time::Nanos;

/// Whether one of `losses` (`(worker, from, to)`) of worker `w` begins after `from`, by `to`.
pub(super) fn loss_begins(losses: &[(usize, Nanos, Nanos)], w: usize, from: Nanos, to: Nanos) -> bool {
    losses.iter().any(|&(lw, f, _)| lw == w && f > from && f <= to)
}
