//! A Nexmark scenario's events come through the same `Workload` as the clickstream's: on
//! demand in arrival-ordered ranges, as a backlog, with a rate spike, and the same for a seed.

use std::path::Path;

use streamlab_engines::event::EventKind;
use streamlab_engines::time::{Span, NANOS_PER_MS};
use streamlab_scenarios::spec::Scenario;
use streamlab_scenarios::workload::Workload;
use streamlab_workloads::nexmark::generate_nexmark;

fn scenario(extra_workload: &str, failure: &str) -> Scenario {
    let text = format!(
        r#"name = "nexmark"
duration = "2s"

[workload]
generator = "nexmark"
partitions = 3
rate = {{ profile = "constant", events_per_second = 5000 }}
{extra_workload}
[workload.nexmark]
out_of_order_group_size = 4
{failure}
[[engine]]
name = "mb"
model = "micro-batch"
trigger = {{ kind = "processing_time", interval = "1s" }}
"#
    );
    Scenario::parse(Path::new("nexmark.toml"), &text).unwrap()
}

#[test]
fn a_nexmark_workload_is_generated_on_demand_like_the_clickstream() {
    let s = scenario("", "");
    let w = Workload::build(&s, 7, s.duration).unwrap();
    assert_eq!(w.partitions, 3);
    assert!(!w.backlog());
    let all = w.events();
    assert_eq!(all.len() as u64, w.expected_events());
    assert_eq!(all.len(), 10_000);
    let streamlab_scenarios::WorkloadSpec::Nexmark(cfg) = &s.workload else {
        panic!("a Nexmark workload")
    };
    assert_eq!(all, generate_nexmark(cfg, 7, s.duration.nanos()));
    assert!(all.iter().all(|e| EventKind::NEXMARK.contains(&e.kind)));

    let mut feed = w.feed();
    let mut pieces = Vec::new();
    for ms in (0..=2_500).step_by(333) {
        feed.fill_until(ms * NANOS_PER_MS, &mut pieces);
    }
    feed.fill_until(u64::MAX, &mut pieces);
    assert_eq!(pieces, all);
    assert_eq!(w.full_log().len(), all.len());
}

#[test]
fn a_nexmark_backlog_is_in_the_source_at_the_start() {
    let s = scenario("backlog = true", "");
    let w = Workload::build(&s, 7, s.duration).unwrap();
    assert!(w.backlog());
    let events = w.events();
    assert_eq!(events.len(), 10_000);
    assert!(events.iter().all(|e| e.arrival == 0));
    assert!(
        events.iter().any(|e| e.event_time > 1_000),
        "the rate still spreads event times"
    );
}

#[test]
fn a_rate_spike_rides_on_the_nexmark_rate() {
    let spike = "\n[[failure]]\nkind = \"rate_spike\"\nat = \"1s\"\nduration = \"500ms\"\nfactor = 2.0\n";
    let s = scenario("", spike);
    let w = Workload::build(&s, 7, Span::from_ms(2_000)).unwrap();
    assert_eq!(w.events().len(), 12_500);
}
