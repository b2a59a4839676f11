//! The job graph of the per-record engine, built once for both drivers.
//!
//! Topology, as Flink would chain it: the filter and join are chained into each source
//! subtask; a key-by is always a network exchange; the sink has parallelism 1, so it is chained
//! when the operator before it has parallelism 1 and reached through an exchange otherwise —
//! unless a stateless job sets `chain_sink`: then each source subtask holds a sink of its own
//! (the job's sinks are merged when it ends, [`SinkOperator::absorb`]).
//!
//! A keyed exchange to a windowed aggregation alone carries each row projected onto what the
//! aggregate reads (`operators/window/input.rs`; [`RowOutput::Projected`]); every other keyed
//! stage gets the whole row.
//!
//! Subtasks are numbered: sources `0..p`, window subtasks `p..2p` (stateful), then the sink
//! subtask when it is not chained. A chain of keyed stages (a join or a deduplication, then an
//! aggregation keyed its own way) has a second keyed exchange: the first stage's subtasks are
//! `p..2p`, the aggregation's `2p..3p`, the sink `3p` ([`JobContext::keyed_layers`]).
//!
//! How a message reaches subtask `to` is the driver's business ([`Links`]): a bounded channel
//! for the live driver, an outbox delivered on virtual time for the simulated one. The graph is
//! the same either way.

use crate::dataflow::config::{DataflowConfig, DataflowConfigError};
use crate::dataflow::network::{BufferPool, Link, OutputGate, Projecting};
use crate::dataflow::tasks::{KeyedPlan, ResultOutput, RowOutput, SinkOperator, SinkTask, SourceTask, WindowTask};
use crate::dimension::CampaignTable;
use crate::operators::graph::{ChainLink, ExchangeKey, KeyedStage, StageRules, ThenStage};
use crate::operators::stateless::StatelessChain;
use crate::operators::window::{ProjectedRow, Projection, TimeSemantics};
use crate::operators::{Output, Row};
use crate::pipeline::{Aggregation, PipelineSpec};

/// What a per-record job is: its name, configuration, pipeline and dimension table, and the
/// partitions of its source. Every part of the engine is built from it, again at each restart.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The run's name (in progress records).
    pub name: String,
    /// The engine's configuration.
    pub cfg: DataflowConfig,
    /// The pipeline it runs.
    pub pipeline: PipelineSpec,
    /// The dimension table the join looks up.
    pub table: CampaignTable,
    /// Partitions of the source.
    pub partitions: usize,
}

impl JobContext {
    /// The job `name` running `pipeline` with `cfg` over `partitions` source partitions.
    pub fn new(
        name: &str,
        cfg: &DataflowConfig,
        pipeline: &PipelineSpec,
        table: &CampaignTable,
        partitions: usize,
    ) -> Self {
        Self {
            name: name.to_string(),
            cfg: *cfg,
            pipeline: pipeline.clone(),
            table: table.clone(),
            partitions,
        }
    }

    /// The parallelism of the sources and the window operator.
    pub fn parallelism(&self) -> usize {
        self.cfg.parallelism
    }

    /// How many layers of keyed subtasks the job has, for reading its checkpoints back: 2 for
    /// a chain of keyed stages, else 1 (a stateless job's checkpoints list no keyed subtask).
    pub fn keyed_layers(&self) -> usize {
        if self.pipeline.is_chain() {
            2
        } else {
            1
        }
    }
}

/// How a driver connects subtasks: the sending end of a link to subtask `to`.
pub trait Links {
    /// A link carrying rows.
    type Rows: Link<Row>;
    /// A link carrying window results.
    type Results: Link<Output>;
    /// A link to subtask `to` for rows.
    fn rows_to(&mut self, to: usize) -> Self::Rows;
    /// A link to subtask `to` for window results.
    fn results_to(&mut self, to: usize) -> Self::Results;
}

/// One subtask of the graph.
#[derive(Debug)]
pub enum Subtask<R, W> {
    /// A source subtask with its chained stateless operators.
    Source(Box<SourceTask<R>>),
    /// A keyed subtask behind a keyed exchange (a window operator, a join, a deduplication or a
    /// top-N; in a chain, the first stage or the aggregation behind the second exchange).
    Window(Box<WindowTask<W, R>>),
    /// The sink behind an exchange from the sources (a stateless pipeline).
    RowSink(Box<SinkTask<Row>>),
    /// The sink behind an exchange from the window subtasks.
    ResultSink(Box<SinkTask<Output>>),
    /// A subtask that finished: a driver's placeholder once it took the subtask out.
    Done,
}

impl<R: Link<Row>, W: Link<Output>> Subtask<R, W> {
    /// The sink this subtask holds, chained or its own.
    pub fn sink_mut(&mut self) -> Option<&mut SinkOperator> {
        match self {
            Subtask::Source(t) => t.chained_sink_mut(),
            Subtask::Window(t) => t.chained_sink_mut(),
            Subtask::RowSink(t) => Some(&mut t.sink),
            Subtask::ResultSink(t) => Some(&mut t.sink),
            Subtask::Done => None,
        }
    }
}

/// The emptied network buffers of the job's two exchanges, going back for reuse.
#[derive(Clone, Debug, Default)]
pub struct BufferPools {
    /// Buffers of rows (sources to windows or to the sink).
    pub rows: BufferPool<Row>,
    /// Buffers of window results (windows to the sink).
    pub results: BufferPool<Output>,
    /// Buffers of rows projected for a windowed aggregation (sources to windows).
    pub projected: BufferPool<ProjectedRow>,
}

/// The subtasks of a job, numbered, with who sends to whom.
#[derive(Debug)]
pub struct JobGraph<R, W> {
    /// The subtasks: sources `0..p`, window subtasks `p..2p`, then the sink if not chained.
    pub subtasks: Vec<Subtask<R, W>>,
    /// How many sources (the first subtasks).
    pub sources: usize,
    /// For each subtask, the subtasks it sends to.
    pub downstream: Vec<Vec<usize>>,
    /// For each subtask, how many subtasks send to it.
    pub inputs: Vec<usize>,
}

impl<R: Link<Row>, W: Link<Output>> JobGraph<R, W> {
    /// Builds `job`'s subtasks, connected by `links`, with `sink` as the job's one sink.
    pub fn build<L: Links<Rows = R, Results = W>>(
        job: &JobContext,
        links: &mut L,
        pools: &BufferPools,
        sink: SinkOperator,
    ) -> Result<Self, DataflowConfigError> {
        let cfg: &DataflowConfig = &job.cfg;
        cfg.validate()?;
        let p = cfg.parallelism;
        let chain = StatelessChain::new(&job.pipeline, &job.table);
        let capacity = cfg.buffer_rows();
        let flush_each = cfg.buffer_timeout.nanos() == 0;
        let source = |i: usize, out| Box::new(SourceTask::new(i, p, job.partitions, chain.clone(), cfg, out));
        let mut g = Self {
            subtasks: Vec::new(),
            sources: p,
            downstream: Vec::new(),
            inputs: Vec::new(),
        };
        let mut sink = Some(sink);
        let mut take_sink = || sink.take().expect("one sink per job");
        let exchange = ExchangeKey::for_pipeline(&job.pipeline);
        if cfg.chain_sink && exchange.is_some() {
            return Err(DataflowConfigError {
                key: "chain_sink".into(),
                message: "only a stateless pipeline's sink chains into the sources; a keyed stage's results reach the sink through an exchange".into(),
            });
        }
        match exchange {
            None if p == 1 => {
                let task = source(0, RowOutput::Chained(Box::new(take_sink())));
                g.push(Subtask::Source(task), vec![], 0);
            }
            None if cfg.chain_sink => {
                // The job's sink (with what earlier incarnations delivered) in the first source
                // subtask, a fresh one like it in each other.
                let first = take_sink();
                let mut sinks: Vec<SinkOperator> = (1..p).map(|_| first.fresh()).collect();
                sinks.insert(0, first);
                for (i, sink) in sinks.into_iter().enumerate() {
                    g.push(
                        Subtask::Source(source(i, RowOutput::Chained(Box::new(sink)))),
                        vec![],
                        0,
                    );
                }
            }
            None => {
                let to = p;
                for i in 0..p {
                    let gate = OutputGate::new(i, vec![links.rows_to(to)], capacity, flush_each, pools.rows.clone());
                    g.push(Subtask::Source(source(i, RowOutput::ToSink(gate))), vec![to], 0);
                }
                let task = SinkTask::new(take_sink(), p);
                g.push(Subtask::RowSink(Box::new(task)), vec![], p);
            }
            Some(key) => {
                let link = ChainLink::for_pipeline(&job.pipeline);
                let windows: Vec<usize> = (p..2 * p).collect();
                // A windowed aggregation and nothing else behind the exchange: the sources send
                // only what it reads (Flink's projection below the exchange), routed by its key.
                let projection = match (&key, &pipeline_aggregate_only(&job.pipeline)) {
                    (ExchangeKey::Field(_), Some(agg)) => Some(Projection::for_aggregation(agg)),
                    _ => None,
                };
                for i in 0..p {
                    let out = match projection {
                        Some(projection) => {
                            let channels = windows.iter().map(|&w| Projecting(links.rows_to(w))).collect();
                            let gate = OutputGate::new(i, channels, capacity, flush_each, pools.projected.clone());
                            RowOutput::Projected {
                                gate,
                                projection,
                                columns: Default::default(),
                            }
                        }
                        None => {
                            let channels = windows.iter().map(|&w| links.rows_to(w)).collect();
                            let gate = OutputGate::new(i, channels, capacity, flush_each, pools.rows.clone());
                            RowOutput::Keyed { gate, key: key.clone() }
                        }
                    };
                    g.push(Subtask::Source(source(i, out)), windows.clone(), 0);
                }
                let pipeline = &job.pipeline;
                let stage_error = |e| DataflowConfigError {
                    key: "state_backend".into(),
                    message: format!("cannot open a keyed stage's state store: {e}"),
                };
                // A chain: the first stage's subtasks `p..2p` send through the second keyed
                // exchange to the aggregation's, `2p..3p`.
                let mut base = p;
                if let Some(link) = &link {
                    base = 2 * p;
                    let aggs: Vec<usize> = (base..base + p).collect();
                    for j in 0..p {
                        let channels = aggs.iter().map(|&a| links.rows_to(a)).collect();
                        let gate = OutputGate::new(j, channels, capacity, flush_each, pools.rows.clone());
                        let out = ResultOutput::Chain {
                            gate,
                            link: link.clone(),
                            key: link.exchange(),
                        };
                        let stage = KeyedStage::for_pipeline(pipeline, StageRules::Flink, cfg.state_backend)
                            .map_err(stage_error)?
                            .expect("a chain begins with a join or a deduplication");
                        let task = WindowTask::new(j, p, KeyedPlan::Stage(stage), cfg, out);
                        g.push(Subtask::Window(Box::new(task)), aggs.clone(), p);
                    }
                }
                let to = base + p;
                for j in 0..p {
                    let (out, down) = if p == 1 {
                        (ResultOutput::Chained(Box::new(take_sink())), vec![])
                    } else {
                        let link = links.results_to(to);
                        let gate = OutputGate::new(j, vec![link], capacity, flush_each, pools.results.clone());
                        (ResultOutput::Gate(gate), vec![to])
                    };
                    let stage = match link {
                        Some(_) => None,
                        None => KeyedStage::for_pipeline(pipeline, StageRules::Flink, cfg.state_backend)
                            .map_err(stage_error)?,
                    };
                    let plan = match (stage, pipeline.aggregate) {
                        (Some(stage), _) => KeyedPlan::Stage(stage),
                        (None, Some(agg)) => KeyedPlan::Aggregate {
                            agg,
                            then: pipeline.then.filter(|_| p == 1).map(ThenStage::new),
                            forward_watermarks: p > 1 && pipeline.then.is_some(),
                        },
                        (None, None) => unreachable!("a keyed exchange has a keyed stage or an aggregate"),
                    };
                    let task = WindowTask::new(j, p, plan, cfg, out).with_projected_pool(pools.projected.clone());
                    g.push(Subtask::Window(Box::new(task)), down, p);
                }
                if p > 1 {
                    let mut task = SinkTask::new(take_sink(), p);
                    if let Some(then) = pipeline.then {
                        task = task.with_then(ThenStage::new(then), TimeSemantics::flink(0).fire_lag);
                    }
                    g.push(Subtask::ResultSink(Box::new(task)), vec![], p);
                }
            }
        }
        Ok(g)
    }

    fn push(&mut self, s: Subtask<R, W>, down: Vec<usize>, inputs: usize) {
        self.subtasks.push(s);
        self.downstream.push(down);
        self.inputs.push(inputs);
    }
}

/// The aggregation of `pipeline` if its keyed subtasks run it and nothing else (no join,
/// deduplication or top-N, no chain): then its rows may cross the exchange projected.
fn pipeline_aggregate_only(pipeline: &PipelineSpec) -> Option<Aggregation> {
    let alone = pipeline.join.is_none() && pipeline.dedup.is_none() && pipeline.top_n.is_none();
    pipeline.aggregate.filter(|_| alone)
}
