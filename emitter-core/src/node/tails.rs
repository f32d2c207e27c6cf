//! Each source's announcements of moved names, followed for none missed: a node that sees
//! a heartbeat name a later announcement than it has every one up to asks the source for
//! what it missed ([`Control::MarksRequest`](crate::protocol::Control::MarksRequest)). So
//! the last events of a name are reported lost even when every repeat of its marks was
//! lost while the link stayed up.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::node_id::NodeId;

/// What is known of one source's announcements.
#[derive(Debug)]
struct Chain {
    epoch: u64,
    /// Every announcement up to this one was seen (or answered for).
    seen: u64,
    /// When this node last asked, if it has.
    asked_at: Option<Instant>,
    /// Marks of names a listener here matches were let go, not owed yet (the source's
    /// acknowledgement had not arrived).
    let_go: bool,
}

/// Per source: the announcements seen, and when this node asked for the missed ones.
#[derive(Debug)]
pub(crate) struct Tails {
    sources: HashMap<NodeId, Chain>,
    /// The least time between two asks of one source.
    ask_gap: Duration,
}

impl Tails {
    /// One ask per source per `heartbeat_interval` at most (each heartbeat may ask).
    pub(crate) fn new(heartbeat_interval: Duration) -> Self {
        Self {
            sources: HashMap::new(),
            ask_gap: heartbeat_interval * 3 / 4,
        }
    }

    fn chain(&mut self, source: &NodeId, epoch: u64) -> &mut Chain {
        let chain = self.sources.entry(source.clone()).or_insert(Chain {
            epoch,
            seen: 0,
            asked_at: None,
            let_go: false,
        });
        if chain.epoch != epoch {
            // A new incarnation numbers from 1 again.
            *chain = Chain {
                epoch,
                seen: 0,
                asked_at: None,
                let_go: false,
            };
        }
        chain
    }

    /// `source` announced moved names as its announcement number `moved`.
    pub(crate) fn announced(&mut self, source: &NodeId, epoch: u64, moved: u64) {
        let chain = self.chain(source, epoch);
        if moved == chain.seen + 1 {
            chain.seen = moved;
        }
    }

    /// `source` answered an ask after `after`: everything up to `moved` is known, if
    /// this node had seen every announcement up to `after`. An answer to an ask made
    /// before this node started over (an acknowledgement that made names owed) leaves
    /// out names it needs, and vouches for nothing.
    pub(crate) fn answered(&mut self, source: &NodeId, epoch: u64, after: u64, moved: u64) {
        let chain = self.chain(source, epoch);
        if after <= chain.seen {
            chain.seen = chain.seen.max(moved);
        }
    }

    /// `source`'s heartbeat says its latest announcement is `moved`: if one was missed,
    /// and this node did not ask within the last gap, the number to ask after.
    pub(crate) fn missed(
        &mut self,
        source: &NodeId,
        epoch: u64,
        moved: u64,
        now: Instant,
    ) -> Option<u64> {
        let gap = self.ask_gap;
        let chain = self.chain(source, epoch);
        if moved <= chain.seen
            || chain
                .asked_at
                .is_some_and(|at| now.saturating_duration_since(at) < gap)
        {
            return None;
        }
        chain.asked_at = Some(now);
        Some(chain.seen)
    }

    /// Marks of `source`'s for names a listener here matches were let go: they were not
    /// owed yet.
    pub(crate) fn let_go(&mut self, source: &NodeId, epoch: u64) {
        self.chain(source, epoch).let_go = true;
    }

    /// `source` acknowledged this node's interest: if marks were let go before, the next
    /// heartbeat asks for every one again, since their names may be owed now.
    pub(crate) fn acknowledged(&mut self, source: &NodeId) {
        if let Some(chain) = self.sources.get_mut(source)
            && chain.let_go
        {
            chain.let_go = false;
            chain.seen = 0;
            chain.asked_at = None;
        }
    }

    /// `source` left for good.
    pub(crate) fn forget(&mut self, source: &NodeId) {
        self.sources.remove(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    #[test]
    fn a_missed_announcement_is_asked_for_once_per_gap() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut tails = Tails::new(ms(100));
        let a = id("a");
        tails.announced(&a, 1, 1);
        assert_eq!(tails.missed(&a, 1, 1, now), None, "nothing missed");
        // Number 2 is lost; 3 arrives: the chain stays at 1.
        tails.announced(&a, 1, 3);
        assert_eq!(tails.missed(&a, 1, 3, now), Some(1));
        assert_eq!(tails.missed(&a, 1, 3, now + ms(50)), None, "asked just now");
        assert_eq!(
            tails.missed(&a, 1, 3, now + ms(100)),
            Some(1),
            "asked again"
        );
        tails.answered(&a, 1, 1, 3);
        assert_eq!(tails.missed(&a, 1, 3, now + ms(300)), None);
        tails.announced(&a, 1, 4);
        assert_eq!(tails.missed(&a, 1, 4, now + ms(400)), None);
        tails.acknowledged(&a);
        assert_eq!(
            tails.missed(&a, 1, 4, now + ms(410)),
            None,
            "nothing let go"
        );
        tails.let_go(&a, 1);
        tails.acknowledged(&a);
        assert_eq!(tails.missed(&a, 1, 4, now + ms(420)), Some(0), "everything");
    }

    #[test]
    fn an_answer_to_an_ask_from_before_starting_over_vouches_for_nothing() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut tails = Tails::new(ms(100));
        let a = id("a");
        tails.announced(&a, 1, 1);
        tails.announced(&a, 1, 2);
        assert_eq!(tails.missed(&a, 1, 4, now), Some(2));
        // Marks were let go, then the acknowledgement came: everything is asked again.
        tails.let_go(&a, 1);
        tails.acknowledged(&a);
        // The answer to the ask after 2 arrives: it says nothing of numbers 1 and 2.
        tails.answered(&a, 1, 2, 4);
        assert_eq!(tails.missed(&a, 1, 4, now + ms(10)), Some(0));
        tails.answered(&a, 1, 0, 4);
        assert_eq!(tails.missed(&a, 1, 4, now + ms(200)), None);
    }

    #[test]
    fn a_new_incarnation_counts_from_the_start() {
        let now = Instant::now();
        let mut tails = Tails::new(Duration::from_millis(100));
        let a = id("a");
        tails.answered(&a, 1, 0, 7);
        assert_eq!(tails.missed(&a, 2, 1, now), Some(0));
        tails.announced(&a, 2, 1);
        assert_eq!(tails.missed(&a, 2, 1, now), None);
    }
}
