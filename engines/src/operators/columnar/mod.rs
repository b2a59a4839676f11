//! Columnar execution of a micro-batch map task: the filter, the lookup join and the partial
//! aggregation run a column at a time over chunks of a batch, as Spark's whole-stage and
//! columnar execution and Arrow-based engines (DataFusion, Velox, DuckDB) run them.
//!
//! **Why columns.** Row at a time, every event of a batch went through the whole chain before
//! the next one: the filter, the join probe, a 104-byte `Row` built and copied, the window
//! assignment (an integer division), a hash-table probe on `(key, window start)` and the
//! aggregate's update, with the branches of every operator interleaved. A batch already holds
//! its events, so the engine can run one operator over a chunk of them before the next: each
//! pass is a short loop that does one thing (no branch mispredicted per row, the compiler
//! keeps it in registers or vectorizes it), and the chunk stays in the cache between passes.
//!
//! **A selection vector** is the list of the chunk's row positions that are still alive: the
//! filter writes it (branch-free: every position is written, the count advances only for a
//! row that passes), the join probe reads it and compacts it where an ad has no campaign, the
//! aggregation reads it. No row is copied or materialized; the columns a later pass needs (the
//! campaign of each selected row, its grouping key and value) are written beside it, one
//! entry per selected row.
//!
//! The passes, one per file:
//!
//! * [`selection`] — the selection vector: the kind filter and the `where` predicates;
//! * [`probe`] — the lookup join probed over the ad column of the selected rows;
//! * [`chain`] — the two above as one chunk's stateless chain, which the per-record engine's
//!   source subtask runs too (it writes a row per selected position into its network buffer);
//! * [`partial`] — partial aggregation into the batch's table, a chunk at a time: one window
//!   assignment per run of rows in the same window (not a division per row), the key found
//!   by direct index for small non-negative keys (as vectorized engines aggregate a small
//!   integer domain into an array), by hash otherwise;
//! * [`scan`] — a map task's events chunk by chunk through the passes, with the event-time
//!   statistics the next watermark is computed from;
//! * [`selected`] — a stateless query's map task over the columns: which events reach the
//!   sink;
//! * [`columns`] — the scanned fields (kind, ad, event time, arrival) as columns, held by the
//!   source log beside its events (a log without them is scanned from its events in place).
//!
//! Invariants: the columnar path computes exactly what the row path does — the same selected
//! rows, the same partials (key, window, aggregate, the lineage of the latest-arriving row) in
//! the same order, the same late rows and event-time statistics (the tests in [`scan`] run
//! both over the same events); nothing is allocated per record (the chunk's columns are fixed
//! arrays reused from chunk to chunk, the tables grow per new key and window); chains with a
//! `convert` or a stream–stream join's inputs, and session windows, stay row at a time.

pub mod chain;
pub mod columns;
pub mod partial;
pub mod probe;
pub mod scan;
pub mod selected;
pub mod selection;

pub use chain::ChunkChain;
pub use columns::{EventColumns, HeldColumns};
pub use scan::{ColumnarScan, EventTimes, ScanOutput};
pub use selected::ColumnarSelect;

/// Rows per chunk: a chunk's events (64 bytes each) stay in the L2 cache between the passes,
/// its columns in L1.
pub const CHUNK: usize = 1024;
