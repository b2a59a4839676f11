//! The handshake every connection starts with (`STREAMLAB <token> <partition|sink>`), and the
//! log of refused connections.
//!
//! Only a connection that presents the run's token is ever fed or read: on a cluster the
//! servers may listen on a routable address, and a stray client must neither receive the
//! workload nor inject outputs. The hello line is bounded in length and in time, so a silent or
//! garbage-spewing client costs one short-lived task and nothing else. Refusals are counted
//! without bound but logged (stderr and the report) only for the first [`REFUSALS_KEPT`], so a
//! port scanner cannot flood either.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::{FeederError, HELLO};

/// Longest hello line accepted, bytes (the `\n` included).
const HELLO_MAX: usize = 256;

/// How long a new connection has to send its hello line.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Refusals kept in the report and written to stderr; later ones are only counted.
pub const REFUSALS_KEPT: usize = 32;

/// The secret a client presents to be fed or to deliver outputs: one word of printable ASCII.
#[derive(Clone, PartialEq, Eq)]
pub struct RunToken(String);

impl RunToken {
    /// Accepts `token` if it is 1 to 128 printable ASCII characters without spaces.
    pub fn new(token: impl Into<String>) -> Result<Self, FeederError> {
        let token = token.into();
        let reason = if token.is_empty() {
            Some("empty; a token is 1 to 128 printable ASCII characters without spaces")
        } else if token.len() > 128 {
            Some("longer than 128 characters")
        } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
            Some("only printable ASCII characters without spaces are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(FeederError::InvalidToken { token, reason }),
            None => Ok(Self(token)),
        }
    }

    /// A fresh 128-bit token in hex, drawn from the process's randomly keyed hasher (not a
    /// cryptographic secret; it keeps strays and other runs out, not an attacker on the host).
    pub fn generate() -> Self {
        let word = || {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        };
        Self(format!("{:016x}{:016x}", word(), word()))
    }

    /// The token as sent in the handshake.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RunToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunToken(..)")
    }
}

/// What a connection asked to be, once its hello line checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A reader of this source partition.
    Partition(u32),
    /// A writer of outputs.
    Sink,
}

/// Why a connection was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// The first line was not `STREAMLAB <token> <partition|sink>` (or was too long).
    NotAHello,
    /// No hello line within the handshake timeout, or the client closed first.
    Silent,
    /// The token was not the run's.
    WrongToken,
    /// A partition number the feeder does not serve (or `sink` at the feeder).
    UnknownPartition(String),
    /// The partition already has a connection.
    DuplicatePartition(u32),
    /// The partition connected after the schedule had started.
    AfterStart(u32),
    /// A partition hello at the receiver, which only takes sinks.
    NotASink,
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAHello => write!(f, "the first line is not `{HELLO} <token> <partition|sink>`"),
            Self::Silent => write!(f, "no hello line within {HELLO_TIMEOUT:?}"),
            Self::WrongToken => write!(f, "wrong run token"),
            Self::UnknownPartition(p) => write!(f, "`{p}` is not a partition of this run"),
            Self::DuplicatePartition(p) => write!(f, "partition {p} is already connected"),
            Self::AfterStart(p) => write!(f, "partition {p} connected after the schedule started"),
            Self::NotASink => write!(f, "a partition hello at the output receiver, which takes `sink`"),
        }
    }
}

/// One refused connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Who connected.
    pub peer: SocketAddr,
    /// Why it was refused.
    pub reason: RefusalReason,
}

/// Counts every refusal and keeps (and writes to stderr) the first [`REFUSALS_KEPT`].
#[derive(Debug)]
pub(crate) struct RefusalLog {
    server: &'static str,
    count: AtomicU64,
    kept: Mutex<Vec<Refusal>>,
}

impl RefusalLog {
    pub(crate) fn new(server: &'static str) -> Self {
        Self {
            server,
            count: AtomicU64::new(0),
            kept: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn refuse(&self, peer: SocketAddr, reason: RefusalReason) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < REFUSALS_KEPT {
            eprintln!("streamlab {}: refused a connection from {peer}: {reason}", self.server);
            kept.push(Refusal { peer, reason });
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn kept(&self) -> Vec<Refusal> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads and checks the hello line from `reader` (bounded in length; the caller bounds it in
/// time). Bytes after the line stay in `reader`'s buffer.
pub(crate) async fn read_hello<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    token: &RunToken,
    partitions: u32,
) -> Result<Role, RefusalReason> {
    let mut line = Vec::with_capacity(64);
    loop {
        let available = reader.fill_buf().await.map_err(|_| RefusalReason::Silent)?;
        if available.is_empty() {
            return Err(if line.is_empty() {
                RefusalReason::Silent
            } else {
                RefusalReason::NotAHello
            });
        }
        let take = available.iter().position(|&b| b == b'\n').map(|i| i + 1);
        let n = take.unwrap_or(available.len());
        if line.len() + n > HELLO_MAX {
            return Err(RefusalReason::NotAHello);
        }
        line.extend_from_slice(&available[..n]);
        reader.consume(n);
        if take.is_some() {
            break;
        }
    }
    parse_hello(&line, token, partitions)
}

fn parse_hello(line: &[u8], token: &RunToken, partitions: u32) -> Result<Role, RefusalReason> {
    let text = std::str::from_utf8(line).map_err(|_| RefusalReason::NotAHello)?;
    let mut words = text.trim_end_matches(['\n', '\r']).split(' ');
    let (Some(HELLO), Some(presented), Some(role), None) = (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(RefusalReason::NotAHello);
    };
    if presented != token.as_str() {
        return Err(RefusalReason::WrongToken);
    }
    if role == "sink" {
        return Ok(Role::Sink);
    }
    match role.parse::<u32>() {
        Ok(p) if p < partitions => Ok(Role::Partition(p)),
        _ => Err(RefusalReason::UnknownPartition(role.chars().take(32).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> RunToken {
        RunToken::new("s3cret").unwrap()
    }

    #[test]
    fn a_hello_names_a_partition_or_the_sink() {
        assert_eq!(
            parse_hello(b"STREAMLAB s3cret 2\n", &token(), 3),
            Ok(Role::Partition(2))
        );
        assert_eq!(parse_hello(b"STREAMLAB s3cret sink\r\n", &token(), 3), Ok(Role::Sink));
    }

    #[test]
    fn a_hello_with_a_wrong_token_or_partition_is_refused_with_its_reason() {
        assert_eq!(
            parse_hello(b"STREAMLAB other 0\n", &token(), 3),
            Err(RefusalReason::WrongToken)
        );
        assert_eq!(
            parse_hello(b"STREAMLAB s3cret 3\n", &token(), 3),
            Err(RefusalReason::UnknownPartition("3".into()))
        );
        assert_eq!(
            parse_hello(b"HELLO s3cret 0\n", &token(), 3),
            Err(RefusalReason::NotAHello)
        );
        assert_eq!(
            parse_hello(b"STREAMLAB s3cret 0 x\n", &token(), 3),
            Err(RefusalReason::NotAHello)
        );
    }

    #[test]
    fn a_token_is_one_printable_word() {
        assert!(RunToken::new("").is_err());
        assert!(RunToken::new("two words").is_err());
        assert!(RunToken::new("ok-token_1").is_ok());
        let generated = RunToken::generate();
        assert_eq!(generated.as_str().len(), 32);
        assert!(RunToken::new(generated.as_str()).is_ok());
    }
}
