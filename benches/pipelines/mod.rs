//! Pipelines more than one bench runs, defined once (a folder, so Cargo does not take it for a
//! bench of its own).

use streamlab_engines::event::EventKind;
use streamlab_engines::pipeline::{AggFunc, Aggregation, Field, PipelineSpec, WindowSpec};
use streamlab_engines::time::Span;

/// The quickstart pipeline: filter clicks → campaign lookup → 2 s tumbling count per campaign.
pub fn quickstart_pipeline() -> PipelineSpec {
    PipelineSpec {
        filter_kinds: Some(vec![EventKind::Click]),
        lookup_join: true,
        project: vec![],
        aggregate: Some(Aggregation {
            key_by: Field::Campaign,
            window: WindowSpec::Tumbling {
                size: Span::from_ms(2000),
            },
            function: AggFunc::Count,
            field: None,
        }),
        ..Default::default()
    }
}
