//! The static dimension table of the stream–table lookup join: which campaign each ad belongs
//! to (the Yahoo Streaming Benchmark's Redis table, held in memory).

use std::sync::Arc;

/// Maps an ad id to its campaign id. Cheap to clone (shared).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CampaignTable {
    campaign_of_ad: Arc<[u32]>,
}

impl CampaignTable {
    /// A table where ad `i` belongs to campaign `campaign_of_ad[i]`.
    pub fn new(campaign_of_ad: Vec<u32>) -> Self {
        Self {
            campaign_of_ad: campaign_of_ad.into(),
        }
    }

    /// The campaign of `ad`, or `None` when the ad is not in the table (an inner join drops it).
    #[inline]
    pub fn campaign(&self, ad: u32) -> Option<u32> {
        self.campaign_of_ad.get(ad as usize).copied()
    }

    /// Number of ads in the table.
    pub fn len(&self) -> usize {
        self.campaign_of_ad.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.campaign_of_ad.is_empty()
    }
}
