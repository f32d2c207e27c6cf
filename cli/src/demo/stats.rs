//! What the demo's own process sees of the auction: the current lot, its bids and leader,
//! lots sold, events per second and bid latency. Both the dashboard and the log lines
//! show it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use demitter::{Event, RawPayload};
use hdrhistogram::Histogram;

use crate::demo::protocol::{BID_PREFIX, Bid, LATE, LOT_OPEN, LOT_SOLD, Lot, Sold, wall_ns};

/// Bids kept for the dashboard: more than a tall terminal shows.
const RECENT_BIDS: usize = 100;

/// A bid as the dashboard shows it.
#[derive(Debug, Clone)]
pub(crate) struct ShownBid {
    pub(crate) bid: Bid,
    /// The auctioneer refused it: it arrived after the lot closed.
    pub(crate) late: bool,
}

/// The auction as seen from the demo's process.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) lot: Option<Lot>,
    /// Whether `lot` is still open (between lots it is the one just sold).
    pub(crate) open: bool,
    /// The current lot's bids, newest first.
    pub(crate) bids: VecDeque<ShownBid>,
    /// Bids refused for arriving after their lot closed.
    pub(crate) late_bids: u64,
    pub(crate) leader: Option<(String, u64)>,
    pub(crate) last_sold: Option<Sold>,
    pub(crate) lots_sold: u64,
    pub(crate) bids_total: u64,
    pub(crate) events: u64,
    /// Event counts per 100 ms over the last second, for the current rate.
    window: VecDeque<(Instant, u64)>,
    /// Bid latency, sent to seen here, in microseconds.
    pub(crate) latency: Histogram<u64>,
    pub(crate) peers: usize,
}

/// One line for the log, when something happened worth one.
pub(crate) type LogLine = Option<String>;

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            lot: None,
            open: false,
            bids: VecDeque::new(),
            late_bids: 0,
            leader: None,
            last_sold: None,
            lots_sold: 0,
            bids_total: 0,
            events: 0,
            window: VecDeque::new(),
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("1 µs to 60 s at 3 significant digits are valid bounds"),
            peers: 0,
        }
    }

    /// Takes in one auction event.
    pub(crate) fn record(&mut self, event: &Event<RawPayload>) -> LogLine {
        self.count_event(Instant::now());
        if &*event.name == LOT_OPEN {
            let lot = event.data.decode::<Lot>().ok()?;
            self.bids.clear();
            self.leader = None;
            let line = format!("lot {}: {} opens at {}", lot.number, lot.item, lot.start);
            self.lot = Some(lot);
            self.open = true;
            return Some(line);
        }
        if &*event.name == LOT_SOLD {
            let sold = event.data.decode::<Sold>().ok()?;
            let line = match &sold.winner {
                Some(winner) => {
                    self.lots_sold += 1;
                    format!(
                        "lot {}: {} sold to {winner} for {} after {} bids",
                        sold.lot, sold.item, sold.amount, sold.bids
                    )
                }
                None => format!("lot {}: {} not sold", sold.lot, sold.item),
            };
            self.last_sold = Some(sold);
            self.open = false;
            self.leader = None;
            return Some(line);
        }
        if &*event.name == LATE {
            let bid = event.data.decode::<Bid>().ok()?;
            self.late_bids += 1;
            if let Some(shown) = self.bids.iter_mut().find(|b| b.bid == bid) {
                shown.late = true;
            }
            return Some(format!(
                "  late: {}'s {} on lot {} arrived after the close and is refused",
                bid.bidder, bid.amount, bid.lot
            ));
        }
        if event.name.starts_with(BID_PREFIX) {
            let bid = event.data.decode::<Bid>().ok()?;
            let micros = wall_ns().saturating_sub(bid.sent_ns) / 1_000;
            self.latency.saturating_record(micros.max(1));
            self.bids_total += 1;
            let line = format!(
                "  bid: {} offers {} on lot {}",
                bid.bidder, bid.amount, bid.lot
            );
            if self.lot.as_ref().is_some_and(|l| l.number == bid.lot) {
                if self.open
                    && self
                        .leader
                        .as_ref()
                        .is_none_or(|(_, best)| bid.amount > *best)
                {
                    self.leader = Some((bid.bidder.clone(), bid.amount));
                }
                self.bids.push_front(ShownBid { bid, late: false });
                self.bids.truncate(RECENT_BIDS);
            }
            return Some(line);
        }
        None
    }

    fn count_event(&mut self, now: Instant) {
        self.events += 1;
        match self.window.back_mut() {
            Some((at, n)) if now.duration_since(*at) < Duration::from_millis(100) => *n += 1,
            _ => self.window.push_back((now, 1)),
        }
        while self
            .window
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(1))
        {
            self.window.pop_front();
        }
    }

    /// Events per second over the last second.
    pub(crate) fn rate(&self) -> u64 {
        self.window.iter().map(|(_, n)| n).sum()
    }

    /// Bid latency percentile in microseconds (0 before any bid).
    pub(crate) fn latency_us(&self, quantile: f64) -> u64 {
        if self.latency.is_empty() {
            0
        } else {
            self.latency.value_at_quantile(quantile)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::protocol::{EVERYTHING, bid_event};
    use demitter::{Emitter, MemoryHub};

    #[tokio::test]
    async fn a_sold_lot_has_no_leader_and_a_late_bid_is_marked_refused() {
        let emitter = Emitter::new(MemoryHub::new().join()).expect("an emitter");
        let mut seen = emitter.events::<RawPayload>(EVERYTHING).expect("a stream");
        let lot = Lot {
            number: 7,
            item: "Jade teapot".into(),
            start: 100,
            step: 10,
        };
        let bid = |bidder: &str, amount| Bid {
            lot: 7,
            bidder: bidder.into(),
            amount,
            sent_ns: wall_ns(),
        };
        let (early, late) = (bid("bidder-1", 180), bid("bidder-3", 190));
        let sold = Sold {
            lot: 7,
            item: lot.item.clone(),
            winner: Some("bidder-1".into()),
            amount: 180,
            bids: 1,
        };
        emitter.emit(LOT_OPEN, &lot).await.expect("emitted");
        emitter
            .emit(&bid_event("bidder-1"), &early)
            .await
            .expect("emitted");
        emitter
            .emit(&bid_event("bidder-3"), &late)
            .await
            .expect("emitted");
        emitter.emit(LOT_SOLD, &sold).await.expect("emitted");
        emitter.emit(LATE, &late).await.expect("emitted");
        let mut stats = Stats::new();
        let mut lines = Vec::new();
        for _ in 0..5 {
            let event = seen.recv().await.expect("open").expect("decodes");
            lines.extend(stats.record(&event));
        }
        assert!(!stats.open && stats.leader.is_none(), "{stats:?}");
        assert_eq!(stats.late_bids, 1);
        let marks: Vec<(u64, bool)> = stats.bids.iter().map(|b| (b.bid.amount, b.late)).collect();
        assert_eq!(marks, [(190, true), (180, false)]);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("  late: bidder-3's 190 on lot 7 arrived after the close and is refused")
        );
        emitter.close().await;
    }
}
