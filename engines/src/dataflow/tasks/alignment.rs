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
            | Message::Projected { from, .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn data(from: usize, item: u32) -> Message<u32> {
        Message::Data {
            from,
            items: vec![item],
        }
    }

    fn item_of(msg: &Message<u32>) -> u32 {
        match msg {
            Message::Data { items, .. } => items[0],
            _ => panic!("expected data"),
        }
    }

    #[test]
    fn without_an_alignment_every_message_passes() {
        let mut aligner = BarrierAligner::new(2);
        assert!(aligner.admit(data(0, 1)).is_some());
        assert!(aligner.admit(data(1, 2)).is_some());
        assert!(aligner.release().is_empty());
    }

    #[test]
    fn an_input_that_delivered_the_barrier_is_held_until_every_input_has() {
        let mut aligner = BarrierAligner::new(2);
        assert_eq!(aligner.barrier(0, 1, 10), None);
        assert!(aligner.admit(data(0, 1)).is_none(), "input 0 is blocked");
        assert!(aligner.admit(data(0, 2)).is_none());
        assert!(
            aligner.admit(data(1, 3)).is_some(),
            "input 1 has not delivered the barrier"
        );
        assert_eq!(
            aligner.barrier(1, 1, 20),
            Some(10),
            "alignment began at the first barrier"
        );
        let held: Vec<u32> = aligner.release().iter().map(item_of).collect();
        assert_eq!(held, vec![1, 2], "held messages come back in arrival order");
        assert!(aligner.admit(data(0, 4)).is_some(), "the alignment is over");
    }

    #[test]
    fn a_finished_input_does_not_hold_the_alignment_back() {
        let mut aligner = BarrierAligner::<u32>::new(2);
        assert_eq!(aligner.barrier(0, 3, 5), None);
        assert_eq!(aligner.input_finished(1, 7), Some((3, 5)));
        assert_eq!(aligner.input_finished(0, 8), None, "no alignment in progress");
    }

    #[test]
    fn a_stale_barrier_is_ignored_and_a_newer_one_abandons_the_older_alignment() {
        let mut aligner = BarrierAligner::<u32>::new(2);
        assert_eq!(aligner.barrier(0, 2, 10), None);
        assert_eq!(aligner.barrier(1, 1, 11), None, "barrier 1 is older than 2");
        assert_eq!(aligner.barrier(1, 3, 12), None, "3 overtakes 2: input 0 must deliver 3");
        assert_eq!(aligner.barrier(0, 3, 13), Some(12));
    }
}
