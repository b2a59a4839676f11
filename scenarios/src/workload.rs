//! The input every engine run of a scenario reads: generated from the seed (the clickstream or
//! Nexmark generator) or read from a trace, handed out whole (live runs) or in arrival-ordered pieces (long simulated runs keep
//! only a window of it in memory).

use streamlab_engines::dimension::CampaignTable;
use streamlab_engines::event::Event;
use streamlab_engines::live_source::{EventFeed, FeedFactory};
use streamlab_engines::source::SourceLog;
use streamlab_engines::time::{Nanos, Span};
use streamlab_workloads::{ClickstreamConfig, ClickstreamGenerator, NexmarkGenerator, NexmarkWorkload, RateProfile};

use crate::error_run::{Result, RunError};
use crate::failures;
use crate::spec::{Scenario, WorkloadSpec};

/// A scenario's workload for one seed and duration.
#[derive(Debug)]
pub struct Workload {
    /// The campaign dimension table of the lookup join.
    pub table: CampaignTable,
    /// Number of source partitions.
    pub partitions: usize,
    /// Events arrive before this instant.
    pub duration: Nanos,
    /// Source outages `[from, to)` from the scenario's `source_outage` failures.
    pub outages: Vec<(Nanos, Nanos)>,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Generated { cfg: Generator, seed: u64 },
    Trace(Vec<Event>),
}

/// A seeded generator's configuration.
#[derive(Clone, Debug)]
enum Generator {
    Clickstream(ClickstreamConfig),
    Nexmark(NexmarkWorkload),
}

impl Generator {
    fn rate(&self) -> &RateProfile {
        match self {
            Self::Clickstream(c) => &c.rate,
            Self::Nexmark(n) => &n.rate,
        }
    }

    fn backlog(&self) -> bool {
        match self {
            Self::Clickstream(c) => c.backlog,
            Self::Nexmark(n) => n.backlog,
        }
    }
}

impl Workload {
    /// The workload of `scenario` with `seed` over `duration`. A trace is read (and checked)
    /// here; a generated workload is produced on demand.
    pub fn build(scenario: &Scenario, seed: u64, duration: Span) -> Result<Self> {
        let duration = duration.nanos();
        let outages = failures::source_outages(&scenario.failures);
        let spikes = failures::rate_spikes(&scenario.failures);
        let mut spec = scenario.workload.clone();
        if let (Some(spike), Some(rate)) = (spikes.first(), scenario.workload.rate()) {
            let refuse = |message: &str| RunError::Unsupported {
                path: scenario.path.clone(),
                message: format!("key `failure` (rate_spike): {message}"),
            };
            if spikes.len() > 1 {
                return Err(refuse("one rate spike per scenario; for more, write the rate profile"));
            }
            let RateProfile::Constant { events_per_second } = *rate else {
                return Err(refuse(
                    "a spike rides on a constant rate; this workload's rate profile is not constant",
                ));
            };
            spec = spec.with_rate(RateProfile::Spike {
                base: events_per_second,
                peak: events_per_second * spike.factor.unwrap_or(1.0),
                at: spike.at.unwrap_or_default(),
                duration: spike.duration.unwrap_or_default(),
            });
        }
        Ok(match spec {
            WorkloadSpec::Clickstream(cfg) => Workload {
                table: streamlab_workloads::campaign_table(&cfg, seed),
                partitions: cfg.partitions as usize,
                duration,
                outages,
                source: Source::Generated {
                    cfg: Generator::Clickstream(cfg),
                    seed,
                },
            },
            WorkloadSpec::Nexmark(cfg) => Workload {
                // Nexmark has no lookup join: the default campaign table, as for a trace.
                table: streamlab_workloads::campaign_table(&ClickstreamConfig::default(), seed),
                partitions: cfg.partitions as usize,
                duration,
                outages,
                source: Source::Generated {
                    cfg: Generator::Nexmark(cfg),
                    seed,
                },
            },
            WorkloadSpec::Trace { path } => {
                let events: Vec<Event> = streamlab_workloads::read_trace(&path)?
                    .into_iter()
                    .filter(|e| e.arrival < duration)
                    .collect();
                if !spikes.is_empty() {
                    return Err(RunError::Unsupported {
                        path: scenario.path.clone(),
                        message: "key `failure` (rate_spike): a trace's rate cannot be changed".into(),
                    });
                }
                Workload {
                    table: streamlab_workloads::campaign_table(&ClickstreamConfig::default(), seed),
                    partitions: events.iter().map(|e| e.partition as usize + 1).max().unwrap_or(1),
                    duration,
                    outages,
                    source: Source::Trace(events),
                }
            }
        })
    }

    /// Every event, in arrival order (all arrived at 0 for a backlog).
    pub fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        self.feed().fill_until(Nanos::MAX, &mut out);
        if self.backlog() {
            out.iter_mut().for_each(|e| e.arrival = 0);
        }
        out
    }

    /// Whether every event is in the source from the start (`workload.backlog`).
    pub fn backlog(&self) -> bool {
        matches!(&self.source, Source::Generated { cfg, .. } if cfg.backlog())
    }

    /// How many events the workload has: exact for a trace; for the generator, the rate
    /// profile's integral over the duration (its schedule puts an arrival at every integer
    /// crossing, so this is exact up to one event).
    pub fn expected_events(&self) -> u64 {
        match &self.source {
            Source::Trace(events) => events.len() as u64,
            Source::Generated { cfg, .. } => cfg.rate().cumulative(self.duration).floor() as u64,
        }
    }

    /// Where a segment starting at `from` should end so that it holds at most about
    /// `max_events` events and lasts at most `max_len`: long simulated runs at high rates keep
    /// memory bounded by events, not by time.
    pub fn segment_end(&self, from: Nanos, max_len: Nanos, max_events: f64) -> Nanos {
        let Source::Generated { cfg, .. } = &self.source else {
            return from.saturating_add(max_len);
        };
        let rate = cfg.rate();
        let base = rate.cumulative(from);
        let mut len = max_len;
        while len > 1_000_000 && rate.cumulative(from.saturating_add(len)) - base > max_events {
            len /= 2;
        }
        from.saturating_add(len)
    }

    /// The whole log, with the fields a columnar map task scans held as columns too
    /// ([`SourceLog::hold_scan_columns`]: 13 bytes per event beside the 64 of the event).
    pub fn full_log(&self) -> SourceLog {
        let mut log = SourceLog::from_events(self.partitions, []);
        // Before the events: each event's columns are written while it is in the cache.
        log.hold_scan_columns();
        log.append(self.events());
        log.set_outages(self.outages.clone());
        log
    }

    /// Makes generators of this workload from its start, independent of `self` (a live
    /// source's producer and its regenerations own them): `None` for a trace (read whole) and
    /// for a backlog (all of it is in the source at the start, as a topic's data at rest).
    pub fn feed_factory(&self) -> Option<Box<FeedFactory>> {
        let Source::Generated { cfg, seed } = &self.source else {
            return None;
        };
        if cfg.backlog() {
            return None;
        }
        let (cfg, seed, duration) = (cfg.clone(), *seed, self.duration);
        Some(Box::new(move || -> Box<dyn EventFeed> {
            let inner = match &cfg {
                Generator::Clickstream(c) => FeedInner::Generated(Box::new(ClickstreamGenerator::new(c, seed))),
                Generator::Nexmark(n) => FeedInner::Nexmark(Box::new(NexmarkGenerator::new(n, seed))),
            };
            Box::new(Feed { inner, duration })
        }))
    }

    /// The events from the start, piece by piece.
    pub fn feed(&self) -> Feed<'_> {
        let inner = match &self.source {
            Source::Generated {
                cfg: Generator::Clickstream(cfg),
                seed,
            } => FeedInner::Generated(Box::new(ClickstreamGenerator::new(cfg, *seed))),
            Source::Generated {
                cfg: Generator::Nexmark(cfg),
                seed,
            } => FeedInner::Nexmark(Box::new(NexmarkGenerator::new(cfg, *seed))),
            Source::Trace(events) => FeedInner::Trace(events, 0),
        };
        Feed {
            inner,
            duration: self.duration,
        }
    }
}

/// Hands out a workload's events in arrival order, a time range at a time.
pub struct Feed<'a> {
    inner: FeedInner<'a>,
    duration: Nanos,
}

enum FeedInner<'a> {
    Generated(Box<ClickstreamGenerator>),
    Nexmark(Box<NexmarkGenerator>),
    Trace(&'a [Event], usize),
}

impl Feed<'_> {
    /// Appends every event not yet handed out whose arrival is before `until` (and before the
    /// workload's duration).
    pub fn fill_until(&mut self, until: Nanos, out: &mut Vec<Event>) {
        let until = until.min(self.duration);
        match &mut self.inner {
            FeedInner::Generated(g) => g.fill_until(until, out),
            FeedInner::Nexmark(g) => g.fill_until(until, out),
            FeedInner::Trace(events, pos) => {
                let end = *pos + events[*pos..].partition_point(|e| e.arrival < until);
                out.extend_from_slice(&events[*pos..end]);
                *pos = end;
            }
        }
    }
}

impl EventFeed for Feed<'static> {
    fn fill_until(&mut self, until: Nanos, out: &mut Vec<Event>) {
        Feed::fill_until(self, until, out);
    }
}
