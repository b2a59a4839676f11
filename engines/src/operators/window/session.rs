//! Session windows: a record at `t` opens `[t, t + gap)` and merges, per key, every session
//! it overlaps (half-open intervals: a record exactly `gap` after the last starts a new
//! session).
//!
//! The merge and its bookkeeping ([`merge_sessions`], [`WindowContext::settle_session`],
//! [`WindowContext::note_session_merge`]) are shared by both backends; [`HeapSessions`] keeps a
//! list per key on the heap, the LSM store one value per key.
//!
//! Invariants: a key's list holds disjoint sessions in the order of their last change (the
//! order decides merge tie-breaks, so both backends keep it); every session has a pending
//! timer (its fire point, then its cleanup point); a merged session has fired if any session
//! merged into it had.

use super::codec::{WindowEntry, WindowState};
use super::context::{SessionRecord, WindowContext};
use super::semantics::{result, EmitPolicy, Rules};
use super::store::Fate;
use crate::operators::fxhash::FxHashMap;
use crate::operators::{Collector, WindowResult};
use crate::pipeline::AggFunc;
use crate::time::{EventTime, Nanos};

/// Removes from `list` every session that `[t, t + gap)` overlaps (recording their starts in
/// `merged_away`) and returns the merged session's start and state (not yet holding `t`'s
/// record; `fired` if any merged session had fired).
#[inline]
pub(super) fn merge_sessions(
    list: &mut Vec<(EventTime, WindowState)>,
    merged_away: &mut Vec<EventTime>,
    func: AggFunc,
    t: EventTime,
    gap: i64,
) -> (EventTime, WindowState) {
    let (mut start, mut end) = (t, t + gap);
    let mut merged = WindowState::new(end);
    let mut was_fired = false;
    let mut i = 0;
    while i < list.len() {
        let (s, w) = &list[i];
        if *s < end && t < w.end {
            let (s, w) = list.swap_remove(i);
            merged_away.push(s);
            start = start.min(s);
            end = end.max(w.end);
            was_fired |= w.fired;
            merged.last.keep_latest(w.last);
            merged.agg.merge(func, w.agg);
        } else {
            i += 1;
        }
    }
    merged.end = end;
    merged.fired = was_fired;
    (start, merged)
}

impl WindowContext {
    /// Merges record `r` into `list` (its key's sessions, on either backend) and settles it:
    /// returns the session, to be pushed to the list, and its start.
    pub(super) fn merge_record(
        &mut self,
        list: &mut Vec<(EventTime, WindowState)>,
        r: SessionRecord,
        out: &mut impl Collector<WindowResult>,
    ) -> (EventTime, WindowState) {
        let (start, mut merged) = merge_sessions(list, &mut self.merged_scratch, self.rules.func, r.t, r.gap);
        self.settle_session(&r, start, &mut merged, out);
        (start, merged)
    }

    /// Record `r` added to session `start` of its key (just merged): counts the update, fires
    /// the session at once if the watermark has already passed its end (within allowed
    /// lateness) and sets its timer.
    fn settle_session(
        &mut self,
        r: &SessionRecord,
        start: EventTime,
        merged: &mut WindowState,
        out: &mut impl Collector<WindowResult>,
    ) {
        let Rules {
            semantics,
            policy,
            func,
            ..
        } = self.rules;
        let (key, end, was_fired) = (r.key, merged.end, merged.fired);
        merged.add(func, r.value, r.lineage);
        self.counters.rows_updated += 1;
        let fired = self.watermark >= semantics.fire_point(end);
        if fired && policy == EmitPolicy::OnWatermark {
            merged.dirty = false;
            merged.fired = true;
            out.collect(result(key, start, merged, func, r.now, was_fired));
            // Fired on arrival (within allowed lateness): it still leaves state at its cleanup point.
            self.set_timer(semantics.cleanup_point(end), key, start);
        } else {
            self.set_timer(semantics.fire_point(end), key, start);
        }
        if policy == EmitPolicy::OnUpdate {
            self.dirty.push((key, start));
        }
    }

    /// After a merge into session `start` of `key`: the changelog records the sessions merged
    /// away as removed and the merged one as changed.
    pub(super) fn note_session_merge(&mut self, key: i64, start: EventTime) {
        if self.changed.is_some() {
            let merged_away = std::mem::take(&mut self.merged_scratch);
            for &s in merged_away.iter().filter(|&&s| s != start) {
                self.mark_removed(key, s);
            }
            self.mark_changed(key, start);
            self.merged_scratch = merged_away;
        }
        self.merged_scratch.clear();
    }
}

/// Session windows on the heap: a list per key, unordered across keys.
#[derive(Debug, Default)]
pub(super) struct HeapSessions {
    lists: FxHashMap<i64, Vec<(EventTime, WindowState)>>,
}

impl HeapSessions {
    /// Adds record `r` to its key's sessions.
    pub(super) fn add(&mut self, cx: &mut WindowContext, r: SessionRecord, out: &mut impl Collector<WindowResult>) {
        let list = self.lists.entry(r.key).or_default();
        let (start, merged) = cx.merge_record(list, r, out);
        list.push((start, merged));
        cx.note_session_merge(r.key, start);
    }

    /// Applies `f` to session `start` of `key`, removing it if `f` says so.
    pub(super) fn with_session<R>(
        &mut self,
        key: i64,
        start: EventTime,
        f: impl FnOnce(&mut WindowState) -> (R, Fate),
    ) -> Option<R> {
        let list = self.lists.get_mut(&key)?;
        let w = list.iter_mut().find(|(s, _)| *s == start).map(|(_, w)| w)?;
        let (r, fate) = f(w);
        if fate == Fate::Removed {
            list.retain(|(s, _)| *s != start);
            if list.is_empty() {
                self.lists.remove(&key);
            }
        }
        Some(r)
    }

    /// Emits every session, ordered by (key, start), and marks each clean.
    pub(super) fn emit_all(&mut self, func: AggFunc, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let mut all: Vec<(i64, EventTime, &mut WindowState)> = self
            .lists
            .iter_mut()
            .flat_map(|(&k, l)| l.iter_mut().map(move |(s, w)| (k, *s, w)))
            .collect();
        all.sort_unstable_by_key(|(k, s, _)| (*k, *s));
        for (k, s, w) in all {
            w.dirty = false;
            out.collect(result(k, s, w, func, now, true));
        }
    }

    /// Every session, unordered.
    pub(super) fn entries(&self) -> impl Iterator<Item = WindowEntry> + '_ {
        self.lists.iter().flat_map(|(&key, l)| {
            l.iter().map(move |(start, w)| WindowEntry {
                key,
                start: *start,
                state: w.clone(),
            })
        })
    }

    /// Puts a restored session at the end of its key's list.
    pub(super) fn push(&mut self, e: WindowEntry) {
        self.lists.entry(e.key).or_default().push((e.start, e.state));
    }

    /// Drops every session.
    pub(super) fn clear(&mut self) {
        self.lists.clear();
    }

    /// Number of sessions.
    pub(super) fn len(&self) -> usize {
        self.lists.values().map(Vec::len).sum()
    }

    /// An estimate of the bytes the lists hold.
    pub(super) fn heap_bytes(&self) -> usize {
        let per_session = std::mem::size_of::<(EventTime, WindowState)>();
        self.lists
            .values()
            .map(|l| 8 + l.capacity() * per_session + l.iter().map(|(_, w)| w.agg.heap_bytes()).sum::<usize>())
            .sum()
    }
}
