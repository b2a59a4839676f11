//! A stateless query's map task a column at a time: which of its events reach the sink, and
//! the event-time statistics of all of them.
//!
//! The task's output is a selection (each selected event's offset and the campaign it
//! joined); the rows are materialized where the sink delivers them. Row at a time, the task
//! read each 64-byte event for its kind and ad; over the columns a log holds
//! ([`crate::source::SourceLog::scan_columns`]) it reads 13 bytes per event (kind, ad, event
//! time), and the events themselves only for a `where` predicate.
//!
//! Invariants: the selection is exactly the events [`StatelessChain::select`] admits, in
//! offset order, each with the campaign it returns; the statistics are those of every event
//! (selected or not).

use crate::event::Event;
use crate::operators::columnar::chain::ChunkChain;
use crate::operators::columnar::columns::EventColumns;
use crate::operators::columnar::scan::EventTimes;
use crate::operators::columnar::CHUNK;
use crate::operators::stateless::{ChainColumns, StatelessChain};

/// One stateless map task's selection over columns.
#[derive(Debug)]
pub struct ColumnarSelect<'a> {
    chain: ChainColumns<'a>,
    selected: ChunkChain,
    times: EventTimes,
}

impl<'a> ColumnarSelect<'a> {
    /// A selection by `chain`; `None` when the chain does not run a column at a time
    /// ([`StatelessChain::columns`]).
    pub fn new(chain: &'a StatelessChain) -> Option<Self> {
        Some(Self {
            chain: chain.columns()?,
            selected: ChunkChain::default(),
            times: EventTimes::default(),
        })
    }

    /// Calls `f(offset, campaign)` for each selected event of `events` (whose scanned fields
    /// are `cols`, entry for entry), in order: `offset` its position in `events`.
    #[inline]
    pub fn select(&mut self, events: &[Event], cols: &EventColumns<'_>, mut f: impl FnMut(u32, u32)) {
        assert_eq!(events.len(), cols.len(), "columns stand beside their events");
        let mut from = 0;
        while from < events.len() {
            let to = (from + CHUNK).min(events.len());
            let chunk = cols.range(from, to);
            self.times.add(chunk.event_times);
            self.selected.select_columns(&self.chain, &events[from..to], &chunk);
            for (&row, &campaign) in self.selected.rows().iter().zip(self.selected.campaigns()) {
                f(from as u32 + row, campaign);
            }
            from = to;
        }
    }

    /// The event-time statistics of every event selected from.
    pub fn times(&self) -> EventTimes {
        self.times
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimension::CampaignTable;
    use crate::event::EventKind;
    use crate::operators::columnar::scan::tests::{events, page_at_least};
    use crate::operators::columnar::HeldColumns;
    use crate::pipeline::PipelineSpec;

    #[test]
    fn selects_what_the_row_at_a_time_chain_selects() {
        let events = events(3 * CHUNK + 5);
        let held = HeldColumns::of(&events);
        let arrivals: Vec<_> = events.iter().map(|e| e.arrival).collect();
        let cols = held.range(0, events.len(), &arrivals);
        let table = CampaignTable::new((0..1_000).map(|ad| ad / 10).collect());
        for (kinds, join, predicates) in [
            (Some(vec![EventKind::View]), true, vec![]),
            (None, false, vec![]),
            (
                Some(vec![EventKind::View, EventKind::Purchase]),
                true,
                vec![page_at_least(10)],
            ),
        ] {
            let pipeline = PipelineSpec {
                filter_kinds: kinds,
                lookup_join: join,
                predicates,
                ..Default::default()
            };
            let chain = StatelessChain::new(&pipeline, &table);
            let want: Vec<(u32, u32)> = (events.iter().enumerate())
                .filter_map(|(i, e)| chain.select(e).map(|c| (i as u32, c)))
                .collect();
            let mut select = ColumnarSelect::new(&chain).unwrap();
            let mut got = Vec::new();
            select.select(&events, &cols, |o, c| got.push((o, c)));
            assert_eq!(got, want);
            assert!(!got.is_empty());
            let t = select.times();
            assert_eq!(t.count, events.len() as u64);
            assert_eq!(Some(t.min), events.iter().map(|e| e.event_time).min());
            assert_eq!(Some(t.max), events.iter().map(|e| e.event_time).max());
            assert_eq!(t.sum, events.iter().map(|e| e.event_time as i128).sum::<i128>());
        }
    }
}
