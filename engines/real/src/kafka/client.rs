//! streamlab's Kafka client, a blocking facade over `rskafka` for the few admin calls a run
//! makes: connect, list topics (the broker's readiness probe), create the run's topics.
//!
//! Why `rskafka` (0.6, default features off): it is pure Rust, so the default build needs no C
//! toolchain — `rdkafka` wraps librdkafka (C, built with cmake), and rskafka's own zstd and lz4
//! codecs are C too, which is why its compression features are left out (streamlab's records
//! are never compressed). It speaks the protocol versions Kafka 4 still serves (Produce v3+,
//! Fetch v4: KIP-896 removed the older ones that the synchronous `kafka` crate uses), it writes
//! to and fetches from a chosen partition directly — exactly the "one Kafka partition per
//! source partition" the workload needs, with no client-side partitioner in between — and it
//! fetches `read_committed`, so an exactly-once engine's aborted output is never counted. What
//! it lacks (consumer groups, transactions, idempotent produce) streamlab does not need: the
//! engines under test bring their own Kafka clients.
//!
//! The rest of streamlab is synchronous; each [`KafkaLink`] owns a current-thread tokio runtime
//! and blocks on it. The open-loop producer and the output consumer run their own runtimes on
//! their own threads ([`crate::kafka::producer`], [`crate::kafka::consumer`]).

use std::sync::Arc;
use std::time::Duration;

use rskafka::client::{Client, ClientBuilder};
use tokio::runtime::Runtime;

use crate::error::{RealEngineError, Result};

/// A connection to a Kafka cluster and the runtime it runs on.
pub struct KafkaLink {
    runtime: Runtime,
    client: Arc<Client>,
    bootstrap: String,
}

impl std::fmt::Debug for KafkaLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLink").field("bootstrap", &self.bootstrap).finish()
    }
}

/// A current-thread runtime with I/O and timers, as every Kafka piece here uses.
pub(crate) fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| RealEngineError::Kafka(format!("could not start a tokio runtime: {e}")))
}

/// Connects to `bootstrap` (`host:port[,host:port...]`) within `timeout`.
pub(crate) async fn connect_async(bootstrap: &str, timeout: Duration) -> Result<Client> {
    let brokers = bootstrap.split(',').map(|s| s.trim().to_string()).collect();
    match tokio::time::timeout(timeout, ClientBuilder::new(brokers).client_id("streamlab").build()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(RealEngineError::Kafka(format!("cannot connect to {bootstrap}: {e}"))),
        Err(_) => Err(RealEngineError::Kafka(format!(
            "cannot connect to {bootstrap}: no answer within {timeout:?}"
        ))),
    }
}

/// A plain TCP connection to the first server of `bootstrap`, for the requests streamlab speaks
/// itself ([`crate::kafka::wire`]): on the broker of streamlab's own it leads every partition.
pub(crate) fn connect_first(bootstrap: &str) -> Result<std::net::TcpStream> {
    use std::net::ToSocketAddrs;
    let first = bootstrap.split(',').next().unwrap_or_default().trim();
    let kafka = |what: String| RealEngineError::Kafka(format!("{first}: {what}"));
    let addr = first
        .to_socket_addrs()
        .map_err(|e| kafka(format!("not an address: {e}")))?
        .next()
        .ok_or_else(|| kafka("no address".into()))?;
    let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| kafka(format!("connect: {e}")))?;
    stream.set_nodelay(true).map_err(|e| kafka(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| kafka(e.to_string()))?;
    Ok(stream)
}

impl KafkaLink {
    /// Creates `topic` (`partitions`, replication 1) with its broker-side timestamp the time
    /// each record is appended to the log (`message.timestamp.type = LogAppendTime`): what the
    /// output topic needs for the broker's output hop to be measured. A topic that exists is
    /// kept (then [`KafkaLink::create_topic`] checks its partitions and waits for leaders).
    pub fn create_topic_with_append_time(&self, topic: &str, partitions: u32) -> Result<()> {
        let mut stream = connect_first(&self.bootstrap)?;
        let (error, message) = crate::kafka::wire::CreateTopic {
            correlation: 1,
            topic,
            partitions: partitions as i32,
            configs: &[("message.timestamp.type", "LogAppendTime")],
        }
        .exchange(&mut stream)
        .map_err(|e| RealEngineError::Kafka(format!("creating topic {topic} on {}: {e}", self.bootstrap)))?;
        match error {
            0 => self.wait_for_leaders(topic, partitions),
            crate::kafka::wire::TOPIC_ALREADY_EXISTS => self.create_topic(topic, partitions),
            code => Err(RealEngineError::Kafka(format!(
                "creating topic {topic} on {}: Kafka error code {code}{}",
                self.bootstrap,
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            ))),
        }
    }

    /// Connects to `bootstrap` (`host:port[,host:port...]`) within `timeout`.
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<KafkaLink> {
        let runtime = runtime()?;
        let client = runtime.block_on(connect_async(bootstrap, timeout))?;
        Ok(KafkaLink {
            runtime,
            client: Arc::new(client),
            bootstrap: bootstrap.to_string(),
        })
    }

    /// The names of the cluster's topics (a metadata request: what readiness waits for).
    pub fn topics(&self) -> Result<Vec<String>> {
        let topics = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), self.client.list_topics()).await })
            .map_err(|_| RealEngineError::Kafka(format!("{}: no answer to a metadata request", self.bootstrap)))?
            .map_err(|e| RealEngineError::Kafka(format!("{}: metadata: {e}", self.bootstrap)))?;
        Ok(topics.into_iter().map(|t| t.name).collect())
    }

    /// Creates `topic` with `partitions` partitions (replication 1), and waits until every
    /// partition has a leader. A topic that already exists with that many partitions is kept
    /// (a user's cluster may have it from an earlier run); with another count it is an error.
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<()> {
        let bootstrap = &self.bootstrap;
        let existing = self
            .runtime
            .block_on(self.client.list_topics())
            .map_err(|e| RealEngineError::Kafka(format!("{bootstrap}: metadata: {e}")))?;
        if let Some(t) = existing.iter().find(|t| t.name == topic) {
            return if t.partitions.len() == partitions as usize {
                Ok(())
            } else {
                Err(RealEngineError::Kafka(format!(
                    "topic {topic} on {bootstrap} has {} partitions, the workload {partitions}; delete it or use another cluster",
                    t.partitions.len()
                )))
            };
        }
        let controller = self
            .client
            .controller_client()
            .map_err(|e| RealEngineError::Kafka(format!("{bootstrap}: no controller: {e}")))?;
        self.runtime
            .block_on(controller.create_topic(topic, partitions as i32, 1, 10_000))
            .map_err(|e| RealEngineError::Kafka(format!("creating topic {topic} on {bootstrap}: {e}")))?;
        self.wait_for_leaders(topic, partitions)
    }

    /// Waits until every partition of `topic` has a leader (a new topic's are being elected).
    fn wait_for_leaders(&self, topic: &str, partitions: u32) -> Result<()> {
        for p in 0..partitions as i32 {
            self.runtime
                .block_on(async {
                    tokio::time::timeout(
                        Duration::from_secs(10),
                        self.client
                            .partition_client(topic, p, rskafka::client::partition::UnknownTopicHandling::Retry),
                    )
                    .await
                })
                .map_err(|_| RealEngineError::Kafka(format!("topic {topic} partition {p}: no leader within 10 s")))?
                .map_err(|e| RealEngineError::Kafka(format!("topic {topic} partition {p}: {e}")))?;
        }
        Ok(())
    }

    /// Each partition's end offset (the next offset to be written) of `topic`.
    pub fn end_offsets(&self, topic: &str, partitions: u32) -> Result<Vec<i64>> {
        self.runtime.block_on(async {
            let mut ends = Vec::with_capacity(partitions as usize);
            for p in 0..partitions as i32 {
                let what = |e: String| RealEngineError::Kafka(format!("topic {topic} partition {p}: end offset: {e}"));
                let client = self
                    .client
                    .partition_client(topic, p, rskafka::client::partition::UnknownTopicHandling::Error)
                    .await
                    .map_err(|e| what(e.to_string()))?;
                ends.push(
                    client
                        .get_offset(rskafka::client::partition::OffsetAt::Latest)
                        .await
                        .map_err(|e| what(e.to_string()))?,
                );
            }
            Ok(ends)
        })
    }

    /// The cluster this link is connected to.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
}
