//! The output receiver: the server an engine's sink writes its outputs to, one line per
//! output, each stamped on receipt with the run clock.
//!
//! Invariants: only connections that presented the token are read; a connection's lines reach
//! the consumer in the order they were sent; the stamp is taken while the consumer is held, so
//! stamps reach the consumer non-decreasing over all sink connections; each connection reads into
//! one reused line buffer, so receiving allocates nothing per line.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use streamlab_engines::time::Nanos;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::handshake::{read_hello, RefusalLog, Role, HELLO_TIMEOUT};
use super::runtime::RuntimeThread;
use super::{FeederError, Refusal, RefusalReason, RunClock, RunToken};

/// Longest output line accepted, bytes; a sink connection that sends a longer one is closed
/// (and counted in [`ReceiverReport::overlong`]).
pub const LINE_MAX: usize = 1 << 20;

/// One output line, as handed to the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedLine<'a> {
    /// The run clock's reading on receipt, ns since the feeder's schedule started (0 if it had
    /// not started).
    pub stamp: Nanos,
    /// Whether the line arrived inside the warm-up period (or before the clock started): a
    /// latency statistic that excludes warm-up leaves it out.
    pub warmup: bool,
    /// Which sink connection sent it, numbered from 0 in the order they were accepted.
    pub sink: u32,
    /// The line, without its `\n` (or `\r\n`).
    pub line: &'a [u8],
}

impl ReceivedLine<'_> {
    /// The line as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.line).ok()
    }
}

/// How a receiver listens.
#[derive(Clone, Debug)]
pub struct ReceiverOptions {
    /// The address to listen on: loopback, any free port (`127.0.0.1:0`) by default.
    pub bind: SocketAddr,
    /// The run's token, which every sink connection must present.
    pub token: RunToken,
}

impl ReceiverOptions {
    /// Options for `token`, on loopback and any free port.
    pub fn new(token: RunToken) -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token,
        }
    }
}

/// What a receiver did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverReport {
    /// Lines handed to the consumer.
    pub lines: u64,
    /// Sink connections accepted (token presented).
    pub sinks: u32,
    /// Sink connections that ended (end of file, error, or an overlong line).
    pub sinks_closed: u32,
    /// Sink connections closed for a line longer than [`LINE_MAX`].
    pub overlong: u32,
    /// Connections refused, counted without bound.
    pub refused: u64,
    /// The first refusals, with who and why.
    pub refusals: Vec<Refusal>,
}

/// Sink connection counts, watched by [`Receiver::wait_for_sinks`].
#[derive(Debug, Default)]
struct SinkCounts {
    accepted: u32,
    closed: u32,
    overlong: u32,
}

#[derive(Debug)]
struct ReceiverShared {
    lines: AtomicU64,
    sinks: Mutex<SinkCounts>,
    sink_closed: Condvar,
    refusals: RefusalLog,
}

impl ReceiverShared {
    fn sinks(&self) -> std::sync::MutexGuard<'_, SinkCounts> {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The consumer every sink connection hands its lines to, and the clock it stamps them with.
struct Delivery<C> {
    consumer: Mutex<C>,
    clock: RunClock,
}

/// A running receiver: reads the engine's outputs on its own thread and hands each stamped line
/// to the consumer. Dropping it (or [`Receiver::stop`]) ends every task and closes every socket.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use std::sync::{Arc, Mutex};
/// use streamlab_workloads::feeder::{Receiver, ReceiverOptions, RunClock, RunToken};
///
/// let clock = RunClock::new(0);
/// clock.start();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let token = RunToken::new("demo-token").unwrap();
/// let receiver = Receiver::start(ReceiverOptions::new(token), clock, move |line| {
///     sink.lock().unwrap().push(line.text().unwrap().to_string());
/// })
/// .unwrap();
///
/// let mut conn = std::net::TcpStream::connect(receiver.local_addr()).unwrap();
/// conn.write_all(b"STREAMLAB demo-token sink\nwindow 0,42\n").unwrap();
/// drop(conn);
/// assert!(receiver.wait_for_sinks(1, std::time::Duration::from_secs(10)));
/// let report = receiver.stop();
/// assert_eq!(report.lines, 1);
/// assert_eq!(*seen.lock().unwrap(), ["window 0,42"]);
/// ```
#[derive(Debug)]
pub struct Receiver {
    local_addr: SocketAddr,
    shared: Arc<ReceiverShared>,
    thread: RuntimeThread<()>,
}

impl Receiver {
    /// Binds the listening socket and starts receiving; each line goes to `consumer`, stamped
    /// with `clock` (the feeder's [`super::Feeder::clock`]). Returns once the socket is bound.
    ///
    /// The consumer runs on the receiver's thread, one line at a time, and every sink waits
    /// while it runs: keep it short (record the stamp, push to a buffer or a channel).
    pub fn start<C>(options: ReceiverOptions, clock: RunClock, consumer: C) -> Result<Self, FeederError>
    where
        C: FnMut(ReceivedLine<'_>) + Send + 'static,
    {
        let bind_error = |source| FeederError::Bind {
            addr: options.bind,
            source,
        };
        let listener = StdListener::bind(options.bind).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let shared = Arc::new(ReceiverShared {
            lines: AtomicU64::new(0),
            sinks: Mutex::new(SinkCounts::default()),
            sink_closed: Condvar::new(),
            refusals: RefusalLog::new("receiver"),
        });
        let delivery = Arc::new(Delivery {
            consumer: Mutex::new(consumer),
            clock,
        });
        let task_shared = Arc::clone(&shared);
        let token = options.token;
        let thread = RuntimeThread::spawn("streamlab-receiver", move || async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => accept(listener, token, delivery, task_shared).await,
                Err(e) => eprintln!("streamlab receiver: cannot register {local_addr} with the runtime: {e}"),
            }
        })?;
        Ok(Self {
            local_addr,
            shared,
            thread,
        })
    }

    /// The address the engine's sink connects to (with the port actually bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Lines handed to the consumer so far.
    pub fn lines(&self) -> u64 {
        self.shared.lines.load(Ordering::Acquire)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refusals.count()
    }

    /// Waits until at least `sinks` sink connections have been accepted and have all ended, or
    /// `timeout` elapses; returns whether they did. Use it to know every output is in before
    /// stopping.
    pub fn wait_for_sinks(&self, sinks: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut counts = self.shared.sinks();
        loop {
            if counts.accepted >= sinks && counts.closed == counts.accepted {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            counts = self
                .shared
                .sink_closed
                .wait_timeout(counts, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Ends the receiver now (every task ends, every socket closes before this returns) and
    /// reports.
    pub fn stop(self) -> ReceiverReport {
        let _ = self.thread.stop();
        let counts = self.shared.sinks();
        ReceiverReport {
            lines: self.shared.lines.load(Ordering::Acquire),
            sinks: counts.accepted,
            sinks_closed: counts.closed,
            overlong: counts.overlong,
            refused: self.shared.refusals.count(),
            refusals: self.shared.refusals.kept(),
        }
    }
}

/// Accepts sink connections until the receiver is stopped.
async fn accept<C>(listener: TcpListener, token: RunToken, delivery: Arc<Delivery<C>>, shared: Arc<ReceiverShared>)
where
    C: FnMut(ReceivedLine<'_>) + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let (token, delivery, shared) = (token.clone(), Arc::clone(&delivery), Arc::clone(&shared));
        connections.spawn(async move {
            let mut reader = BufReader::with_capacity(64 * 1024, stream);
            let role = match tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut reader, &token, 0)).await {
                Ok(role) => role,
                Err(_) => Err(RefusalReason::Silent),
            };
            match role {
                Ok(Role::Sink) => {}
                Ok(Role::Partition(_)) | Err(RefusalReason::UnknownPartition(_)) => {
                    return shared.refusals.refuse(peer, RefusalReason::NotASink);
                }
                Err(reason) => return shared.refusals.refuse(peer, reason),
            }
            let sink = {
                let mut counts = shared.sinks();
                counts.accepted += 1;
                counts.accepted - 1
            };
            let overlong = read_lines(&mut reader, sink, &delivery, &shared).await;
            let mut counts = shared.sinks();
            counts.closed += 1;
            counts.overlong += u32::from(overlong);
            shared.sink_closed.notify_all();
        });
    }
}

/// Reads `reader` to its end, handing each line to the consumer; true if it stopped at an
/// overlong line.
async fn read_lines<R, C>(reader: &mut R, sink: u32, delivery: &Delivery<C>, shared: &ReceiverShared) -> bool
where
    R: AsyncBufRead + Unpin,
    C: FnMut(ReceivedLine<'_>),
{
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let complete = loop {
            let available = match reader.fill_buf().await {
                Ok(available) => available,
                Err(_) => break false,
            };
            if available.is_empty() {
                break false;
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let n = newline.map_or(available.len(), |i| i + 1);
            if line.len() + n > LINE_MAX + 1 {
                return true;
            }
            line.extend_from_slice(&available[..n]);
            reader.consume(n);
            if newline.is_some() {
                break true;
            }
        };
        if line.is_empty() {
            return false;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        {
            let mut consumer = delivery.consumer.lock().unwrap_or_else(|e| e.into_inner());
            let (stamp, warmup) = delivery.clock.stamp_now();
            consumer(ReceivedLine {
                stamp,
                warmup,
                sink,
                line: text,
            });
        }
        shared.lines.fetch_add(1, Ordering::Release);
        if !complete {
            return false;
        }
    }
}
