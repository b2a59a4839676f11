//! Dotted key paths into a scenario file — `duration`, `engine[1].trigger.interval`,
//! `engine[*].buffer_timeout` — the way error messages name a key and `--param` names what a
//! sweep sets. One reader serves both, so a path in an error message can be pasted into a
//! sweep.
//!
//! A segment is a key (`trigger`), a key with an index into an array (`engine[1]`), or every
//! element of an array (`engine[*]`, sweeps only).

/// One segment of a key path: `trigger`, `engine[1]`, `engine[*]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A key.
    Key(String),
    /// An element of an array (of tables): `name[N]`.
    Index(String, usize),
    /// Every element of an array: `name[*]`.
    All(String),
}

impl Segment {
    /// The key the segment names (without its index).
    pub fn name(&self) -> &str {
        match self {
            Self::Key(n) | Self::Index(n, _) | Self::All(n) => n,
        }
    }

    /// Reads one segment; an error says what is wrong with `part`.
    pub fn parse(part: &str) -> Result<Self, String> {
        Ok(match part.split_once('[') {
            None => Segment::Key(part.to_string()),
            Some((name, rest)) => {
                let index = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("`{part}`: expected `name[N]` or `name[*]`"))?;
                if index == "*" {
                    Segment::All(name.to_string())
                } else {
                    let i = index
                        .parse()
                        .map_err(|_| format!("`{part}`: the index must be a number or `*`"))?;
                    Segment::Index(name.to_string(), i)
                }
            }
        })
    }

    /// The segments of `path` as a located error names them: a segment that is not
    /// `name[N]` is taken as a key, whatever it holds (nothing is refused).
    pub fn lenient(path: &str) -> impl Iterator<Item = Segment> + '_ {
        path.split('.').map(|part| match Segment::parse(part) {
            Ok(s @ Segment::Index(..)) => s,
            _ => Segment::Key(part.to_string()),
        })
    }
}

/// A parsed dotted key path that names a value (its last segment is a key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Segment>);

impl KeyPath {
    /// Reads `key`; an error says what is wrong and shows the expected form.
    pub fn parse(key: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        for part in key.split('.') {
            let segment = Segment::parse(part)?;
            if segment.name().is_empty() {
                return Err(format!(
                    "`{key}` has an empty segment; write keys as in errors, e.g. `engine[0].trigger.interval`"
                ));
            }
            segments.push(segment);
        }
        if !matches!(segments.last(), Some(Segment::Key(_))) {
            return Err("must end in a key naming a value, e.g. `engine[0].trigger.interval`".into());
        }
        Ok(Self(segments))
    }

    /// The dotted form of `segments`.
    pub fn display(segments: &[Segment]) -> String {
        segments
            .iter()
            .map(|s| match s {
                Segment::Key(n) => n.clone(),
                Segment::Index(n, i) => format!("{n}[{i}]"),
                Segment::All(n) => format!("{n}[*]"),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_read_indices_and_wildcards() {
        let p = KeyPath::parse("engine[*].buffer_timeout").unwrap();
        assert_eq!(
            p.0,
            [Segment::All("engine".into()), Segment::Key("buffer_timeout".into())]
        );
        assert!(KeyPath::parse("engine[x].a").is_err());
        assert!(KeyPath::parse("engine[0]").is_err());
        assert!(KeyPath::parse("a..b").is_err());
    }

    #[test]
    fn located_paths_take_what_is_not_an_index_as_a_key() {
        let s: Vec<Segment> = Segment::lenient("engine[1].a[*]").collect();
        assert_eq!(s, [Segment::Index("engine".into(), 1), Segment::Key("a[*]".into())]);
    }
}
