//! Time semantics of the window operator: where a watermark puts a window's fire and cleanup
//! points, which records are late, and what a due timer does — the rules in which Spark and
//! Flink differ, written once for every backend.
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
//! * [`EmitPolicy`] says when results leave: on the watermark (Spark append mode, Flink's
//!   event-time trigger), on update (Spark update mode), or all of them each time (Spark
//!   complete mode, which never evicts and has no late records).
//!
//! Invariant: a window is fired exactly when the watermark has passed its fire point, and
//! leaves the state at its cleanup point (never in complete mode), in update mode with its
//! pending update emitted, never silently.

use super::codec::WindowState;
use crate::operators::{Collector, WindowResult};
use crate::pipeline::AggFunc;
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

    /// The watermark at which a window ending at `end` fires.
    #[inline]
    pub(super) fn fire_point(&self, end: EventTime) -> EventTime {
        end - self.fire_lag
    }

    /// The watermark at which a window ending at `end` is late and leaves the state.
    #[inline]
    pub(super) fn cleanup_point(&self, end: EventTime) -> EventTime {
        self.fire_point(end) + self.allowed_lateness
    }

    /// The TTL of a tumbling or sliding window in the LSM store: its cleanup point, where the
    /// operator's timers delete it anyway; none in complete mode, which never evicts.
    pub(super) fn window_expiry(&self, policy: EmitPolicy, end: EventTime) -> Option<EventTime> {
        (policy != EmitPolicy::Complete).then(|| self.cleanup_point(end))
    }

    /// The TTL of a key's session list: the latest cleanup point in it. Only in update mode:
    /// with the event-time trigger a session that fires as it is created gets no timer and
    /// stays in state (heap behaviour, kept identical), so its list must not expire.
    pub(super) fn sessions_expiry(&self, policy: EmitPolicy, list: &[(EventTime, WindowState)]) -> Option<EventTime> {
        if policy != EmitPolicy::OnUpdate {
            return None;
        }
        list.iter().map(|(_, w)| self.cleanup_point(w.end)).max()
    }
}

/// When results leave the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitPolicy {
    /// Once, when the watermark passes the window (Spark append mode, Flink's event-time
    /// trigger); late firings re-emit within allowed lateness.
    OnWatermark,
    /// Each window changed since the last
    /// [`WindowedAggregation::emit_updates`](super::WindowedAggregation::emit_updates) (Spark
    /// update mode); windows are evicted silently when the watermark passes them.
    OnUpdate,
    /// Every window on each [`WindowedAggregation::emit_all`](super::WindowedAggregation::emit_all)
    /// (Spark complete mode); nothing is evicted and no record is late.
    Complete,
}

/// The operator's fixed rules, as every backend needs them: time semantics, emit policy, the
/// aggregate function, and whether windows are sessions.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rules {
    /// Fire and cleanup points.
    pub(super) semantics: TimeSemantics,
    /// When results leave.
    pub(super) policy: EmitPolicy,
    /// The aggregate function.
    pub(super) func: AggFunc,
    /// Session windows (merged per key) rather than tumbling or sliding ones.
    pub(super) session: bool,
}

impl Rules {
    /// The TTL of a tumbling or sliding window in the LSM store.
    #[inline]
    pub(super) fn window_expiry(&self, end: EventTime) -> Option<EventTime> {
        self.semantics.window_expiry(self.policy, end)
    }

    /// The TTL of a key's session list in the LSM store.
    #[inline]
    pub(super) fn sessions_expiry(&self, list: &[(EventTime, WindowState)]) -> Option<EventTime> {
        self.semantics.sessions_expiry(self.policy, list)
    }
}

/// What a due timer needs to know: the rules, the watermark it runs under, the time it is.
#[derive(Clone, Copy)]
pub(super) struct Firing {
    pub(super) rules: Rules,
    pub(super) watermark: EventTime,
    pub(super) now: Nanos,
}

/// What a due timer did to its window.
#[derive(Clone, Copy)]
pub(super) struct TimerStep {
    /// The window fired for the first time.
    pub(super) newly_fired: bool,
    /// What becomes of the window.
    pub(super) then: AfterTimer,
}

/// Where a window goes after its timer ran.
#[derive(Clone, Copy)]
pub(super) enum AfterTimer {
    /// It leaves the state (its cleanup point).
    Remove,
    /// It stays for good (complete mode keeps fired windows).
    Keep,
    /// It stays until its cleanup timer at this point, to be set.
    KeepUntil(EventTime),
}

impl Firing {
    /// Runs the timer at `point` of window `(key, start)`: fires it if the watermark passed its
    /// fire point and it has not fired; removes it at its cleanup point (with its pending
    /// update in update mode, never silently), else asks for its cleanup timer. `None` for a
    /// stale timer (a session that grew after it was set; a newer timer exists).
    pub(super) fn on_timer(
        &self,
        point: EventTime,
        key: i64,
        start: EventTime,
        w: &mut WindowState,
        out: &mut impl Collector<WindowResult>,
    ) -> Option<TimerStep> {
        let Rules {
            semantics,
            policy,
            func,
            ..
        } = self.rules;
        let (fire_point, cleanup_point) = (semantics.fire_point(w.end), semantics.cleanup_point(w.end));
        if fire_point > self.watermark {
            return None;
        }
        let newly_fired = !w.fired;
        if newly_fired {
            w.fired = true;
            if policy == EmitPolicy::OnWatermark {
                w.dirty = false;
                out.collect(result(key, start, w, func, self.now, false));
            }
        }
        let then = match policy {
            EmitPolicy::Complete => AfterTimer::Keep,
            _ if cleanup_point <= point => {
                if policy == EmitPolicy::OnUpdate && w.dirty {
                    w.dirty = false;
                    out.collect(result(key, start, w, func, self.now, true));
                }
                AfterTimer::Remove
            }
            // Taken later in this walk if the watermark passed it too.
            _ => AfterTimer::KeepUntil(cleanup_point),
        };
        Some(TimerStep { newly_fired, then })
    }
}

/// The result a window emits at `now`.
pub(super) fn result(
    key: i64,
    start: EventTime,
    w: &WindowState,
    func: AggFunc,
    now: Nanos,
    is_update: bool,
) -> WindowResult {
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
