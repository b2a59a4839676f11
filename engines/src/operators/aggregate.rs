//! The state of one aggregate function over one window and key.
//!
//! Count, sum, min, max and avg keep a few integers; distinct count keeps the exact set of
//! values (a boxed set, so the common case stays small). States merge, which session windows
//! need when a record bridges two sessions.

use crate::operators::fxhash::FxHashSet;
use crate::pipeline::AggFunc;

/// Running state of an aggregate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AggState {
    /// Records seen.
    pub count: u64,
    sum: i64,
    min: i64,
    max: i64,
    distinct: Option<Box<FxHashSet<i64>>>,
}

impl AggState {
    /// Adds one value (ignored by `count`).
    #[inline]
    pub fn add(&mut self, func: AggFunc, value: i64) {
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum = self.sum.wrapping_add(value);
        if func == AggFunc::DistinctCount {
            self.distinct.get_or_insert_with(Default::default).insert(value);
        }
    }

    /// Folds `other` into `self`.
    pub fn merge(&mut self, other: AggState) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other;
            return;
        }
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if let Some(o) = other.distinct {
            self.distinct
                .get_or_insert_with(Default::default)
                .extend(o.iter().copied());
        }
    }

    /// The aggregate's current value.
    pub fn value(&self, func: AggFunc) -> f64 {
        match func {
            AggFunc::Count => self.count as f64,
            AggFunc::Sum => self.sum as f64,
            AggFunc::Min => self.min as f64,
            AggFunc::Max => self.max as f64,
            AggFunc::Avg if self.count == 0 => 0.0,
            AggFunc::Avg => self.sum as f64 / self.count as f64,
            AggFunc::DistinctCount => self.distinct.as_ref().map_or(0, |d| d.len()) as f64,
        }
    }

    /// Appends the state's binary encoding (little-endian: count, sum, min, max, then the number
    /// of distinct values and the values, sorted so the encoding is deterministic).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.count as i64, self.sum, self.min, self.max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let mut distinct: Vec<i64> = self
            .distinct
            .as_ref()
            .map_or_else(Vec::new, |d| d.iter().copied().collect());
        distinct.sort_unstable();
        out.extend_from_slice(&(distinct.len() as u64).to_le_bytes());
        for v in distinct {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads a state written by [`AggState::encode`]; `None` if `input` is too short.
    pub fn decode(input: &mut &[u8]) -> Option<Self> {
        let mut next = || -> Option<i64> {
            let (head, rest) = input.split_first_chunk::<8>()?;
            *input = rest;
            Some(i64::from_le_bytes(*head))
        };
        let (count, sum, min, max, n) = (next()?, next()?, next()?, next()?, next()?);
        let distinct = if n > 0 {
            let mut set = FxHashSet::default();
            for _ in 0..n {
                set.insert(next()?);
            }
            Some(Box::new(set))
        } else {
            None
        };
        Some(Self {
            count: count as u64,
            sum,
            min,
            max,
            distinct,
        })
    }

    /// Approximate heap bytes held (for the `stateOperators` memory figure).
    pub fn heap_bytes(&self) -> usize {
        self.distinct.as_ref().map_or(0, |d| d.capacity() * 16)
    }
}
