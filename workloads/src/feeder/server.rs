//! The feeder: accepts one connection per source partition, waits until all are there, starts
//! the run clock and runs each partition's open-loop schedule (see the protocol in the module
//! header of [`crate::feeder`]).
//!
//! Invariants: a partition is fed by exactly one connection, one that presented the token; the
//! clock starts once, when the last partition is claimed, and every schedule is measured from
//! that zero; connections after the start are refused, never fed.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use streamlab_engines::event::Event;
use streamlab_engines::time::Nanos;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::handshake::{read_hello, RefusalLog, Role, HELLO_TIMEOUT};
use super::lag::lag_histogram;
use super::runtime::RuntimeThread;
use super::schedule::{feed_partition, FeedPlan};
use super::{FeederError, Refusal, RefusalReason, RunClock, RunToken, SendingLag};

/// How a feeder serves a workload.
#[derive(Clone, Debug)]
pub struct FeederOptions {
    /// Source partitions, each served on its own connection; every event's `partition` must be
    /// below it.
    pub partitions: u32,
    /// The address to listen on: loopback and any free port (`127.0.0.1:0`) by default; give a
    /// routable address for an engine on a cluster.
    pub bind: SocketAddr,
    /// The run's token, which every connection must present.
    pub token: RunToken,
    /// How long to wait for every partition to connect before failing.
    pub ready_timeout: Duration,
    /// The warm-up period, ns of the run clock: events scheduled before it are sent but
    /// counted apart, and outputs stamped before it are flagged.
    pub warmup: Nanos,
}

impl FeederOptions {
    /// Options for `partitions` partitions and `token`, on loopback, any port, a 60 s readiness
    /// timeout and no warm-up.
    pub fn new(partitions: u32, token: RunToken) -> Self {
        Self {
            partitions,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token,
            ready_timeout: Duration::from_secs(60),
            warmup: 0,
        }
    }
}

/// What a finished feeder did.
#[derive(Clone, Debug)]
pub struct FeederReport {
    /// The address it listened on (the port actually bound).
    pub local_addr: SocketAddr,
    /// Events written, per partition.
    pub sent_per_partition: Vec<u64>,
    /// Events written in all.
    pub events_sent: u64,
    /// Of those, events scheduled inside the warm-up period.
    pub warmup_events: u64,
    /// The sending lag over every event written.
    pub lag: SendingLag,
    /// Connections refused, counted without bound.
    pub refused: u64,
    /// The first refusals, with who and why.
    pub refusals: Vec<Refusal>,
}

/// What the feeder's tasks share with its handle while it runs.
#[derive(Debug)]
struct FeederShared {
    connected: AtomicU32,
    refusals: RefusalLog,
    /// Events written so far, per partition (a display's figure, and a stopped run's report).
    sent: Vec<AtomicU64>,
}

/// A running feeder: serves a workload to an external engine on its own thread. Dropping it (or
/// [`Feeder::stop`]) ends every task and closes every socket.
///
/// # Examples
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use streamlab_workloads::feeder::{Feeder, FeederOptions, RunToken};
/// # use streamlab_engines::event::{Event, EventKind};
/// # let event = |seq, partition| Event { seq, event_time: 0, arrival: seq * 1_000, partition,
/// #     user: 0, session: 0, page: 0, ad: 0, kind: EventKind::View, dwell_ms: 0, price_cents: 0 };
/// let events = vec![event(0, 0), event(1, 0)];
/// let token = RunToken::new("demo-token").unwrap();
/// let feeder = Feeder::start(&events, FeederOptions::new(1, token)).unwrap();
///
/// let mut conn = std::net::TcpStream::connect(feeder.local_addr()).unwrap();
/// conn.write_all(b"STREAMLAB demo-token 0\n").unwrap();
/// let lines: Vec<String> = BufReader::new(conn).lines().map(Result::unwrap).collect();
/// assert_eq!(lines.last().map(String::as_str), Some("END"));
///
/// let report = feeder.wait().unwrap();
/// assert_eq!(report.events_sent, 2);
/// assert_eq!(report.lag.events, 2);
/// ```
#[derive(Debug)]
pub struct Feeder {
    local_addr: SocketAddr,
    clock: RunClock,
    shared: Arc<FeederShared>,
    thread: RuntimeThread<Result<FeederReport, FeederError>>,
}

impl Feeder {
    /// Checks `events` (in arrival order, each in a partition below `options.partitions`), binds
    /// the listening socket and starts serving. Returns once the socket is bound; the schedule
    /// starts when every partition has connected.
    pub fn start(events: &[Event], options: FeederOptions) -> Result<Self, FeederError> {
        let plan = FeedPlan::new(events, options.partitions)?;
        let listener = StdListener::bind(options.bind).map_err(|source| FeederError::Bind {
            addr: options.bind,
            source,
        })?;
        let bind_error = |source| FeederError::Bind {
            addr: options.bind,
            source,
        };
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let clock = RunClock::new(options.warmup);
        let shared = Arc::new(FeederShared {
            connected: AtomicU32::new(0),
            refusals: RefusalLog::new("feeder"),
            sent: (0..options.partitions).map(|_| AtomicU64::new(0)).collect(),
        });
        let run = Run {
            plan: Arc::new(plan),
            options,
            clock: clock.clone(),
            shared: Arc::clone(&shared),
            local_addr,
        };
        let thread = RuntimeThread::spawn("streamlab-feeder", move || async move {
            let listener = TcpListener::from_std(listener).map_err(|e| FeederError::Bind {
                addr: local_addr,
                source: e,
            })?;
            run.serve(listener).await
        })?;
        Ok(Self {
            local_addr,
            clock,
            shared,
            thread,
        })
    }

    /// The address engines connect to (with the port actually bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The run clock, started when every partition has connected; give it to the [`Receiver`]
    /// so outputs are stamped on the same clock.
    ///
    /// [`Receiver`]: super::Receiver
    pub fn clock(&self) -> RunClock {
        self.clock.clone()
    }

    /// Partitions connected so far.
    pub fn connected(&self) -> u32 {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refusals.count()
    }

    /// Events written so far, in all.
    pub fn sent(&self) -> u64 {
        self.shared.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }

    /// Ends the feeder now, as [`Feeder::stop`], and reports what it had written: a run stopped
    /// early (Ctrl-C). Its sending lag is not measured (`lag.events` is 0).
    pub fn stop_with_report(self) -> FeederReport {
        let shared = Arc::clone(&self.shared);
        let local_addr = self.local_addr;
        self.stop();
        let sent_per_partition: Vec<u64> = shared.sent.iter().map(|s| s.load(Ordering::Relaxed)).collect();
        FeederReport {
            local_addr,
            events_sent: sent_per_partition.iter().sum(),
            sent_per_partition,
            warmup_events: 0,
            lag: SendingLag::default(),
            refused: shared.refusals.count(),
            refusals: shared.refusals.kept(),
        }
    }

    /// Whether the feeder has finished (every schedule ended, or it failed).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits until every partition's schedule has ended (or the run failed) and reports.
    pub fn wait(self) -> Result<FeederReport, FeederError> {
        self.thread.join()?.unwrap_or(Err(FeederError::Stopped))
    }

    /// Ends the feeder now: every task ends and every socket closes before this returns.
    pub fn stop(self) {
        let _ = self.thread.stop();
    }
}

/// Everything the feeder's async side owns.
struct Run {
    plan: Arc<FeedPlan>,
    options: FeederOptions,
    clock: RunClock,
    shared: Arc<FeederShared>,
    local_addr: SocketAddr,
}

/// A connection that presented the token and a partition of the run.
type Claim = (u32, TcpStream, SocketAddr);

impl Run {
    async fn serve(self, listener: TcpListener) -> Result<FeederReport, FeederError> {
        let partitions = self.options.partitions;
        let (claims, mut claimed) = mpsc::channel::<Claim>(partitions as usize);
        let acceptor = tokio::spawn(accept(
            listener,
            self.options.token.clone(),
            partitions,
            claims,
            self.clock.clone(),
            Arc::clone(&self.shared),
        ));
        let streams = self.await_readiness(&mut claimed).await;
        let streams = match streams {
            Ok(streams) => streams,
            Err(e) => {
                acceptor.abort();
                return Err(e);
            }
        };
        let zero = tokio::time::Instant::from_std(self.clock.start());
        // Claims queued before the start are late: refuse them, and any later ones, as such.
        let shared = Arc::clone(&self.shared);
        let late = tokio::spawn(async move {
            while let Some((p, _stream, peer)) = claimed.recv().await {
                shared.refusals.refuse(peer, RefusalReason::AfterStart(p));
            }
        });
        let mut schedules = JoinSet::new();
        for (p, stream) in streams.into_iter().enumerate() {
            let plan = Arc::clone(&self.plan);
            let shared = Arc::clone(&self.shared);
            schedules.spawn(async move {
                feed_partition(stream, p as u32, &plan.by_partition[p], zero, &shared.sent[p])
                    .await
                    .map(|fed| (p, fed))
            });
        }
        let mut sent_per_partition = vec![0; partitions as usize];
        let mut lag = lag_histogram();
        let mut failure = None;
        while let Some(joined) = schedules.join_next().await {
            match joined {
                Ok(Ok((p, fed))) => {
                    sent_per_partition[p] = fed.sent;
                    lag.add(&fed.lag)
                        .map_err(|e| FeederError::Internal(format!("merging lag histograms: {e}")))?;
                }
                Ok(Err(e)) => {
                    // One reader gone makes the run unusable: end the other schedules now.
                    schedules.abort_all();
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    failure.get_or_insert(FeederError::Internal(format!(
                        "a partition's schedule ended abnormally: {e}"
                    )));
                }
            }
        }
        acceptor.abort();
        late.abort();
        if let Some(e) = failure {
            return Err(e);
        }
        let warmup = self.options.warmup;
        let warmup_events = self
            .plan
            .by_partition
            .iter()
            .flatten()
            .filter(|e| e.arrival < warmup)
            .count() as u64;
        Ok(FeederReport {
            local_addr: self.local_addr,
            events_sent: sent_per_partition.iter().sum(),
            sent_per_partition,
            warmup_events,
            lag: SendingLag::from_histogram(&lag),
            refused: self.shared.refusals.count(),
            refusals: self.shared.refusals.kept(),
        })
    }

    /// Claims partitions as connections arrive until every one has a connection, or fails naming
    /// those missing when the readiness timeout elapses.
    async fn await_readiness(&self, claimed: &mut mpsc::Receiver<Claim>) -> Result<Vec<TcpStream>, FeederError> {
        let partitions = self.options.partitions;
        let mut streams: Vec<Option<TcpStream>> = (0..partitions).map(|_| None).collect();
        let deadline = tokio::time::Instant::now() + self.options.ready_timeout;
        let mut connected = 0;
        while connected < partitions {
            match tokio::time::timeout_at(deadline, claimed.recv()).await {
                Ok(Some((p, stream, peer))) => {
                    let slot = &mut streams[p as usize];
                    if slot.is_some() {
                        self.shared.refusals.refuse(peer, RefusalReason::DuplicatePartition(p));
                    } else {
                        *slot = Some(stream);
                        connected += 1;
                        self.shared.connected.store(connected, Ordering::Release);
                    }
                }
                Ok(None) => {
                    return Err(FeederError::Internal(
                        "the feeder's acceptor ended before readiness".into(),
                    ))
                }
                Err(_) => {
                    let missing = (0..partitions).filter(|&p| streams[p as usize].is_none()).collect();
                    return Err(FeederError::NotReady {
                        missing,
                        expected: partitions,
                        timeout: self.options.ready_timeout,
                    });
                }
            }
        }
        Ok(streams.into_iter().flatten().collect())
    }
}

/// Accepts connections for the whole run; each one's handshake runs in its own task, and a
/// partition that checks out is passed on as a claim (or refused once the clock has started).
async fn accept(
    listener: TcpListener,
    token: RunToken,
    partitions: u32,
    claims: mpsc::Sender<Claim>,
    clock: RunClock,
    shared: Arc<FeederShared>,
) {
    let mut handshakes = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Per-connection failures (reset before accept, out of descriptors): keep serving.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while handshakes.try_join_next().is_some() {}
        let (token, claims, clock, shared) = (token.clone(), claims.clone(), clock.clone(), Arc::clone(&shared));
        handshakes.spawn(async move {
            let mut reader = BufReader::new(stream);
            let role = match tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut reader, &token, partitions)).await {
                Ok(role) => role,
                Err(_) => Err(RefusalReason::Silent),
            };
            let refusal = match role {
                Ok(Role::Partition(p)) if clock.is_started() => RefusalReason::AfterStart(p),
                Ok(Role::Partition(p)) => {
                    if let Err(mpsc::error::SendError((p, _, peer))) = claims.send((p, reader.into_inner(), peer)).await
                    {
                        shared.refusals.refuse(peer, RefusalReason::AfterStart(p));
                    }
                    return;
                }
                Ok(Role::Sink) => RefusalReason::UnknownPartition("sink".into()),
                Err(reason) => reason,
            };
            shared.refusals.refuse(peer, refusal);
        });
    }
}
