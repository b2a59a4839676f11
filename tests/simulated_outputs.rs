//! Byte-for-byte check of the simulated teaching scenarios' outputs.
//!
//! Same scenario and seed → the same simulated results, byte for byte: that is a promise to
//! users, and it is also what keeps a refactoring honest. This test runs every shipped
//! scenario on the simulated clock through the `streamlab` binary and compares a digest of
//! each file of its results directory — `summary.json`, `progress.jsonl`, `timeline.csv`, the
//! sink files, the `.hgrm` histograms and the checkpoint files — with
//! `tests/golden/simulated-outputs.txt`. Plots (`.svg`, `.png`) are left out: their labels are
//! presentation, checked by the report tests. A change that is meant to alter results re-blesses
//! the file with `STREAMLAB_BLESS=1 cargo test --test simulated_outputs` and says why in its
//! commit; a refactoring never does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The simulated scenarios, with a `--duration` override where the shipped one would take too
/// long in a debug build (`None`: the scenario's own duration).
const SIMULATED: [(&str, Option<&str>); 13] = [
    ("cluster-100", Some("2s")),
    ("continuum", None),
    ("dedup", Some("20s")),
    ("degraded", None),
    ("failure-recovery", None),
    ("hidden-batching", None),
    ("impressions-clicks", Some("20s")),
    ("impressions-clicks-per-ad", Some("30s")),
    ("interval-sweep", None),
    ("key-skew", None),
    ("late-data", None),
    ("load-spike", None),
    ("seed-example", Some("30s")),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// FNV-1a 64 of a file's bytes: a digest, not a checksum of anything durable.
fn digest(bytes: &[u8]) -> u64 {
    streamlab_engines::checkpoint::fnv1a(bytes)
}

/// Every file under `dir` (recursively) that carries results, by its path relative to `dir`.
fn files(dir: &Path, base: &Path, out: &mut BTreeMap<String, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, base, out);
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy();
        if name.ends_with(".svg") || name.ends_with(".png") || name == "scenario.toml" {
            continue;
        }
        let rel = path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
        out.insert(rel, path);
    }
}

/// Runs one scenario and returns one line per result file: `scenario/file bytes digest`.
fn digests_of(name: &str, duration: Option<&str>, tmp: &Path) -> Vec<String> {
    let out = tmp.join(name);
    let scenario = root().join("scenarios").join(format!("{name}.toml"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamlab"));
    cmd.args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    if let Some(d) = duration {
        cmd.args(["--duration", d]);
    }
    let run = cmd.output().expect("streamlab runs");
    assert!(
        run.status.success(),
        "streamlab run {name} failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(
        !summary.contains("OUTPUTS DIFFER"),
        "{name}: an engine's outputs differ from the reference evaluator"
    );
    let mut found = BTreeMap::new();
    files(&out, &out, &mut found);
    found
        .into_iter()
        .map(|(rel, path)| {
            let bytes = std::fs::read(&path).unwrap();
            format!("{name}/{rel} {} {:016x}", bytes.len(), digest(&bytes))
        })
        .collect()
}

#[test]
fn simulated_scenarios_write_byte_identical_results() {
    let tmp = tempfile::tempdir().unwrap();
    // Two threads: the machine has two cores, and each run is single-threaded.
    let halves: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|half| {
                let tmp = tmp.path();
                s.spawn(move || {
                    SIMULATED
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 2 == half)
                        .flat_map(|(_, (name, d))| digests_of(name, *d, tmp))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut lines: Vec<String> = halves.into_iter().flatten().collect();
    lines.sort();
    let actual = lines.join("\n") + "\n";
    let golden = root().join("tests/golden/simulated-outputs.txt");
    if std::env::var_os("STREAMLAB_BLESS").is_some() {
        std::fs::write(&golden, &actual).unwrap();
        eprintln!("blessed {}", golden.display());
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with STREAMLAB_BLESS=1", golden.display()));
    let expected: Vec<&str> = expected.lines().collect();
    let differ: Vec<String> = lines
        .iter()
        .filter(|l| !expected.contains(&l.as_str()))
        .map(|l| format!("  now:    {l}"))
        .chain(
            expected
                .iter()
                .filter(|l| !lines.iter().any(|a| a == *l))
                .map(|l| format!("  golden: {l}")),
        )
        .collect();
    assert!(
        differ.is_empty(),
        "simulated outputs differ from {} (same scenario and seed must give the same bytes):\n{}",
        golden.display(),
        differ.join("\n")
    );
}
