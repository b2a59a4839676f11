//! How a Nexmark event sits in an [`Event`]: the benchmark's person, auction and bid records
//! carried in the event's slots, so the Nexmark workload flows through the same source log,
//! exchanges, state and sinks as the clickstream, with no second record type on any hot path.
//!
//! Nexmark's own Flink source does much the same: one table of events with an `event_type`
//! column and a nested person, auction and bid, of which each query reads the one it needs.
//! Here the event's `kind` is the type, and each type's fields use the numeric slots below.
//! Strings (names, cities, URLs, item names, emails, card numbers) are ids into the generator's
//! deterministic lists; a query compares them only for equality, as Nexmark's queries do.
//!
//! | field | person | auction | bid | slot |
//! |---|---|---|---|---|
//! | `id` / `auction` | person id | auction id | the auction bid on | `session` |
//! | `email` / `seller` / `bidder` | email | seller (a person id) | bidder (a person id) | `user` |
//! | `name` / `item_name` / `url` | name | item name | URL | `page` |
//! | `city` / `category` / `channel` | city | category | channel | `ad` |
//! | `state` / `reserve` | US state | reserve price | — | `dwell_ms` |
//! | `credit_card` / `initial_bid` / `price` | card | opening bid | price | `price_cents` |
//!
//! Not carried: an auction's `expires` and `description` and every record's `extra` padding,
//! which none of the queries streamlab ships (q0–q3, q5, q7, q8, q11) reads; the simplified q4
//! (`scenarios/nexmark/q4.toml`) stands in a fixed 10 s for `expires`, and says so.

use crate::event::Event;
use crate::pipeline::Field;

/// The US states a person may live in (Nexmark's list); [`Field::State`] indexes it.
pub const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

/// The channels a bid may come through (Nexmark's list); [`Field::Channel`] indexes it.
pub const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// Reads a Nexmark field of `e` (any other field: 0; see [`crate::pipeline::field_value`]).
#[inline]
pub fn field_value(e: &Event, f: Field) -> i64 {
    match f {
        Field::Id | Field::Auction => e.session as i64,
        Field::Email | Field::Seller | Field::Bidder => e.user as i64,
        Field::Name | Field::ItemName | Field::Url => e.page as i64,
        Field::City | Field::Category | Field::Channel => e.ad as i64,
        Field::State | Field::Reserve => e.dwell_ms as i64,
        Field::CreditCard | Field::InitialBid | Field::Price => e.price_cents as i64,
        _ => 0,
    }
}

/// The clickstream field whose slot carries the Nexmark field `f` (the table above), or `None`
/// for a field that is not Nexmark's. A reader of a trace or of the feeder's rows, whose columns
/// are the clickstream's, finds a Nexmark field under this column (the real engines' jobs do).
pub fn slot(f: Field) -> Option<Field> {
    match f {
        Field::Id | Field::Auction => Some(Field::Session),
        Field::Email | Field::Seller | Field::Bidder => Some(Field::User),
        Field::Name | Field::ItemName | Field::Url => Some(Field::Page),
        Field::City | Field::Category | Field::Channel => Some(Field::Ad),
        Field::State | Field::Reserve => Some(Field::DwellMs),
        Field::CreditCard | Field::InitialBid | Field::Price => Some(Field::PriceCents),
        _ => None,
    }
}

/// Writes a Nexmark numeric field of `e` (a pipeline's `convert`); other fields are refused
/// when the pipeline is validated, so they are never written here.
#[inline]
pub fn set_field(e: &mut Event, f: Field, v: i64) {
    match f {
        Field::Id | Field::Auction => e.session = v as u64,
        Field::Email | Field::Seller | Field::Bidder => e.user = v as u32,
        Field::Name | Field::ItemName | Field::Url => e.page = v as u32,
        Field::City | Field::Category | Field::Channel => e.ad = v as u32,
        Field::State | Field::Reserve => e.dwell_ms = v as u32,
        Field::CreditCard | Field::InitialBid | Field::Price => e.price_cents = v as u32,
        Field::DwellMs => e.dwell_ms = v as u32,
        Field::PriceCents => e.price_cents = v as u32,
        _ => {}
    }
}

/// One Nexmark record, by type, before it is laid into an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A new person.
    Person {
        /// Person id.
        id: u64,
        /// Name (an id).
        name: u32,
        /// Email (an id).
        email: u32,
        /// Credit card (an id).
        credit_card: u32,
        /// City (an id).
        city: u32,
        /// US state (an index into [`US_STATES`]).
        state: u32,
    },
    /// A new auction.
    Auction {
        /// Auction id.
        id: u64,
        /// Item name (an id).
        item_name: u32,
        /// Opening bid.
        initial_bid: u32,
        /// Reserve price.
        reserve: u32,
        /// Seller (a person id).
        seller: u32,
        /// Category.
        category: u32,
    },
    /// A bid.
    Bid {
        /// The auction bid on.
        auction: u64,
        /// Bidder (a person id).
        bidder: u32,
        /// Price.
        price: u32,
        /// Channel (an index into [`CHANNELS`]).
        channel: u32,
        /// URL (an id).
        url: u32,
    },
}

impl Record {
    /// The event carrying this record, at `event_time` (ms), scheduled to arrive at `arrival`
    /// (ns) in source `partition`, `seq`-th in the stream.
    pub fn into_event(self, seq: u64, event_time: i64, arrival: u64, partition: u32) -> Event {
        let mut e = Event {
            seq,
            event_time,
            arrival,
            partition,
            user: 0,
            session: 0,
            page: 0,
            ad: 0,
            kind: crate::event::EventKind::Person,
            dwell_ms: 0,
            price_cents: 0,
        };
        match self {
            Record::Person {
                id,
                name,
                email,
                credit_card,
                city,
                state,
            } => {
                (e.session, e.page, e.user, e.price_cents, e.ad, e.dwell_ms) =
                    (id, name, email, credit_card, city, state);
            }
            Record::Auction {
                id,
                item_name,
                initial_bid,
                reserve,
                seller,
                category,
            } => {
                e.kind = crate::event::EventKind::Auction;
                (e.session, e.page, e.price_cents, e.dwell_ms, e.user, e.ad) =
                    (id, item_name, initial_bid, reserve, seller, category);
            }
            Record::Bid {
                auction,
                bidder,
                price,
                channel,
                url,
            } => {
                e.kind = crate::event::EventKind::Bid;
                (e.session, e.user, e.price_cents, e.ad, e.page) = (auction, bidder, price, channel, url);
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nexmark_field_reads_the_slot_named_for_it() {
        let records = [
            Record::Person {
                id: 11,
                name: 12,
                email: 13,
                credit_card: 14,
                city: 15,
                state: 4,
            },
            Record::Auction {
                id: 21,
                item_name: 22,
                initial_bid: 23,
                reserve: 24,
                seller: 25,
                category: 26,
            },
            Record::Bid {
                auction: 31,
                bidder: 32,
                price: 33,
                channel: 2,
                url: 35,
            },
        ];
        for r in records {
            let e = r.into_event(0, 0, 0, 0);
            for f in Field::ALL {
                let carried = f.kinds().is_some_and(|k| k.contains(&e.kind));
                match slot(f) {
                    Some(s) if carried => assert_eq!(
                        field_value(&e, f),
                        crate::pipeline::field_value(&e, 0, s),
                        "{} of a {}",
                        f.name(),
                        e.kind.name()
                    ),
                    Some(_) => {}
                    None => assert!(f.kinds().is_none_or(|k| k == &crate::event::EventKind::CLICKSTREAM[..])),
                }
            }
        }
    }
}
