//! The subtask threads of a live run: one loop per kind of subtask, on the wall clock.
//!
//! Each loop hands the clock's `now` to its subtask, blocks on its input channel (or sleeps
//! until the subtask's next deadline), recycles emptied buffers, writes the snapshots the
//! subtask takes, and commits completed checkpoints when it holds the sink. Task slots follow
//! Flink's slot sharing; with `pin_slots` a slot's threads are pinned to one core.
//!
//! Invariants: a source injects a requested barrier before the records of its next step; every
//! loop acknowledges `Finished` exactly once, when it ends; the loops add no per-record work.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::dataflow::network::{BufferPool, Message};
use crate::dataflow::tasks::{SinkItem, SinkOperator, SinkTask, SourceStats, SourceTask, Step, WindowTask};
use crate::operators::Row;
use crate::runtime::{Clock, LiveClock};
use crate::source::SourceLog;
use crate::time::Nanos;

use super::control::{Ack, Control, COMMIT_POLL};

/// What a subtask thread runs with: its number, the clock, what it shares with the
/// coordinator, and the channel it acknowledges on.
pub(super) struct SubtaskContext<'a> {
    pub(super) k: usize,
    pub(super) clock: LiveClock,
    pub(super) ctl: &'a Control,
    pub(super) acks: Sender<Ack>,
}

/// A sink subtask behind an exchange: delivers until every input has finished; pre-commits
/// on aligned barriers and commits completed checkpoints, even while no data arrives.
pub(super) fn sink_loop<T: SinkItem>(
    mut task: Box<SinkTask<T>>,
    rx: Receiver<Message<T>>,
    pool: BufferPool<T>,
    cx: SubtaskContext<'_>,
) -> SinkOperator {
    let SubtaskContext { k, clock, ctl, acks } = cx;
    let mut committed = ctl.base;
    loop {
        ctl.commit(&mut task.sink, &mut committed, clock.now());
        let msg = if ctl.enabled() {
            match rx.recv_timeout(Duration::from_nanos(COMMIT_POLL)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        };
        let start = clock.now();
        let outcome = task.on_message(msg, start);
        ctl.slow_down(&clock, k, start, 0);
        for b in outcome.buffers {
            pool.recycle(b);
        }
        if let Some(snapshot) = outcome.checkpoint {
            ctl.snapshot_taken(k, snapshot, &clock, &acks);
        }
        if outcome.finished {
            break;
        }
    }
    let _ = acks.send(Ack::Finished { k, covers: None });
    task.sink
}

/// A source subtask: reads, runs its chained operators and injects the barriers the
/// coordinator asks for, until `until` (or the end of bounded input).
pub(super) fn source_loop(
    mut task: Box<SourceTask>,
    source: &SourceLog,
    until: Nanos,
    bounded: bool,
    cx: SubtaskContext<'_>,
) -> (Option<SinkOperator>, SourceStats) {
    let SubtaskContext { k, clock, ctl, acks } = cx;
    let holds_sink = task.chained_sink_mut().is_some();
    let (mut injected, mut committed) = (ctl.base, ctl.base);
    // Events read already published to the run's pulse.
    let mut reported = 0;
    loop {
        if ctl.enabled() {
            // A checkpoint barrier goes out before this step's records.
            let id = ctl.inject[k].load(Ordering::Acquire);
            if id > injected {
                injected = id;
                let positions = task.inject_barrier(id);
                let _ = acks.send(Ack::Barrier {
                    k,
                    id,
                    at: clock.now(),
                    positions,
                });
            }
            if let Some(sink) = task.chained_sink_mut() {
                ctl.commit(sink, &mut committed, clock.now());
            }
        }
        let now = clock.now();
        let mut end = ctl.until(until);
        if let Some(pulse) = &ctl.pulse {
            // Per step (a chunk of records per partition), never per record.
            pulse.clock_at(now);
            pulse.add_events(task.events_read - reported);
            reported = task.events_read;
            if pulse.stop_requested() {
                pulse.stopped(now);
                end = end.min(now);
            }
        }
        let step = task.step(source, now, end, bounded);
        ctl.slow_down(&clock, k, now, 0);
        match step {
            Step::Continue => {}
            Step::WaitUntil(t) => clock.sleep_until(ctl.source_wake(t, now, holds_sink)),
            Step::Done => break,
        }
    }
    let (sink, stats) = task.finish(bounded);
    let covers = sink.is_none().then(|| stats.positions.clone());
    let _ = acks.send(Ack::Finished { k, covers });
    (sink, stats)
}

/// A window subtask: handles messages and fires timers until every input has finished.
pub(super) fn window_loop(
    mut task: Box<WindowTask>,
    rx: Receiver<Message<Row>>,
    pool: BufferPool<Row>,
    cx: SubtaskContext<'_>,
) -> Box<WindowTask> {
    let SubtaskContext { k, clock, ctl, acks } = cx;
    let poll_commits = ctl.enabled() && task.chained_sink_mut().is_some();
    let mut committed = ctl.base;
    loop {
        if poll_commits {
            if let Some(sink) = task.chained_sink_mut() {
                ctl.commit(sink, &mut committed, clock.now());
            }
        }
        let now = clock.now();
        let deadline = task.next_deadline();
        let wake = match (deadline, poll_commits) {
            (Some(d), true) => Some(d.min(now + COMMIT_POLL)),
            (d, true) => d.or(Some(now + COMMIT_POLL)),
            (d, false) => d,
        };
        let msg = match wake {
            Some(wake) => {
                if deadline.is_some_and(|d| d <= now) {
                    task.on_tick(now);
                    continue;
                }
                match rx.recv_timeout(Duration::from_nanos(wake.saturating_sub(now).max(1))) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        task.on_tick(clock.now());
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        let now = clock.now();
        let state_before = task.state_access_ns();
        let outcome = task.on_message(msg, now);
        let extra = ctl.slow_down(&clock, k, now, task.state_access_ns() - state_before);
        task.add_state_time(extra);
        for b in outcome.buffers {
            pool.recycle(b);
        }
        if let Some(snapshot) = outcome.checkpoint {
            ctl.snapshot_taken(k, snapshot, &clock, &acks);
        }
        task.on_tick(now);
        if outcome.finished {
            break;
        }
    }
    let _ = acks.send(Ack::Finished { k, covers: None });
    task
}

/// Enters task slot `slot` on the calling subtask thread: with `pin`, the thread is pinned to
/// the slot's core (slot k on core k mod the machine's cores); without, the OS schedules it.
pub(super) fn enter_slot(pin: bool, slot: usize) {
    if !pin {
        return;
    }
    if let Some(cores) = core_affinity::get_core_ids().filter(|c| !c.is_empty()) {
        core_affinity::set_for_current(cores[slot % cores.len()]);
    }
}
