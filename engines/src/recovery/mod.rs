//! Recovery: the supervisors that restart a crashed query or job, as Spark's query supervisor
//! and Flink's restart strategies do. One layer owns it for every engine and clock:
//!
//! * [`micro_batch`] — a micro-batch query restarted from its checkpoint directory (offset
//!   and commit logs, state store) after the restart delay;
//! * [`per_record`] — a per-record job restarted from its latest completed checkpoint, on
//!   virtual time ([`per_record::SimulatedJob`]) or on the wall clock
//!   ([`per_record::LiveJob`], one incarnation of threads after another);
//! * [`restart`] — what every restart of a per-record job counts: the restart strategy's
//!   delay, the events read again, the [`crate::run::FailureEvent`] it leaves in the run.
//!
//! The engines only stop at a crash (losing what they held in memory) and start from a
//! checkpoint; deciding when and from which checkpoint is done here. Callers drive every
//! supervisor the same way, through [`Supervisor`].

pub mod micro_batch;
pub mod per_record;
pub mod restart;

use crate::checkpoint::CheckpointError;
use crate::dataflow::config::DataflowConfigError;
use crate::pulse::RunPulse;
use crate::run::{Delivered, EngineRun};
use crate::source::SourceLog;
use crate::time::Nanos;

/// Why a supervised run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The engine's configuration is refused.
    #[error(transparent)]
    Config(#[from] DataflowConfigError),
    /// A checkpoint could not be written, or the one to restore from could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The run's clock file in the checkpoint directory could not be kept.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The engine stopped with this message.
    #[error("{0}")]
    Engine(String),
}

/// A query or job under supervision: advanced in steps (segments of virtual time, or one step
/// for a live run), restarted after every crash, finished into one run.
pub trait Supervisor {
    /// Runs everything before `to`, reading `log`, restarting after every crash. The run's
    /// end (`to` at or past the end it was built for) drains what is still in flight.
    fn advance(&mut self, log: &SourceLog, to: Nanos) -> Result<(), RecoveryError>;

    /// Takes the outputs delivered so far.
    fn take_delivered(&mut self) -> Vec<Delivered>;

    /// Per partition, the offset below which no event will be read again (the log may
    /// release what is before it).
    fn consumed_offsets(&self) -> Vec<usize>;

    /// Ends the run and reports it, every incarnation's part included.
    fn finish(self: Box<Self>) -> EngineRun;

    /// Waits until the files the run wrote behind it (on a thread of their own) are on disk,
    /// and fails if one could not be written; at once for a run that writes in line.
    fn settle(&mut self) -> Result<(), RecoveryError> {
        Ok(())
    }

    /// Publishes to `pulse` what only the engine counts while it runs — micro-batches falling
    /// behind, checkpoints completed — between steps, for a progress display. It only reads:
    /// a run publishes or not, its results are the same.
    fn publish(&self, pulse: &RunPulse) {
        let _ = pulse;
    }
}
