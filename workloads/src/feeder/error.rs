//! Why a feeder or receiver could not start or did not finish, by who is at fault: the caller's
//! input (events, token, partitions), the engine on the other side (never connected, went
//! away), the machine (bind, runtime), or a bug.

use std::net::SocketAddr;
use std::time::Duration;

/// What went wrong with a feeder or a receiver.
#[derive(Debug, thiserror::Error)]
pub enum FeederError {
    /// The run token cannot be sent in the handshake line.
    #[error("run token `{token}`: {reason}")]
    InvalidToken {
        /// The token given.
        token: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// The partition count is zero.
    #[error("a feeder needs at least one partition")]
    NoPartitions,
    /// An event names a partition the feeder does not serve.
    #[error("event seq {seq} is in partition {partition}, but the feeder serves partitions 0..{partitions}")]
    PartitionOutOfRange {
        /// The event.
        seq: u64,
        /// Its partition.
        partition: u32,
        /// The feeder's partition count.
        partitions: u32,
    },
    /// The events are not in arrival order.
    #[error("event seq {seq} arrives at {arrival} ns, before the previous event ({previous} ns); events must be in arrival order")]
    NotInArrivalOrder {
        /// The event.
        seq: u64,
        /// Its scheduled arrival, ns.
        arrival: u64,
        /// The previous event's arrival, ns.
        previous: u64,
    },
    /// The address could not be listened on (in use, not local, not permitted).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The tokio runtime or its thread could not be started.
    #[error("cannot start the feeder's runtime: {0}")]
    Runtime(std::io::Error),
    /// Not every partition connected before the readiness timeout.
    #[error(
        "partition{} {} of 0..{expected} never connected to the feeder within {timeout:?}; \
         the engine must open one connection per partition and send `STREAMLAB <token> <partition>`",
        if missing.len() == 1 { "" } else { "s" },
        list(missing)
    )]
    NotReady {
        /// The partitions that never connected, ascending.
        missing: Vec<u32>,
        /// The partition count.
        expected: u32,
        /// The readiness timeout.
        timeout: Duration,
    },
    /// A partition's reader went away before its last event was written.
    #[error("partition {partition}: the reader went away after {sent} of {total} events: {source}")]
    Disconnected {
        /// The partition.
        partition: u32,
        /// Events written before the failure.
        sent: u64,
        /// Events of the partition.
        total: u64,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The feeder was stopped before its schedule ended.
    #[error("the feeder was stopped before its schedule ended")]
    Stopped,
    /// A bug: an invariant of the feeder broke.
    #[error("internal error in the feeder (a bug): {0}")]
    Internal(String),
}

fn list(partitions: &[u32]) -> String {
    partitions.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}
