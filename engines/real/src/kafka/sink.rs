//! A native engine's sink on Kafka: every output the engine's sink delivers is produced to the
//! run's output topic as the row contract's line ([`crate::job::write_output_row`]), where
//! streamlab's output consumer ([`crate::kafka::consumer`]) stamps it on receipt, as it stamps
//! the real engines' results.
//!
//! The engine hands its delivered outputs over as they become visible ([`TopicSink::send`], from
//! whichever engine thread delivers them); a producer thread of its own writes them, everything
//! handed over while its previous request was in flight in one produce request, so the engine
//! never waits for the broker's acknowledgement (Kafka's producer accumulates batches the same
//! way). Every output goes to partition 0, in delivery order: one sink
//! writer, and the consumer receives the outputs in the order they were delivered, which is
//! what lets each received line be paired with its delivery instant
//! ([`SinkReport::delivered_at`]) — the broker's output hop is measured per output, exactly.
//!
//! The outputs are written as the engine made them visible: a micro-batch query's idempotent
//! sink and a per-record job's two-phase-commit sink hand over only committed outputs, so the
//! topic holds what a `read_committed` reader of the engine's own sink would. Handing a chunk
//! over copies it (one allocation per chunk on the engine's thread; a per-record job hands each
//! output over alone, at Kafka's low rates); `rskafka` takes each record's value as an owned
//! vector, one allocation per output on this thread.

use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;
use streamlab_engines::pipeline::PipelineSpec;
use streamlab_engines::run::Delivered;
use streamlab_engines::time::Nanos;

use crate::error::{RealEngineError, Result};
use crate::job::write_output_row;
use crate::kafka::client::{connect_async, runtime};

/// Most records in one produce request.
const MAX_BATCH: usize = 4096;

/// Produces `records` (drained) in one request, if there are any.
async fn produce(client: &PartitionClient, records: &mut Vec<Record>, topic: &str) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    client
        .produce(std::mem::take(records), Compression::NoCompression)
        .await
        .map(|_| ())
        .map_err(|e| RealEngineError::Kafka(format!("producing to {topic}: {e}")))
}

/// What the sink produced.
#[derive(Clone, Debug, Default)]
pub struct SinkReport {
    /// Every output's delivery instant (the engine's clock), in the order produced.
    pub delivered_at: Vec<Nanos>,
}

/// The producer thread behind a native engine's sink.
#[derive(Debug)]
pub struct TopicSink {
    chunks: Mutex<Option<Sender<Vec<Delivered>>>>,
    thread: Mutex<Option<JoinHandle<Result<SinkReport>>>>,
}

impl TopicSink {
    /// Connects to `bootstrap` and opens partition 0 of `topic`; outputs of `pipeline` sent
    /// then go out as its rows.
    pub fn start(bootstrap: &str, topic: &str, pipeline: &PipelineSpec) -> Result<Self> {
        let (tx, rx) = channel::<Vec<Delivered>>();
        let (ready_tx, ready_rx) = channel::<Result<()>>();
        let (bootstrap, topic, pipeline) = (bootstrap.to_string(), topic.to_string(), pipeline.clone());
        let thread = std::thread::Builder::new()
            .name("streamlab-kafka-sink".into())
            .spawn(move || {
                let runtime = runtime()?;
                runtime.block_on(async move {
                    let opened = async {
                        connect_async(&bootstrap, Duration::from_secs(10))
                            .await?
                            .partition_client(&topic, 0, UnknownTopicHandling::Retry)
                            .await
                            .map_err(|e| RealEngineError::Kafka(format!("topic {topic} partition 0: {e}")))
                    }
                    .await;
                    let client = match opened {
                        Ok(client) => {
                            let _ = ready_tx.send(Ok(()));
                            client
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(RealEngineError::Kafka(e.to_string())));
                            return Err(e);
                        }
                    };
                    let mut report = SinkReport::default();
                    let mut line = String::with_capacity(128);
                    let mut records: Vec<Record> = Vec::new();
                    while let Ok(first) = rx.recv() {
                        // What was handed over while the previous request was in flight goes out
                        // in one request, as Kafka's producer accumulates a batch.
                        for chunk in std::iter::once(first).chain(rx.try_iter()) {
                            for d in &chunk {
                                write_output_row(&pipeline, &d.output, &mut line);
                                records.push(Record {
                                    key: None,
                                    value: Some(line.as_bytes().to_vec()),
                                    headers: Default::default(),
                                    timestamp: chrono::DateTime::<chrono::Utc>::default(),
                                });
                                report.delivered_at.push(d.at);
                            }
                            if records.len() >= MAX_BATCH {
                                produce(&client, &mut records, &topic).await?;
                            }
                        }
                        produce(&client, &mut records, &topic).await?;
                    }
                    Ok(report)
                })
            })
            .map_err(|e| RealEngineError::Kafka(format!("could not start the sink's producer thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(TopicSink {
                chunks: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(RealEngineError::Kafka(
                "the sink's producer thread ended before it started".into(),
            )),
        }
    }

    /// Hands a chunk of delivered outputs to the producer (dropped once the sink is finished).
    pub fn send(&self, chunk: &[Delivered]) {
        let chunks = self.chunks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = chunks.as_ref() {
            // The producer ends only on an error, which `finish` reports.
            let _ = tx.send(chunk.to_vec());
        }
    }

    /// Waits until every chunk sent so far is produced (and acknowledged) and returns what was;
    /// chunks sent afterwards are dropped. Once only.
    pub fn finish(&self) -> Result<SinkReport> {
        self.chunks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        self.thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| RealEngineError::Kafka("the sink was finished already".into()))?
            .join()
            .map_err(|_| RealEngineError::Kafka("the sink's producer thread panicked".into()))?
    }
}

impl Drop for TopicSink {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
