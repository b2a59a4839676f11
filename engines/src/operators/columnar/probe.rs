//! The stream–table lookup join over a chunk: the campaign table probed with the ad column of
//! the selected rows.
//!
//! The probe writes the campaign of each surviving row into a column beside the selection
//! vector and compacts both where an ad has no campaign (the inner join drops it), branch-free
//! as the filter is. Without a join every row's campaign is 0, as [`StatelessChain::select`]
//! gives.
//!
//! Invariants: after the probe, `campaigns[k]` is the campaign of the row at
//! `selection.rows()[k]`, for every `k < selection.len()`.
//!
//! [`StatelessChain::select`]: crate::operators::stateless::StatelessChain::select

use crate::dimension::CampaignTable;
use crate::event::Event;
use crate::operators::columnar::selection::Selection;
use crate::operators::columnar::CHUNK;

/// Probes `table` (if the pipeline joins) for each selected row of `events`, keeping the rows
/// that match and writing their campaigns to `campaigns`.
#[inline]
pub fn probe(events: &[Event], selection: &mut Selection, table: Option<&CampaignTable>, campaigns: &mut [u32; CHUNK]) {
    probe_by(|i| events[i].ad, selection, table, campaigns);
}

/// [`probe`] over the ad column of the chunk (`ads[i]`: the ad of row `i`).
#[inline]
pub fn probe_ads(ads: &[u32], selection: &mut Selection, table: Option<&CampaignTable>, campaigns: &mut [u32; CHUNK]) {
    probe_by(|i| ads[i], selection, table, campaigns);
}

/// The probe, with `ad_of(i)` the ad of row `i`.
#[inline(always)]
fn probe_by(
    ad_of: impl Fn(usize) -> u32,
    selection: &mut Selection,
    table: Option<&CampaignTable>,
    campaigns: &mut [u32; CHUNK],
) {
    let (rows, len) = selection.rows_mut();
    let Some(table) = table else {
        campaigns[..len].fill(0);
        return;
    };
    let mut n = 0;
    for k in 0..len {
        let i = rows[k];
        let found = table.campaign(ad_of(i as usize));
        rows[n] = i;
        campaigns[n] = found.unwrap_or(0);
        n += found.is_some() as usize;
    }
    selection.truncate(n);
}
