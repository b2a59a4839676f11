//! The four fields of an event that a columnar scan reads for every event — the kind, the ad,
//! the event time and the arrival — as columns: from a source log that holds them beside its
//! events ([`crate::source::SourceLog::hold_scan_columns`]), or copied out of a chunk of events
//! ([`ChunkColumns`]) when it does not.
//!
//! **Why.** A scan of the YSB-like pipeline reads 21 of an event's 64 bytes, but a load brings
//! in the whole cache line: the map task streamed 64 bytes per event from memory and was bound
//! by it (the profile: most of the task in the first load of each event). Held as columns, the
//! same scan streams 21 bytes per event; the 64-byte events are read only by a pass that needs
//! another field (a `where` predicate, a key or value other than the campaign).
//!
//! Invariants: entry `i` of every column is the field of event `i` of the slice the columns
//! stand beside (`kinds[i] == events[i].kind.index()`, and so on), and all four have its
//! length; [`ChunkColumns`] is a fixed array reused from chunk to chunk (nothing is allocated
//! per chunk).

use crate::event::Event;
use crate::operators::columnar::CHUNK;
use crate::time::{EventTime, Nanos};

/// The scanned fields of a run of events, a column each (entry `i`: event `i`).
#[derive(Clone, Copy, Debug)]
pub struct EventColumns<'a> {
    /// Each event's [`crate::event::EventKind::index`].
    pub kinds: &'a [u8],
    /// Each event's ad (the lookup join's key).
    pub ads: &'a [u32],
    /// Each event's event time.
    pub event_times: &'a [EventTime],
    /// Each event's arrival.
    pub arrivals: &'a [Nanos],
}

impl<'a> EventColumns<'a> {
    /// Number of events.
    #[inline]
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// True when there is no event.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Events `from..to`.
    #[inline]
    pub fn range(&self, from: usize, to: usize) -> EventColumns<'a> {
        EventColumns {
            kinds: &self.kinds[from..to],
            ads: &self.ads[from..to],
            event_times: &self.event_times[from..to],
            arrivals: &self.arrivals[from..to],
        }
    }
}

/// The scanned fields of one chunk of events, copied out of the events (a log that holds no
/// columns: a live source, a simulated segment).
#[derive(Debug)]
pub struct ChunkColumns {
    kinds: Box<[u8; CHUNK]>,
    ads: Box<[u32; CHUNK]>,
    event_times: Box<[EventTime; CHUNK]>,
    arrivals: Box<[Nanos; CHUNK]>,
    /// What reading the next chunk early returned (kept so the reads are not optimized away).
    touched: u8,
}

impl Default for ChunkColumns {
    fn default() -> Self {
        Self {
            kinds: Box::new([0; CHUNK]),
            ads: Box::new([0; CHUNK]),
            event_times: Box::new([0; CHUNK]),
            arrivals: Box::new([0; CHUNK]),
            touched: 0,
        }
    }
}

impl ChunkColumns {
    /// Copies the scanned fields of `events` (at most [`CHUNK`]); reads the kind of each event
    /// of `ahead` (the next chunk, possibly empty) on the way, so its cache lines are on their
    /// way while this chunk's passes run.
    #[inline]
    pub fn fill(&mut self, events: &[Event], ahead: &[Event]) -> EventColumns<'_> {
        let n = events.len().min(CHUNK);
        let mut touched = self.touched;
        for (i, e) in events[..n].iter().enumerate() {
            self.kinds[i] = e.kind.index() as u8;
            self.ads[i] = e.ad;
            self.event_times[i] = e.event_time;
            self.arrivals[i] = e.arrival;
            if let Some(a) = ahead.get(i) {
                touched ^= a.kind.index() as u8;
            }
        }
        self.touched = touched;
        EventColumns {
            kinds: &self.kinds[..n],
            ads: &self.ads[..n],
            event_times: &self.event_times[..n],
            arrivals: &self.arrivals[..n],
        }
    }

    /// What the early reads folded to (hand it to [`std::hint::black_box`] once, at the end).
    pub fn touched(&self) -> u8 {
        self.touched
    }
}

/// The scanned fields of a source partition's events, held beside them (the arrivals are the
/// log's own column: [`HeldColumns::range`] takes them).
#[derive(Clone, Debug, Default)]
pub struct HeldColumns {
    kinds: Vec<u8>,
    ads: Vec<u32>,
    event_times: Vec<EventTime>,
}

impl HeldColumns {
    /// The columns of `events`.
    pub fn of(events: &[Event]) -> Self {
        let mut c = Self {
            kinds: Vec::with_capacity(events.len()),
            ads: Vec::with_capacity(events.len()),
            event_times: Vec::with_capacity(events.len()),
        };
        for e in events {
            c.push(e);
        }
        c
    }

    /// Appends the fields of `e`.
    #[inline]
    pub fn push(&mut self, e: &Event) {
        self.kinds.push(e.kind.index() as u8);
        self.ads.push(e.ad);
        self.event_times.push(e.event_time);
    }

    /// Drops the first `n` entries.
    pub fn drain_front(&mut self, n: usize) {
        self.kinds.drain(..n);
        self.ads.drain(..n);
        self.event_times.drain(..n);
    }

    /// Entries `from..to`, with `arrivals` (the log's column over the same entries).
    #[inline]
    pub fn range<'a>(&'a self, from: usize, to: usize, arrivals: &'a [Nanos]) -> EventColumns<'a> {
        EventColumns {
            kinds: &self.kinds[from..to],
            ads: &self.ads[from..to],
            event_times: &self.event_times[from..to],
            arrivals: &arrivals[from..to],
        }
    }

    /// Bytes held per event.
    pub const BYTES_PER_EVENT: usize =
        std::mem::size_of::<u8>() + std::mem::size_of::<u32>() + std::mem::size_of::<EventTime>();
}
