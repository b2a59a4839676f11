//! The stream–stream join: two inputs, each a view of the log, matched on a key under a time
//! condition, with each side's rows kept in state until the watermark says no match can come.
//!
//! The three conditions of [`JoinKind`]: an **interval** join matches `l` and `r` when
//! `l.time + lower <= r.time <= l.time + upper` (Flink's `intervalJoin().between(lower, upper)`,
//! Spark's join with a time-range condition); a **window** join when both fall in one window
//! (one result per window they share); an **unbounded** join on the key alone (Nexmark q3).
//!
//! State and cleanup, as both engines do it: a left row is kept until the watermark closes
//! `l.time + upper` (no right row that could match can still arrive), a right row until it
//! closes `r.time - lower`; a window join's row until its last window closes; an unbounded
//! join's forever (its size is reported). A row found late on arrival (its time already
//! closed) is dropped and counted, as Flink's join drops late elements and Spark's watermark
//! filter does.
//!
//! Where Spark and Flink differ is *when* results leave, and that is the driver's part: an outer
//! row leaves when its row expires, which happens when the operator is told of the watermark —
//! Flink on the timer as the watermark arrives, Spark at the next batch, whose watermark is the
//! previous batch's maximum (one trigger late). The one rule the operator holds is
//! [`JoinRules::window_results_on_close`]: Flink's window join emits a window's pairs when the
//! window fires; Spark's join on the window column emits each pair as it is matched.
//!
//! Invariant: every pair of rows that satisfies the condition and is not late is emitted exactly
//! once (once per shared window); an outer row is emitted exactly when it expires unmatched.

use std::collections::BTreeMap;

use crate::event::Event;
use crate::operators::graph::closed;
use crate::operators::graph::codec::{Reader, StageTag, Writer};
use crate::operators::graph::keyed_lists::{KeyedLists, ListItem};
use crate::operators::window::StateBackendKind;
use crate::operators::{Output, RecordResult, Row, Shape};
use crate::pipeline::{JoinKind, JoinSpec, JoinType, Side, WindowSpec};
use crate::time::{EventTime, Nanos};

/// The engine-specific rule of a join (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinRules {
    /// A window join holds a window's pairs until the window fires (Flink).
    pub window_results_on_close: bool,
    /// `fire_lag` of the engine's watermark (see [`crate::operators::graph::closed`]).
    pub fire_lag: i64,
}

#[derive(Clone, Copy, Debug)]
struct Stored {
    row: Row,
    matched: bool,
}

impl ListItem for Stored {
    fn write(&self, w: &mut Writer<'_>) {
        w.row(&self.row);
        w.u8(u8::from(self.matched));
    }

    fn read(r: &mut Reader<'_>) -> Option<Self> {
        let row = r.row()?;
        let matched = r.u8()? != 0;
        Some(Stored { row, matched })
    }
}

/// One side's rows by key, on the heap or in the LSM store (see `keyed_lists.rs`).
type SideState = KeyedLists<Stored>;

/// A stream–stream join operator instance (one per keyed subtask or shuffle partition).
#[derive(Debug)]
pub struct StreamJoin {
    spec: JoinSpec,
    rules: JoinRules,
    left: SideState,
    right: SideState,
    rows: usize,
    watermark: EventTime,
    /// Window join under `window_results_on_close`: pairs by window end, until it fires.
    held: BTreeMap<EventTime, Vec<RecordResult>>,
    /// Cleanup timers: by the event time whose closing expires them, the keys of rows to look
    /// at (Flink's event-time timers; each row registers one).
    timers: BTreeMap<EventTime, Vec<(Side, i64)>>,
    /// Rows dropped as late.
    pub late_dropped: u64,
}

impl StreamJoin {
    /// An empty join for `spec` under `rules`.
    pub fn new(spec: &JoinSpec, rules: JoinRules) -> Self {
        Self {
            spec: spec.clone(),
            rules,
            left: SideState::Heap(Default::default()),
            right: SideState::Heap(Default::default()),
            rows: 0,
            watermark: EventTime::MIN,
            held: BTreeMap::new(),
            timers: BTreeMap::new(),
            late_dropped: 0,
        }
    }

    /// The same join with both sides' rows on `kind` (the held window pairs and the timers
    /// stay on the heap); fails when an LSM store cannot be opened.
    pub fn with_backend(mut self, kind: StateBackendKind) -> crate::state::Result<Self> {
        for side in [&mut self.left, &mut self.right] {
            let mut moved = SideState::new(kind)?;
            moved.replace(side.sorted());
            *side = moved;
        }
        Ok(self)
    }

    /// Rows in state (both sides) and pairs held for their window.
    pub fn state_rows(&self) -> usize {
        self.rows + self.held.values().map(Vec::len).sum::<usize>()
    }

    /// Takes one row at `now`: matches it against the other side, keeps it, and emits pairs.
    pub fn on_row(&mut self, row: Row, now: Nanos, out: &mut Vec<Output>) {
        let Some((side, key)) = self.spec.key_of(&row.event) else {
            return;
        };
        let t = row.event.event_time;
        if closed(self.watermark, t, self.rules.fire_lag) {
            self.late_dropped += 1;
            return;
        }
        let (mine, other) = match side {
            Side::Left => (&mut self.left, &mut self.right),
            Side::Right => (&mut self.right, &mut self.left),
        };
        let mut emit = Emit {
            spec: &self.spec,
            rules: self.rules,
            now,
            out,
            held: &mut self.held,
        };
        let matched = other.update(key, false, |candidates| {
            let (mut matched, mut changed) = (false, false);
            for c in candidates.iter_mut() {
                let (l, r) = match side {
                    Side::Left => (&row, &c.row),
                    Side::Right => (&c.row, &row),
                };
                if emit.matches(l, r) {
                    changed |= !c.matched;
                    c.matched = true;
                    matched = true;
                }
            }
            (matched, changed)
        });
        let matched = matched.unwrap_or(false);
        mine.update(key, true, |list| {
            list.push(Stored { row, matched });
            ((), true)
        });
        self.rows += 1;
        if let Some(bound) = expiry(&self.spec, side, t) {
            self.timers.entry(bound).or_default().push((side, key));
        }
    }

    /// The watermark advanced to `watermark` at `now`: held window pairs whose window fired
    /// leave, and rows that can no longer match leave the state (outer ones as results).
    pub fn on_watermark(&mut self, watermark: EventTime, now: Nanos, out: &mut Vec<Output>) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let lag = self.rules.fire_lag;
        while let Some((&end, _)) = self.held.first_key_value() {
            if !closed(watermark, end - 1, lag) {
                break;
            }
            let (_, pairs) = self.held.pop_first().expect("non-empty");
            out.extend(pairs.into_iter().map(|mut p| {
                p.fired_at = now;
                Output::Record(p)
            }));
        }
        let emit_left = self.spec.join_type == JoinType::LeftOuter;
        let emit_right = self.spec.join_type == JoinType::RightOuter;
        while let Some((&bound, _)) = self.timers.first_key_value() {
            if !closed(watermark, bound, lag) {
                break;
            }
            let (_, due) = self.timers.pop_first().expect("non-empty");
            for (side, key) in due {
                let (state, emit) = match side {
                    Side::Left => (&mut self.left, emit_left),
                    Side::Right => (&mut self.right, emit_right),
                };
                let spec = &self.spec;
                let rows = &mut self.rows;
                // Absent: expired with an earlier timer of the same key.
                state.update(key, false, |list| {
                    let before = list.len();
                    list.retain(|s| {
                        let gone =
                            expiry(spec, side, s.row.event.event_time).is_some_and(|b| closed(watermark, b, lag));
                        if gone {
                            *rows -= 1;
                            if emit && !s.matched {
                                out.push(Output::Record(unmatched(side, &s.row, now)));
                            }
                        }
                        !gone
                    });
                    ((), list.len() != before)
                });
            }
        }
        self.left.after_watermark();
        self.right.after_watermark();
    }
}

impl StreamJoin {
    /// Appends the join's state (see `codec.rs`): `watermark`, then each side's keys in key
    /// order with their rows and matched flags, the held window pairs, and the cleanup timers.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.header(StageTag::Join, self.watermark);
        for side in [&self.left, &self.right] {
            let lists = side.sorted();
            w.len(lists.len());
            for (k, list) in &lists {
                w.i64(*k);
                w.len(list.len());
                list.iter().for_each(|s| s.write(&mut w));
            }
        }
        w.len(self.held.len());
        for (end, pairs) in &self.held {
            w.i64(*end);
            w.len(pairs.len());
            pairs.iter().for_each(|p| w.record(p));
        }
        w.len(self.timers.len());
        for (bound, due) in &self.timers {
            w.i64(*bound);
            w.len(due.len());
            for (side, key) in due {
                w.u8(u8::from(*side == Side::Right));
                w.i64(*key);
            }
        }
    }

    /// Replaces the state with what [`StreamJoin::encode`] wrote; `None` (state unchanged) if
    /// `bytes` are not a join's state.
    pub(super) fn decode(&mut self, bytes: &[u8]) -> Option<()> {
        let mut r = Reader(bytes);
        let watermark = r.header(StageTag::Join)?;
        let mut rows = 0;
        let mut read_side = |r: &mut Reader| -> Option<Vec<(i64, Vec<Stored>)>> {
            let mut side = Vec::new();
            for _ in 0..r.len()? {
                let key = r.i64()?;
                let n = r.len()?;
                let list = (0..n).map(|_| Stored::read(r)).collect::<Option<Vec<_>>>()?;
                rows += n;
                side.push((key, list));
            }
            Some(side)
        };
        let left = read_side(&mut r)?;
        let right = read_side(&mut r)?;
        let mut held = BTreeMap::new();
        for _ in 0..r.len()? {
            let end = r.i64()?;
            let pairs = (0..r.len()?).map(|_| r.record()).collect::<Option<Vec<_>>>()?;
            held.insert(end, pairs);
        }
        let mut timers = BTreeMap::new();
        for _ in 0..r.len()? {
            let bound = r.i64()?;
            let n = r.len()?;
            let mut due = Vec::with_capacity(n);
            for _ in 0..n {
                let side = if r.u8()? == 0 { Side::Left } else { Side::Right };
                due.push((side, r.i64()?));
            }
            timers.insert(bound, due);
        }
        r.done()?;
        self.left.replace(left);
        self.right.replace(right);
        self.rows = rows;
        self.held = held;
        self.timers = timers;
        self.watermark = watermark;
        Some(())
    }
}

/// The event time whose closing expires a row of `side` at `t`: after it, no row of the other
/// side that could match is still to come (`None`: an unbounded join keeps it forever).
fn expiry(spec: &JoinSpec, side: Side, t: EventTime) -> Option<EventTime> {
    let (lower, upper) = spec.bounds();
    match spec.kind {
        JoinKind::Unbounded => None,
        JoinKind::Interval => Some(match side {
            Side::Left => t + upper,
            Side::Right => t - lower,
        }),
        JoinKind::Window => Some(last_window_end(spec.window.expect("validated"), t) - 1),
    }
}

/// Where the results of two rows meeting go.
struct Emit<'a> {
    spec: &'a JoinSpec,
    rules: JoinRules,
    now: Nanos,
    out: &'a mut Vec<Output>,
    held: &'a mut BTreeMap<EventTime, Vec<RecordResult>>,
}

impl Emit<'_> {
    /// Emits the results of `l` and `r` meeting (none, one, or one per shared window); true
    /// when they matched.
    fn matches(&mut self, l: &Row, r: &Row) -> bool {
        let (lt, rt) = (l.event.event_time, r.event.event_time);
        match self.spec.kind {
            JoinKind::Unbounded => {
                self.out.push(Output::Record(pair(l, r, (0, 0), self.now)));
                true
            }
            JoinKind::Interval => {
                let (lower, upper) = self.spec.bounds();
                let hit = lt + lower <= rt && rt <= lt + upper;
                if hit {
                    self.out.push(Output::Record(pair(l, r, (0, 0), self.now)));
                }
                hit
            }
            JoinKind::Window => {
                let mut hit = false;
                for (start, end) in shared_windows(self.spec.window.expect("validated"), lt, rt) {
                    hit = true;
                    let p = pair(l, r, (start, end), self.now);
                    if self.rules.window_results_on_close {
                        self.held.entry(end).or_default().push(p);
                    } else {
                        self.out.push(Output::Record(p));
                    }
                }
                hit
            }
        }
    }
}

/// The windows holding both `a` and `b`.
pub fn shared_windows(w: WindowSpec, a: EventTime, b: EventTime) -> impl Iterator<Item = (EventTime, EventTime)> {
    let (size, slide) = match w {
        WindowSpec::Tumbling { size } => (size.whole_ms(), size.whole_ms()),
        WindowSpec::Sliding { size, slide } => (size.whole_ms(), slide.whole_ms()),
        WindowSpec::Session { .. } => (1, 1),
    };
    let (lo, hi) = (a.min(b), a.max(b));
    // Starts s on the slide grid with s <= lo and hi < s + size.
    let first = (hi - size).div_euclid(slide) + 1;
    let last = lo.div_euclid(slide);
    (first..=last).map(move |k| (k * slide, k * slide + size))
}

/// The end of the last window holding `t`.
fn last_window_end(w: WindowSpec, t: EventTime) -> EventTime {
    match w {
        WindowSpec::Tumbling { size } => t.div_euclid(size.whole_ms()) * size.whole_ms() + size.whole_ms(),
        WindowSpec::Sliding { size, slide } => t.div_euclid(slide.whole_ms()) * slide.whole_ms() + size.whole_ms(),
        WindowSpec::Session { .. } => t + 1,
    }
}

fn later(a: &Row, b: &Row) -> crate::operators::Lineage {
    let mut o = a.lineage;
    o.keep_latest(b.lineage);
    o
}

fn pair(l: &Row, r: &Row, (start, end): (EventTime, EventTime), now: Nanos) -> RecordResult {
    RecordResult {
        shape: Shape::Pair,
        left: l.event,
        right: r.event,
        start,
        end,
        origin: later(l, r),
        fired_at: now,
        handoff: 0,
        recv: 0,
    }
}

fn unmatched(side: Side, row: &Row, now: Nanos) -> RecordResult {
    let blank = Event {
        seq: u64::MAX,
        ..row.event
    };
    let (shape, left, right) = match side {
        Side::Left => (Shape::LeftOnly, row.event, blank),
        Side::Right => (Shape::RightOnly, blank, row.event),
    };
    RecordResult {
        shape,
        left,
        right,
        start: 0,
        end: 0,
        origin: row.lineage,
        fired_at: now,
        handoff: 0,
        recv: 0,
    }
}
