//! The sender's side of acknowledgements: for each peer, each of its patterns this node
//! acknowledged (a pattern taken up again is another: it has another `since`) with where
//! this node's names started for it (a name's last number when the pattern was first
//! acknowledged), so that a lost acknowledgement can be given again exactly as it was.

use foldhash::HashMap;

use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::{Control, Covered, MAX_MARKS_PER_MESSAGE, SequenceMark};

/// The most peers remembered: past it, an arbitrary one goes.
const MAX_PEERS: usize = 4096;

/// A pattern of a peer's, as the peer took it up: the pattern and the version at which.
pub(crate) type Instance = (Pattern, u64);

/// One peer's record.
#[derive(Debug, Default)]
struct Record {
    /// The peer's incarnation: a new one starts afresh.
    epoch: u64,
    /// The version acknowledged last.
    version: Option<u64>,
    /// The patterns acknowledged, each with its starts (names emitted first after it was
    /// acknowledged are not listed: they start at 0).
    instances: HashMap<Instance, Vec<SequenceMark>>,
}

/// The tracker.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    peers: HashMap<NodeId, Record>,
}

impl Coverage {
    /// Acknowledges `peer`'s interest at `version`, which is `patterns`; `starts_for`
    /// gives the current numbers of this node's names that a pattern matches. Returns the
    /// messages: the patterns acknowledged for the first time, with their starts.
    pub(crate) fn acknowledge(
        &mut self,
        epoch: u64,
        (peer, peer_epoch): (&NodeId, u64),
        version: u64,
        patterns: &[Instance],
        mut starts_for: impl FnMut(&Pattern) -> Vec<SequenceMark>,
    ) -> Vec<Control> {
        if self.peers.len() >= MAX_PEERS
            && !self.peers.contains_key(peer)
            && let Some(victim) = self.peers.keys().next().cloned()
        {
            self.peers.remove(&victim);
        }
        let record = self.peers.entry(peer.clone()).or_default();
        if record.epoch != peer_epoch {
            *record = Record {
                epoch: peer_epoch,
                ..Record::default()
            };
        }
        let after = record.version.replace(version);
        let to = (peer, peer_epoch);
        // Patterns it dropped: forgotten (taken up again, they are new).
        record.instances.retain(|i, _| patterns.contains(i));
        let mut covers = Vec::new();
        for instance in patterns {
            if record.instances.contains_key(instance) {
                continue;
            }
            let starts = starts_for(&instance.0);
            record.instances.insert(instance.clone(), starts.clone());
            covers.push(covered(instance, starts));
        }
        if after == Some(version) && covers.is_empty() {
            // Nothing new to say (a snapshot repeated what was acknowledged).
            return Vec::new();
        }
        // The first (`after` none) is whole by definition: every pattern is new.
        messages(epoch, to, version, after, covers)
    }

    /// The whole acknowledgement of `peer`'s interest (in incarnation `peer_epoch`),
    /// every pattern with its starts: for a peer that missed one. Nothing if this node has
    /// not acknowledged that incarnation yet (it will when it has its interest).
    pub(crate) fn whole(&self, epoch: u64, (peer, peer_epoch): (&NodeId, u64)) -> Vec<Control> {
        let Some(record) = self.peers.get(peer).filter(|r| r.epoch == peer_epoch) else {
            return Vec::new();
        };
        let Some(version) = record.version else {
            return Vec::new();
        };
        let covers = record
            .instances
            .iter()
            .map(|(instance, starts)| covered(instance, starts.clone()))
            .collect();
        messages(epoch, (peer, peer_epoch), version, None, covers)
    }

    /// `peer` left for good: it starts afresh if it comes back.
    pub(crate) fn forget(&mut self, peer: &NodeId) {
        self.peers.remove(peer);
    }
}

fn covered((pattern, since): &Instance, starts: Vec<SequenceMark>) -> Covered {
    Covered {
        pattern: pattern.to_string(),
        since: *since,
        starts,
    }
}

/// An acknowledgement in messages of at most [`MAX_MARKS_PER_MESSAGE`] starts (a pattern
/// with more is split across messages), the last one `done`.
fn messages(
    epoch: u64,
    (to, to_epoch): (&NodeId, u64),
    version: u64,
    after: Option<u64>,
    covers: Vec<Covered>,
) -> Vec<Control> {
    let mut parts: Vec<Vec<Covered>> = vec![Vec::new()];
    let mut room = MAX_MARKS_PER_MESSAGE;
    for cover in covers {
        let mut starts = cover.starts.as_slice();
        loop {
            let take = starts.len().min(room);
            let (now, rest) = starts.split_at(take);
            if let Some(part) = parts.last_mut() {
                part.push(Covered {
                    pattern: cover.pattern.clone(),
                    since: cover.since,
                    starts: now.to_vec(),
                });
            }
            room -= take;
            starts = rest;
            if room == 0 {
                parts.push(Vec::new());
                room = MAX_MARKS_PER_MESSAGE;
            }
            if starts.is_empty() {
                break;
            }
        }
    }
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, covers)| Control::Ack {
            epoch,
            to: to.to_string(),
            to_epoch,
            version,
            after,
            covers,
            done: i == last,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(name: &str, seq: u64) -> SequenceMark {
        SequenceMark {
            name: name.into(),
            seq,
        }
    }

    fn covers(messages: &[Control]) -> Vec<(String, u64, Vec<SequenceMark>)> {
        let mut all: Vec<_> = messages
            .iter()
            .flat_map(|m| match m {
                Control::Ack { covers, .. } => covers.clone(),
                _ => Vec::new(),
            })
            .map(|c| (c.pattern, c.since, c.starts))
            .collect();
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        all
    }

    #[test]
    fn each_pattern_as_taken_up_keeps_its_starts_and_is_given_again_whole() {
        let mut c = Coverage::default();
        let b = NodeId::new("b").expect("valid");
        let p = |s: &str| Pattern::new(s).expect("valid");
        let now = |seqs: &'static [(&str, u64)]| {
            move |pattern: &Pattern| -> Vec<SequenceMark> {
                seqs.iter()
                    .filter(|(n, _)| pattern.matches(n))
                    .map(|(n, s)| mark(n, *s))
                    .collect()
            }
        };
        let first = c.acknowledge(1, (&b, 7), 3, &[(p("x"), 1)], now(&[("x", 5)]));
        assert!(matches!(
            &first[..],
            [Control::Ack {
                version: 3,
                after: None,
                done: true,
                ..
            }]
        ));
        assert_eq!(covers(&first), [("x".into(), 1, vec![mark("x", 5)])]);
        // `#` comes: only it is new, with every name it matches.
        let second = c.acknowledge(
            1,
            (&b, 7),
            4,
            &[(p("x"), 1), (p("#"), 4)],
            now(&[("x", 9), ("y", 2)]),
        );
        assert!(matches!(&second[..], [Control::Ack { after: Some(3), .. }]));
        assert_eq!(
            covers(&second),
            [("#".into(), 4, vec![mark("x", 9), mark("y", 2)])]
        );
        assert_eq!(
            covers(&c.whole(1, (&b, 7))),
            [
                ("#".into(), 4, vec![mark("x", 9), mark("y", 2)]),
                ("x".into(), 1, vec![mark("x", 5)])
            ]
        );
        assert!(
            c.whole(1, (&b, 8)).is_empty(),
            "not for another incarnation"
        );
        // `x` dropped and taken up again at 6: a new pattern, with today's numbers.
        let again = c.acknowledge(
            1,
            (&b, 7),
            6,
            &[(p("x"), 6), (p("#"), 4)],
            now(&[("x", 11)]),
        );
        assert_eq!(covers(&again), [("x".into(), 6, vec![mark("x", 11)])]);
    }

    #[test]
    fn long_lists_are_split_and_only_the_last_message_is_done() {
        let mut c = Coverage::default();
        let b = NodeId::new("b").expect("valid");
        let many: Vec<SequenceMark> = (0..MAX_MARKS_PER_MESSAGE + 5)
            .map(|i| mark(&format!("n{i}"), 1))
            .collect();
        let messages = c.acknowledge(
            1,
            (&b, 7),
            1,
            &[(Pattern::new("#").expect("valid"), 1)],
            |_| many.clone(),
        );
        assert_eq!(messages.len(), 2);
        assert!(matches!(messages[0], Control::Ack { done: false, .. }));
        assert!(matches!(messages[1], Control::Ack { done: true, .. }));
        let total: usize = covers(&messages).iter().map(|(_, _, s)| s.len()).sum();
        assert_eq!(total, MAX_MARKS_PER_MESSAGE + 5);
    }
}
