//! The state of one aggregate function over one window and key.
//!
//! Count, sum, min, max and avg keep a count and one running value; distinct count keeps the
//! exact set of values (a boxed set, so the common case stays small). States merge, which
//! session windows need when a record bridges two sessions and the final aggregation needs
//! for map-side partials. The function is not stored: the operator knows it, and passes it.

use crate::operators::fxhash::FxHashSet;
use crate::pipeline::AggFunc;

/// Running state of an aggregate: the record count, the one running value the function needs
/// (sum for `sum` and `avg`, the minimum or maximum for `min` and `max`; unused by `count` and
/// `distinct_count`) and, for `distinct_count` only, the set of values. 24 bytes plus the set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AggState {
    /// Records seen.
    pub count: u64,
    pub(crate) value: i64,
    pub(crate) distinct: Option<Box<FxHashSet<i64>>>,
}

impl AggState {
    /// Adds one value (ignored by `count`).
    #[inline]
    pub fn add(&mut self, func: AggFunc, value: i64) {
        add_to_parts(func, &mut self.count, &mut self.value, Some(&mut self.distinct), value);
    }

    /// Folds `other` (a state of the same function) into `self`.
    pub fn merge(&mut self, func: AggFunc, other: AggState) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other;
            return;
        }
        match func {
            AggFunc::Count => {}
            AggFunc::Sum | AggFunc::Avg => self.value = self.value.wrapping_add(other.value),
            AggFunc::Min => self.value = self.value.min(other.value),
            AggFunc::Max => self.value = self.value.max(other.value),
            AggFunc::DistinctCount => {
                if let Some(o) = other.distinct {
                    self.distinct
                        .get_or_insert_with(Default::default)
                        .extend(o.iter().copied());
                }
            }
        }
        self.count += other.count;
    }

    /// The aggregate's current value.
    pub fn value(&self, func: AggFunc) -> f64 {
        match func {
            AggFunc::Count => self.count as f64,
            AggFunc::Sum | AggFunc::Min | AggFunc::Max => self.value as f64,
            AggFunc::Avg if self.count == 0 => 0.0,
            AggFunc::Avg => self.value as f64 / self.count as f64,
            AggFunc::DistinctCount => self.distinct.as_ref().map_or(0, |d| d.len()) as f64,
        }
    }

    /// Appends the state's binary encoding (little-endian: count, running value, then the number
    /// of distinct values and the values, sorted so the encoding is deterministic).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.count as i64, self.value] {
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
        let (count, value, n) = (next()?, next()?, next()?);
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
            value,
            distinct,
        })
    }

    /// Approximate heap bytes held (for the `stateOperators` memory figure).
    pub fn heap_bytes(&self) -> usize {
        self.distinct.as_ref().map_or(0, |d| d.capacity() * 16)
    }
}

/// [`AggState::add`] on an aggregate held in parts, as a column table holds it: the count, the
/// running value and (for `distinct_count`; `None` otherwise) the value set.
#[inline]
pub(crate) fn add_to_parts(
    func: AggFunc,
    count: &mut u64,
    running: &mut i64,
    distinct: Option<&mut Option<Box<FxHashSet<i64>>>>,
    value: i64,
) {
    match func {
        AggFunc::Count => {}
        AggFunc::Sum | AggFunc::Avg => *running = running.wrapping_add(value),
        AggFunc::Min if *count == 0 || value < *running => *running = value,
        AggFunc::Max if *count == 0 || value > *running => *running = value,
        AggFunc::Min | AggFunc::Max => {}
        AggFunc::DistinctCount => {
            if let Some(set) = distinct {
                set.get_or_insert_with(Default::default).insert(value);
            }
        }
    }
    *count += 1;
}
