//! The stateless front of every pipeline: filter on the event kind and the `where`
//! predicates, the `convert` of a field, then the stream–table lookup join of the ad against
//! the campaign table. For a stream–stream join the front admits the records of either input
//! (its kinds and predicates); the join itself is the keyed stage behind the exchange. Chained into the source task in both
//! engines, as Spark's whole-stage codegen and Flink's operator chaining would.

use crate::dimension::CampaignTable;
use crate::event::Event;
use crate::operators::{Lineage, Row};
use crate::pipeline::{Convert, JoinSpec, PipelineSpec, Predicate};

/// Filter and lookup join, fused.
#[derive(Clone, Debug)]
pub struct StatelessChain {
    kind_mask: u8,
    predicates: Vec<Predicate>,
    convert: Option<Convert>,
    inputs: Option<Box<JoinSpec>>,
    join: Option<CampaignTable>,
}

impl StatelessChain {
    /// The chain for `pipeline`, joining against `table` when the pipeline asks for it.
    pub fn new(pipeline: &PipelineSpec, table: &CampaignTable) -> Self {
        let mask = |kinds: &[crate::event::EventKind]| kinds.iter().fold(0u8, |m, k| m | (1 << k.index()));
        let kind_mask = match (&pipeline.filter_kinds, &pipeline.join) {
            (_, Some(j)) => mask(&j.left.kinds) | mask(&j.right.kinds),
            (None, None) => u8::MAX,
            (Some(kinds), None) => mask(kinds),
        };
        let join = pipeline.lookup_join.then(|| table.clone());
        Self {
            kind_mask,
            predicates: pipeline.predicates.clone(),
            convert: pipeline.convert,
            inputs: pipeline.join.clone().map(Box::new),
            join,
        }
    }

    /// Runs one event through the filter and the join; `None` when it is filtered out or has
    /// no match in the dimension table.
    #[inline]
    pub fn apply(&self, event: &Event, lineage: Lineage) -> Option<Row> {
        self.select(event).map(|campaign| self.row(event, campaign, lineage))
    }

    /// Whether `event` passes the filter and finds its match: `Some(campaign)` (0 without a
    /// join) if it does. With [`StatelessChain::row`] this is [`StatelessChain::apply`] in two
    /// steps: a selection, then the row materialized from it (a vectorized engine's selection
    /// vector, resolved at the sink).
    #[inline]
    pub fn select(&self, event: &Event) -> Option<u32> {
        if self.kind_mask & (1 << event.kind.index()) == 0 {
            return None;
        }
        if !self.predicates.iter().all(|p| p.test(event)) {
            return None;
        }
        if let Some(j) = &self.inputs {
            j.key_of(event)?;
        }
        match &self.join {
            None => Some(0),
            Some(t) => match &self.convert {
                None => t.campaign(event.ad),
                Some(c) => {
                    let mut converted = *event;
                    c.apply(&mut converted);
                    t.campaign(converted.ad)
                }
            },
        }
    }

    /// The chain's parts as a columnar map task evaluates them, a column at a time
    /// ([`crate::operators::columnar`]): the kinds admitted, the predicates and the table
    /// joined. `None` when the chain converts a field or admits a stream–stream join's inputs:
    /// those run a row at a time ([`StatelessChain::select`]).
    pub fn columns(&self) -> Option<ChainColumns<'_>> {
        (self.convert.is_none() && self.inputs.is_none()).then_some(ChainColumns {
            kind_mask: self.kind_mask,
            predicates: &self.predicates,
            join: self.join.as_ref(),
        })
    }

    /// The row of a selected `event` (see [`StatelessChain::select`]) that joined `campaign`.
    #[inline]
    pub fn row(&self, event: &Event, campaign: u32, lineage: Lineage) -> Row {
        let mut event = *event;
        if let Some(c) = &self.convert {
            c.apply(&mut event);
        }
        Row {
            event,
            campaign,
            lineage,
        }
    }
}

/// A chain without `convert` or a stream–stream join's inputs, in the parts a columnar scan
/// evaluates one after the other: [`StatelessChain::select`] split into its passes.
#[derive(Clone, Copy, Debug)]
pub struct ChainColumns<'a> {
    /// Bit `k` set: events of kind index `k` pass the filter.
    pub kind_mask: u8,
    /// The `where` predicates, all of which an event must pass.
    pub predicates: &'a [Predicate],
    /// The campaign table of the lookup join (`None`: no join, campaign 0).
    pub join: Option<&'a CampaignTable>,
}
