//! Keyed, windowed aggregation on heap state, with event-time timers and lateness rules.
//!
//! One operator serves both engines; what differs between Spark and Flink is captured in
//! [`TimeSemantics`] and [`EmitPolicy`]:
//!
//! * A window `[start, end)` **fires** when the watermark reaches `end - fire_lag`. Spark's
//!   watermark is `max − delay` and a window is final once `end <= watermark` (`fire_lag = 0`);
//!   Flink's is `max − bound − 1` and a window fires when `watermark >= end − 1`, its max
//!   timestamp (`fire_lag = 1`). With the same bound both fire at the same event.
//! * A window is **late** — it accepts no more records and its state is gone — once the
//!   watermark reaches its fire point plus `allowed_lateness` (Flink's `isWindowLate`; Spark has
//!   no allowed lateness, its `LessThanOrEqual(window.end, watermark)` eviction predicate).
//!   A record all of whose windows are late is dropped and counted; the caller sends it to a
//!   side output. Between the fire point and the cleanup point (Flink allowed lateness) a record
//!   still lands and the window fires again at once (a late firing).
//! * Session windows merge per key when a record's `[t, t + gap)` overlaps an existing session
//!   (half-open intervals: a record exactly `gap` after the last starts a new session).
//!
//! Invariant: the watermark only moves forward; every window in state has a pending timer
//! (its fire point) until it fires, and is removed at its cleanup point unless the policy is
//! [`EmitPolicy::Complete`], which keeps all state as Spark's complete mode does.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::operators::aggregate::AggState;
use crate::operators::fxhash::{FxHashMap, FxHashSet};
use crate::operators::{Collector, Lineage, Row, WindowResult};
use crate::pipeline::{field_value, AggFunc, Aggregation, Field, WindowSpec};
use crate::time::{EventTime, Nanos};

/// Where a watermark puts a window's fire and cleanup points (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSemantics {
    /// A window fires when `watermark >= end - fire_lag`.
    pub fire_lag: i64,
    /// How long after firing a window still accepts records (ms).
    pub allowed_lateness: i64,
}

impl TimeSemantics {
    /// Spark Structured Streaming: final when `end <= watermark`, no allowed lateness.
    pub const SPARK: Self = Self {
        fire_lag: 0,
        allowed_lateness: 0,
    };

    /// Flink: fires at `end - 1` (the window's max timestamp), with `allowed_lateness` ms.
    pub fn flink(allowed_lateness: i64) -> Self {
        Self {
            fire_lag: 1,
            allowed_lateness,
        }
    }

    #[inline]
    fn fire_point(&self, end: EventTime) -> EventTime {
        end - self.fire_lag
    }

    #[inline]
    fn cleanup_point(&self, end: EventTime) -> EventTime {
        self.fire_point(end) + self.allowed_lateness
    }
}

/// When results leave the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitPolicy {
    /// Once, when the watermark passes the window (Spark append mode, Flink's event-time
    /// trigger); late firings re-emit within allowed lateness.
    OnWatermark,
    /// Each window changed since the last [`WindowedAggregation::emit_updates`] (Spark update
    /// mode); windows are evicted silently when the watermark passes them.
    OnUpdate,
    /// Every window on each [`WindowedAggregation::emit_all`] (Spark complete mode); nothing is
    /// evicted and no record is late.
    Complete,
}

#[derive(Clone, Debug, PartialEq)]
struct WindowState {
    end: EventTime,
    agg: AggState,
    last: Lineage,
    fired: bool,
    dirty: bool,
}

impl WindowState {
    fn new(end: EventTime) -> Self {
        Self {
            end,
            agg: AggState::default(),
            last: Lineage::default(),
            fired: false,
            dirty: false,
        }
    }

    #[inline]
    fn add(&mut self, func: AggFunc, value: i64, lineage: Lineage) {
        self.agg.add(func, value);
        if lineage.arrival >= self.last.arrival {
            self.last = lineage;
        }
        self.dirty = true;
    }
}

/// Counters a state operator reports (Spark's `stateOperators`, Flink's late-record metric).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounters {
    /// Records all of whose windows were late, dropped (and sent to the side output).
    pub late_dropped: u64,
    /// Windows created or changed since the counters were last taken.
    pub rows_updated: u64,
    /// Windows removed since the counters were last taken.
    pub rows_removed: u64,
}

/// The keyed windowed aggregation operator with heap state.
#[derive(Debug)]
pub struct WindowedAggregation {
    spec: Aggregation,
    semantics: TimeSemantics,
    policy: EmitPolicy,
    /// Tumbling and sliding windows, by (key, start).
    windows: FxHashMap<(i64, EventTime), WindowState>,
    /// Session windows per key, unordered.
    sessions: FxHashMap<i64, Vec<(EventTime, WindowState)>>,
    /// Pending fire and cleanup points: (watermark that triggers it, key, window start).
    timers: BinaryHeap<Reverse<(EventTime, i64, EventTime)>>,
    /// Windows changed since the last `emit_updates`, in change order.
    dirty: Vec<(i64, EventTime)>,
    watermark: EventTime,
    counters: StateCounters,
    /// Windows changed since the last [`WindowedAggregation::take_delta`], when tracking.
    changed: Option<FxHashSet<(i64, EventTime)>>,
    /// Windows removed since the last delta, when tracking.
    removed: Vec<(i64, EventTime)>,
    /// Session starts merged away by the current insert (reused, no allocation per record).
    merged_scratch: Vec<EventTime>,
}

/// One window of state as a checkpoint stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowEntry {
    /// Grouping key.
    pub key: i64,
    /// Window start.
    pub start: EventTime,
    state: WindowState,
}

/// What changed in an operator's state since the previous checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDelta {
    /// Windows created or changed, with their new contents.
    pub upserts: Vec<WindowEntry>,
    /// Windows removed: (key, start).
    pub deletes: Vec<(i64, EventTime)>,
}

impl StateDelta {
    /// Binary encoding: upsert count, entries, delete count, (key, start) pairs; little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.upserts.len() * 96 + self.deletes.len() * 16);
        out.extend_from_slice(&(self.upserts.len() as u64).to_le_bytes());
        for e in &self.upserts {
            e.encode(&mut out);
        }
        out.extend_from_slice(&(self.deletes.len() as u64).to_le_bytes());
        for (k, s) in &self.deletes {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// Reads a delta written by [`StateDelta::encode`]; `None` if the bytes are not one.
    pub fn decode(mut input: &[u8]) -> Option<Self> {
        let input = &mut input;
        let n = read_i64(input)? as usize;
        let mut upserts = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            upserts.push(WindowEntry::decode(input)?);
        }
        let m = read_i64(input)? as usize;
        let mut deletes = Vec::with_capacity(m.min(1 << 20));
        for _ in 0..m {
            deletes.push((read_i64(input)?, read_i64(input)?));
        }
        input.is_empty().then_some(Self { upserts, deletes })
    }
}

fn read_i64(input: &mut &[u8]) -> Option<i64> {
    let (head, rest) = input.split_first_chunk::<8>()?;
    *input = rest;
    Some(i64::from_le_bytes(*head))
}

impl WindowEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        let w = &self.state;
        let l = &w.last;
        for v in [
            self.key,
            self.start,
            w.end,
            l.arrival as i64,
            l.ingest as i64,
            l.handoff as i64,
            l.recv as i64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(w.fired) | (u8::from(w.dirty) << 1));
        w.agg.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let key = read_i64(input)?;
        let start = read_i64(input)?;
        let end = read_i64(input)?;
        let last = Lineage {
            arrival: read_i64(input)? as Nanos,
            ingest: read_i64(input)? as Nanos,
            handoff: read_i64(input)? as Nanos,
            recv: read_i64(input)? as Nanos,
        };
        let (flags, rest) = input.split_first()?;
        *input = rest;
        let agg = AggState::decode(input)?;
        Some(Self {
            key,
            start,
            state: WindowState {
                end,
                agg,
                last,
                fired: flags & 1 != 0,
                dirty: flags & 2 != 0,
            },
        })
    }
}

impl WindowedAggregation {
    /// An empty operator for `spec` under the given time semantics and emit policy.
    pub fn new(spec: Aggregation, semantics: TimeSemantics, policy: EmitPolicy) -> Self {
        Self {
            spec,
            semantics,
            policy,
            windows: FxHashMap::default(),
            sessions: FxHashMap::default(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            watermark: EventTime::MIN,
            counters: StateCounters::default(),
            changed: None,
            removed: Vec::new(),
            merged_scratch: Vec::new(),
        }
    }

    /// Starts tracking changes for incremental checkpoints ([`WindowedAggregation::take_delta`]).
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(Default::default);
    }

    #[inline]
    fn mark_changed(&mut self, key: i64, start: EventTime) {
        if let Some(c) = &mut self.changed {
            c.insert((key, start));
        }
    }

    fn mark_removed(&mut self, key: i64, start: EventTime) {
        if let Some(c) = &mut self.changed {
            c.remove(&(key, start));
            self.removed.push((key, start));
        }
    }

    /// The changes since the previous call (or since tracking started), in a deterministic order.
    pub fn take_delta(&mut self) -> StateDelta {
        let Some(changed) = self.changed.as_mut() else {
            return StateDelta::default();
        };
        let mut keys: Vec<(i64, EventTime)> = changed.drain().collect();
        keys.sort_unstable();
        let upserts = keys
            .into_iter()
            .filter_map(|(key, start)| {
                let state = self.window_ref(key, start)?.clone();
                Some(WindowEntry { key, start, state })
            })
            .collect();
        let mut deletes = std::mem::take(&mut self.removed);
        deletes.sort_unstable();
        deletes.dedup();
        StateDelta { upserts, deletes }
    }

    /// Every window in state, ordered by (key, start): a full snapshot.
    pub fn snapshot(&self) -> Vec<WindowEntry> {
        let mut all: Vec<WindowEntry> = self
            .windows
            .iter()
            .map(|(&(key, start), w)| WindowEntry {
                key,
                start,
                state: w.clone(),
            })
            .chain(self.sessions.iter().flat_map(|(&key, l)| {
                l.iter().map(move |(start, w)| WindowEntry {
                    key,
                    start: *start,
                    state: w.clone(),
                })
            }))
            .collect();
        all.sort_unstable_by_key(|e| (e.key, e.start));
        all
    }

    /// Rebuilds the state from checkpointed windows and the watermark the checkpoint ran
    /// with; timers are re-registered for every window not yet past its cleanup point.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = WindowEntry>, watermark: EventTime) {
        self.windows.clear();
        self.sessions.clear();
        self.timers.clear();
        self.dirty.clear();
        self.removed.clear();
        if let Some(c) = &mut self.changed {
            c.clear();
        }
        self.watermark = watermark;
        let is_session = matches!(self.spec.window, WindowSpec::Session { .. });
        for e in entries {
            let point = if e.state.fired {
                self.semantics.cleanup_point(e.state.end)
            } else {
                self.semantics.fire_point(e.state.end)
            };
            if self.policy != EmitPolicy::Complete || !e.state.fired {
                self.timers.push(Reverse((point, e.key, e.start)));
            }
            if e.state.dirty && self.policy == EmitPolicy::OnUpdate {
                self.dirty.push((e.key, e.start));
            }
            if is_session {
                self.sessions.entry(e.key).or_default().push((e.start, e.state));
            } else {
                self.windows.insert((e.key, e.start), e.state);
            }
        }
    }

    fn window_ref(&self, key: i64, start: EventTime) -> Option<&WindowState> {
        if matches!(self.spec.window, WindowSpec::Session { .. }) {
            self.sessions
                .get(&key)?
                .iter()
                .find(|(s, _)| *s == start)
                .map(|(_, w)| w)
        } else {
            self.windows.get(&(key, start))
        }
    }

    /// The grouping key of a row.
    #[inline]
    pub fn key_of(&self, row: &Row) -> i64 {
        field_value(&row.event, row.campaign, self.spec.key_by)
    }

    /// The operator's current watermark.
    pub fn watermark(&self) -> EventTime {
        self.watermark
    }

    /// Number of windows held in state.
    pub fn state_rows(&self) -> usize {
        self.windows.len() + self.sessions.values().map(Vec::len).sum::<usize>()
    }

    /// Approximate heap bytes of the state.
    pub fn state_bytes(&self) -> usize {
        let per_window = std::mem::size_of::<((i64, EventTime), WindowState)>() + 8;
        let extra: usize = self.windows.values().map(|w| w.agg.heap_bytes()).sum::<usize>()
            + self
                .sessions
                .values()
                .flatten()
                .map(|(_, w)| w.agg.heap_bytes())
                .sum::<usize>();
        self.state_rows() * per_window + extra + self.timers.len() * 24
    }

    /// Takes and resets the counters.
    pub fn take_counters(&mut self) -> StateCounters {
        std::mem::take(&mut self.counters)
    }

    fn late(&self, end: EventTime) -> bool {
        self.policy != EmitPolicy::Complete && self.watermark >= self.semantics.cleanup_point(end)
    }

    fn fired(&self, end: EventTime) -> bool {
        self.watermark >= self.semantics.fire_point(end)
    }

    /// Adds a row to all its windows. Returns `false` when every window was late and the row
    /// was dropped (the caller routes it to the side output). A late firing (Flink allowed
    /// lateness) emits into `out` at once, stamped `now`.
    #[inline]
    pub fn insert(&mut self, row: &Row, now: Nanos, out: &mut impl Collector<WindowResult>) -> bool {
        let key = self.key_of(row);
        let value = self
            .spec
            .field
            .map_or(0, |f: Field| field_value(&row.event, row.campaign, f));
        let t = row.event.event_time;
        let accepted = match self.spec.window {
            WindowSpec::Tumbling { size } => {
                let size = size.whole_ms();
                let start = t.div_euclid(size) * size;
                self.add_to_window(key, start, start + size, value, row.lineage, now, out)
            }
            WindowSpec::Sliding { size, slide } => {
                let (size, slide) = (size.whole_ms(), slide.whole_ms());
                let last_start = t.div_euclid(slide) * slide;
                let mut any = false;
                let mut start = last_start - size + slide;
                while start <= last_start {
                    any |= self.add_to_window(key, start, start + size, value, row.lineage, now, out);
                    start += slide;
                }
                any
            }
            WindowSpec::Session { gap } => self.add_to_session(key, t, gap.whole_ms(), value, row.lineage, now, out),
        };
        if !accepted {
            self.counters.late_dropped += 1;
        }
        accepted
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn add_to_window(
        &mut self,
        key: i64,
        start: EventTime,
        end: EventTime,
        value: i64,
        lineage: Lineage,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) -> bool {
        if self.late(end) {
            return false;
        }
        let func = self.spec.function;
        let fired = self.fired(end);
        let w = self.windows.entry((key, start)).or_insert_with(|| {
            self.timers.push(Reverse((self.semantics.fire_point(end), key, start)));
            WindowState::new(end)
        });
        let was_dirty = w.dirty;
        w.add(func, value, lineage);
        self.counters.rows_updated += 1;
        if let Some(c) = &mut self.changed {
            c.insert((key, start));
        }
        if self.policy == EmitPolicy::OnUpdate && !was_dirty {
            self.dirty.push((key, start));
        }
        if fired && self.policy == EmitPolicy::OnWatermark {
            // Late firing within allowed lateness: Flink's EventTimeTrigger fires at once.
            w.dirty = false;
            out.collect(result(key, start, w, func, now, true));
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn add_to_session(
        &mut self,
        key: i64,
        t: EventTime,
        gap: i64,
        value: i64,
        lineage: Lineage,
        now: Nanos,
        out: &mut impl Collector<WindowResult>,
    ) -> bool {
        let (mut start, mut end) = (t, t + gap);
        if self.late(end) {
            return false;
        }
        let func = self.spec.function;
        let list = self.sessions.entry(key).or_default();
        let mut merged = WindowState::new(end);
        let mut was_fired = false;
        let mut i = 0;
        while i < list.len() {
            let (s, w) = &list[i];
            if *s < end && t < w.end {
                let (s, w) = list.swap_remove(i);
                self.merged_scratch.push(s);
                start = start.min(s);
                end = end.max(w.end);
                was_fired |= w.fired;
                if w.last.arrival >= merged.last.arrival {
                    merged.last = w.last;
                }
                merged.agg.merge(w.agg);
            } else {
                i += 1;
            }
        }
        merged.end = end;
        merged.fired = was_fired;
        merged.add(func, value, lineage);
        self.counters.rows_updated += 1;
        let fired = self.watermark >= self.semantics.fire_point(end);
        if fired && self.policy == EmitPolicy::OnWatermark {
            merged.dirty = false;
            merged.fired = true;
            out.collect(result(key, start, &merged, func, now, was_fired));
        } else {
            self.timers.push(Reverse((self.semantics.fire_point(end), key, start)));
        }
        if self.policy == EmitPolicy::OnUpdate {
            self.dirty.push((key, start));
        }
        list.push((start, merged));
        if self.changed.is_some() {
            let merged_away = std::mem::take(&mut self.merged_scratch);
            for &s in merged_away.iter().filter(|&&s| s != start) {
                self.mark_removed(key, s);
            }
            self.mark_changed(key, start);
            self.merged_scratch = merged_away;
        }
        self.merged_scratch.clear();
        true
    }

    /// Advances the watermark to `watermark` (never backwards) and fires, in event-time order,
    /// every window it passes; state past its cleanup point is dropped.
    pub fn advance_watermark(&mut self, watermark: EventTime, now: Nanos, out: &mut impl Collector<WindowResult>) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let (func, semantics, policy) = (self.spec.function, self.semantics, self.policy);
        while let Some(&Reverse((point, key, start))) = self.timers.peek() {
            if point > watermark {
                break;
            }
            self.timers.pop();
            let is_session = matches!(self.spec.window, WindowSpec::Session { .. });
            let Some(w) = self.window_mut(key, start) else { continue };
            let (fire_point, cleanup_point) = (semantics.fire_point(w.end), semantics.cleanup_point(w.end));
            if fire_point > watermark {
                continue; // a session that grew after this timer was set; a newer timer exists
            }
            let newly_fired = !w.fired;
            if newly_fired {
                w.fired = true;
                if policy == EmitPolicy::OnWatermark {
                    w.dirty = false;
                    out.collect(result(key, start, w, func, now, false));
                }
            }
            if newly_fired {
                self.mark_changed(key, start);
            }
            if policy == EmitPolicy::Complete {
                continue;
            }
            let Some(w) = self.window_mut(key, start) else { continue };
            if cleanup_point <= watermark {
                if policy == EmitPolicy::OnUpdate && w.dirty {
                    // An update not yet forwarded leaves with its window, never silently.
                    w.dirty = false;
                    out.collect(result(key, start, w, func, now, true));
                }
                self.remove_window(key, start, is_session);
            } else if point < cleanup_point {
                self.timers.push(Reverse((cleanup_point, key, start)));
            }
        }
    }

    fn window_mut(&mut self, key: i64, start: EventTime) -> Option<&mut WindowState> {
        if matches!(self.spec.window, WindowSpec::Session { .. }) {
            self.sessions
                .get_mut(&key)?
                .iter_mut()
                .find(|(s, _)| *s == start)
                .map(|(_, w)| w)
        } else {
            self.windows.get_mut(&(key, start))
        }
    }

    fn remove_window(&mut self, key: i64, start: EventTime, is_session: bool) {
        self.mark_removed(key, start);
        if is_session {
            if let Some(list) = self.sessions.get_mut(&key) {
                list.retain(|(s, _)| *s != start);
                if list.is_empty() {
                    self.sessions.remove(&key);
                }
            }
        } else {
            self.windows.remove(&(key, start));
        }
        self.counters.rows_removed += 1;
    }

    /// Emits each window changed since the last call, in change order (update mode).
    pub fn emit_updates(&mut self, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let func = self.spec.function;
        let dirty = std::mem::take(&mut self.dirty);
        for &(key, start) in &dirty {
            if let Some(w) = self.window_mut(key, start) {
                if w.dirty {
                    w.dirty = false;
                    out.collect(result(key, start, w, func, now, true));
                }
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Emits every window in state, ordered by (key, start) (complete mode).
    pub fn emit_all(&mut self, now: Nanos, out: &mut impl Collector<WindowResult>) {
        let func = self.spec.function;
        let mut all: Vec<(i64, EventTime, &mut WindowState)> =
            self.windows.iter_mut().map(|(&(k, s), w)| (k, s, w)).collect();
        all.extend(
            self.sessions
                .iter_mut()
                .flat_map(|(&k, l)| l.iter_mut().map(move |(s, w)| (k, *s, w))),
        );
        all.sort_unstable_by_key(|(k, s, _)| (*k, *s));
        for (k, s, w) in all {
            w.dirty = false;
            out.collect(result(k, s, w, func, now, true));
        }
    }
}

fn result(key: i64, start: EventTime, w: &WindowState, func: AggFunc, now: Nanos, is_update: bool) -> WindowResult {
    WindowResult {
        key,
        start,
        end: w.end,
        count: w.agg.count,
        value: w.agg.value(func),
        origin: w.last,
        fired_at: now,
        handoff: now,
        recv: now,
        is_update,
    }
}
