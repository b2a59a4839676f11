//! The clickstream event: the one record type every workload produces and every engine reads.
//!
//! It is `Copy` and fixed-size on purpose: engines move events through operators, buffers and
//! state without allocating per record.

use serde::{Deserialize, Serialize};

use crate::time::{EventTime, Nanos};

/// What the user did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A page view.
    View,
    /// A click on an ad.
    Click,
    /// An item put in the cart.
    AddToCart,
    /// A completed purchase.
    Purchase,
    /// Nexmark: a new person registered (see [`crate::nexmark`] for its fields).
    Person,
    /// Nexmark: a new auction opened.
    Auction,
    /// Nexmark: a bid on an auction.
    Bid,
}

impl EventKind {
    /// Every kind, in their canonical order (the order of [`EventKind::index`]).
    pub const ALL: [EventKind; 7] = [
        Self::View,
        Self::Click,
        Self::AddToCart,
        Self::Purchase,
        Self::Person,
        Self::Auction,
        Self::Bid,
    ];

    /// The clickstream's kinds (the clickstream generator's mix), in index order.
    pub const CLICKSTREAM: [EventKind; 4] = [Self::View, Self::Click, Self::AddToCart, Self::Purchase];

    /// The Nexmark benchmark's three event types, in index order.
    pub const NEXMARK: [EventKind; 3] = [Self::Person, Self::Auction, Self::Bid];

    /// The name used in scenario files, traces and sink records.
    pub fn name(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Click => "click",
            Self::AddToCart => "add_to_cart",
            Self::Purchase => "purchase",
            Self::Person => "person",
            Self::Auction => "auction",
            Self::Bid => "bid",
        }
    }

    /// Parses a name as written by [`EventKind::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// A dense index 0..7, used for bit masks.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One clickstream event, as it sits in a source partition.
///
/// 64 bytes, aligned to 8 (so most events of a `Vec` straddle two cache lines). Aligned to 64
/// (tried, issue 14) the generator wrote 21 % faster and the per-record simulator read 12 %
/// faster, but a [`crate::operators::Row`] that holds an event grew from 104 to 128 bytes and
/// the live YSB-like benches lost 5–7 %; left unaligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the whole stream, in arrival order; unique per event.
    pub seq: u64,
    /// When the event happened at the user (event time, ms).
    pub event_time: EventTime,
    /// When the event is scheduled to arrive at the source (processing time, ns). The open-loop
    /// source makes it available at exactly this instant; latency is measured from it.
    pub arrival: Nanos,
    /// The source partition (Kafka-style) the event was written to.
    pub partition: u32,
    /// The user.
    pub user: u32,
    /// The user's session, unique over the stream.
    pub session: u64,
    /// The page viewed.
    pub page: u32,
    /// The ad shown on the page (the join key of the campaign lookup).
    pub ad: u32,
    /// What happened.
    pub kind: EventKind,
    /// Time spent on the page before this event, ms.
    pub dwell_ms: u32,
    /// Price in cents for `add_to_cart` and `purchase`, 0 otherwise.
    pub price_cents: u32,
}
