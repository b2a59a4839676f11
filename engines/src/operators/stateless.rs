//! The stateless front of every pipeline: filter on the event kind, then the stream–table
//! lookup join of the ad against the campaign table. Chained into the source task in both
//! engines, as Spark's whole-stage codegen and Flink's operator chaining would.

use crate::dimension::CampaignTable;
use crate::event::Event;
use crate::operators::{Lineage, Row};
use crate::pipeline::PipelineSpec;

/// Filter and lookup join, fused.
#[derive(Clone, Debug)]
pub struct StatelessChain {
    kind_mask: u8,
    join: Option<CampaignTable>,
}

impl StatelessChain {
    /// The chain for `pipeline`, joining against `table` when the pipeline asks for it.
    pub fn new(pipeline: &PipelineSpec, table: &CampaignTable) -> Self {
        let kind_mask = match &pipeline.filter_kinds {
            None => u8::MAX,
            Some(kinds) => kinds.iter().fold(0u8, |m, k| m | (1 << k.index())),
        };
        let join = pipeline.lookup_join.then(|| table.clone());
        Self { kind_mask, join }
    }

    /// Runs one event through the filter and the join; `None` when it is filtered out or has
    /// no match in the dimension table.
    #[inline]
    pub fn apply(&self, event: &Event, lineage: Lineage) -> Option<Row> {
        if self.kind_mask & (1 << event.kind.index()) == 0 {
            return None;
        }
        let campaign = match &self.join {
            None => 0,
            Some(t) => t.campaign(event.ad)?,
        };
        Some(Row {
            event: *event,
            campaign,
            lineage,
        })
    }
}
