//! What the engines' integration tests share.

/// Scratch directories of the LSM stores this process holds (window and keyed-stage state
/// alike): a test takes the list before and after to see which a store created and removed.
pub fn lsm_scratch_dirs() -> Vec<std::path::PathBuf> {
    let prefix = format!("streamlab-window-state-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}
