//! A source log generated as the schedule reaches it, for live runs: memory flat in the run's
//! length.
//!
//! A live run used to generate its whole workload before the engine started: five minutes at
//! 5 M events/s is 1.5 G events, about 80 GB. Here a producer (`scenarios/src/live_feed.rs`)
//! advances the seeded generator a few milliseconds ahead of the clock and [`LiveSource::publish`]es
//! what it made, partition by partition; readers see a window of each partition and the
//! producer [`LiveSource::release`]s what every reader is past. What a partition holds is
//!
//! ```text
//!   base ........ frontier − RETAINED ....... frontier ............... end
//!   (released)    retained, for rewinds       the backlog: scheduled,  (published)
//!                                             not yet read
//! ```
//!
//! Only the backlog may grow (an engine slower than the offered rate), and it is reported
//! ([`LiveSource::footprint`]).
//!
//! **The frontier** of a partition is the *start* of its latest read: a micro-batch's map task
//! and its sink read the same range one after the other, and a per-record source reads from
//! where it stands, so everything at or after the frontier may still be read.
//!
//! **Replay after a failure** re-reads from a checkpoint's offsets. A rewind no further than
//! [`RETAINED`] events finds them in the window; a rewind past the window is served by
//! *regenerating* the range from the seed ([`LiveSource::read`] takes the partition's write
//! lock and runs a fresh generator from the start up to the window, keeping that partition's
//! events in the range). The generator is seeded and bit-reproducible, so the regenerated
//! events are the ones first read; it costs time proportional to the offset (rare: only after
//! a failure, and only past the retained window), never memory beyond the range. We chose this
//! over a retained window back to the oldest checkpoint because that window is unbounded in
//! the run's rate and checkpoint interval (ten seconds at 5 M events/s is 3 GB).
//!
//! **Published by a consumer.** On `transport = "kafka"` the publisher is streamlab's consumer
//! of the input topic (`engines/real/src/kafka/input.rs`), not the generator: a reader sees an
//! event once the broker has delivered it, and the source retains nothing behind a frontier
//! ([`LiveSource::retaining`]), so a rewind is read again from the topic by the factory.
//!
//! **Locks.** Each partition's window is behind its own `RwLock`. Readers hold a read guard
//! only while they work on a range they read ([`crate::source::Events`]); the producer never
//! blocks on them: it publishes with `try_write` and keeps what it could not publish for its
//! next round (counted in the backlog). A reader never waits for the producer either, except to
//! regenerate a released range — so a reader must not hold a guard on a partition while it
//! reads a released range of the same partition (no engine does: ranges are read in turn).
//!
//! **Readers see every event that has arrived.** Asked what is available at `now`, a reader
//! waits until the producer has published everything arriving by `now` (it runs 50 ms ahead,
//! so it waits only when starved, or when the reader's clock jumped: a run resumed from its
//! checkpoint directory continues its schedule where the wall clock stands, and the producer
//! catches up to the clock the reader hands it). A micro-batch query resumed late holds what
//! the producer generates up to its first read (its planning does not move the frontier).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::event::Event;
use crate::time::Nanos;

/// Events kept behind each partition's frontier for rewinds (16 MiB per partition).
pub const RETAINED: usize = 1 << 18;

/// A seeded generator, advanced by arrival time: what the producer and a regeneration run.
pub trait EventFeed: Send {
    /// Appends, in arrival order, every event not yet handed out that arrives before `until`.
    fn fill_until(&mut self, until: Nanos, out: &mut Vec<Event>);
}

/// Makes a fresh generator from the seed, at the start of the schedule.
pub type FeedFactory = dyn Fn() -> Box<dyn EventFeed> + Send + Sync;

/// One partition's retained events.
#[derive(Debug, Default)]
struct Window {
    /// Events from offset `base` on; `events[..start]` are released but not yet compacted.
    events: Vec<Event>,
    /// Offset of `events[0]`.
    base: usize,
    /// Released slots at the front of `events`.
    start: usize,
}

impl Window {
    fn first(&self) -> usize {
        self.base + self.start
    }

    fn end(&self) -> usize {
        self.base + self.events.len()
    }

    fn held(&self) -> &[Event] {
        &self.events[self.start..]
    }

    /// Releases the events before `offset`; compacts when more than half is released, so a
    /// release is amortized O(1) per event.
    fn release_before(&mut self, offset: usize) {
        let n = offset.saturating_sub(self.first()).min(self.events.len() - self.start);
        self.start += n;
        if self.start > 0 && self.start * 2 >= self.events.len() {
            self.events.drain(..self.start);
            self.base += self.start;
            self.start = 0;
        }
    }
}

/// How much of a live source is in memory, now and at most so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceFootprint {
    /// Events held now: the retained windows and the backlog.
    pub held_events: u64,
    /// Events now from each partition's frontier (the start of its latest read) on: the
    /// backlog (scheduled, not yet read) and the range being read.
    pub backlog_events: u64,
    /// The most events held at once.
    pub peak_held_events: u64,
    /// The largest backlog.
    pub peak_backlog_events: u64,
    /// Events generated so far.
    pub generated: u64,
    /// Events regenerated from the seed for rewinds past the retained window.
    pub regenerated: u64,
}

impl SourceFootprint {
    /// Bytes of `events` events.
    pub fn bytes(events: u64) -> u64 {
        events * std::mem::size_of::<Event>() as u64
    }
}

/// The partitions of a source generated as the schedule reaches it (see the module header).
pub struct LiveSource {
    windows: Vec<RwLock<Window>>,
    /// Start of each partition's latest read.
    frontier: Vec<AtomicUsize>,
    /// Events handed to [`LiveSource::publish`] that a reader's guard kept out, per partition.
    pending: parking_lot::Mutex<Vec<Vec<Event>>>,
    /// Every event arriving before this instant has been generated.
    produced_until: AtomicU64,
    /// See [`LiveSource::reader_now`].
    reader_now: AtomicU64,
    /// The generator has produced its last event.
    finished: AtomicBool,
    /// When the schedule ends: no event arrives at or after it.
    schedule_end: Nanos,
    factory: Box<FeedFactory>,
    /// Events kept behind each partition's frontier ([`RETAINED`] unless
    /// [`LiveSource::retaining`] says otherwise).
    retained: usize,
    peak_held: AtomicU64,
    peak_backlog: AtomicU64,
    generated: AtomicU64,
    regenerated: AtomicU64,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("partitions", &self.windows.len())
            .field("footprint", &self.footprint())
            .finish()
    }
}

impl LiveSource {
    /// An empty source of `partitions` partitions whose events arrive before `schedule_end`,
    /// regenerated for rewinds with generators from `factory` (the producer's own generator is
    /// made the same way).
    pub fn new(partitions: usize, schedule_end: Nanos, factory: Box<FeedFactory>) -> Self {
        let partitions = partitions.max(1);
        Self {
            windows: (0..partitions).map(|_| RwLock::new(Window::default())).collect(),
            frontier: (0..partitions).map(|_| AtomicUsize::new(0)).collect(),
            pending: parking_lot::Mutex::new(vec![Vec::new(); partitions]),
            produced_until: AtomicU64::new(0),
            reader_now: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            schedule_end,
            factory,
            retained: RETAINED,
            peak_held: AtomicU64::new(0),
            peak_backlog: AtomicU64::new(0),
            generated: AtomicU64::new(0),
            regenerated: AtomicU64::new(0),
        }
    }

    /// The same source keeping `events` events behind each partition's frontier instead of
    /// [`RETAINED`]: a source whose factory reads the events again from where they came from (a
    /// Kafka topic) keeps none, so that every rewind reads them from there.
    pub fn retaining(mut self, events: usize) -> Self {
        self.retained = events;
        self
    }

    /// A generator at the start of the schedule, for the producer.
    pub fn feed(&self) -> Box<dyn EventFeed> {
        (self.factory)()
    }

    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.windows.len()
    }

    /// Publishes `events` (in arrival order, all arriving before `until`; drained) and says
    /// that every event arriving before `until` is now generated; `last`: the generator is done.
    /// A partition a reader holds keeps its events pending until the next call.
    pub fn publish(&self, events: &mut Vec<Event>, until: Nanos, last: bool) {
        self.generated.fetch_add(events.len() as u64, Ordering::Relaxed);
        let mut pending = self.pending.lock();
        for e in events.drain(..) {
            pending[e.partition as usize].push(e);
        }
        let mut all_published = true;
        for (p, queue) in pending.iter_mut().enumerate() {
            if queue.is_empty() {
                continue;
            }
            match self.windows[p].try_write() {
                Some(mut w) => w.events.append(queue),
                None => all_published = false,
            }
        }
        drop(pending);
        // Readers learn of an instant only once every event before it is readable.
        if all_published {
            self.produced_until.fetch_max(until, Ordering::Release);
            if last {
                self.finished.store(true, Ordering::Release);
            }
        }
        self.note_footprint();
    }

    /// True once every event of the schedule is published.
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Every event arriving before this instant is readable.
    pub fn produced_until(&self) -> Nanos {
        self.produced_until.load(Ordering::Acquire)
    }

    /// Releases, in each partition, what is more than [`RETAINED`] events (or what
    /// [`LiveSource::retaining`] set) behind its frontier (partitions a reader holds now are
    /// released next time).
    pub fn release(&self) {
        for (w, f) in self.windows.iter().zip(&self.frontier) {
            if let Some(mut w) = w.try_write() {
                let keep_from = f.load(Ordering::Relaxed).saturating_sub(self.retained);
                w.release_before(keep_from);
            }
        }
    }

    fn note_footprint(&self) {
        let now = self.footprint();
        self.peak_held.fetch_max(now.held_events, Ordering::Relaxed);
        self.peak_backlog.fetch_max(now.backlog_events, Ordering::Relaxed);
    }

    /// What is in memory now and at most so far.
    pub fn footprint(&self) -> SourceFootprint {
        let pending: u64 = self.pending.lock().iter().map(|q| q.len() as u64).sum();
        let (mut held, mut backlog) = (pending, pending);
        for (w, f) in self.windows.iter().zip(&self.frontier) {
            let w = w.read_recursive();
            held += w.held().len() as u64;
            backlog += w.end().saturating_sub(f.load(Ordering::Relaxed).max(w.first())) as u64;
        }
        SourceFootprint {
            held_events: held,
            backlog_events: backlog,
            peak_held_events: self.peak_held.load(Ordering::Relaxed).max(held),
            peak_backlog_events: self.peak_backlog.load(Ordering::Relaxed).max(backlog),
            generated: self.generated.load(Ordering::Relaxed),
            regenerated: self.regenerated.load(Ordering::Relaxed),
        }
    }

    /// The latest arrival the generator may still produce: the schedule's end until it is done,
    /// then the last event's.
    pub fn last_arrival(&self) -> Nanos {
        if !self.finished() {
            return self.schedule_end.saturating_sub(1);
        }
        (self.windows.iter())
            .filter_map(|w| w.read_recursive().events.last().map(|e| e.arrival))
            .max()
            .unwrap_or(0)
    }

    /// Events published so far in `partition` (its end offset once [`LiveSource::finished`]).
    pub fn published(&self, partition: usize) -> usize {
        self.windows[partition].read_recursive().end()
    }

    /// Events held now (retained windows and backlog).
    pub fn held(&self) -> usize {
        self.windows.iter().map(|w| w.read_recursive().held().len()).sum()
    }

    /// The offset one past the last event of `partition` arrived by `horizon`, searching
    /// forward from `from` (galloping).
    /// Waits, when the producer is behind, until every event arriving by `horizon` is published
    /// (and `reader` says where the reader stands, when it reads on from there); then the
    /// offset one past the last event of `partition` arrived by `horizon`, searching forward
    /// from `from` (galloping). Never less than `from`.
    ///
    /// The producer keeps [`crate::live_source`]'s horizon ahead of the clock, so a reader waits
    /// only when it is starved or the reader's clock jumped (a run resumed from its checkpoint
    /// directory continues its schedule where the wall clock stands): the reader's clock is
    /// handed to the producer, which catches up to it.
    pub fn available_from(&self, partition: usize, from: usize, horizon: Nanos, reader: bool) -> usize {
        self.catch_up(horizon);
        if reader {
            self.frontier[partition].store(from, Ordering::Relaxed);
        }
        let w = self.windows[partition].read_recursive();
        let events = &w.events;
        let start = from.saturating_sub(w.base).min(events.len()).max(w.start);
        let (mut lo, mut hi, mut step) = (start, start, 1);
        while hi < events.len() && events[hi].arrival <= horizon {
            lo = hi + 1;
            hi = (hi + step).min(events.len());
            step *= 2;
        }
        (w.base + lo + events[lo..hi].partition_point(|e| e.arrival <= horizon)).max(from)
    }

    /// Waits until every event arriving by `horizon` is published (or the schedule is).
    fn catch_up(&self, horizon: Nanos) {
        if self.produced_until() > horizon || self.finished() {
            return;
        }
        self.reader_now.fetch_max(horizon, Ordering::Relaxed);
        while self.produced_until() <= horizon && !self.finished() {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    /// The latest instant a reader asked about while the producer was behind it: the producer
    /// generates up to it at least.
    pub fn reader_now(&self) -> Nanos {
        self.reader_now.load(Ordering::Relaxed)
    }

    /// When the event at `offset` of `partition` arrives: `None` past the last event; for an
    /// event not generated yet, the producer's horizon (none arrives before it); 0 for a
    /// released one.
    pub fn arrival_at(&self, partition: usize, offset: usize) -> Option<Nanos> {
        let w = self.windows[partition].read_recursive();
        if offset < w.first() {
            // Released: it arrived long ago (a read regenerates it).
            return Some(0);
        }
        match w.events.get(offset - w.base) {
            Some(e) => Some(e.arrival),
            None if self.finished() => None,
            None => Some(self.produced_until().max(1)),
        }
    }

    /// The events `from..to` of `partition`, under a read guard; a range before the window is
    /// regenerated from the seed first (see the module header). Moves the partition's frontier
    /// to `from`.
    ///
    /// # Panics
    /// If `to` is past what is published: a reader asked for events it was not told are there.
    pub fn read(&self, partition: usize, from: usize, to: usize) -> MappedRwLockReadGuard<'_, [Event]> {
        self.frontier[partition].store(from, Ordering::Relaxed);
        let lock = &self.windows[partition];
        let w = lock.read_recursive();
        if from >= to {
            return RwLockReadGuard::map(w, |w| &w.events[..0]);
        }
        let w = if from < w.first() {
            drop(w);
            let mut w = lock.write();
            self.regenerate(partition, from, &mut w);
            RwLockWriteGuard::downgrade(w)
        } else {
            w
        };
        assert!(
            to <= w.end(),
            "partition {partition}: offsets {from}..{to} read, {} published",
            w.end()
        );
        RwLockReadGuard::map(w, |w| &w.events[from - w.base..to - w.base])
    }

    /// Puts the events `from..` of `partition` up to its window back, from a fresh generator.
    fn regenerate(&self, partition: usize, from: usize, w: &mut Window) {
        let first = w.first();
        if from >= first {
            return;
        }
        w.events.drain(..w.start);
        w.base += w.start;
        w.start = 0;
        let mut feed = (self.factory)();
        let mut batch = Vec::new();
        let mut kept = Vec::with_capacity(first - from);
        let mut offset = 0usize;
        let mut until: Nanos = 0;
        const STEP: Nanos = 100_000_000;
        while offset < first {
            until = until.saturating_add(STEP);
            batch.clear();
            feed.fill_until(until, &mut batch);
            for e in batch.iter().filter(|e| e.partition as usize == partition) {
                if offset >= from && offset < first {
                    kept.push(*e);
                }
                offset += 1;
            }
            assert!(
                until <= self.schedule_end.saturating_add(STEP),
                "partition {partition}: the generator ended before offset {first}"
            );
        }
        self.regenerated.fetch_add(kept.len() as u64, Ordering::Relaxed);
        w.base = from;
        kept.append(&mut w.events);
        w.events = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tests::event;

    /// Four events per millisecond, round robin over two partitions.
    struct Ticks {
        next: u64,
        end: u64,
    }

    impl EventFeed for Ticks {
        fn fill_until(&mut self, until: Nanos, out: &mut Vec<Event>) {
            while self.next < self.end && self.next * 250_000 < until {
                let seq = self.next;
                out.push(event(seq, (seq % 2) as u32, seq * 250_000));
                self.next += 1;
            }
        }
    }

    fn source(end: u64) -> LiveSource {
        LiveSource::new(
            2,
            end.saturating_mul(250_000),
            Box::new(move || Box::new(Ticks { next: 0, end })),
        )
    }

    fn produce(s: &LiveSource, feed: &mut dyn EventFeed, until: Nanos) {
        let mut buf = Vec::new();
        feed.fill_until(until, &mut buf);
        s.publish(&mut buf, until, false);
    }

    #[test]
    fn only_what_was_produced_is_available_and_the_horizon_says_when_to_look_again() {
        let s = source(1_000_000);
        let mut feed = s.feed();
        produce(&s, feed.as_mut(), 1_000_000);
        assert_eq!(s.published(0), 2, "events 0 and 2 arrived before 1 ms");
        assert_eq!(s.available_from(0, 0, 500_000, true), 2);
        assert_eq!(s.arrival_at(0, 1), Some(500_000));
        assert_eq!(
            s.arrival_at(0, 2),
            Some(1_000_000),
            "not generated: look again at the horizon"
        );
        assert_eq!(s.read(1, 0, 2).iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn memory_holds_the_retained_window_and_the_backlog_not_the_whole_run() {
        let s = source(1 << 40);
        let mut feed = s.feed();
        let mut offset = 0;
        for step in 1..=10u64 {
            // Ten rounds of 4 × RETAINED events each (2 × RETAINED per partition, four a
            // millisecond), read as they come.
            produce(&s, feed.as_mut(), step * RETAINED as u64 * 1_000_000);
            let end = s.published(0);
            for p in 0..2 {
                assert_eq!(s.read(p, offset, end).len(), end - offset);
            }
            offset = end;
            s.release();
        }
        assert!(s.held() <= 2 * 3 * RETAINED, "{} held", s.held());
        assert_eq!(s.footprint().generated, 10 * 4 * RETAINED as u64);
    }

    #[test]
    fn a_rewind_past_the_window_regenerates_the_same_events() {
        let s = source(1 << 40);
        let mut feed = s.feed();
        produce(&s, feed.as_mut(), 3 * RETAINED as u64 * 250_000);
        let end = s.published(1);
        let first_read: Vec<Event> = s.read(1, 10, 20).to_vec();
        drop(s.read(1, end - 1, end));
        s.release();
        assert!(s.footprint().held_events < 3 * RETAINED as u64, "released");
        let again = s.read(1, 10, 20).to_vec();
        assert_eq!(again, first_read);
        assert_eq!(s.footprint().regenerated, (end - RETAINED - 1 - 10) as u64);
        assert_eq!(s.read(1, end - 1, end)[0].seq, 2 * (end as u64 - 1) + 1);
    }

    #[test]
    fn a_source_retaining_nothing_reads_every_rewind_again_from_its_factory() {
        let s = source(1_000).retaining(0);
        let mut feed = s.feed();
        produce(&s, feed.as_mut(), 10_000_000);
        let first: Vec<Event> = s.read(0, 0, 5).to_vec();
        drop(s.read(0, 10, 12));
        s.release();
        assert_eq!(
            s.footprint().held_events,
            s.published(0) as u64 - 10 + s.published(1) as u64
        );
        assert_eq!(s.read(0, 0, 5).to_vec(), first);
        assert_eq!(s.footprint().regenerated, 10, "offsets 0..10 read again");
    }

    #[test]
    fn a_held_partition_keeps_its_events_pending_until_it_is_free() {
        let s = source(1_000);
        let mut feed = s.feed();
        produce(&s, feed.as_mut(), 1_000_000);
        let guard = s.read(0, 0, 1);
        produce(&s, feed.as_mut(), 2_000_000);
        assert_eq!(s.published(1), 4, "a free partition is published");
        assert_eq!(s.produced_until(), 1_000_000, "not every event before 2 ms is readable");
        // Partition 0: 2 from its frontier (0) on and 2 pending; partition 1: 4.
        assert_eq!(s.footprint().backlog_events, 2 + 2 + 4);
        drop(guard);
        produce(&s, feed.as_mut(), 2_000_000);
        assert_eq!(s.published(0), 4);
        assert_eq!(s.produced_until(), 2_000_000);
    }
}
