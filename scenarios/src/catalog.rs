//! The scenarios of a directory and what each one shows: `streamlab list`.
//!
//! A scenario's purpose is its one-line `description`, or else the first line of the comment
//! that opens the file. Every file is read with the scenario reader, so a broken one is listed
//! with its located error instead of being skipped: nothing is silently dropped.

use std::fs;
use std::path::{Path, PathBuf};

use crate::spec::Scenario;

/// One scenario file of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The file.
    pub path: PathBuf,
    /// The scenario's `name`, if the file reads.
    pub name: Option<String>,
    /// `live` or `simulated`, if the file reads.
    pub clock: Option<String>,
    /// The one-line purpose: `description`, else the first comment line.
    pub purpose: String,
    /// Why the file does not read as a scenario, if it does not.
    pub error: Option<String>,
}

/// The scenario files directly in `dir`, sorted by file name: every `*.toml` file that states
/// a top-level `name` or `[[engine]]` (so `Cargo.toml` or a cost profile is not one), or that
/// is not valid TOML (listed with its error, since it may be a broken scenario).
pub fn catalog(dir: &Path) -> std::io::Result<Vec<CatalogEntry>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    let mut entries = Vec::with_capacity(paths.len());
    for path in paths {
        if let Some(entry) = entry(&path)? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// Reads one file into its catalog entry; `None` when it is TOML but not meant as a scenario.
pub fn entry(path: &Path) -> std::io::Result<Option<CatalogEntry>> {
    let text = fs::read_to_string(path)?;
    if let Ok(doc) = text.parse::<toml_edit::DocumentMut>() {
        if !doc.contains_key("name") && !doc.contains_key("engine") {
            return Ok(None);
        }
    }
    let comment = first_comment_line(&text);
    Ok(Some(match Scenario::parse(path, &text) {
        Ok(s) => CatalogEntry {
            path: path.to_path_buf(),
            purpose: s.description.clone().or(comment).unwrap_or_default(),
            name: Some(s.name),
            clock: Some(s.clock.name().to_string()),
            error: None,
        },
        Err(e) => CatalogEntry {
            path: path.to_path_buf(),
            name: None,
            clock: None,
            purpose: comment.unwrap_or_default(),
            error: Some(e.to_string()),
        },
    }))
}

/// The first line of the comment block that opens `text`, without its `#`.
///
/// # Examples
/// ```
/// use streamlab_scenarios::catalog::first_comment_line;
///
/// assert_eq!(first_comment_line("\n# Shows X.\n# More.\nname = \"x\"").as_deref(), Some("Shows X."));
/// assert_eq!(first_comment_line("name = \"x\"\n# late"), None);
/// ```
pub fn first_comment_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .and_then(|l| l.strip_prefix('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .filter(|l| !l.is_empty())
}

/// The catalog as a table: file, name, clock, purpose; invalid files flagged with their error.
pub fn catalog_table(entries: &[CatalogEntry]) -> String {
    let file = |e: &CatalogEntry| {
        e.path
            .file_name()
            .map_or_else(|| e.path.display().to_string(), |n| n.to_string_lossy().into_owned())
    };
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            [
                file(e),
                e.name.clone().unwrap_or_else(|| "-".into()),
                e.clock.clone().unwrap_or_else(|| "-".into()),
                match &e.error {
                    Some(err) => format!("INVALID: {err}"),
                    None => e.purpose.clone(),
                },
            ]
        })
        .collect();
    let header = ["file", "name", "clock", "what it shows"].map(String::from);
    let widths: Vec<usize> = (0..3)
        .map(|c| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_lists_toml_files_sorted_with_description_or_comment() {
        let dir = tempfile::tempdir().unwrap();
        let engine = "[[engine]]\nname = \"mb\"\nmodel = \"micro-batch\"\n";
        fs::write(
            dir.path().join("b.toml"),
            format!("# B shows batching.\nname = \"b\"\nduration = \"1s\"\n{engine}"),
        )
        .unwrap();
        fs::write(
            dir.path().join("a.toml"),
            format!("# ignored\nname = \"a\"\ndescription = \"A in one line\"\nduration = \"1s\"\nclock = \"simulated\"\n{engine}"),
        )
        .unwrap();
        fs::write(dir.path().join("c.toml"), "# C is broken\nname = \"c\"\n").unwrap();
        fs::write(dir.path().join("notes.txt"), "not a scenario").unwrap();
        fs::write(dir.path().join("Cargo.toml"), "[package]\nname2 = \"x\"\n").unwrap();

        let entries = catalog(dir.path()).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_deref()).collect();
        assert_eq!(names, [Some("a"), Some("b"), None]);
        assert_eq!(entries[0].purpose, "A in one line");
        assert_eq!(entries[0].clock.as_deref(), Some("simulated"));
        assert_eq!(entries[1].purpose, "B shows batching.");
        assert_eq!(entries[1].clock.as_deref(), Some("live"));
        assert!(entries[2].error.as_deref().unwrap().contains("key `duration`"));

        let table = catalog_table(&entries);
        assert!(table.contains("a.toml"), "{table}");
        assert!(table.contains("INVALID: "), "{table}");
    }
}
