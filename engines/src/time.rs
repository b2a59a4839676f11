//! The two kinds of time every stream processor juggles.
//!
//! *Processing time* is the clock of the runtime: nanoseconds since the run started, read
//! only through a [`crate::runtime::Runtime`] (wall clock in live runs, virtual clock in
//! simulated ones). *Event time* is when a click happened at the user, in milliseconds since
//! the start of the workload; watermarks and windows live in event time. The workload
//! generator aligns the two origins, so `event_time_ms * 1_000_000` and a processing-time
//! instant can be compared directly (that is how event-time latency is computed).

/// Processing time, in nanoseconds since the start of a run.
pub type Nanos = u64;

/// Event time, in milliseconds since the start of the workload.
pub type EventTime = i64;

/// Nanoseconds in one millisecond.
pub const NANOS_PER_MS: u64 = 1_000_000;

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Converts milliseconds to nanoseconds.
pub const fn ms(ms: u64) -> Nanos {
    ms * NANOS_PER_MS
}

/// Converts nanoseconds to (fractional) milliseconds, for reporting.
pub fn as_ms(n: Nanos) -> f64 {
    n as f64 / NANOS_PER_MS as f64
}

/// The processing-time instant that corresponds to an event time (same origin).
pub fn event_time_as_nanos(t: EventTime) -> Nanos {
    (t.max(0) as u64).saturating_mul(NANOS_PER_MS)
}

/// A duration as written in scenario files: `"250ms"`, `"1s"`, `"2m"`, `"1h"`, `"500us"`,
/// `"0"`, or an integer number of milliseconds. Stored in nanoseconds.
///
/// # Examples
/// ```
/// use streamlab_engines::time::Span;
/// assert_eq!(Span::parse("1.5s").unwrap().nanos(), 1_500_000_000);
/// assert_eq!(Span::parse("100ms").unwrap().as_ms(), 100.0);
/// assert!(Span::parse("ten seconds").is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Nanos);

impl Span {
    /// The units a span may be written in, for error messages.
    pub const ALLOWED: &'static str =
        "a duration such as \"500us\", \"250ms\", \"1s\", \"1.5s\", \"2m\", \"1h\", or an integer number of milliseconds";

    /// Parses `"<number><unit>"` with unit `ns`, `us`, `ms`, `s`, `m` or `h`; a bare `0` is allowed.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(Span(0));
        }
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let value: f64 = num.parse().map_err(|_| format!("`{s}` is not {}", Self::ALLOWED))?;
        let scale = match unit.trim() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("`{s}` is not {}", Self::ALLOWED)),
        };
        let nanos = value * scale;
        if !nanos.is_finite() || nanos < 0.0 || nanos > u64::MAX as f64 / 2.0 {
            return Err(format!("`{s}` is out of range"));
        }
        Ok(Span(nanos.round() as Nanos))
    }

    /// The span in nanoseconds.
    pub fn nanos(self) -> Nanos {
        self.0
    }

    /// The span in (fractional) milliseconds.
    pub fn as_ms(self) -> f64 {
        as_ms(self.0)
    }

    /// The span in whole milliseconds (event-time arithmetic), rounded down.
    pub fn whole_ms(self) -> i64 {
        (self.0 / NANOS_PER_MS) as i64
    }

    /// A span of `ms` milliseconds.
    pub const fn from_ms(ms_: u64) -> Self {
        Span(ms(ms_))
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        if n == 0 {
            write!(f, "0")
        } else if n % NANOS_PER_SEC == 0 {
            write!(f, "{}s", n / NANOS_PER_SEC)
        } else if n % NANOS_PER_MS == 0 {
            write!(f, "{}ms", n / NANOS_PER_MS)
        } else if n % 1000 == 0 {
            write!(f, "{}us", n / 1000)
        } else {
            write!(f, "{n}ns")
        }
    }
}

impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(Span::ALLOWED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Span, E> {
                Span::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Span, E> {
                if v < 0 {
                    return Err(E::custom(format!("{v} is negative; expected {}", Span::ALLOWED)));
                }
                Ok(Span::from_ms(v as u64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span::from_ms(v))
            }
        }
        d.deserialize_any(V)
    }
}
