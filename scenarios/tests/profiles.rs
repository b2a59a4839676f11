//! Cost profiles: the built-in ones read and validate, a written profile reads back the same,
//! and every way a profile file can be wrong is refused with the file (and key or line) named.

use std::path::Path;

use streamlab_scenarios::calibrate;
use streamlab_scenarios::profile::{load_profile, parse_profile, Profile, ProfileError, BUILTIN_PROFILES};

fn local() -> Profile {
    load_profile("local", Path::new(".")).expect("the local profile loads")
}

/// `local`'s file text with `edit` applied to it.
fn local_text_with(edit: impl FnOnce(String) -> String) -> String {
    edit(local().to_toml())
}

fn parse_err(text: &str) -> ProfileError {
    parse_profile(Path::new("dir/my-profile.toml"), text).expect_err("the profile is refused")
}

#[test]
fn every_builtin_profile_parses_and_validates_under_its_own_name() {
    for (name, _) in BUILTIN_PROFILES {
        let p = load_profile(name, Path::new(".")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p.name, name);
        assert!(!p.description.is_empty(), "{name} has a description");
        assert_eq!(p.costs.validate(), Ok(()));
    }
}

#[test]
fn builtin_profiles_keep_the_local_poll_interval_and_cluster_costs_grow_with_size() {
    let [local, c10, c100] = ["local", "cluster-10", "cluster-100"].map(|n| load_profile(n, Path::new(".")).unwrap());
    assert_eq!(local.costs.source_poll_interval_ns, 100_000.0);
    assert_eq!(local.costs.network_latency_ns, 0.0);
    assert!(c10.costs.batch_job_ns >= 10_000_000.0, "tens of ms per batch job");
    assert!(c100.costs.batch_job_ns > c10.costs.batch_job_ns);
    assert!(c100.costs.task_launch_ns >= c10.costs.task_launch_ns);
    assert_eq!(c10.costs.network_ns_per_byte, 0.8);
}

#[test]
fn to_toml_round_trips_every_builtin_profile() {
    for (name, _) in BUILTIN_PROFILES {
        let p = load_profile(name, Path::new(".")).unwrap();
        let text = p.to_toml();
        assert_eq!(
            parse_profile(Path::new("copy.toml"), &text).unwrap(),
            p,
            "{name}:\n{text}"
        );
    }
}

#[test]
fn to_toml_round_trips_awkward_values_and_strings() {
    let mut p = local();
    p.name = "quote \" and \\ backslash".into();
    p.description = "line\nbreak, unicode µs".into();
    p.costs.chain_ns_per_event = 0.1 + 0.2;
    p.costs.batch_job_ns = 1e300;
    p.costs.disk_ns_per_byte = 1e-12;
    p.costs.log_write_ns = 0.0;
    let back = parse_profile(Path::new("copy.toml"), &p.to_toml()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn to_toml_comments_every_parameter() {
    let text = local().to_toml();
    for (name, _) in local().costs.parameters() {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ="))).expect(name);
        assert!(line.contains("# ns"), "{line}");
    }
}

#[test]
fn integers_are_accepted_as_nanoseconds() {
    let text = local_text_with(|t| t.replace("source_poll_interval_ns = 100000.0", "source_poll_interval_ns = 250000"));
    let p = parse_profile(Path::new("p.toml"), &text).unwrap();
    assert_eq!(p.costs.source_poll_interval_ns, 250_000.0);
}

#[test]
fn an_unknown_key_names_the_file_the_line_and_the_key() {
    let text = local_text_with(|t| t.replace("[costs]\n", "[costs]\nbatch_jobs_ns = 1.0\n"));
    let e = parse_err(&text);
    let msg = e.to_string();
    assert!(msg.starts_with("dir/my-profile.toml:5:"), "{msg}");
    assert!(msg.contains("batch_jobs_ns"), "{msg}");
    assert_eq!(e.line(), Some(5));
}

#[test]
fn an_unknown_top_level_key_is_refused() {
    let msg = parse_err(&local_text_with(|t| format!("nodes = 10\n{t}"))).to_string();
    assert!(msg.starts_with("dir/my-profile.toml:1:"), "{msg}");
    assert!(msg.contains("nodes"), "{msg}");
}

#[test]
fn a_missing_parameter_names_the_file_and_the_parameter() {
    let text = local_text_with(|t| {
        t.lines()
            .filter(|l| !l.starts_with("task_launch_ns"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let msg = parse_err(&text).to_string();
    assert!(msg.starts_with("dir/my-profile.toml:"), "{msg}");
    assert!(msg.contains("task_launch_ns"), "{msg}");
}

#[test]
fn a_negative_value_names_the_file_the_line_and_the_key() {
    let text = local_text_with(|t| {
        let line = t.lines().find(|l| l.starts_with("batch_job_ns")).unwrap().to_string();
        t.replace(&line, "batch_job_ns = -1.0 # per batch")
    });
    let expected_line = text.lines().position(|l| l.starts_with("batch_job_ns")).unwrap() + 1;
    let e = parse_err(&text);
    assert!(
        matches!(&e, ProfileError::Invalid { key, .. } if key == "costs.batch_job_ns"),
        "{e:?}"
    );
    assert_eq!(e.line(), Some(expected_line));
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "dir/my-profile.toml:{expected_line}: key `costs.batch_job_ns`: -1"
        )),
        "{msg}"
    );
    assert!(msg.contains(">= 0"), "{msg}");
}

#[test]
fn a_nan_value_is_refused_with_its_key() {
    let text = local_text_with(|t| {
        let line = t
            .lines()
            .find(|l| l.starts_with("disk_ns_per_byte"))
            .unwrap()
            .to_string();
        t.replace(&line, "disk_ns_per_byte = nan")
    });
    let msg = parse_err(&text).to_string();
    assert!(msg.contains("key `costs.disk_ns_per_byte`: NaN"), "{msg}");
}

#[test]
fn bad_toml_names_the_file_line_and_column() {
    let e = parse_err("name = \"x\"\ndescription = \"y\"\n[costs\n");
    assert!(matches!(e, ProfileError::Toml { line: 3, .. }), "{e:?}");
    assert!(e.to_string().starts_with("dir/my-profile.toml:3:"), "{e}");
}

#[test]
fn a_value_of_the_wrong_type_names_its_line() {
    let text = local_text_with(|t| {
        let line = t
            .lines()
            .find(|l| l.starts_with("chain_ns_per_event"))
            .unwrap()
            .to_string();
        t.replace(&line, "chain_ns_per_event = \"fast\"")
    });
    let expected_line = text.lines().position(|l| l.starts_with("chain_ns_per_event")).unwrap() + 1;
    let e = parse_err(&text);
    assert_eq!(e.line(), Some(expected_line), "{e}");
}

#[test]
fn an_unknown_builtin_name_lists_the_builtin_names() {
    let e = load_profile("cluster-1000", Path::new("scenarios")).unwrap_err();
    assert!(matches!(e, ProfileError::UnknownName { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("`cluster-1000`"), "{msg}");
    assert!(msg.contains("local, cluster-10, cluster-100"), "{msg}");
    assert!(msg.contains("scenarios"), "{msg}");
}

#[test]
fn a_missing_file_names_the_path_and_lists_the_builtin_names() {
    let e = load_profile("profiles/nope.toml", Path::new("some/dir")).unwrap_err();
    assert!(matches!(e, ProfileError::Io { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.starts_with("some/dir/profiles/nope.toml: cannot read"), "{msg}");
    assert!(msg.contains("local, cluster-10, cluster-100"), "{msg}");
}

#[test]
fn a_profile_file_is_read_relative_to_the_scenario_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    let mut p = local();
    p.name = "mine".into();
    p.costs.batch_job_ns = 123.0;
    std::fs::write(dir.path().join("profiles/mine.toml"), p.to_toml()).unwrap();
    assert_eq!(load_profile("profiles/mine.toml", dir.path()).unwrap(), p);
}

#[test]
fn an_invalid_profile_file_is_reported_under_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = local_text_with(|t| t.replace("log_write_ns = ", "log_write_ns = -"));
    std::fs::write(dir.path().join("bad.toml"), text).unwrap();
    let msg = load_profile("bad.toml", dir.path()).unwrap_err().to_string();
    let path = dir.path().join("bad.toml");
    assert!(msg.starts_with(&format!("{}:", path.display())), "{msg}");
    assert!(msg.contains("key `costs.log_write_ns`"), "{msg}");
}

#[test]
fn calibration_measurements_with_tiny_counts_are_finite_and_positive() {
    for (what, ns) in [
        ("chain", calibrate::chain_ns_per_event(1_000)),
        ("source poll", calibrate::source_poll_ns_per_partition(1_000)),
    ] {
        assert!(ns.is_finite() && ns > 0.0, "{what}: {ns}");
    }
}
