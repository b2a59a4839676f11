//! The loopback feeder and the output receiver: how an external engine (Apache Spark, Apache
//! Flink, or your own driver) is fed the very workload the native engines see, and how its
//! outputs come back to be stamped with the same clock.
//!
//! Latency only compares across engines if every engine sees the same events at the same
//! scheduled instants and every output is timed by the same clock. So streamlab does not hand an
//! external engine a file or let it generate data: the [`Feeder`] replays the generator's events
//! open-loop over TCP, one connection per source partition, and the [`Receiver`] stamps each
//! output line on receipt with the run clock ([`RunClock`]: nanoseconds since the instant the
//! feeder started its schedule). Latency = receipt stamp − scheduled arrival, as for the native
//! engines; the feeder's own sending lag is measured and reported ([`SendingLag`]), so a backlog
//! in the feeder is visible rather than silently shifting the schedule (no coordinated omission).
//!
//! # The protocol (line-based, UTF-8, `\n`-terminated)
//!
//! **Source partitions.** The feeder listens on one address (loopback, any free port by
//! default; [`Feeder::local_addr`] reports it). For each source partition `p` in
//! `0..partitions`, the engine opens one connection and sends
//!
//! ```text
//! STREAMLAB <token> <p>
//! ```
//!
//! The feeder never writes anything but event rows and the end marker, so a plain line-reading
//! source works once it has sent that line. A connection is refused — closed without a byte
//! written, counted and logged ([`Refusal`]) — if its first line is not that form, the token is
//! not the run's ([`RunToken`]), `p` is not a partition of the run, `p` already has a
//! connection, or the schedule has already started. A connection that does not present the
//! token is never fed.
//!
//! **Readiness.** The schedule starts (the run clock's zero) at the instant the last expected
//! partition has connected, not after a sleep; if that does not happen within the readiness
//! timeout, the run fails with [`FeederError::NotReady`], naming the partitions that never
//! connected.
//!
//! **Events.** Each event of partition `p` is written to `p`'s connection at its scheduled
//! arrival, relative to the clock's zero, as one CSV trace row — the row of
//! [`crate::trace::write_csv_row`], columns [`crate::trace::COLUMNS`] in order, no header. The
//! schedule is open loop: the feeder never waits for the reader except through TCP
//! backpressure, and events that fall due while a write is blocked go out together as soon as
//! it completes; the delay is measured per event as the sending lag (write completed − scheduled
//! arrival). Tokio's timer has millisecond granularity, so up to about a millisecond of the lag
//! is timer rounding; it is measured, not hidden.
//!
//! **End of stream.** After a partition's last event the feeder writes the line `END` and
//! closes its side of the connection. A reader stops at `END` (or at end of file, which follows
//! it); an `END` never appears as an event row, whose first field is a number.
//!
//! **Sinks.** The receiver listens on its own address. The engine's sink opens any number of
//! connections (one per sink task is fine), each starting with
//!
//! ```text
//! STREAMLAB <token> sink
//! ```
//!
//! then one output per line; end of file ends that sink connection. Lines are stamped on
//! receipt and handed to a consumer callback ([`ReceivedLine`]); stamps handed to the consumer
//! are non-decreasing over all sink connections, and a connection's lines keep their order.
//!
//! **Warm-up.** A run may declare a warm-up period ([`FeederOptions::warmup`], nanoseconds of
//! the run clock). Events scheduled inside it are sent like any other (the rows are unchanged, so
//! the engine cannot treat them differently) and counted in [`FeederReport::warmup_events`];
//! every output the receiver stamps before the warm-up ends — or before the clock has started
//! at all — is flagged [`ReceivedLine::warmup`], so latency statistics can exclude them and
//! say so.
//!
//! # Threads
//!
//! The rest of streamlab is synchronous. [`Feeder::start`] and [`Receiver::start`] each run
//! their servers on a current-thread tokio runtime on a thread of their own, and return a handle;
//! `stop` or dropping the handle ends every task, closes every socket and joins the thread.

mod clock;
mod error;
mod handshake;
mod lag;
mod receiver;
mod runtime;
mod schedule;
mod server;

pub use clock::RunClock;
pub use error::FeederError;
pub use handshake::{Refusal, RefusalReason, RunToken};
pub use lag::SendingLag;
pub use receiver::{ReceivedLine, Receiver, ReceiverOptions, ReceiverReport};
pub use server::{Feeder, FeederOptions, FeederReport};

/// The first word of every handshake line.
pub const HELLO: &str = "STREAMLAB";

/// The line the feeder writes after a partition's last event.
pub const END_OF_STREAM: &str = "END";
