//! Watermarks as progress: a generator at each source, a holder at each consumer.
//!
//! The generator is Flink's `BoundedOutOfOrdernessWatermarks`: it tracks the largest event time
//! seen and, when asked periodically, proposes `max − bound − 1`. The holder is a frontier: a
//! subtask's watermark is the minimum over its inputs' watermarks, skipping inputs that
//! declared themselves idle or finished, and it never moves backwards.

use crate::time::EventTime;

/// Flink's bounded-out-of-orderness watermark generator.
#[derive(Clone, Copy, Debug)]
pub struct BoundedOutOfOrderness {
    bound: i64,
    max_seen: Option<EventTime>,
    emitted: EventTime,
}

impl BoundedOutOfOrderness {
    /// A generator allowing events up to `bound_ms` out of order.
    pub fn new(bound_ms: i64) -> Self {
        Self {
            bound: bound_ms,
            max_seen: None,
            emitted: EventTime::MIN,
        }
    }

    /// Notes an event's timestamp.
    #[inline]
    pub fn on_event(&mut self, t: EventTime) {
        self.max_seen = Some(self.max_seen.map_or(t, |m| m.max(t)));
    }

    /// The periodic emission: `Some(watermark)` if it advanced since the last one.
    pub fn on_periodic_emit(&mut self) -> Option<EventTime> {
        let wm = self.proposal()?;
        (wm > self.emitted).then(|| {
            self.emitted = wm;
            wm
        })
    }

    /// The watermark this generator would propose now (`None` before any event).
    pub fn proposal(&self) -> Option<EventTime> {
        Some(self.max_seen? - self.bound - 1)
    }

    /// The last watermark emitted.
    pub fn current(&self) -> EventTime {
        self.emitted
    }
}

/// Per-partition (per-split) watermark generation, as Flink's Kafka source does it: each
/// partition has its own bounded-out-of-orderness generator and the source's watermark is the
/// minimum over them. A source that reads several partitions with different lags would
/// otherwise let the fastest partition push the watermark past the records still unread in a
/// slower one, and those would be late.
#[derive(Clone, Debug)]
pub struct SplitWatermarks {
    splits: Vec<BoundedOutOfOrderness>,
    emitted: EventTime,
}

impl SplitWatermarks {
    /// `splits` partitions, each allowing `bound_ms` of out-of-orderness.
    pub fn new(splits: usize, bound_ms: i64) -> Self {
        Self {
            splits: vec![BoundedOutOfOrderness::new(bound_ms); splits],
            emitted: EventTime::MIN,
        }
    }

    /// Notes an event of split `i`.
    #[inline]
    pub fn on_event(&mut self, i: usize, t: EventTime) {
        self.splits[i].on_event(t);
    }

    /// The periodic emission: the minimum over the splits, if every split has seen an event
    /// and it advanced since the last emission.
    pub fn on_periodic_emit(&mut self) -> Option<EventTime> {
        let wm = self.splits.iter().map(BoundedOutOfOrderness::proposal).min()??;
        (wm > self.emitted).then(|| {
            self.emitted = wm;
            wm
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputStatus {
    Active,
    Idle,
    Finished,
}

/// The watermark of a subtask: the minimum over its active inputs.
#[derive(Clone, Debug)]
pub struct WatermarkHolder {
    inputs: Vec<(EventTime, InputStatus)>,
    combined: EventTime,
}

impl WatermarkHolder {
    /// A holder over `n` inputs, all active at `EventTime::MIN`.
    pub fn new(n: usize) -> Self {
        Self {
            inputs: vec![(EventTime::MIN, InputStatus::Active); n],
            combined: EventTime::MIN,
        }
    }

    /// The combined watermark.
    pub fn current(&self) -> EventTime {
        self.combined
    }

    /// Input `i` sent watermark `wm` (which also marks it active). Returns the new combined
    /// watermark if it advanced.
    pub fn update(&mut self, i: usize, wm: EventTime) -> Option<EventTime> {
        let input = &mut self.inputs[i];
        input.0 = input.0.max(wm);
        if input.1 == InputStatus::Idle {
            input.1 = InputStatus::Active;
        }
        self.recompute()
    }

    /// Input `i` sent data: an idle input becomes active again (its watermark holds from now on).
    pub fn mark_active(&mut self, i: usize) {
        if self.inputs[i].1 == InputStatus::Idle {
            self.inputs[i].1 = InputStatus::Active;
        }
    }

    /// Input `i` declared itself idle. Returns the new combined watermark if it advanced.
    pub fn mark_idle(&mut self, i: usize) -> Option<EventTime> {
        if self.inputs[i].1 == InputStatus::Active {
            self.inputs[i].1 = InputStatus::Idle;
        }
        self.recompute()
    }

    /// Input `i` finished. Returns true when every input has finished.
    pub fn finish(&mut self, i: usize) -> bool {
        self.inputs[i].1 = InputStatus::Finished;
        self.inputs.iter().all(|(_, s)| *s == InputStatus::Finished)
    }

    fn recompute(&mut self) -> Option<EventTime> {
        let min = self
            .inputs
            .iter()
            .filter(|(_, s)| *s == InputStatus::Active)
            .map(|(w, _)| *w)
            .min()?;
        (min > self.combined).then(|| {
            self.combined = min;
            min
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_proposes_max_minus_bound_minus_one_and_only_forward() {
        let mut g = BoundedOutOfOrderness::new(100);
        assert_eq!(g.on_periodic_emit(), None, "no event seen yet");
        g.on_event(1_000);
        g.on_event(900);
        assert_eq!(g.on_periodic_emit(), Some(899));
        assert_eq!(g.on_periodic_emit(), None, "unchanged watermark is not re-emitted");
        g.on_event(950);
        assert_eq!(g.on_periodic_emit(), None);
    }

    #[test]
    fn split_watermark_is_held_back_by_the_slowest_partition() {
        let mut w = SplitWatermarks::new(2, 0);
        w.on_event(0, 5_000);
        assert_eq!(w.on_periodic_emit(), None, "split 1 has not seen an event");
        w.on_event(1, 1_000);
        assert_eq!(w.on_periodic_emit(), Some(999));
        w.on_event(1, 7_000);
        assert_eq!(w.on_periodic_emit(), Some(4_999));
    }

    #[test]
    fn holder_takes_minimum_over_active_inputs_and_skips_idle_ones() {
        let mut h = WatermarkHolder::new(2);
        assert_eq!(h.update(0, 500), None, "input 1 still at MIN");
        assert_eq!(h.update(1, 300), Some(300));
        assert_eq!(h.mark_idle(1), Some(500), "idle input no longer holds back");
        assert_eq!(
            h.update(1, 400),
            None,
            "reactivated input below the combined watermark does not move it back"
        );
        assert_eq!(h.current(), 500);
        assert_eq!(h.update(1, 800), None, "input 0 is now the minimum");
        assert_eq!(h.update(0, 900), Some(800));
        assert!(!h.finish(0));
        assert!(h.finish(1));
    }
}
