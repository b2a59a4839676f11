//! Tests of the LSM state store: point behaviour, then a differential test against a
//! `BTreeMap` model over seeded random operations (as differential-dataflow's reference
//! tests do), then checkpoints and the refusal of damaged files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::*;
use crate::checkpoint::crc32;

/// A fresh directory under the system temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("streamlab-state-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Small memtable and blocks, so a few hundred writes make many multi-block runs.
fn small() -> LsmOptions {
    LsmOptions {
        memtable_bytes: 600,
        block_bytes: 128,
        sync_checkpoints: false,
        ..LsmOptions::default()
    }
}

/// The reference: the visible contents, with the same TTL rule.
#[derive(Clone, Debug, Default)]
struct Model {
    map: BTreeMap<Vec<u8>, (Vec<u8>, Option<i64>)>,
    watermark: Option<i64>,
}

impl Model {
    fn visible(&self, expiry: &Option<i64>) -> bool {
        match (expiry, self.watermark) {
            (Some(e), Some(wm)) => *e > wm,
            _ => true,
        }
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map
            .get(key)
            .filter(|(_, e)| self.visible(e))
            .map(|(v, _)| v.clone())
    }

    fn scan(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map
            .iter()
            .filter(|(_, (_, e))| self.visible(e))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:04}").into_bytes()
}

#[test]
fn crc32_matches_the_ieee_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn put_get_delete_work_across_memtable_and_runs() {
    let dir = TestDir::new("basic");
    let mut store = LsmStore::open(&dir.join("work"), small()).unwrap();
    for i in 0..100 {
        store.put(&key(i), format!("value-{i}").as_bytes()).unwrap();
    }
    assert!(
        store.stats().runs >= 2,
        "the small memtable must have flushed: {:?}",
        store.stats()
    );
    for i in (0..100).step_by(3) {
        store.delete(&key(i)).unwrap();
    }
    for i in 0..100 {
        let expected = (i % 3 != 0).then(|| format!("value-{i}").into_bytes());
        assert_eq!(store.get(&key(i)).unwrap(), expected, "key {i}");
    }
    store.flush().unwrap();
    assert_eq!(store.stats().memtable_entries, 0);
    assert_eq!(
        store.get(&key(3)).unwrap(),
        None,
        "a tombstone in a run hides the older run's value"
    );
    assert_eq!(store.get(&key(4)).unwrap(), Some(b"value-4".to_vec()));
    assert_eq!(store.get(b"absent").unwrap(), None);
    assert_eq!(store.scan().unwrap().len(), 100 - 34);
    assert!(store.stats().run_block_reads > 0);
}

#[test]
fn newer_run_shadows_older_and_bottom_compaction_drops_dead_versions() {
    let dir = TestDir::new("shadow");
    let mut store = LsmStore::open(&dir.join("work"), small()).unwrap();
    store.put(b"k", b"v1").unwrap();
    store.put(b"gone", b"x").unwrap();
    store.flush().unwrap();
    store.put(b"k", b"v2").unwrap();
    store.delete(b"gone").unwrap();
    store.flush().unwrap();
    assert_eq!(store.stats().runs, 2);
    assert_eq!(store.get(b"k").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(store.get(b"gone").unwrap(), None);
    assert_eq!(store.stats().run_entries, 4);

    let progress = store.compact_fully().unwrap();
    assert!(progress.idle);
    assert_eq!(store.stats().runs, 1);
    // v1 (shadowed), x (shadowed) and the tombstone (at the bottom) are gone.
    assert_eq!(store.stats().run_entries, 1);
    assert_eq!(store.get(b"k").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(store.get(b"gone").unwrap(), None);
    assert_eq!(
        std::fs::read_dir(store.dir()).unwrap().count(),
        1,
        "merged inputs are deleted"
    );
}

#[test]
fn compaction_step_reads_at_most_its_budget_plus_one_block_per_input() {
    let dir = TestDir::new("budget");
    let mut store = LsmStore::open(&dir.join("work"), small()).unwrap();
    for i in 0..400 {
        store.put(&key(i % 150), &[i as u8; 20]).unwrap();
    }
    store.flush().unwrap();
    let max_entry = 4 + 8 + 1 + 4 + 20;
    let mut steps = 0;
    loop {
        let p = store.compact_step(256).unwrap();
        // An input block is at most block_bytes plus one entry; two inputs per tier merge.
        assert!(
            p.bytes_read <= 256 + 2 * (128 + max_entry),
            "step read {} bytes",
            p.bytes_read
        );
        steps += 1;
        if p.idle {
            break;
        }
    }
    assert!(steps > 3, "the work was spread over several steps");
    for i in 0..150 {
        let last = (0..400).filter(|j| j % 150 == i).max().unwrap();
        assert_eq!(store.get(&key(i)).unwrap(), Some(vec![last as u8; 20]));
    }
}

#[test]
fn ttl_hides_expired_entries_and_compaction_drops_them() {
    let dir = TestDir::new("ttl");
    let mut store = LsmStore::open(&dir.join("work"), small()).unwrap();
    store.put(b"old", b"stale").unwrap();
    store.flush().unwrap();
    store.put_expiring(b"old", b"fresh", 100).unwrap(); // shadows "stale" until it expires
    store.put_expiring(b"mid", b"m", 200).unwrap();
    store.put(b"forever", b"f").unwrap();
    store.flush().unwrap();
    store.set_watermark(150);
    assert_eq!(
        store.get(b"old").unwrap(),
        None,
        "expired, and the older value must not resurface"
    );
    assert_eq!(store.get(b"mid").unwrap(), Some(b"m".to_vec()));
    store.set_watermark(120); // ignored: the watermark never goes back
    assert_eq!(store.watermark(), Some(150));

    store.compact_fully().unwrap();
    assert_eq!(store.get(b"old").unwrap(), None);
    assert_eq!(
        store.stats().run_entries,
        2,
        "the expired put and the value it shadowed are dropped"
    );

    store.set_watermark(200);
    assert_eq!(store.get(b"mid").unwrap(), None);
    let p = store.compact_fully().unwrap();
    assert_eq!(
        p.merges_completed, 1,
        "a lone run holding an expired entry is rewritten"
    );
    assert_eq!(store.stats().run_entries, 1);
    assert_eq!(store.scan().unwrap(), vec![(b"forever".to_vec(), b"f".to_vec())]);
}

/// Seeded random puts (some expiring), deletes, gets, compaction steps, flushes, watermark
/// advances, checkpoints and restores, checked against the model after every read.
fn differential(seed: u64, changelog: bool) {
    let dir = TestDir::new(&format!("diff-{seed}-{changelog}"));
    let root = dir.join("checkpoints");
    let options = LsmOptions {
        changelog,
        materialize_after_bytes: 3000,
        ..small()
    };
    let mut store = LsmStore::open(&dir.join("work-0"), options.clone()).unwrap();
    let mut model = Model::default();
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut wm = 0i64;
    let mut checkpoints = 0u64;
    let mut restores = 0;
    let mut kinds = [0; 2]; // checkpoints that uploaded [only a changelog tail, runs]
    for step in 0..5000 {
        let k = key(rng.random_range(0..150));
        match rng.random_range(0..100) {
            0..=44 => {
                let value: Vec<u8> = (0..rng.random_range(0..40)).map(|_| rng.random()).collect();
                if rng.random_bool(0.2) {
                    let expiry = wm + rng.random_range(1..300);
                    store.put_expiring(&k, &value, expiry).unwrap();
                    model.map.insert(k, (value, Some(expiry)));
                } else {
                    store.put(&k, &value).unwrap();
                    model.map.insert(k, (value, None));
                }
            }
            45..=59 => {
                store.delete(&k).unwrap();
                model.map.remove(&k);
            }
            60..=79 => assert_eq!(store.get(&k).unwrap(), model.get(&k), "seed {seed} step {step}"),
            80..=89 => {
                store.compact_step(rng.random_range(1..2048)).unwrap();
            }
            90..=92 => store.flush().unwrap(),
            93..=95 => {
                wm += rng.random_range(0..60);
                store.set_watermark(wm);
                model.watermark = Some(wm);
            }
            96..=97 => assert_eq!(store.scan().unwrap(), model.scan(), "seed {seed} step {step}"),
            _ => {
                checkpoints += 1;
                let stats = store.checkpoint(checkpoints, &root).unwrap();
                kinds[usize::from(stats.materialized)] += 1;
                if rng.random_bool(0.5) {
                    restores += 1;
                    let work = dir.join(&format!("work-{restores}"));
                    store = LsmStore::restore(&root, checkpoints, &work, options.clone()).unwrap();
                    assert_eq!(
                        store.scan().unwrap(),
                        model.scan(),
                        "seed {seed} restore at step {step}"
                    );
                }
            }
        }
    }
    assert!(checkpoints > 5 && restores > 0);
    assert_eq!(
        kinds[0] > 0,
        changelog,
        "changelog-tail checkpoints iff changelog mode: {kinds:?}"
    );
    assert!(
        kinds[1] > usize::from(changelog),
        "materializations happened: {kinds:?}"
    );
    store.compact_fully().unwrap();
    assert_eq!(store.scan().unwrap(), model.scan(), "seed {seed} after full compaction");
    let stats = store.stats();
    assert!(stats.runs <= 12, "tiers keep the run count logarithmic: {stats:?}");
    assert!(stats.compactions > 0 && stats.entries_dropped > 0, "{stats:?}");
}

#[test]
fn random_operations_match_a_btreemap_model() {
    for seed in 1..=3 {
        differential(seed, false);
    }
}

#[test]
fn random_operations_match_a_btreemap_model_in_changelog_mode() {
    for seed in 11..=13 {
        differential(seed, true);
    }
}

fn fill(store: &mut LsmStore, model: &mut Model, range: std::ops::Range<usize>, tag: &str) {
    for i in range {
        let value = format!("{tag}-{i}-{}", "x".repeat(40)).into_bytes();
        store.put(&key(i), &value).unwrap();
        model.map.insert(key(i), (value, None));
    }
}

#[test]
fn incremental_checkpoint_writes_only_new_runs_and_restores_the_model() {
    let dir = TestDir::new("incremental");
    let root = dir.join("checkpoints");
    let options = LsmOptions {
        memtable_bytes: 4096,
        ..small()
    };
    let mut store = LsmStore::open(&dir.join("work"), options.clone()).unwrap();
    let mut model = Model::default();
    fill(&mut store, &mut model, 0..2000, "a");
    store.compact_fully().unwrap();
    let first = store.checkpoint(1, &root).unwrap();
    assert_eq!(first.files_referenced, 0);
    assert!(first.bytes_written > 100_000, "{first:?}");

    fill(&mut store, &mut model, 0..10, "b");
    store.delete(&key(20)).unwrap();
    model.map.remove(&key(20));
    let second = store.checkpoint(2, &root).unwrap();
    assert_eq!(second.runs_uploaded, 1, "only the flushed memtable is new: {second:?}");
    assert!(
        second.bytes_written * 20 < first.bytes_written,
        "{first:?} vs {second:?}"
    );
    assert!(second.bytes_referenced > 100_000);
    assert_eq!(second.files_referenced, first.runs);

    let restored = LsmStore::restore(&root, 2, &dir.join("work-2"), options.clone()).unwrap();
    assert_eq!(restored.scan().unwrap(), model.scan());
    assert_eq!(restored.get(&key(5)).unwrap(), model.get(&key(5)));
    let old = LsmStore::restore(&root, 1, &dir.join("work-1"), options).unwrap();
    assert!(old.get(&key(20)).unwrap().is_some(), "checkpoint 1 predates the delete");
    assert!(matches!(
        store.checkpoint(2, &root),
        Err(StateError::CheckpointExists { id: 2, .. })
    ));
}

#[test]
fn changelog_checkpoint_uploads_only_the_log_tail_and_restores_the_model() {
    let dir = TestDir::new("changelog");
    let root = dir.join("checkpoints");
    let options = LsmOptions {
        memtable_bytes: 4096,
        changelog: true,
        materialize_after_bytes: 1 << 20,
        ..small()
    };
    let mut store = LsmStore::open(&dir.join("work"), options.clone()).unwrap();
    let mut model = Model::default();
    fill(&mut store, &mut model, 0..2000, "a");
    let first = store.checkpoint(1, &root).unwrap();
    assert!(first.materialized && first.bytes_written > 100_000, "{first:?}");
    let at_first = model.clone();

    fill(&mut store, &mut model, 0..10, "b");
    store.put_expiring(b"session", b"s", 50).unwrap();
    store.delete(&key(30)).unwrap();
    model.map.remove(&key(30));
    store.compact_fully().unwrap(); // new runs, but covered by the changelog
    let second = store.checkpoint(2, &root).unwrap();
    assert!(!second.materialized);
    assert_eq!(second.runs_uploaded, 0);
    assert!(
        second.changelog_bytes > 0 && second.changelog_bytes < 2000,
        "{second:?}"
    );
    assert!(second.bytes_written * 20 < first.bytes_written);
    assert!(store.stats().changelog_bytes > 100_000);

    store.set_watermark(50);
    model.map.insert(b"session".to_vec(), (b"s".to_vec(), Some(50)));
    model.watermark = Some(50);
    store.put(b"late", b"l").unwrap();
    model.map.insert(b"late".to_vec(), (b"l".to_vec(), None));
    let third = store.checkpoint(3, &root).unwrap();
    assert_eq!(
        third.files_referenced,
        first.runs + 1,
        "materialized runs and segment 2"
    );

    let restored = LsmStore::restore(&root, 3, &dir.join("work-3"), options.clone()).unwrap();
    assert_eq!(restored.scan().unwrap(), model.scan());
    assert_eq!(restored.get(b"session").unwrap(), None, "the watermark is restored too");
    let restored = LsmStore::restore(&root, 1, &dir.join("work-1"), options).unwrap();
    assert_eq!(restored.scan().unwrap(), at_first.scan());
}

/// A store with one checkpoint (id 1); returns the root and one of its run files.
fn checkpointed(dir: &TestDir) -> (PathBuf, PathBuf) {
    let root = dir.join("checkpoints");
    let mut store = LsmStore::open(&dir.join("work"), small()).unwrap();
    for i in 0..30 {
        store.put(&key(i), b"some value").unwrap();
    }
    store.flush().unwrap();
    store.compact_fully().unwrap();
    assert!(store.checkpoint(1, &root).unwrap().runs >= 1);
    let run = std::fs::read_dir(root.join("shared"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    drop(store);
    // Unlink the working copy, so damaging the (possibly hard-linked) checkpoint file is
    // what the restore sees, as if the checkpoint were damaged in storage.
    std::fs::remove_dir_all(dir.join("work")).unwrap();
    (root, run)
}

fn restore_error(root: &Path, dir: &TestDir) -> String {
    LsmStore::restore(root, 1, &dir.join("work-restored"), small())
        .unwrap_err()
        .to_string()
}

fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    // Remove first: the file may be hard-linked elsewhere.
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupted_run_file_is_refused_naming_the_file() {
    let dir = TestDir::new("corrupt-run");
    let (root, run) = checkpointed(&dir);
    let name = run.file_name().unwrap().to_string_lossy().to_string();
    rewrite(&run, |b| b[10] ^= 0xff);
    let err = restore_error(&root, &dir);
    assert!(err.contains(&name) && err.contains("checksum"), "{err}");
}

#[test]
fn run_with_bad_magic_or_unknown_version_is_refused_naming_the_file() {
    let dir = TestDir::new("magic");
    let (root, run) = checkpointed(&dir);
    let name = run.file_name().unwrap().to_string_lossy().to_string();
    let pristine = std::fs::read(&run).unwrap();
    rewrite(&run, |b| {
        let n = b.len();
        b[n - 8] = b'X';
    });
    let err = restore_error(&root, &dir);
    assert!(err.contains(&name) && err.contains("bad magic"), "{err}");
    rewrite(&run, |b| {
        b.copy_from_slice(&pristine);
        let n = b.len();
        b[n - 12] = 9; // version 9
    });
    let err = restore_error(&root, &dir);
    assert!(err.contains(&name) && err.contains("format version 9"), "{err}");
}

#[test]
fn truncated_run_file_is_refused_naming_the_file() {
    let dir = TestDir::new("truncated-run");
    let (root, run) = checkpointed(&dir);
    let name = run.file_name().unwrap().to_string_lossy().to_string();
    rewrite(&run, |b| b.truncate(b.len() / 2));
    let err = restore_error(&root, &dir);
    assert!(err.contains(&name) && err.contains("truncated"), "{err}");
}

#[test]
fn truncated_manifest_is_refused_naming_the_file() {
    let dir = TestDir::new("manifest");
    let (root, _) = checkpointed(&dir);
    let manifest = root.join("chk-1").join("MANIFEST");
    let pristine = std::fs::read(&manifest).unwrap();
    rewrite(&manifest, |b| b.truncate(b.len() * 2 / 3));
    let err = restore_error(&root, &dir);
    assert!(
        err.contains(&manifest.display().to_string()) && err.contains("truncated"),
        "{err}"
    );

    let tampered = String::from_utf8(pristine)
        .unwrap()
        .replace("watermark none", "watermark 9999");
    std::fs::write(&manifest, tampered).unwrap();
    let err = restore_error(&root, &dir);
    assert!(err.contains("MANIFEST") && err.contains("checksum mismatch"), "{err}");

    let missing = LsmStore::restore(&root, 7, &dir.join("w"), small()).unwrap_err();
    assert!(
        matches!(missing, StateError::CheckpointNotFound { id: 7, .. }),
        "{missing}"
    );
}

#[test]
fn corrupted_changelog_segment_is_refused_naming_the_file() {
    let dir = TestDir::new("corrupt-log");
    let root = dir.join("checkpoints");
    let options = LsmOptions {
        changelog: true,
        ..small()
    };
    let mut store = LsmStore::open(&dir.join("work"), options.clone()).unwrap();
    store.checkpoint(1, &root).unwrap();
    store.put(b"a", b"1").unwrap();
    store.put(b"b", b"2").unwrap();
    assert_eq!(
        store.checkpoint(2, &root).unwrap().changelog_bytes,
        12 + 2 * (8 + 4 + 1 + 1 + 4 + 1)
    );
    let segment = root.join("shared").join("chk2-changelog.log");
    rewrite(&segment, |b| {
        let n = b.len();
        b[n - 1] ^= 1;
    });
    let err = LsmStore::restore(&root, 2, &dir.join("w"), options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("chk2-changelog.log") && err.contains("checksum"), "{err}");
}
