//! Joining the bus: who the forwarder's census says is there, taken once this node's own
//! hello has passed the forwarder.
//!
//! The census in the answer to the first confirmation ([`CENSUS_SYNC`](wire::CENSUS_SYNC))
//! can be taken before this node's hello reaches the forwarder, and so before the hello of
//! a node that joins a moment earlier: each of the two would then be ready without having
//! heard the other. So the census the node goes by is asked again
//! ([`CENSUS_AGAIN`](wire::CENSUS_AGAIN)) once this node hears its own hello come back:
//! the forwarder handles messages and subscriptions in one order, so that census counts
//! every node whose hello passed before this one's, and every node whose hello passes
//! after it hears this one's hello before its own census is taken. Of any two nodes
//! joining together, at least one waits for the other.
//!
//! A forwarder that gives no census, or no second one (an older build), and a hello that
//! does not come back within [`ECHO_PATIENCE`], leave the node with what it had.

use bytes::Bytes;
use demitter_core::{ControlFrame, Frame, Incoming, NodeId};
use tokio::time::Instant;

use crate::wire;
use crate::zmtp;

/// How long a node waits for its hello to come back, and then for the second census,
/// before it goes by the first census (the hello comes back within milliseconds through a
/// forwarder that works).
pub(crate) const ECHO_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Where the node is in joining.
#[derive(Debug)]
enum Step {
    /// Waiting for the first confirmation (and its census).
    Confirming,
    /// The first census arrived; waiting for this node's hello to come back.
    AwaitingEcho {
        first: Vec<Incoming>,
        until: Instant,
    },
    /// The second census is asked for.
    AwaitingCensus {
        first: Vec<Incoming>,
        until: Instant,
    },
    /// The node was told.
    Joined,
}

/// What to do next.
#[derive(Debug, Default)]
pub(crate) struct Next {
    /// Hand these to the node.
    pub(crate) tell: Vec<Incoming>,
    /// Write this to the forwarder.
    pub(crate) write: Option<Bytes>,
}

/// The joining of one transport (across reconnections: the node is told once).
#[derive(Debug)]
pub(crate) struct Joining {
    step: Step,
    /// Whether this node's own hello came back already.
    echoed: bool,
    /// The CURVE name, where there is one (the census then names this node by it).
    curve_name: Option<NodeId>,
}

impl Joining {
    pub(crate) fn new(curve_name: Option<NodeId>) -> Self {
        Self {
            step: Step::Confirming,
            echoed: false,
            curve_name,
        }
    }

    /// Whether the node has been told.
    pub(crate) fn is_joined(&self) -> bool {
        matches!(self.step, Step::Joined)
    }

    /// The first confirmation arrived (`None`: none came in time), and with it what the
    /// first census says (`first`, from `joined_from`); the hello this node sent first, if
    /// any yet.
    pub(crate) fn confirmed(
        &mut self,
        first: Vec<Incoming>,
        hello: Option<&ControlFrame>,
        now: Instant,
    ) -> Next {
        if !matches!(self.step, Step::Confirming) {
            return Next::default();
        }
        let counted = first
            .iter()
            .any(|item| matches!(item, Incoming::Joined { peers: Some(_) }));
        if !counted {
            self.step = Step::Joined;
            return Next {
                tell: first,
                write: None,
            };
        }
        let until = now + ECHO_PATIENCE;
        if self.echoed && hello.is_some() {
            self.step = Step::AwaitingCensus { first, until };
            return ask_again();
        }
        self.step = Step::AwaitingEcho { first, until };
        Next::default()
    }

    /// A frame arrived: if it is this node's own hello come back (`hello`, the first
    /// control frame it sent), the census is asked again.
    pub(crate) fn heard(&mut self, frame: &Frame, hello: Option<&ControlFrame>) -> Next {
        let Frame::Control(control) = frame else {
            return Next::default();
        };
        if self.echoed || hello != Some(control) {
            return Next::default();
        }
        self.echoed = true;
        match std::mem::replace(&mut self.step, Step::Joined) {
            Step::AwaitingEcho { first, until } => {
                self.step = Step::AwaitingCensus { first, until };
                ask_again()
            }
            other => {
                self.step = other;
                Next::default()
            }
        }
    }

    /// A message on [`CENSUS_AGAIN`](wire::CENSUS_AGAIN) arrived (`parts`): the node is
    /// told what it says, or what the first census said if it says nothing.
    pub(crate) fn census_again(&mut self, parts: &[Bytes], hello: Option<&ControlFrame>) -> Next {
        let Step::AwaitingCensus { first, .. } = std::mem::replace(&mut self.step, Step::Joined)
        else {
            return Next::default();
        };
        let me = self
            .curve_name
            .as_ref()
            .or_else(|| hello.map(|h| &h.source));
        let tell = match parts.get(2).map(|census| wire::decode_census(census)) {
            Some(Ok(Some(ids))) => {
                // This node's own incarnation is among them once; another node with its
                // id (which it must hear, and give way to) is one more.
                let own = ids.iter().any(|id| Some(id) == me);
                let peers = ids.len() - usize::from(own);
                vec![Incoming::Joined { peers: Some(peers) }]
            }
            _ => first,
        };
        Next { tell, write: None }
    }

    /// When to give up waiting for the hello's return or the second census.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.step {
            Step::AwaitingEcho { until, .. } | Step::AwaitingCensus { until, .. } => Some(*until),
            Step::Confirming | Step::Joined => None,
        }
    }

    /// The deadline passed: the node goes by the first census.
    pub(crate) fn timed_out(&mut self) -> Next {
        match std::mem::replace(&mut self.step, Step::Joined) {
            Step::AwaitingEcho { first, .. } | Step::AwaitingCensus { first, .. } => {
                tracing::debug!(
                    "this node's hello did not come back in time; going by the first census"
                );
                Next {
                    tell: first,
                    write: None,
                }
            }
            other => {
                self.step = other;
                Next::default()
            }
        }
    }
}

/// Asks the forwarder for its census again.
fn ask_again() -> Next {
    Next {
        tell: Vec::new(),
        write: Some(zmtp::subscription(true, wire::CENSUS_AGAIN)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(source: &str) -> ControlFrame {
        ControlFrame {
            source: NodeId::new(source).expect("valid"),
            body: Bytes::from_static(b"hello"),
        }
    }

    fn census(ids: &[&str]) -> Vec<Bytes> {
        let frame = wire::census(ids.iter().map(|id| id.as_bytes()));
        vec![Bytes::from_static(wire::CENSUS_AGAIN), Bytes::new(), frame]
    }

    fn peers(next: &Next) -> Option<usize> {
        match next.tell.as_slice() {
            [Incoming::Joined { peers }] => *peers,
            other => panic!("expected one Joined, got {other:?}"),
        }
    }

    #[test]
    fn the_census_is_asked_again_once_the_hello_came_back_and_counts_others_only() {
        let mut joining = Joining::new(None);
        let me = hello("b");
        let now = Instant::now();
        let first = vec![Incoming::Joined { peers: Some(0) }];
        let next = joining.confirmed(first, Some(&me), now);
        assert!(next.tell.is_empty() && next.write.is_none());
        // Someone else's control frame is not the echo.
        let other = Frame::Control(hello("a"));
        assert!(joining.heard(&other, Some(&me)).write.is_none());
        let next = joining.heard(&Frame::Control(me.clone()), Some(&me));
        assert!(next.write.is_some(), "asks again");
        // The second census has `a`, whose hello passed first, and this node itself.
        let next = joining.census_again(&census(&["a", "b"]), Some(&me));
        assert_eq!(peers(&next), Some(1));
        assert!(joining.is_joined());
    }

    #[test]
    fn a_live_node_with_this_nodes_id_is_counted() {
        let mut joining = Joining::new(None);
        let me = hello("dup");
        let first = vec![Incoming::Joined { peers: Some(1) }];
        joining.confirmed(first, Some(&me), Instant::now());
        joining.heard(&Frame::Control(me.clone()), Some(&me));
        let next = joining.census_again(&census(&["dup", "dup"]), Some(&me));
        assert_eq!(peers(&next), Some(1), "the other `dup` is waited for");
    }

    #[test]
    fn a_hello_back_before_the_first_confirmation_asks_again_at_once() {
        let mut joining = Joining::new(None);
        let me = hello("b");
        assert!(
            joining
                .heard(&Frame::Control(me.clone()), Some(&me))
                .write
                .is_none()
        );
        let first = vec![Incoming::Joined { peers: Some(2) }];
        let next = joining.confirmed(first, Some(&me), Instant::now());
        assert!(next.write.is_some());
    }

    #[test]
    fn without_a_census_or_a_second_one_the_node_goes_by_what_it_has() {
        // A proxy that gives no census: told at once.
        let mut joining = Joining::new(None);
        let next = joining.confirmed(vec![Incoming::NoCensus], None, Instant::now());
        assert!(matches!(next.tell.as_slice(), [Incoming::NoCensus]));
        assert!(joining.is_joined());
        // An older forwarder answers the second ask without a census: the first counts.
        let mut joining = Joining::new(None);
        let me = hello("b");
        let first = vec![Incoming::Joined { peers: Some(3) }];
        joining.confirmed(first, Some(&me), Instant::now());
        joining.heard(&Frame::Control(me.clone()), Some(&me));
        let bare = vec![
            Bytes::from_static(wire::CENSUS_AGAIN),
            Bytes::new(),
            Bytes::new(),
        ];
        assert_eq!(peers(&joining.census_again(&bare, Some(&me))), Some(3));
        // A hello that never comes back: the first census, at the deadline.
        let mut joining = Joining::new(None);
        let first = vec![Incoming::Joined { peers: Some(4) }];
        let now = Instant::now();
        joining.confirmed(first, Some(&me), now);
        assert_eq!(joining.deadline(), Some(now + ECHO_PATIENCE));
        assert_eq!(peers(&joining.timed_out()), Some(4));
        assert_eq!(joining.deadline(), None);
    }
}
