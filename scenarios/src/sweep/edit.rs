//! Setting one key of a scenario's TOML text to a value written on the command line.
//!
//! Why the text is edited, not the parsed scenario:
//!
//! A point is made by editing the scenario's TOML text with `toml_edit` and reading the result
//! with [`Scenario::parse`], exactly as if the user had written that file. So every point is
//! validated by the same reader, with the same located messages (file, line, key, what is
//! allowed), and each point's results directory keeps the scenario text it ran (`scenario.toml`).
//! An edit keeps the value's type where the written value fits it (a duration written `"1s"`
//! stays a string, a number stays a number) and its comments; a value that does not fit is
//! written as it reads and refused by the reader with its line. A key the scenario does not
//! state is created when its table exists (the engine's defaults then apply to the others);
//! otherwise the error names the key and lists the keys nearby.

use std::fmt::Write as _;
use std::path::Path;

use toml_edit::{DocumentMut, Item, TableLike, Value};

use super::{Result, SweepError};
use crate::engine::EngineKind;
use crate::executor::executor;
use crate::keypath::{KeyPath, Segment};
use crate::spec::Scenario;

/// Sets `key` to `value` (as written on the command line) in the scenario `text` and returns
/// the edited text; `path` is named in messages. See the module header for the rules.
///
/// # Examples
/// ```
/// use std::path::Path;
/// use streamlab_scenarios::sweep::set_key;
///
/// let text = "name = \"x\"\nduration = \"1s\"\n[[engine]]\nname = \"mb\"\nmodel = \"micro-batch\"\n\
///             trigger = { kind = \"processing_time\", interval = \"1s\" }\n";
/// let edited = set_key(Path::new("x.toml"), text, "engine[0].trigger.interval", "250ms").unwrap();
/// assert!(edited.contains("interval = \"250ms\""));
/// ```
pub fn set_key(path: &Path, text: &str, key: &str, value: &str) -> Result<String> {
    let mut doc: DocumentMut = text.parse().map_err(|_| {
        // Not TOML: let the reader say where.
        match Scenario::parse(path, text) {
            Err(e) => SweepError::Scenario(e),
            Ok(_) => SweepError::Key {
                path: path.to_path_buf(),
                key: key.to_string(),
                message: "the scenario does not parse as TOML".into(),
            },
        }
    })?;
    let key_error = |message: String| SweepError::Key {
        path: path.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let parsed = KeyPath::parse(key).map_err(&key_error)?;
    let targets = targets(&doc, &parsed).map_err(key_error)?;
    for target in &targets {
        let (last, parents) = target.split_last().expect("a key path has a last segment");
        let table = table_mut(doc.as_table_mut(), parents).expect("targets resolve to existing tables");
        let name = last.name();
        match table.get_mut(name) {
            Some(Item::Value(Value::Array(_))) => {
                return Err(key_error(format!(
                    "`{}` is an array; a sweep sets single values (numbers, durations, ...)",
                    KeyPath::display(target)
                )))
            }
            Some(Item::Value(old)) => {
                let mut new = typed_like(Some(old), value);
                *new.decor_mut() = old.decor().clone();
                *old = new;
            }
            Some(_) => {
                return Err(key_error(format!(
                    "`{}` is a table, not a value; name a key inside it",
                    KeyPath::display(target)
                )))
            }
            None => {
                table.insert(name, Item::Value(typed_like(None, value)));
            }
        }
    }
    Ok(doc.to_string())
}

/// The concrete paths (every index resolved) a key path edits, each to an existing table.
fn targets(doc: &DocumentMut, key: &KeyPath) -> std::result::Result<Vec<Vec<Segment>>, String> {
    let root = doc.as_table();
    let segments = &key.0;
    // `engine.x` and `engine[*].x`: every engine whose model has the key.
    let engine_array = matches!(root.get("engine"), Some(Item::ArrayOfTables(_)));
    let every_engine = match &segments[0] {
        Segment::All(n) => n == "engine",
        Segment::Key(n) => n == "engine" && segments.len() > 1 && engine_array,
        Segment::Index(..) => false,
    };
    if !every_engine {
        if segments.iter().any(|s| matches!(s, Segment::All(_))) {
            return Err("`[*]` is allowed on `engine` only, e.g. `engine[*].buffer_timeout`".into());
        }
        return resolve(root, segments).map(|()| vec![segments.clone()]);
    }
    let Some(Item::ArrayOfTables(engines)) = root.get("engine") else {
        return Err("the scenario has no [[engine]] tables".into());
    };
    let rest = &segments[1..];
    let mut found = Vec::new();
    let mut seen = Vec::new();
    for (i, engine) in engines.iter().enumerate() {
        let mut target = vec![Segment::Index("engine".into(), i)];
        target.extend_from_slice(rest);
        let model = engine.get("model").and_then(Item::as_str).unwrap_or("?");
        let has = match lookup(engine, rest) {
            Lookup::Value => true,
            // Create a key the engine's model has but the file leaves at its default.
            Lookup::MissingLeaf if rest.len() == 1 => model_has_key(model, rest[0].name()),
            _ => false,
        };
        let name = engine.get("name").and_then(Item::as_str).unwrap_or("?");
        seen.push(format!("engine[{i}] \"{name}\" ({model})"));
        if has {
            found.push(target);
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no engine has `{}`: {}; {}",
            KeyPath::display(rest),
            seen.join(", "),
            nearby(root, &[Segment::Key("engine".into())], rest)
        ));
    }
    Ok(found)
}

/// Whether an engine model's configuration has a top-level key (its defaults, serialized).
fn model_has_key(model: &str, key: &str) -> bool {
    let Some(kind) = EngineKind::default_of(model) else {
        return false;
    };
    executor(&kind)
        .config_json()
        .as_object()
        .is_some_and(|o| o.contains_key(key))
}

/// What a path finds in a table.
enum Lookup {
    /// An existing value.
    Value,
    /// An existing table (or array of tables) where a value was asked for.
    Table,
    /// The last key is missing but its table exists: it can be created.
    MissingLeaf,
    /// A table on the way is missing, or an index is out of range.
    Missing,
}

fn lookup(table: &dyn TableLike, segments: &[Segment]) -> Lookup {
    let Some((first, rest)) = segments.split_first() else {
        return Lookup::Table;
    };
    let Some(item) = table.get(first.name()) else {
        return if rest.is_empty() {
            Lookup::MissingLeaf
        } else {
            Lookup::Missing
        };
    };
    let next: Option<&dyn TableLike> = match (first, item) {
        (Segment::Index(_, i), Item::ArrayOfTables(tables)) => tables.get(*i).map(|t| t as &dyn TableLike),
        (Segment::Index(..) | Segment::All(_), _) => None,
        (Segment::Key(_), Item::Value(v)) if rest.is_empty() && !v.is_inline_table() => return Lookup::Value,
        (Segment::Key(_), item) => item.as_table_like(),
    };
    match next {
        Some(t) => lookup(t, rest),
        None if rest.is_empty() && matches!(first, Segment::Key(_)) => Lookup::Table,
        None => Lookup::Missing,
    }
}

/// Checks that `segments` names a value, or a missing key of an existing table; otherwise says
/// what is there instead.
fn resolve(root: &dyn TableLike, segments: &[Segment]) -> std::result::Result<(), String> {
    match lookup(root, segments) {
        Lookup::Value | Lookup::MissingLeaf => Ok(()),
        Lookup::Table => Err(format!("names a table, not a value; {}", nearby(root, segments, &[]))),
        Lookup::Missing => {
            // The deepest table that exists along the path.
            let mut depth = segments.len() - 1;
            while depth > 0 && !matches!(lookup(root, &segments[..depth]), Lookup::Table) {
                depth -= 1;
            }
            let missing = &segments[..=depth];
            let what = match &segments[depth] {
                Segment::Index(name, _) => match root_len(root, &segments[..depth], name) {
                    Some(n) => format!("`{}` is out of range: the scenario has {n}", KeyPath::display(missing)),
                    None => format!("the scenario has no `{}`", KeyPath::display(missing)),
                },
                _ => format!("the scenario has no `{}` table", KeyPath::display(missing)),
            };
            Err(format!(
                "{what} (only a key of an existing table can be created); {}",
                nearby(root, &segments[..depth], &segments[depth..])
            ))
        }
    }
}

/// How many tables an array of tables at `parents.name` holds.
fn root_len(root: &dyn TableLike, parents: &[Segment], name: &str) -> Option<usize> {
    let mut table = root;
    for s in parents {
        table = match (s, table.get(s.name())?) {
            (Segment::Index(_, i), Item::ArrayOfTables(t)) => t.get(*i)?,
            (_, item) => item.as_table_like()?,
        };
    }
    match table.get(name)? {
        Item::ArrayOfTables(t) => Some(t.len()),
        _ => None,
    }
}

/// "keys nearby: ..." — the values under the table at `parents`, the closest spelling of the
/// whole key if one is near, for an error message.
fn nearby(root: &dyn TableLike, parents: &[Segment], rest: &[Segment]) -> String {
    let mut all = Vec::new();
    leaf_paths(root, "", &mut all);
    let prefix = KeyPath::display(parents);
    let mut near: Vec<&String> = all
        .iter()
        .filter(|p| prefix.is_empty() || p.starts_with(&format!("{prefix}.")) || p.starts_with(&format!("{prefix}[")))
        .collect();
    if near.is_empty() {
        near = all.iter().collect();
    }
    let wanted = if prefix.is_empty() {
        KeyPath::display(rest)
    } else if rest.is_empty() {
        prefix.clone()
    } else {
        format!("{prefix}.{}", KeyPath::display(rest))
    };
    let closest = all
        .iter()
        .map(|p| (edit_distance(p, &wanted), p))
        .filter(|(d, p)| *d > 0 && *d <= 2.max(p.len() / 4))
        .min();
    let mut out = String::new();
    if let Some((_, p)) = closest {
        let _ = write!(out, "did you mean `{p}`? ");
    }
    let listed: Vec<String> = near.iter().take(24).map(|p| format!("`{p}`")).collect();
    let _ = write!(out, "keys nearby: {}", listed.join(", "));
    if near.len() > listed.len() {
        let _ = write!(out, ", ... ({} more)", near.len() - listed.len());
    }
    out
}

/// The dotted paths of every single value (string, number, boolean) under `table`.
fn leaf_paths(table: &dyn TableLike, prefix: &str, out: &mut Vec<String>) {
    for (name, item) in table.iter() {
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        match item {
            Item::Value(Value::InlineTable(t)) => leaf_paths(t, &path, out),
            Item::Value(Value::Array(_)) | Item::None => {}
            Item::Value(_) => out.push(path),
            Item::Table(t) => leaf_paths(t, &path, out),
            Item::ArrayOfTables(tables) => {
                for (i, t) in tables.iter().enumerate() {
                    leaf_paths(t, &format!("{path}[{i}]"), out);
                }
            }
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The table at `segments` (every one existing), mutably.
fn table_mut<'t>(root: &'t mut dyn TableLike, segments: &[Segment]) -> Option<&'t mut dyn TableLike> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(root);
    };
    let item = root.get_mut(first.name())?;
    let next: &mut dyn TableLike = match (first, item) {
        (Segment::Index(_, i), Item::ArrayOfTables(tables)) => tables.get_mut(*i)?,
        (Segment::Key(_), item) => item.as_table_like_mut()?,
        _ => return None,
    };
    table_mut(next, rest)
}

/// `written` as a TOML value of the same type as `old` where it fits (a string stays a
/// string, an integer an integer, ...); otherwise, and for a new key, the type it reads as
/// (integer, float, boolean, else string), for the reader to accept or refuse.
fn typed_like(old: Option<&Value>, written: &str) -> Value {
    let integer = written.parse::<i64>().ok();
    let float = written.parse::<f64>().ok().filter(|f| f.is_finite());
    let boolean = written.parse::<bool>().ok();
    match (old, integer, float, boolean) {
        (Some(Value::String(_)), ..) => Value::from(written),
        (Some(Value::Float(_)), _, Some(f), _) => Value::from(f),
        (Some(Value::Boolean(_)), _, _, Some(b)) => Value::from(b),
        (_, Some(i), ..) => Value::from(i),
        (_, None, Some(f), _) => Value::from(f),
        (_, None, None, Some(b)) => Value::from(b),
        _ => Value::from(written),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("interval", "intervall"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
