//! What the demo's participants say to each other on the bus.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A lot goes up for sale: [`Lot`].
pub(crate) const LOT_OPEN: &str = "auction.lot.open";
/// A lot is sold (or not): [`Sold`].
pub(crate) const LOT_SOLD: &str = "auction.lot.sold";
/// Both of the above: what bidders listen on, and what the auctioneer counts.
pub(crate) const LOTS: &str = "auction.lot.+";
/// A bid that reached the auctioneer after its lot closed, refused: the [`Bid`].
pub(crate) const LATE: &str = "auction.late";
/// The auction's rule, as the demo states it.
pub(crate) const RULE: &str = "the highest bid that reaches the auctioneer while its lot is open wins (the first of equal bids); a bid that arrives after the close is refused";
/// Every bidder's bids: [`Bid`] on `auction.bid.NAME`.
pub(crate) const BIDS: &str = "auction.bid.+";
/// Every event of the auction.
pub(crate) const EVERYTHING: &str = "auction.#";
/// What every bid event's name starts with.
pub(crate) const BID_PREFIX: &str = "auction.bid.";
/// What every bidder's last word's name starts with: [`Done`] on `auction.done.NAME`.
pub(crate) const DONE_PREFIX: &str = "auction.done.";
/// The end of the demo, from the process that started it.
pub(crate) const STOP: &str = "demo.stop";

/// The event a bidder bids on.
pub(crate) fn bid_event(bidder: &str) -> String {
    format!("{BID_PREFIX}{bidder}")
}

/// The event a bidder says it is done on.
pub(crate) fn done_event(bidder: &str) -> String {
    format!("{DONE_PREFIX}{bidder}")
}

/// A lot for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Lot {
    pub(crate) number: u32,
    pub(crate) item: String,
    pub(crate) start: u64,
    pub(crate) step: u64,
}

/// A bid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bid {
    pub(crate) lot: u32,
    pub(crate) bidder: String,
    pub(crate) amount: u64,
    /// Wall-clock nanoseconds when it was sent (the processes share a clock).
    pub(crate) sent_ns: u64,
}

/// A lot's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sold {
    pub(crate) lot: u32,
    pub(crate) item: String,
    pub(crate) winner: Option<String>,
    pub(crate) amount: u64,
    pub(crate) bids: u32,
}

/// A bidder's count of the bids it sent, after its last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Done {
    pub(crate) bidder: String,
    pub(crate) bids: u64,
}

/// What a participant prints as its last line on stdout, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) role: String,
    pub(crate) name: String,
    pub(crate) bids_sent: u64,
    pub(crate) bids_seen: u64,
    pub(crate) lots_sold: u64,
    /// Events it was told it lost (gaps and lag).
    pub(crate) lost: u64,
}

/// Wall-clock nanoseconds since the epoch.
pub(crate) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The things for sale, in turn.
pub(crate) const ITEMS: &[&str] = &[
    "Vintage clock",
    "Signed guitar",
    "Oak bookshelf",
    "Brass telescope",
    "Tin robot",
    "First-edition atlas",
    "Racing bicycle",
    "Jade teapot",
];
