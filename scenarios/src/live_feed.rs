//! The producer of a live run's source: the seeded generator advanced as the wall clock
//! reaches its schedule, into a [`LiveSource`] the engine reads (why, and what the source
//! keeps: `engines/src/live_source.rs`).
//!
//! The producer runs on a thread of its own, as a Kafka producer runs outside the job: every
//! [`TICK`] it generates what arrives up to [`HORIZON`] ahead of its clock, publishes it and
//! releases what the engine is past. Its clock starts before the engine's, so it is never
//! behind the engine's: an event is readable from its scheduled arrival on (when the producer
//! is late — a starved thread — the event is read late and its latency, counted from the
//! schedule, says so). Its cost (generating the offered rate) shares the machine's cores with
//! the engine, as the source system's would.
//!
//! A backlog (`workload.backlog = true`) and a trace are read whole, as before: they are data
//! at rest when the run starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use streamlab_engines::live_source::{LiveSource, SourceFootprint};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::Nanos;

use crate::workload::Workload;

/// How far ahead of its clock the producer generates (at 5 M events/s, 250 k events, 16 MB).
pub const HORIZON: Nanos = 50_000_000;

/// The most schedule the producer generates at once.
const STEP: Nanos = 20_000_000;

/// How often the producer wakes.
pub const TICK: Duration = Duration::from_millis(1);

/// A live run's source, generated while the engine runs.
pub struct LiveFeed {
    source: Arc<LiveSource>,
    log: SourceLog,
    duration: Nanos,
}

impl LiveFeed {
    /// The live source of `workload`, or `None` when it is read whole (a backlog, a trace).
    pub fn of(workload: &Workload) -> Option<Self> {
        let factory = workload.feed_factory()?;
        let source = Arc::new(LiveSource::new(workload.partitions, workload.duration, factory));
        let mut log = SourceLog::live(Arc::clone(&source));
        log.set_outages(workload.outages.clone());
        Some(Self {
            source,
            log,
            duration: workload.duration,
        })
    }

    /// Runs `engine` over the log while the producer fills it; returns what `engine` returned
    /// and the source's footprint over the run.
    pub fn run<T>(self, engine: impl FnOnce(&SourceLog) -> T) -> (T, SourceFootprint) {
        let stop = AtomicBool::new(false);
        let epoch = Instant::now();
        let mut feed = self.source.feed();
        let mut buf = Vec::new();
        // The first horizon is there before the engine starts.
        // Up to the horizon ahead of its clock or of a reader's that is ahead of it (a resumed
        // run), in steps of at most STEP so that a jump does not hold its events all at once.
        let mut until: Nanos = 0;
        let mut produce = |feed: &mut dyn streamlab_engines::live_source::EventFeed, buf: &mut Vec<_>| {
            let now = (epoch.elapsed().as_nanos() as Nanos).max(self.source.reader_now());
            let target = (now + HORIZON).min(self.duration);
            loop {
                until = target.min(until + STEP).max(until);
                feed.fill_until(until, buf);
                self.source.publish(buf, until, until >= self.duration);
                self.source.release();
                if until >= target {
                    break;
                }
            }
        };
        produce(feed.as_mut(), &mut buf);
        let out = std::thread::scope(|s| {
            s.spawn(|| {
                while !self.source.finished() && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    produce(feed.as_mut(), &mut buf);
                }
                // Past the schedule's end the engine's reads still release what it is past.
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK * 10);
                    self.source.release();
                }
            });
            let out = engine(&self.log);
            stop.store(true, Ordering::Relaxed);
            out
        });
        (out, self.source.footprint())
    }
}

/// What a reader of the summary needs to know about a live source: that it was generated as
/// the schedule reached it, and how much of the peak resident memory it held.
pub fn footprint_note(f: &SourceFootprint, peak_rss: Option<u64>) -> String {
    let mib = |events: u64| SourceFootprint::bytes(events) as f64 / (1 << 20) as f64;
    let share = |events: u64| {
        peak_rss.map_or(String::new(), |rss| {
            format!(
                ", {:.1} % of the peak resident memory",
                100.0 * SourceFootprint::bytes(events) as f64 / rss.max(1) as f64
            )
        })
    };
    let mut note = format!(
        "live source: {} events generated as the schedule reached them (not held whole); at most {} events \
         held ({:.1} MiB{}), of them at most {} events from the engine's latest read on (the backlog: \
         scheduled, not yet read, and the range being read; {:.1} MiB{})",
        f.generated,
        f.peak_held_events,
        mib(f.peak_held_events),
        share(f.peak_held_events),
        f.peak_backlog_events,
        mib(f.peak_backlog_events),
        share(f.peak_backlog_events),
    );
    if f.regenerated > 0 {
        note.push_str(&format!(
            "; {} events regenerated from the seed for rewinds",
            f.regenerated
        ));
    }
    note
}
