//! The four fields of an event that a columnar scan reads for every event — the kind, the ad,
//! the event time and the arrival — as columns, held by a source log beside its events
//! ([`crate::source::SourceLog::hold_scan_columns`]). A log that holds none (a live source, a
//! simulated segment) is scanned from its events in place: copying a chunk's fields into
//! columns first cost the simulated micro-batch engine 18 % where its events are in the cache.
//!
//! **Why.** A scan of the YSB-like pipeline reads 21 of an event's 64 bytes, but a load brings
//! in the whole cache line: the map task streamed 64 bytes per event from memory and was bound
//! by it (the profile: most of the task in the first load of each event). Held as columns, the
//! same scan streams 21 bytes per event; the 64-byte events are read only by a pass that needs
//! another field (a `where` predicate, a key or value other than the campaign).
//!
//! Invariants: entry `i` of every column is the field of event `i` of the slice the columns
//! stand beside (`kinds[i] == events[i].kind.index()`, and so on), and all four have its
//! length.

use crate::event::Event;
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
