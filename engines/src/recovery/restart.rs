//! What a restart of a per-record job counts, the same on both clocks: the restart strategy's
//! delay before restart number `n`, and the failure it leaves in the run — when the job crashed,
//! when it ran again, and how many events it read again because they came after the checkpoint
//! it restarted from.

use crate::dataflow::config::RestartStrategy;
use crate::run::{EngineRun, FailureEvent};
use crate::time::Nanos;

/// The restarts of one job.
#[derive(Debug)]
pub struct Restarts {
    strategy: RestartStrategy,
    count: u32,
    failures: Vec<FailureEvent>,
}

impl Restarts {
    /// No restart yet, under `strategy`.
    pub fn new(strategy: RestartStrategy) -> Self {
        Self {
            strategy,
            count: 0,
            failures: Vec::new(),
        }
    }

    /// The delay before the next restart (number `count + 1`), without counting it.
    pub fn next_delay(&self) -> Nanos {
        self.strategy.delay(self.count + 1).nanos()
    }

    /// A crash at `at`: counts the restart and returns when the job runs again.
    pub fn restart_after(&mut self, at: Nanos) -> Nanos {
        let restart = at + self.next_delay();
        self.count += 1;
        restart
    }

    /// Records the failure at `at`, restarted at `restarted_at`, that read `replayed` events
    /// again.
    pub fn record(&mut self, at: Nanos, restarted_at: Nanos, replayed: u64) {
        self.failures.push(FailureEvent {
            at,
            restarted_at,
            replayed,
        });
    }

    /// Adds the failures and the events read again to `run`.
    pub fn report(self, run: &mut EngineRun) {
        run.counts.replayed += self.failures.iter().map(|f| f.replayed).sum::<u64>();
        run.failures.extend(self.failures);
    }
}

/// Events read again after a restart: per partition, what the dead incarnation had read past
/// where the restored checkpoint starts.
pub fn replayed(read: &[usize], restored: &[usize]) -> u64 {
    read.iter()
        .zip(restored)
        .map(|(r, s)| r.saturating_sub(*s) as u64)
        .sum()
}
