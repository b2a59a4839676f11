//! The live driver of the per-record engine: one OS thread per subtask, bounded crossbeam
//! channels between them (a full channel blocks the sender: backpressure), the wall clock.
//!
//! Topology, as Flink would chain it: the filter and join are chained into each source
//! subtask; a key-by is always a network exchange; the sink has parallelism 1, so it is chained
//! when the operator before it has parallelism 1 and reached through an exchange otherwise.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::dataflow::config::{DataflowConfig, DataflowConfigError};
use crate::dataflow::network::{BufferPool, Message, OutputGate};
use crate::dataflow::outcome::{assemble, WindowOutcome};
use crate::dataflow::tasks::{
    ResultOutput, RowOutput, SinkItem, SinkOperator, SinkTask, SourceStats, SourceTask, Step, WindowTask,
};
use crate::dimension::CampaignTable;
use crate::operators::stateless::StatelessChain;
use crate::operators::{Row, WindowResult};
use crate::pipeline::PipelineSpec;
use crate::run::EngineRun;
use crate::runtime::{Clock, LiveClock};
use crate::source::SourceLog;
use crate::time::Nanos;

/// A sink subtask behind an exchange: delivers until every input has finished.
fn sink_loop<T: SinkItem>(
    rx: Receiver<Message<T>>,
    mut task: SinkTask<T>,
    pool: BufferPool<T>,
    clock: LiveClock,
) -> SinkOperator {
    while let Ok(msg) = rx.recv() {
        let outcome = task.on_message(msg, clock.now());
        for b in outcome.buffers {
            pool.recycle(b);
        }
        if outcome.finished {
            break;
        }
    }
    task.sink
}

fn source_loop(
    mut task: SourceTask,
    source: &SourceLog,
    clock: LiveClock,
    until: Nanos,
    bounded: bool,
) -> (Option<SinkOperator>, SourceStats) {
    loop {
        match task.step(source, clock.now(), until, bounded) {
            Step::Continue => {}
            Step::WaitUntil(t) => clock.wait_until(t),
            Step::Done => break,
        }
    }
    task.finish(bounded)
}

fn window_loop(
    mut task: WindowTask,
    rx: Receiver<Message<Row>>,
    pool: BufferPool<Row>,
    clock: LiveClock,
) -> WindowTask {
    loop {
        let msg = match task.next_deadline() {
            Some(deadline) => {
                let now = clock.now();
                if deadline <= now {
                    task.on_tick(now);
                    continue;
                }
                match rx.recv_timeout(Duration::from_nanos(deadline - now)) {
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
        let outcome = task.on_message(msg, now);
        for b in outcome.buffers {
            pool.recycle(b);
        }
        task.on_tick(now);
        if outcome.finished {
            break;
        }
    }
    task
}

/// Runs the per-record engine on OS threads and the wall clock until `until`. `bounded`: the
/// sources finish when their input is consumed and emit a final `MAX` watermark (Flink's
/// behaviour at the end of bounded input), so every window fires.
#[allow(clippy::too_many_arguments)]
pub fn run_live(
    name: &str,
    cfg: &DataflowConfig,
    pipeline: &PipelineSpec,
    table: &CampaignTable,
    source: &SourceLog,
    clock: LiveClock,
    until: Nanos,
    bounded: bool,
) -> Result<EngineRun, DataflowConfigError> {
    cfg.validate()?;
    if cfg.checkpoint_interval.is_some() {
        return Err(DataflowConfigError {
            key: "checkpoint_interval".into(),
            message: "checkpoints of the per-record engine run on the simulated clock only in this version; \
                      use `clock = \"simulated\"` or remove `checkpoint_interval`"
                .into(),
        });
    }
    let p = cfg.parallelism;
    let chain = StatelessChain::new(pipeline, table);
    let capacity = cfg.buffer_rows();
    let flush_each = cfg.buffer_timeout.nanos() == 0;
    let channel_capacity = cfg.buffers_per_channel * p;
    let row_pool = BufferPool::<Row>::new();
    let result_pool = BufferPool::<WindowResult>::new();

    let mut sinks: Vec<SinkOperator> = Vec::new();
    let mut sources: Vec<SourceStats> = Vec::new();
    let mut windows: Vec<WindowOutcome> = Vec::new();

    std::thread::scope(|s| {
        let mut source_handles = Vec::new();
        let mut window_handles = Vec::new();
        let mut sink_handle = None;
        let mut result_sink_handle = None;
        let make_source =
            |i: usize, out: RowOutput| SourceTask::new(i, p, source.partitions(), chain.clone(), cfg, out);
        match &pipeline.aggregate {
            None if p == 1 => {
                let task = make_source(0, RowOutput::Chained(Box::new(SinkOperator::new(cfg.sink))));
                source_handles.push(s.spawn(move || source_loop(task, source, clock, until, bounded)));
            }
            None => {
                let (tx, rx) = crossbeam_channel::bounded(channel_capacity);
                let pool = row_pool.clone();
                sink_handle =
                    Some(s.spawn(move || sink_loop(rx, SinkTask::new(SinkOperator::new(cfg.sink), p), pool, clock)));
                for i in 0..p {
                    let gate = OutputGate::new(i, vec![tx.clone()], capacity, flush_each, row_pool.clone());
                    let task = make_source(i, RowOutput::ToSink(gate));
                    source_handles.push(s.spawn(move || source_loop(task, source, clock, until, bounded)));
                }
            }
            Some(agg) => {
                let (window_txs, window_rxs): (Vec<Sender<_>>, Vec<Receiver<_>>) = (0..p)
                    .map(|_| crossbeam_channel::bounded::<Message<Row>>(channel_capacity))
                    .unzip();
                let result_tx = if p == 1 {
                    None
                } else {
                    let (tx, rx) = crossbeam_channel::bounded(channel_capacity);
                    let pool = result_pool.clone();
                    result_sink_handle = Some(
                        s.spawn(move || sink_loop(rx, SinkTask::new(SinkOperator::new(cfg.sink), p), pool, clock)),
                    );
                    Some(tx)
                };
                for (j, rx) in window_rxs.into_iter().enumerate() {
                    let out = match &result_tx {
                        None => ResultOutput::Chained(Box::new(SinkOperator::new(cfg.sink))),
                        Some(tx) => ResultOutput::Gate(OutputGate::new(
                            j,
                            vec![tx.clone()],
                            capacity,
                            flush_each,
                            result_pool.clone(),
                        )),
                    };
                    let task = WindowTask::new(j, p, *agg, cfg, out);
                    let pool = row_pool.clone();
                    window_handles.push(s.spawn(move || window_loop(task, rx, pool, clock)));
                }
                drop(result_tx);
                for i in 0..p {
                    let gate = OutputGate::new(i, window_txs.clone(), capacity, flush_each, row_pool.clone());
                    let task = make_source(
                        i,
                        RowOutput::Keyed {
                            gate,
                            key_by: agg.key_by,
                        },
                    );
                    source_handles.push(s.spawn(move || source_loop(task, source, clock, until, bounded)));
                }
            }
        }
        for h in source_handles {
            let (sink, stats) = h.join().expect("source subtask panicked");
            sinks.extend(sink);
            sources.push(stats);
        }
        for h in window_handles {
            let (sink, outcome) = h.join().expect("window subtask panicked").finish();
            sinks.extend(sink);
            windows.push(outcome);
        }
        sinks.extend(sink_handle.map(|h| h.join().expect("sink subtask panicked")));
        sinks.extend(result_sink_handle.map(|h| h.join().expect("sink subtask panicked")));
    });

    let sink = sinks.pop().expect("exactly one sink");
    debug_assert!(sinks.is_empty());
    Ok(assemble(name, sink, sources, windows, Vec::new()))
}
