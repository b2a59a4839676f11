//! The small keys of one run of rows ([`WindowStore::add_rows`]): for each key in
//! `0..RUN_KEYS` the run meets, its window's slot in the run's table and the run's
//! latest-arriving row for it.
//!
//! **Why.** A per-record window subtask adds a network buffer's rows (512 of them) in runs of
//! one tumbling window. Row at a time, each row probed the table's hash index for its key and
//! packed its lineage into the window (in a backlog nearly every row arrives after the one
//! before, so nearly every row replaced it). Keyed by a campaign, a buffer has about 100
//! distinct keys: here the first row of a key in a run probes the index, the others find its
//! slot by direct index, and a window's lineage is written once per run, from the run's
//! latest-arriving row (the last of those with the largest arrival: what keeping the latest
//! row by row leaves, `Lineage::keep_latest`).
//!
//! **Not state.** The entries are scratch, like the heap store's emission order: valid for one
//! run only (an entry counts when its run number is the current one), so nothing here outlives
//! a run or needs a checkpoint, and the state memory the store reports (its tables) is what it
//! was. Fixed size (`RUN_KEYS` entries, allocated on the first run); keys outside the range
//! (negative, or large such as a user or a session) take the row-at-a-time path.
//!
//! Invariants: after [`RunKeys::begin`] no entry is current; [`RunKeys::met`] lists the keys
//! met in the run in first-occurrence order, each once.
//!
//! [`WindowStore::add_rows`]: super::store::WindowStore::add_rows

/// Keys `0..RUN_KEYS` are found by direct index within a run (24 bytes each: 96 KiB).
pub(super) const RUN_KEYS: usize = 4096;

/// What a run knows of one small key.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RunKey {
    /// The run this entry belongs to (stale unless it is the current run).
    run: u32,
    /// The key's window's slot in the run's table.
    pub(super) slot: u32,
    /// Position in the run of its latest-arriving row so far.
    pub(super) latest: u32,
    /// That row's arrival.
    pub(super) arrival: u64,
}

impl RunKey {
    /// Keeps row `at` (arrived `arrival`) if it arrived no earlier than the latest so far.
    #[inline]
    pub(super) fn offer(&mut self, at: u32, arrival: u64) {
        if arrival >= self.arrival {
            self.latest = at;
            self.arrival = arrival;
        }
    }
}

/// The run's entries for keys `0..RUN_KEYS`, reused from run to run.
#[derive(Debug, Default)]
pub(super) struct RunKeys {
    entries: Vec<RunKey>,
    run: u32,
    met: Vec<u32>,
}

/// Where a key stands in the current run.
pub(super) enum Lookup<'a> {
    /// Met before in this run.
    Seen(&'a mut RunKey),
    /// A small key met for the first time in this run: fill it with [`RunKeys::first`].
    First(usize),
    /// Outside `0..RUN_KEYS`.
    Large,
}

impl RunKeys {
    /// Starts a run: no entry is current.
    #[inline]
    pub(super) fn begin(&mut self) {
        if self.entries.is_empty() {
            self.entries = vec![RunKey::default(); RUN_KEYS];
        }
        self.met.clear();
        self.run = self.run.wrapping_add(1);
        if self.run == 0 {
            // Run numbers wrapped: forget every entry so none from 2^32 runs ago looks current.
            self.entries.fill(RunKey::default());
            self.run = 1;
        }
    }

    /// Where `key` stands in this run.
    #[inline]
    pub(super) fn lookup(&mut self, key: i64) -> Lookup<'_> {
        let Some(i) = usize::try_from(key).ok().filter(|&i| i < RUN_KEYS) else {
            return Lookup::Large;
        };
        let run = self.run;
        let e = &mut self.entries[i];
        if e.run == run {
            Lookup::Seen(e)
        } else {
            Lookup::First(i)
        }
    }

    /// Records the first row of small key `i` in this run: its window's `slot`, the row's
    /// position `at` and its `arrival`.
    #[inline]
    pub(super) fn first(&mut self, i: usize, slot: u32, at: u32, arrival: u64) {
        self.entries[i] = RunKey {
            run: self.run,
            slot,
            latest: at,
            arrival,
        };
        self.met.push(i as u32);
    }

    /// The small keys met in this run, in first-occurrence order, with their entries.
    pub(super) fn met(&self) -> impl Iterator<Item = &RunKey> + '_ {
        self.met.iter().map(|&i| &self.entries[i as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_current_for_its_run_only() {
        let mut k = RunKeys::default();
        k.begin();
        assert!(matches!(k.lookup(7), Lookup::First(7)));
        k.first(7, 3, 0, 10);
        match k.lookup(7) {
            Lookup::Seen(e) => {
                e.offer(1, 10); // a tie: the later row wins
                e.offer(2, 9);
            }
            _ => panic!("key 7 was met in this run"),
        }
        let e = *k.met().next().expect("one key met");
        assert_eq!((e.slot, e.latest, e.arrival), (3, 1, 10));
        k.begin();
        assert!(matches!(k.lookup(7), Lookup::First(7)));
        assert_eq!(k.met().count(), 0);
        assert!(matches!(k.lookup(-1), Lookup::Large));
        assert!(matches!(k.lookup(RUN_KEYS as i64), Lookup::Large));
    }
}
