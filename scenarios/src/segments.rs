//! The events of a segmented simulated run, generated one segment ahead on a thread of their
//! own.
//!
//! Why: generating the clickstream is sequential (one random stream, one session pool) and
//! takes about as long as both engines together take to simulate it; done in line, a simulated
//! hour paid for the two one after the other. Here a generator thread fills segment `k + 1`
//! while the caller's engines run segment `k`, so on two cores the run takes about the longer
//! of the two instead of their sum.
//!
//! Invariants: the segments, their ends and their events are exactly those the caller would
//! have generated in line (the same `Feed`, the same `segment_end` sequence, handed over in
//! order), so simulated results do not change. At most [`AHEAD`] segments wait in the channel,
//! plus the one being filled: memory stays a few segments, whatever the run's length. The
//! buffers go back to the generator to be refilled, so a long run allocates nothing per
//! segment.

use crossbeam_channel::{bounded, Receiver, Sender};
use streamlab_engines::event::Event;
use streamlab_engines::time::Nanos;

use crate::workload::Workload;

/// Segments generated and waiting for the engines, at most.
const AHEAD: usize = 1;

/// One segment: its end (virtual time) and its events, in arrival order.
pub struct Segment {
    /// The segment ends here (exclusive); the engines run up to it.
    pub to: Nanos,
    /// Its events.
    pub events: Vec<Event>,
}

/// The segments of `workload` up to `until`, each at most `max_len` long and holding about
/// `max_events` (see [`Workload::segment_end`]), handed to `run` in order while a scoped thread
/// generates the next one. `run` gives each segment's buffer back through the [`Recycle`] it
/// gets (or drops it); returns what `run` returns.
pub fn generated_ahead<R>(
    workload: &Workload,
    until: Nanos,
    max_len: Nanos,
    max_events: f64,
    run: impl FnOnce(&Receiver<Segment>, &Recycle) -> R,
) -> R {
    let (tx, rx) = bounded::<Segment>(AHEAD);
    let (back_tx, back_rx) = bounded::<Vec<Event>>(AHEAD + 2);
    std::thread::scope(|s| {
        s.spawn(move || generate(workload, until, max_len, max_events, &tx, &back_rx));
        let recycle = Recycle(back_tx);
        // Dropping `rx` and the recycler when `run` returns (even early, on an error) ends the
        // generator: its next send fails.
        let out = run(&rx, &recycle);
        drop(rx);
        drop(recycle);
        out
    })
}

/// Where the caller gives an emptied segment buffer back to the generator.
pub struct Recycle(Sender<Vec<Event>>);

impl Recycle {
    /// Gives `events` (cleared here) back to be refilled.
    pub fn give_back(&self, mut events: Vec<Event>) {
        events.clear();
        // Full or gone: the buffer is dropped instead.
        let _ = self.0.try_send(events);
    }
}

/// The generator thread: the same loop the caller would run in line.
fn generate(
    workload: &Workload,
    until: Nanos,
    max_len: Nanos,
    max_events: f64,
    tx: &Sender<Segment>,
    back: &Receiver<Vec<Event>>,
) {
    let mut feed = workload.feed();
    let mut t = 0;
    while t < until {
        let to = workload.segment_end(t, max_len, max_events).min(until);
        let mut events = back.try_recv().unwrap_or_default();
        feed.fill_until(to, &mut events);
        if tx.send(Segment { to, events }).is_err() {
            return; // the caller stopped early
        }
        t = to;
    }
}
