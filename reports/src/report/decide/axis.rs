//! The swept key of a sweep report: which key the report plots and decides against, its values
//! in order, and each configuration's series along it.
//!
//! Why a room of its own: the scenario section, the plots and the sweep decision all read the
//! same axis. Invariants: the axis is the key with the most distinct values; numeric values
//! (numbers or durations) are ordered by value, others as first seen.

use std::collections::BTreeMap;

use super::super::{Config, Point};
use crate::plot::{SweepLine, SweepPoint};
use crate::results_dir::numeric_value;

/// The swept key the report plots against, and its values in increasing order.
pub(crate) struct SweepAxis {
    /// The scenario key, as given to `streamlab sweep --param`.
    pub key: String,
    /// Its distinct values, as written, sorted by numeric value when they are numbers.
    pub values: Vec<String>,
    /// Whether every value is a number or a duration.
    pub numeric: bool,
    /// Whether the values are durations (plotted in ms).
    duration: bool,
}

impl SweepAxis {
    /// The key with the most distinct values across the points (a grid's other keys become
    /// part of each configuration's name); `None` when no point states a value.
    pub fn of(points: &[Point]) -> Option<Self> {
        let mut distinct: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
        for p in points {
            for (k, v) in &p.values {
                let values = distinct.entry(k).or_default();
                if !values.contains(&v) {
                    values.push(v);
                }
            }
        }
        let (key, values) = distinct.into_iter().max_by_key(|(_, v)| v.len())?;
        let parsed: Vec<Option<(f64, bool)>> = values.iter().map(|v| numeric_value(v)).collect();
        let numeric = parsed.iter().all(Option::is_some);
        let duration = numeric && parsed.iter().flatten().any(|p| p.1);
        let mut values: Vec<String> = values.into_iter().cloned().collect();
        if numeric {
            values.sort_by(|a, b| {
                let x = |s: &String| numeric_value(s).map_or(0.0, |p| p.0);
                x(a).total_cmp(&x(b))
            });
        }
        Some(Self {
            key: key.clone(),
            values,
            numeric,
            duration,
        })
    }

    /// The x-axis title, with the unit.
    pub fn axis_title(&self) -> String {
        let key = self.key.to_lowercase();
        let unit = if self.duration {
            "ms"
        } else if key.contains("events_per_second") || key.contains("rate") || key.contains("throughput") {
            "events/s"
        } else if key.contains("size") || key.contains("bytes") {
            "bytes"
        } else {
            "count"
        };
        format!("{} ({unit})", self.key)
    }

    pub(super) fn value_at<'p>(&self, point: &'p Point) -> Option<&'p String> {
        point.values.get(&self.key)
    }

    fn x(&self, point: &Point) -> Option<f64> {
        self.value_at(point).and_then(|v| numeric_value(v)).map(|p| p.0)
    }

    fn rank(&self, point: &Point) -> usize {
        self.value_at(point)
            .and_then(|v| self.values.iter().position(|x| x == v))
            .unwrap_or(usize::MAX)
    }

    /// A configuration's name across the sweep: its run's name and the point's other keys.
    pub(super) fn series_name(&self, point: &Point, run_name: &str) -> String {
        let others: Vec<String> = point
            .values
            .iter()
            .filter(|(k, _)| **k != self.key)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if others.is_empty() {
            run_name.to_string()
        } else {
            format!("{run_name} ({})", others.join(", "))
        }
    }

    /// The configurations grouped into series, each ordered by the swept value: (name, indices
    /// into `configs`).
    pub(super) fn series(&self, points: &[Point], configs: &[Config<'_>]) -> Vec<(String, Vec<usize>)> {
        let mut series: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let name = self.series_name(&points[c.point], &c.run.name);
            match series.iter_mut().find(|(n, _)| *n == name) {
                Some((_, members)) => members.push(i),
                None => series.push((name, vec![i])),
            }
        }
        for (_, members) in &mut series {
            members.sort_by_key(|&i| self.rank(&points[configs[i].point]));
        }
        series
    }

    /// One plotted line per series.
    pub fn lines(&self, points: &[Point], configs: &[Config<'_>]) -> Vec<SweepLine> {
        self.series(points, configs)
            .into_iter()
            .map(|(name, members)| SweepLine {
                name,
                points: members
                    .iter()
                    .filter_map(|&i| {
                        let c = &configs[i];
                        Some(SweepPoint {
                            x: self.x(&points[c.point])?,
                            p50: c.run.latency_ms.p50,
                            p95: c.run.latency_ms.p95,
                            p99: c.run.latency_ms.p99,
                            throughput_eps: c.run.throughput_eps,
                        })
                    })
                    .collect(),
            })
            .collect()
    }
}
