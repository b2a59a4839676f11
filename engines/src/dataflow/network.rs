//! Network buffers between subtasks, as Flink's result partitions and output flusher have them.
//!
//! An [`OutputGate`] keeps one buffer being filled per downstream channel. A buffer is shipped
//! when it is full, when the periodic flusher fires (`buffer_timeout`), after every record when
//! the timeout is 0, and before any watermark or end-of-stream marker (events overtake no
//! data). Emptied buffers travel back through a pool and are reused, so steady-state
//! operation allocates nothing per record or per buffer.
//!
//! A source subtask hands over a chunk of rows at a time: to one channel a buffer's share at a
//! time ([`OutputGate::extend_with`]), to several a pass at a time
//! ([`OutputGate::scatter_with`]: each row's channel, each channel's positions, each channel's
//! share written by one `extend`), shipping the same buffers in the same order as pushing row by
//! row would — a keyed exchange at parallelism 2 costs about what one channel does.
//!
//! A keyed exchange to a windowed aggregation carries its rows projected
//! ([`ProjectedRow`]: only what the aggregate reads) on the same links as whole rows: the
//! gate's [`Projecting`] link wraps each buffer as [`Message::Projected`].

use crossbeam_channel::{Receiver, Sender};

use crate::operators::window::ProjectedRow;
use crate::operators::Row;
use crate::time::EventTime;

/// What travels on a channel between two subtasks.
#[derive(Debug)]
pub enum Message<T> {
    /// A network buffer of records from upstream subtask `from`.
    Data {
        /// Sending subtask.
        from: usize,
        /// The records.
        items: Vec<T>,
    },
    /// A network buffer of rows projected for a windowed aggregation, from upstream subtask
    /// `from` (on a link of whole rows: [`Projecting`]).
    Projected {
        /// Sending subtask.
        from: usize,
        /// The projected rows.
        items: Vec<ProjectedRow>,
    },
    /// A watermark from upstream subtask `from`.
    Watermark {
        /// Sending subtask.
        from: usize,
        /// The watermark (event time, ms).
        watermark: EventTime,
    },
    /// A checkpoint barrier from upstream subtask `from`: everything before it belongs to
    /// checkpoint `id`.
    Barrier {
        /// Sending subtask.
        from: usize,
        /// The checkpoint.
        id: u64,
    },
    /// Upstream subtask `from` went idle (`WatermarkStatus.IDLE`).
    Idle {
        /// Sending subtask.
        from: usize,
    },
    /// Upstream subtask `from` finished.
    End {
        /// Sending subtask.
        from: usize,
    },
}

/// One direction of a channel between two subtasks: how a gate hands a message on. The live
/// driver uses a bounded crossbeam channel (a full channel blocks: backpressure); the
/// simulated driver collects messages and delivers them on virtual time.
pub trait Link<T> {
    /// Hands `msg` to the receiving subtask.
    fn send(&self, msg: Message<T>);
}

impl<T> Link<T> for Sender<Message<T>> {
    fn send(&self, msg: Message<T>) {
        // A closed channel means the downstream subtask is gone (the run is being torn down).
        let _ = Sender::send(self, msg);
    }
}

/// A link of whole rows carrying projected ones: what an [`OutputGate`] of projected rows
/// sends goes on the row link `L`, each buffer as [`Message::Projected`] (the links, the
/// drivers and the barrier alignment stay those of whole rows).
#[derive(Debug)]
pub struct Projecting<L>(pub L);

impl<L: Link<Row>> Link<ProjectedRow> for Projecting<L> {
    fn send(&self, msg: Message<ProjectedRow>) {
        self.0.send(match msg {
            Message::Data { from, items } | Message::Projected { from, items } => Message::Projected { from, items },
            Message::Watermark { from, watermark } => Message::Watermark { from, watermark },
            Message::Barrier { from, id } => Message::Barrier { from, id },
            Message::Idle { from } => Message::Idle { from },
            Message::End { from } => Message::End { from },
        });
    }
}

/// Where emptied buffers go back to, shared by all senders and receivers of one exchange.
#[derive(Clone, Debug)]
pub struct BufferPool<T> {
    tx: Sender<Vec<T>>,
    rx: Receiver<Vec<T>>,
}

impl<T> BufferPool<T> {
    /// An empty pool.
    pub fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self { tx, rx }
    }

    /// Returns a drained buffer to the pool.
    pub fn recycle(&self, mut buf: Vec<T>) {
        buf.clear();
        let _ = self.tx.send(buf);
    }

    fn take(&self, capacity: usize) -> Vec<T> {
        self.rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(capacity))
    }
}

impl<T> Default for BufferPool<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The sending side of an exchange for one upstream subtask.
#[derive(Debug)]
pub struct OutputGate<T, L = Sender<Message<T>>> {
    from: usize,
    channels: Vec<L>,
    pending: Vec<Vec<T>>,
    /// Each record's channel, for [`Self::scatter_with`] (scratch, reused).
    routes: Vec<u32>,
    /// Per channel, the positions of the records bound for it ([`Self::scatter_with`];
    /// scratch, reused).
    runs: Vec<ChannelRun>,
    capacity: usize,
    flush_every_record: bool,
    pool: BufferPool<T>,
    /// Buffers shipped so far.
    pub buffers_sent: u64,
}

impl<T, L: Link<T>> OutputGate<T, L> {
    /// A gate for subtask `from` over `channels` (one per downstream subtask); buffers hold
    /// `capacity` records; `flush_every_record` is `buffer_timeout = 0`.
    pub fn new(from: usize, channels: Vec<L>, capacity: usize, flush_every_record: bool, pool: BufferPool<T>) -> Self {
        let pending = channels.iter().map(|_| Vec::new()).collect();
        let runs = channels.iter().map(|_| ChannelRun::default()).collect();
        Self {
            from,
            channels,
            pending,
            routes: Vec::new(),
            runs,
            capacity,
            flush_every_record,
            pool,
            buffers_sent: 0,
        }
    }

    /// Number of downstream channels.
    pub fn fan_out(&self) -> usize {
        self.channels.len()
    }

    /// Appends a record to channel `ch`'s buffer, shipping the buffer if that fills it.
    #[inline]
    pub fn push(&mut self, ch: usize, item: T) {
        let buf = &mut self.pending[ch];
        if buf.capacity() == 0 {
            *buf = self.pool.take(self.capacity);
        }
        buf.push(item);
        if self.flush_every_record || buf.len() >= self.capacity {
            self.flush(ch);
        }
    }

    /// Appends the record `make` builds to channel `ch`'s buffer, as [`OutputGate::push`] does.
    /// The record is built once the buffer has room, straight into it: a record built first
    /// and then pushed sits in a temporary that the push copies back out with wider loads than
    /// the stores that wrote it, and each of those loads waits for the stores to retire (a
    /// store-forwarding stall: half of a source subtask's time, in the profile).
    #[inline]
    pub fn push_with(&mut self, ch: usize, make: impl FnMut() -> T) {
        let buf = &mut self.pending[ch];
        if buf.capacity() == 0 {
            *buf = self.pool.take(self.capacity);
        }
        // `resize_with` reserves first, then writes what the closure returns into the reserved
        // slot (and, unlike a one-element iterator, has no `None` to test for).
        buf.resize_with(buf.len() + 1, make);
        if self.flush_every_record || buf.len() >= self.capacity {
            self.flush(ch);
        }
    }

    /// Appends the `n` records `make(k)` builds (`k` in `0..n`, in order) to channel `ch`, as
    /// `n` calls of [`OutputGate::push_with`] would (the same buffers shipped at the same
    /// records), each buffer's share written by one `extend` that reserves once and writes
    /// each record straight into place.
    #[inline]
    pub fn extend_with(&mut self, ch: usize, n: usize, mut make: impl FnMut(usize) -> T) {
        if self.flush_every_record {
            for k in 0..n {
                self.push_with(ch, || make(k));
            }
            return;
        }
        let mut k = 0;
        while k < n {
            let buf = &mut self.pending[ch];
            if buf.capacity() == 0 {
                *buf = self.pool.take(self.capacity);
            }
            let m = self.capacity.saturating_sub(buf.len()).clamp(1, n - k);
            buf.extend((k..k + m).map(&mut make));
            k += m;
            if buf.len() >= self.capacity {
                self.flush(ch);
            }
        }
    }

    /// Appends the `n` records `make(k)` builds (`k` in `0..n`, in order) to channels
    /// `channel(k)`, as `n` calls of [`OutputGate::push_with`] would: the same records in each
    /// buffer and the same buffers shipped in the same order (the simulated network draws its
    /// jitter per message in send order).
    ///
    /// A pass at a time, as [`OutputGate::extend_with`] writes one channel's share: every
    /// record's channel into a column, then per channel the positions bound for it (a
    /// branch-free pass each), then segment by segment — up to the record that fills a buffer —
    /// each channel's share written by one `extend` that reserves once and builds each record
    /// straight into place, and the full buffer shipped. Row by row, every record paid a
    /// division for its channel, the buffer checks and a call that was not inlined: a quarter
    /// of a parallelism-2 source subtask's time, in the profile. One channel is
    /// [`OutputGate::extend_with`]'s; fewer than [`SCATTER_MIN`] records go row by row.
    #[inline]
    pub fn scatter_with(&mut self, n: usize, channel: impl Fn(usize) -> usize, mut make: impl FnMut(usize) -> T) {
        if self.channels.len() == 1 {
            return self.extend_with(0, n, make);
        }
        if self.flush_every_record || n < SCATTER_MIN {
            for k in 0..n {
                self.push_with(channel(k), || make(k));
            }
            return;
        }
        let routes = &mut self.routes;
        if routes.len() < n {
            routes.resize(n, 0);
        }
        for (k, r) in routes[..n].iter_mut().enumerate() {
            let ch = channel(k);
            debug_assert!(ch < self.channels.len(), "record {k} routed to channel {ch}");
            *r = ch as u32;
        }
        match &mut self.runs[..] {
            [zero, one] => ChannelRun::fill_two(zero, one, &routes[..n]),
            runs => {
                for (ch, run) in runs.iter_mut().enumerate() {
                    run.fill(&routes[..n], ch as u32);
                }
            }
        }
        loop {
            // The segment ends at the record that fills its channel's buffer (a full buffer
            // was shipped when it filled, so each has room for at least one), or at the end.
            let mut end = n;
            let mut full = None;
            for (ch, (run, buf)) in self.runs.iter().zip(&self.pending).enumerate() {
                let room = self.capacity.saturating_sub(buf.len()).max(1);
                if let Some(&k) = run.left().get(room - 1) {
                    if (k as usize) < end {
                        end = k as usize + 1;
                        full = Some(ch);
                    }
                }
            }
            for (run, buf) in self.runs.iter_mut().zip(&mut self.pending) {
                let share = run.take_before(end);
                if share.is_empty() {
                    continue;
                }
                if buf.capacity() == 0 {
                    *buf = self.pool.take(self.capacity);
                }
                buf.extend(share.iter().map(|&k| make(k as usize)));
            }
            match full {
                Some(ch) => self.flush(ch),
                None => return,
            }
        }
    }

    /// True when some buffer holds records not yet shipped.
    pub fn has_pending(&self) -> bool {
        self.pending.iter().any(|b| !b.is_empty())
    }

    /// Ships channel `ch`'s buffer if it holds anything.
    pub fn flush(&mut self, ch: usize) {
        if self.pending[ch].is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.pending[ch]);
        self.buffers_sent += 1;
        self.channels[ch].send(Message::Data { from: self.from, items });
    }

    /// Ships every non-empty buffer (the output flusher).
    pub fn flush_all(&mut self) {
        for ch in 0..self.channels.len() {
            self.flush(ch);
        }
    }

    /// Flushes, then sends a watermark on every channel.
    pub fn broadcast_watermark(&mut self, watermark: EventTime) {
        self.flush_all();
        for c in &self.channels {
            c.send(Message::Watermark {
                from: self.from,
                watermark,
            });
        }
    }

    /// Flushes, then sends checkpoint barrier `id` on every channel.
    pub fn broadcast_barrier(&mut self, id: u64) {
        self.flush_all();
        for c in &self.channels {
            c.send(Message::Barrier { from: self.from, id });
        }
    }

    /// Flushes, then tells every channel this subtask is idle.
    pub fn broadcast_idle(&mut self) {
        self.flush_all();
        for c in &self.channels {
            c.send(Message::Idle { from: self.from });
        }
    }

    /// Flushes, then tells every channel this subtask finished.
    pub fn finish(&mut self) {
        self.flush_all();
        for c in &self.channels {
            c.send(Message::End { from: self.from });
        }
    }
}

/// Fewer records than this are scattered row by row: the passes' fixed cost (a routes column,
/// the channels' positions, a segment loop) outweighs what they save on a handful of rows — a
/// simulated source subtask that keeps up reads about five events a step, and its per-record
/// simulator ran 12 % slower with every step scattered a pass at a time.
const SCATTER_MIN: usize = 64;

/// The positions, in order, of the records [`OutputGate::scatter_with`] sends to one channel,
/// and how many of them are written.
#[derive(Debug, Default)]
struct ChannelRun {
    /// The positions are `positions[..len]`; the vector is grown to the most records seen
    /// (every position is written during a pass) and never shrunk.
    positions: Vec<u32>,
    len: usize,
    /// How many of them are written into the channel's buffers.
    at: usize,
}

impl ChannelRun {
    /// Collects the positions `k` with `routes[k] == ch`: a branch-free pass (each position
    /// is written, and kept by counting it only when it is this channel's).
    #[inline]
    fn fill(&mut self, routes: &[u32], ch: u32) {
        if self.positions.len() < routes.len() {
            self.positions.resize(routes.len(), 0);
        }
        // A slice of its own, so the loop keeps its length in a register (through the vector,
        // each store could have changed it: reloaded every record).
        let positions = &mut self.positions[..routes.len()];
        let mut len = 0;
        for (k, &r) in routes.iter().enumerate() {
            positions[len] = k as u32;
            len += usize::from(r == ch);
        }
        self.len = len;
        self.at = 0;
    }

    /// [`Self::fill`] of channels 0 (`zero`) and 1 (`one`) of two, in one pass.
    #[inline]
    fn fill_two(zero: &mut Self, one: &mut Self, routes: &[u32]) {
        for run in [&mut *zero, &mut *one] {
            if run.positions.len() < routes.len() {
                run.positions.resize(routes.len(), 0);
            }
        }
        let (to_zero, to_one) = (&mut zero.positions[..routes.len()], &mut one.positions[..routes.len()]);
        let (mut len_zero, mut len_one) = (0, 0);
        for (k, &r) in routes.iter().enumerate() {
            to_zero[len_zero] = k as u32;
            to_one[len_one] = k as u32;
            let is_one = usize::from(r != 0);
            len_zero += 1 - is_one;
            len_one += is_one;
        }
        (zero.len, zero.at) = (len_zero, 0);
        (one.len, one.at) = (len_one, 0);
    }

    /// The positions not written yet.
    #[inline]
    fn left(&self) -> &[u32] {
        &self.positions[self.at..self.len]
    }

    /// Takes the positions not written yet that are before `end`.
    #[inline]
    fn take_before(&mut self, end: usize) -> &[u32] {
        let from = self.at;
        let n = self.left().partition_point(|&k| (k as usize) < end);
        self.at += n;
        &self.positions[from..self.at]
    }
}

/// What a subtask asks of an output gate besides its records: the flusher, the markers and
/// the count of buffers shipped. The same whatever the gate carries, so a task holding gates
/// of different record types (a source's whole or projected rows) reaches either through one
/// accessor.
pub trait GateControl {
    /// Ships every non-empty buffer (the output flusher).
    fn flush_all(&mut self);
    /// Flushes, then sends a watermark on every channel.
    fn broadcast_watermark(&mut self, watermark: EventTime);
    /// Flushes, then sends checkpoint barrier `id` on every channel.
    fn broadcast_barrier(&mut self, id: u64);
    /// Flushes, then tells every channel this subtask is idle.
    fn broadcast_idle(&mut self);
    /// Flushes, then tells every channel this subtask finished.
    fn finish(&mut self);
    /// True when some buffer holds records not yet shipped.
    fn has_pending(&self) -> bool;
    /// Buffers shipped so far.
    fn buffers_sent(&self) -> u64;
}

impl<T, L: Link<T>> GateControl for OutputGate<T, L> {
    fn flush_all(&mut self) {
        OutputGate::flush_all(self);
    }

    fn broadcast_watermark(&mut self, watermark: EventTime) {
        OutputGate::broadcast_watermark(self, watermark);
    }

    fn broadcast_barrier(&mut self, id: u64) {
        OutputGate::broadcast_barrier(self, id);
    }

    fn broadcast_idle(&mut self) {
        OutputGate::broadcast_idle(self);
    }

    fn finish(&mut self) {
        OutputGate::finish(self);
    }

    fn has_pending(&self) -> bool {
        OutputGate::has_pending(self)
    }

    fn buffers_sent(&self) -> u64 {
        self.buffers_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A link that keeps what it was handed: (buffer contents) per data message.
    #[derive(Default)]
    struct Kept(RefCell<Vec<Vec<u32>>>);

    impl Link<u32> for &Kept {
        fn send(&self, msg: Message<u32>) {
            if let Message::Data { items, .. } = msg {
                self.0.borrow_mut().push(items);
            }
        }
    }

    fn shipped(flush_every_record: bool, fill: impl Fn(&mut OutputGate<u32, &Kept>)) -> Vec<Vec<u32>> {
        let kept = Kept::default();
        let mut gate = OutputGate::new(0, vec![&kept], 3, flush_every_record, BufferPool::new());
        fill(&mut gate);
        gate.flush_all();
        kept.0.into_inner()
    }

    #[test]
    fn extend_with_ships_the_buffers_push_with_ships() {
        for every in [false, true] {
            let one_by_one = shipped(every, |g| {
                g.push_with(0, || 100);
                for k in 0..7 {
                    g.push_with(0, || k);
                }
            });
            let extended = shipped(every, |g| {
                g.push_with(0, || 100);
                g.extend_with(0, 7, |k| k as u32);
            });
            assert_eq!(extended, one_by_one);
        }
        assert_eq!(
            shipped(false, |g| g.extend_with(0, 7, |k| k as u32)),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
        );
    }

    /// A link to channel `.0` of a shared log: (channel, buffer contents) per data message, in
    /// send order across channels.
    struct Tagged<'a>(usize, &'a RefCell<Vec<(usize, Vec<u32>)>>);

    impl Link<u32> for Tagged<'_> {
        fn send(&self, msg: Message<u32>) {
            if let Message::Data { items, .. } = msg {
                self.1.borrow_mut().push((self.0, items));
            }
        }
    }

    fn scattered(
        flush_every_record: bool,
        fan_out: usize,
        fill: impl Fn(&mut OutputGate<u32, Tagged<'_>>),
    ) -> Vec<(usize, Vec<u32>)> {
        let log = RefCell::new(Vec::new());
        let links = (0..fan_out).map(|ch| Tagged(ch, &log)).collect();
        let mut gate = OutputGate::new(0, links, 3, flush_every_record, BufferPool::new());
        fill(&mut gate);
        gate.flush_all();
        drop(gate);
        log.into_inner()
    }

    #[test]
    fn scatter_with_ships_the_buffers_push_with_ships_in_the_same_order() {
        // Channels of an uneven pattern, so buffers fill at different records and a segment
        // ends on either channel.
        let channel = |k: usize| [0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 2, 2, 1][k % 15] % 3;
        for every in [false, true] {
            for fan_out in [1, 2, 3] {
                let route = |k: usize| channel(k) % fan_out;
                for n in [0, 1, 5, 31, SCATTER_MIN - 1, SCATTER_MIN, SCATTER_MIN + 1, 130, 200] {
                    let one_by_one = scattered(every, fan_out, |g| {
                        g.push_with(route(100), || 100);
                        for k in 0..n {
                            g.push_with(route(k), || k as u32);
                        }
                    });
                    let scattered = scattered(every, fan_out, |g| {
                        g.push_with(route(100), || 100);
                        g.scatter_with(n, route, |k| k as u32);
                    });
                    assert_eq!(scattered, one_by_one, "fan-out {fan_out}, {n} records, every {every}");
                }
            }
        }
    }
}
