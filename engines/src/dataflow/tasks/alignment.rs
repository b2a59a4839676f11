//! Barrier alignment: Flink's aligned checkpoints (Chandy-Lamport over FIFO channels).
//!
//! A subtask with several inputs must snapshot its state when it has seen checkpoint barrier
//! `id` on every input, and the snapshot must hold exactly what came before the barrier on
//! each. [`BarrierAligner`] decides that: once an input has delivered barrier `id`, its further
//! messages are held until every input has (a finished input counts as delivered), then they
//! are released in arrival order. A small type on its own, as Arroyo's `CheckpointCounter`, so
//! that the window and sink subtasks share it and it can be tested alone.
//!
//! Invariants: a held message is released exactly once, in arrival order; a barrier older than
//! the one being aligned is ignored; a newer one abandons the older alignment.

use crate::dataflow::network::Message;
use crate::time::Nanos;

/// Barrier alignment (Flink's aligned checkpoints, Chandy-Lamport with FIFO channels): once an
/// input has delivered barrier `id`, its further messages wait until every input has.
#[derive(Debug)]
pub struct BarrierAligner<T> {
    seen: Vec<bool>,
    finished: Vec<bool>,
    current: Option<(u64, Nanos)>,
    held: std::collections::VecDeque<Message<T>>,
}

impl<T> BarrierAligner<T> {
    /// An aligner over `inputs` inputs.
    pub fn new(inputs: usize) -> Self {
        Self {
            seen: vec![false; inputs],
            finished: vec![false; inputs],
            current: None,
            held: Default::default(),
        }
    }

    fn from(msg: &Message<T>) -> usize {
        match msg {
            Message::Data { from, .. }
            | Message::Watermark { from, .. }
            | Message::Barrier { from, .. }
            | Message::Idle { from }
            | Message::End { from } => *from,
        }
    }

    /// Lets `msg` through, or holds it (returns `None`) if its input is blocked by alignment.
    pub fn admit(&mut self, msg: Message<T>) -> Option<Message<T>> {
        if self.current.is_some() && self.seen[Self::from(&msg)] {
            self.held.push_back(msg);
            None
        } else {
            Some(msg)
        }
    }

    /// Barrier `id` from input `from`. Returns when the alignment started once every input has
    /// delivered it (the checkpoint can be taken).
    pub fn barrier(&mut self, from: usize, id: u64, now: Nanos) -> Option<Nanos> {
        match self.current {
            Some((cur, _)) if id < cur => return None, // a stale barrier
            Some((cur, _)) if id > cur => {
                // A newer checkpoint overtook an unfinished one: the older one is abandoned.
                self.seen.iter_mut().for_each(|s| *s = false);
                self.current = Some((id, now));
            }
            None => self.current = Some((id, now)),
            _ => {}
        }
        self.seen[from] = true;
        self.complete()
    }

    /// Input `from` finished: it will send no barrier, so alignment does not wait for it.
    pub fn input_finished(&mut self, from: usize, _now: Nanos) -> Option<(u64, Nanos)> {
        self.finished[from] = true;
        let id = self.current?.0;
        self.complete().map(|started| (id, started))
    }

    fn complete(&mut self) -> Option<Nanos> {
        let (_, started) = self.current?;
        if self.seen.iter().zip(&self.finished).all(|(s, f)| *s || *f) {
            self.current = None;
            self.seen.iter_mut().for_each(|s| *s = false);
            Some(started)
        } else {
            None
        }
    }

    /// The messages held during the alignment that just completed, in arrival order.
    pub fn release(&mut self) -> Vec<Message<T>> {
        self.held.drain(..).collect()
    }
}
