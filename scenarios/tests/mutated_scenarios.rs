//! Every shipped scenario, broken the ways users break files — a value of the wrong type, a
//! negative or zero duration, an unknown key, a file cut short — is refused with an error that
//! names the file, the line and (when the file is TOML) the key, and nothing panics.

use std::path::{Path, PathBuf};

use streamlab_scenarios::spec::Scenario;
use streamlab_scenarios::ScenarioError;

fn shipped() -> Vec<PathBuf> {
    // The shipped scenarios live beside this crate's own Cargo.toml.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("Cargo.toml"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "the shipped scenarios in {}", dir.display());
    files
}

/// `key = value` lines outside comments and multi-line values: (line index, key, value).
fn assignments(text: &str) -> Vec<(usize, String, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && !l.trim_start().starts_with('['))
        .filter_map(|(i, l)| {
            let (key, value) = l.split_once(" = ")?;
            let value = value.split(" #").next().unwrap().trim();
            let key = key.trim();
            (!key.is_empty() && !key.contains('"') && !value.ends_with('[') && !value.ends_with('{'))
                .then(|| (i, key.to_string(), value.to_string()))
        })
        .collect()
}

fn with_line(text: &str, i: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[i] = line;
    lines.join("\n") + "\n"
}

/// Parses a mutated file: valid is fine (some mutations are legal), but an error must name
/// the file and a line, and a key unless it is a TOML syntax error.
fn check(path: &Path, text: &str, what: &str) {
    let Err(e) = Scenario::parse(path, text) else {
        return;
    };
    let message = e.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{what}: the file is named: {message}"
    );
    assert!(e.line().is_some(), "{what}: a line is named: {message}");
    if !matches!(e, ScenarioError::Syntax { .. }) {
        assert!(e.key().is_some(), "{what}: a key is named: {message}");
    }
}

#[test]
fn a_value_of_the_wrong_type_is_located() {
    for path in shipped() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, key, value) in assignments(&text) {
            let wrong = if value.starts_with('"') { "true" } else { "\"x\"" };
            let mutated = with_line(&text, i, &format!("{key} = {wrong}"));
            check(
                &path,
                &mutated,
                &format!("{}:{} {key} = {wrong}", path.display(), i + 1),
            );
        }
    }
}

#[test]
fn a_negative_or_zero_duration_is_located() {
    let mut refused = 0;
    for path in shipped() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, key, value) in assignments(&text) {
            let duration = value.trim_matches('"');
            let is_duration = value.starts_with('"')
                && duration.ends_with('s')
                && duration.chars().next().is_some_and(|c| c.is_ascii_digit());
            if !is_duration {
                continue;
            }
            for bad in [format!("\"-{duration}\""), "\"0s\"".to_string()] {
                let mutated = with_line(&text, i, &format!("{key} = {bad}"));
                check(&path, &mutated, &format!("{}:{} {key} = {bad}", path.display(), i + 1));
                refused += usize::from(Scenario::parse(&path, &mutated).is_err());
            }
        }
        // The top-level duration is never zero.
        let zero = text.replacen("\nduration = ", "\nduration = \"0s\"\n#", 1);
        let e = Scenario::parse(&path, &zero).expect_err("a zero duration is refused");
        assert_eq!(e.key(), Some("duration"), "{e}");
        assert!(e.line().is_some(), "{e}");
    }
    assert!(refused > 50, "most such durations are refused ({refused})");
}

#[test]
fn an_unknown_key_is_located() {
    for path in shipped() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, key, value) in assignments(&text) {
            let typo = format!("{key}x");
            let mutated = with_line(&text, i, &format!("{typo} = {value}"));
            let e = Scenario::parse(&path, &mutated).expect_err(&format!(
                "{}:{}: `{typo}` is refused",
                path.display(),
                i + 1
            ));
            let message = e.to_string();
            check(&path, &mutated, &message);
            if message.contains("missing") {
                // A required key renamed: the error names the table that lacks it, above.
                assert!(e.line().is_some_and(|l| l <= i + 1), "{message}");
            } else {
                assert_eq!(e.line(), Some(i + 1), "{message}");
                assert!(e.key().is_some_and(|k| k.ends_with(&typo)), "{message}");
            }
        }
    }
}

#[test]
fn a_truncated_file_is_located() {
    for path in shipped() {
        let text = std::fs::read_to_string(&path).unwrap();
        for eighth in 1..8 {
            let mut cut = text.len() * eighth / 8;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            check(&path, &text[..cut], &format!("{} cut at byte {cut}", path.display()));
        }
    }
}
