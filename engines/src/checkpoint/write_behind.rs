//! Durable files written behind the engine, on a thread of their own, in the order they were
//! handed over.
//!
//! Why: a simulated micro-batch query writes six files per batch (offsets, commit, sink marker,
//! the sink's batch file, a state delta per partition), each to a temporary name and renamed;
//! a simulated hour is 3,600 batches and over 20,000 files. Their cost is the file system's
//! (creating inodes — on this machine's journal-less ext4, right after a previous run's files
//! were deleted, several seconds of kernel time — and a `sync_data` per sink batch), not the
//! engine's, and on virtual time the cost model prices them anyway: done in line they only
//! made the engines' thread, the simulator's critical path, wait. Here the engines' thread
//! hands each file over and goes on; a writer thread creates them.
//!
//! Invariants: files are written exactly as in line (same bytes, same temporary name and
//! rename), one at a time, in the order handed over — so the directory is always what an
//! in-line writer would have left at some earlier instant. Anyone who reads the files back
//! first waits for every file handed over so far ([`WriteBehind::settle`]). The first failure
//! is kept and reported by the next [`WriteBehind::write`] or [`WriteBehind::settle`]; later
//! files are not written after it. Dropping the writer waits for the files in flight.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Sender};

/// Files handed over, at most, before [`WriteBehind::write`] waits for the writer (a few
/// batches' worth: memory stays bounded if the disk is slower than the engine).
const IN_FLIGHT: usize = 1024;

/// One job for the writer thread.
enum Job {
    /// Write `bytes` to `path` (through `path.tmp` and a rename), `sync` to disk first.
    File { path: PathBuf, bytes: Vec<u8>, sync: bool },
    /// Answer once every earlier job is done.
    Settle(Sender<()>),
}

/// A writer thread for durable files (see the module docs).
pub struct WriteBehind {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    failed: Arc<Mutex<Option<(PathBuf, std::io::Error)>>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteBehind")
    }
}

impl WriteBehind {
    /// Starts the writer thread.
    ///
    /// # Panics
    /// If the thread cannot be spawned.
    pub fn start() -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(IN_FLIGHT);
        let failed: Arc<Mutex<Option<(PathBuf, std::io::Error)>>> = Arc::default();
        let first_failure = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("write-behind".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::File { path, bytes, sync } => {
                            if first_failure.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                                continue;
                            }
                            if let Err(e) = write_atomically(&path, &bytes, sync) {
                                *first_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some((path, e));
                            }
                        }
                        Job::Settle(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .expect("spawn the write-behind thread");
        Self {
            jobs: Some(tx),
            failed,
            thread: Some(thread),
        }
    }

    /// Hands `bytes` over to be written to `path` (its parent directories created, through a
    /// temporary name and a rename; with `sync`, synced to disk before the rename). Fails with
    /// an earlier file's failure, if one failed.
    pub fn write(&self, path: PathBuf, bytes: Vec<u8>, sync: bool) -> Result<(), (PathBuf, std::io::Error)> {
        self.failure()?;
        let jobs = self.jobs.as_ref().expect("open until dropped");
        if jobs.send(Job::File { path, bytes, sync }).is_err() {
            return Err(self.gone());
        }
        Ok(())
    }

    /// Waits until every file handed over so far is written; fails with the first that was not.
    pub fn settle(&self) -> Result<(), (PathBuf, std::io::Error)> {
        let (tx, rx) = unbounded();
        let jobs = self.jobs.as_ref().expect("open until dropped");
        if jobs.send(Job::Settle(tx)).is_err() || rx.recv().is_err() {
            return Err(self.gone());
        }
        self.failure()
    }

    fn failure(&self) -> Result<(), (PathBuf, std::io::Error)> {
        match &*self.failed.lock().unwrap_or_else(|e| e.into_inner()) {
            None => Ok(()),
            Some((path, e)) => Err((path.clone(), std::io::Error::new(e.kind(), e.to_string()))),
        }
    }

    fn gone(&self) -> (PathBuf, std::io::Error) {
        (
            PathBuf::from("write-behind"),
            std::io::Error::other("the write-behind thread has stopped"),
        )
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes `bytes` to `path` atomically, the one way a checkpoint file is written (in line by
/// `CheckpointDir`, or on the writer thread): parents created, `path.tmp` written (and synced
/// with `sync`), then renamed over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    drop(file);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_in_order_and_settles() {
        let dir = std::env::temp_dir().join(format!("streamlab-write-behind-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let w = WriteBehind::start();
        for i in 0..50u32 {
            w.write(dir.join(format!("a/{}", i % 5)), i.to_string().into_bytes(), i % 7 == 0)
                .unwrap();
        }
        w.settle().unwrap();
        for i in 0..5u32 {
            assert_eq!(
                fs::read_to_string(dir.join(format!("a/{i}"))).unwrap(),
                (45 + i).to_string()
            );
            assert!(!dir.join(format!("a/{i}.tmp")).exists());
        }
        drop(w);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failure_is_reported_and_stops_later_files() {
        let dir = std::env::temp_dir().join(format!("streamlab-write-behind-fail-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // A file where a directory is needed.
        fs::write(dir.join("blocker"), b"x").unwrap();
        let w = WriteBehind::start();
        w.write(dir.join("blocker/inside"), b"1".to_vec(), false).unwrap();
        let (path, _) = w.settle().unwrap_err();
        assert_eq!(path, dir.join("blocker/inside"));
        assert!(w.write(dir.join("later"), b"2".to_vec(), false).is_err());
        w.settle().unwrap_err();
        assert!(!dir.join("later").exists());
        drop(w);
        fs::remove_dir_all(&dir).unwrap();
    }
}
