//! The presence protocol's messages.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What a node's interest in a pattern is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Role {
    /// Listeners: every event the pattern matches goes to the node.
    #[default]
    Listen,
    /// Members of the listener group named here: each event the pattern matches goes to
    /// one member of the group bus-wide, as a [`Control::GroupEvent`].
    Group(String),
    /// Responders: requests for names the pattern matches may go to the node.
    Serve,
}

impl Role {
    /// Whether this is [`Role::Listen`] (which the wire leaves out).
    pub fn is_listen(&self) -> bool {
        matches!(self, Role::Listen)
    }
}

/// One pattern a node listens on (or has group members or responders on), with how many
/// of its listeners are counted (spies are not: a pattern with only spies has `count` 0
/// but is still listed, for routing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterestEntry {
    /// The pattern.
    pub pattern: String,
    /// Its non-spy listeners (members, responders) on the node.
    pub count: u32,
    /// The interest version at which the node began listening on it (this time): a
    /// pattern dropped and taken up again comes back with a new one. 0 from nodes that do
    /// not say.
    #[serde(default)]
    pub since: u64,
    /// What it is for; left out for listeners.
    #[serde(default, skip_serializing_if = "Role::is_listen")]
    pub role: Role,
}

/// One pattern of a node's, as another acknowledges it (in a [`Control::Ack`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Covered {
    /// The pattern.
    pub pattern: String,
    /// The interest version at which the node took it up ([`InterestEntry::since`]).
    pub since: u64,
    /// The acknowledging node's last number of each name it had emitted that the pattern
    /// matches, when it first acknowledged it.
    pub starts: Vec<SequenceMark>,
}

/// The last sequence number a sender assigned to one event name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceMark {
    /// The event name.
    pub name: String,
    /// The last sequence number assigned.
    pub seq: u64,
}

/// A presence-protocol message. `epoch` is the sender's incarnation, `version` the number
/// of changes it has made to its interest so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Control {
    /// "I have joined; here is my interest; send me yours."
    Hello {
        /// Sender's incarnation.
        epoch: u64,
        /// Sender's interest version.
        version: u64,
        /// Sender's whole interest.
        interest: Vec<InterestEntry>,
    },
    /// The sender's whole interest.
    Snapshot {
        /// Sender's incarnation.
        epoch: u64,
        /// Sender's interest version.
        version: u64,
        /// Sender's whole interest.
        interest: Vec<InterestEntry>,
    },
    /// One pattern's count changed (of listeners, or of the members or responders its
    /// `role` says); `count: None` means the sender no longer has any there.
    Delta {
        /// Sender's incarnation.
        epoch: u64,
        /// Sender's interest version after this change.
        version: u64,
        /// The pattern.
        pattern: String,
        /// The new count, or `None` when removed.
        count: Option<u32>,
        /// The version at which the sender took the pattern up (this time): a receiver
        /// that missed its removal and new adding tells them apart by it. 0 from nodes
        /// that do not say.
        #[serde(default)]
        since: u64,
        /// What the pattern is for; left out for listeners.
        #[serde(default, skip_serializing_if = "Role::is_listen")]
        role: Role,
    },
    /// "I am alive, at this interest version."
    Heartbeat {
        /// Sender's incarnation.
        epoch: u64,
        /// Sender's interest version.
        version: u64,
        /// The number of the sender's latest [`Sequences`](Control::Sequences) that
        /// announced a name that moved (0: none yet, or a node that does not say). A
        /// receiver that has not seen every one up to it asks with
        /// [`MarksRequest`](Control::MarksRequest): so a tail whose marks were all lost is
        /// still told.
        #[serde(default)]
        moved: u64,
    },
    /// "Send me your whole interest": the sender missed something.
    Resync {
        /// Sender's incarnation.
        epoch: u64,
    },
    /// "The last sequence numbers I assigned, for names I emitted since my previous
    /// `Sequences`." A receiver that has seen less of a name it follows lost the rest
    /// (the events at the tail of a burst, which no later event would reveal).
    Sequences {
        /// Sender's incarnation.
        epoch: u64,
        /// Event name and the last sequence number assigned to it.
        last: Vec<SequenceMark>,
        /// When it announces names that moved since their last announcement: its number
        /// among such messages, from 1, none skipped (the heartbeat carries the latest).
        /// 0 when it only repeats, or from a node that does not say.
        #[serde(default)]
        moved: u64,
    },
    /// "I am leaving."
    Bye {
        /// Sender's incarnation.
        epoch: u64,
    },
    /// "Answer this, please": a request for one of `to`'s responders.
    Request {
        /// Sender's incarnation.
        epoch: u64,
        /// The responder's node: on a broadcast transport the others ignore it.
        to: String,
        /// The requester's number for it, which the reply carries back.
        id: u64,
        /// The request's event name.
        name: String,
        /// The request's MessagePack payload.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// The answer to request `id` of `to`.
    Reply {
        /// Sender's incarnation.
        epoch: u64,
        /// The requester's node.
        to: String,
        /// The request's number.
        id: u64,
        /// What became of it.
        outcome: ReplyOutcome,
    },
    /// "Send me your retained values whose names `pattern` matches": a listener made
    /// `with_last` is catching up. Broadcast; every node answers with [`Control::LastValues`].
    LastRequest {
        /// Sender's incarnation.
        epoch: u64,
        /// The requester's number for it, which the answers carry back.
        id: u64,
        /// The listener's pattern.
        pattern: String,
    },
    /// Part of the answer to `to`'s [`Control::LastRequest`] `id`; `done` on the last part.
    LastValues {
        /// Sender's incarnation.
        epoch: u64,
        /// The requester's node: on a broadcast transport the others ignore it.
        to: String,
        /// The request's number.
        id: u64,
        /// Retained values, at most a frame's worth.
        values: Vec<RetainedValue>,
        /// Whether this is the last part.
        done: bool,
    },
    /// An event for the one member of `group` on node `to` that the sender chose.
    GroupEvent {
        /// Sender's incarnation.
        epoch: u64,
        /// The chosen member's node: on a broadcast transport the others ignore it.
        to: String,
        /// The group.
        group: String,
        /// The event name.
        name: String,
        /// Its sequence number per (source, name), as the event frame carries it.
        seq: u64,
        /// The number of this message among those the sender sent to `to`, from 1: a
        /// receiver that sees one skipped reports it lost.
        nth: u64,
        /// The event's MessagePack payload.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// "The last [`Control::GroupEvent`] I sent you was number `nth`": a receiver that took
    /// fewer lost the rest (the tail of a burst, which no later event would reveal).
    GroupMark {
        /// Sender's incarnation.
        epoch: u64,
        /// The node the group events went to.
        to: String,
        /// The number of the last one sent.
        nth: u64,
    },
    /// "I have your interest up to `version`": the answer to a hello, snapshot or delta
    /// that moved the sender's record of `to`'s interest on, or to an
    /// [`AckRequest`](Control::AckRequest). Every event the sender emits after it reaches
    /// `to` if a pattern of `to`'s at that version matches it. For each pattern the sender
    /// acknowledges for the first time (a pattern `to` took up again is a new one: it has
    /// a new `since`), `covers` holds the last number of each name the sender had emitted
    /// that the pattern matches (a name not listed starts at 0): `to` then knows the first
    /// event it is owed, and a missing one is a gap. `after` is the version acknowledged
    /// before, so that `to` notices a lost acknowledgement (`None`: a whole one, every
    /// pattern with its starts). Long lists come in several messages, the last `done`.
    Ack {
        /// Sender's incarnation.
        epoch: u64,
        /// The node whose interest is acknowledged.
        to: String,
        /// Its incarnation: an acknowledgement of an earlier one is not for it.
        to_epoch: u64,
        /// The interest version acknowledged.
        version: u64,
        /// The version acknowledged before; `None` for a whole acknowledgement.
        after: Option<u64>,
        /// The patterns newly acknowledged (or, whole, all), with where names start.
        covers: Vec<Covered>,
        /// Whether this is the last message of the acknowledgement.
        done: bool,
    },
    /// "Acknowledge my interest again, whole": the sender missed an [`Ack`](Control::Ack)
    /// of `to`'s.
    AckRequest {
        /// Sender's incarnation.
        epoch: u64,
        /// The node asked.
        to: String,
    },
    /// "Send me the last numbers of your names that my interest matches and that moved
    /// after your [`Sequences`](Control::Sequences) number `after`": the sender missed one
    /// (a heartbeat showed a later number). Answered with [`Control::Marks`].
    MarksRequest {
        /// Sender's incarnation.
        epoch: u64,
        /// The node asked.
        to: String,
        /// The last number the sender has seen every one up to.
        after: u64,
    },
    /// The answer to `to`'s [`MarksRequest`](Control::MarksRequest): the last number of
    /// each name `to` matches whose latest move was announced after `after` (the asked
    /// number) and up to `moved` (all of them when they fit one message; else `moved` is
    /// less than the heartbeat's, and `to` asks again).
    Marks {
        /// Sender's incarnation.
        epoch: u64,
        /// The node that asked.
        to: String,
        /// The number asked after: the answer says nothing of the names announced up to
        /// it, so it vouches for nothing to an asker that has since seen less.
        after: u64,
        /// The announcement number this answer covers up to.
        moved: u64,
        /// Event name and the last sequence number assigned to it.
        last: Vec<SequenceMark>,
    },
    /// "I took every [`Control::GroupEvent`] of yours up to `nth`."
    GroupAck {
        /// Sender's incarnation.
        epoch: u64,
        /// The node whose group events these were.
        to: String,
        /// The last number taken.
        nth: u64,
    },
    /// "Send me again your events `name` with these numbers": the sender found them
    /// missing. Answered with [`Control::Repaired`].
    Repair {
        /// Sender's incarnation.
        epoch: u64,
        /// The node whose events are missing (the others ignore it).
        to: String,
        /// The incarnation of `to` that emitted them: another cannot repair them.
        of_epoch: u64,
        /// The event name.
        name: String,
        /// The missing numbers, as inclusive ranges `[first, last]`, lowest first.
        missing: Vec<[u64; 2]>,
    },
    /// Part of the answer to `to`'s [`Control::Repair`] of `name`: the events the sender
    /// still had, and the numbers it no longer has (or never had); `done` on the last part.
    /// Numbers asked for that are in neither were not answered this time (the sender was
    /// busy): the asker asks again.
    Repaired {
        /// Sender's incarnation.
        epoch: u64,
        /// The node that asked.
        to: String,
        /// The event name.
        name: String,
        /// Events sent again, by number.
        events: Vec<RepairedEvent>,
        /// Numbers that cannot be repaired, as inclusive ranges.
        gone: Vec<[u64; 2]>,
        /// Whether this is the last part of the answer.
        done: bool,
    },
    /// "I am about to leave: these are the last numbers of all my names (`done` on the last
    /// part); tell me when you have everything of them you follow." A node that lingers
    /// at close sends it, and answers repairs until each peer that follows its names
    /// answered with [`Control::Settled`] (or the linger ends).
    Closing {
        /// Sender's incarnation.
        epoch: u64,
        /// Event name and the last sequence number assigned to it.
        last: Vec<SequenceMark>,
        /// Whether this is the last part.
        done: bool,
    },
    /// "I have everything of yours I follow, or have reported what I could not have": the
    /// answer to `to`'s [`Control::Closing`].
    Settled {
        /// Sender's incarnation.
        epoch: u64,
        /// The node that is leaving.
        to: String,
    },
}

/// An event sent again, in a [`Control::Repaired`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairedEvent {
    /// Its sequence number.
    pub seq: u64,
    /// Its MessagePack payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// The last value a node retained for one event name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedValue {
    /// The event name.
    pub name: String,
    /// The sequence number it was emitted with.
    pub seq: u64,
    /// Its MessagePack payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// What became of a request, as the responder's node says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ReplyOutcome {
    /// The handler's answer, MessagePack.
    Value(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The handler failed: its error, as text.
    Failed(String),
    /// No responder there matches the name any more.
    NoResponder,
}

impl Control {
    /// The sender's incarnation.
    pub fn epoch(&self) -> u64 {
        match self {
            Control::Hello { epoch, .. }
            | Control::Snapshot { epoch, .. }
            | Control::Delta { epoch, .. }
            | Control::Heartbeat { epoch, .. }
            | Control::Resync { epoch }
            | Control::Sequences { epoch, .. }
            | Control::Request { epoch, .. }
            | Control::Reply { epoch, .. }
            | Control::LastRequest { epoch, .. }
            | Control::LastValues { epoch, .. }
            | Control::GroupEvent { epoch, .. }
            | Control::GroupMark { epoch, .. }
            | Control::GroupAck { epoch, .. }
            | Control::Ack { epoch, .. }
            | Control::AckRequest { epoch, .. }
            | Control::MarksRequest { epoch, .. }
            | Control::Marks { epoch, .. }
            | Control::Repair { epoch, .. }
            | Control::Repaired { epoch, .. }
            | Control::Closing { epoch, .. }
            | Control::Settled { epoch, .. }
            | Control::Bye { epoch } => *epoch,
        }
    }

    /// Encodes as MessagePack (maps with named fields; the variant name is the only key of
    /// the outer map).
    pub fn encode(&self) -> Bytes {
        // Serializing these plain structs into a Vec cannot fail.
        rmp_serde::to_vec_named(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// Decodes untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        rmp_serde::from_slice(bytes)
            .map_err(|e| Error::MalformedFrame(format!("control message: {e}")))
    }

    /// Whether `body`, an encoded control message, is a [`Control::Sequences`]: for a
    /// transport that carries each name's marks beside the name's events, so that it looks
    /// at no other control message further than these bytes.
    ///
    /// ```
    /// use demitter_core::protocol::Control;
    /// let marks = Control::Sequences { epoch: 1, last: Vec::new(), moved: 0 };
    /// assert!(Control::is_sequences(&marks.encode()));
    /// assert!(!Control::is_sequences(&Control::Bye { epoch: 1 }.encode()));
    /// ```
    pub fn is_sequences(body: &[u8]) -> bool {
        body.starts_with(SEQUENCES_TAG)
    }

    /// Whether `body`, an encoded control message, is a [`Control::Marks`] (an answer
    /// made of marks, which such a transport carries the same way).
    ///
    /// ```
    /// use demitter_core::protocol::Control;
    /// let answer = Control::Marks { epoch: 1, to: "b".into(), after: 0, moved: 3, last: Vec::new() };
    /// assert!(Control::is_marks(&answer.encode()));
    /// assert!(!Control::is_marks(&Control::Bye { epoch: 1 }.encode()));
    /// ```
    pub fn is_marks(body: &[u8]) -> bool {
        body.starts_with(MARKS_TAG)
    }

    /// Whether `body`, an encoded control message, is presence: a [`Control::Hello`],
    /// [`Control::Heartbeat`] or [`Control::Bye`]. For a relay that counts who is on the
    /// bus without decoding what else passes (requests and group events carry payloads).
    ///
    /// ```
    /// use demitter_core::protocol::Control;
    /// let beat = Control::Heartbeat { epoch: 1, version: 0, moved: 0 };
    /// assert!(Control::is_presence(&beat.encode()));
    /// assert!(Control::is_presence(&Control::Bye { epoch: 1 }.encode()));
    /// assert!(!Control::is_presence(&Control::Resync { epoch: 1 }.encode()));
    /// ```
    pub fn is_presence(body: &[u8]) -> bool {
        PRESENCE_TAGS.iter().any(|tag| body.starts_with(tag))
    }
}

/// How an encoded [`Control::Sequences`] starts: a map of one key, the variant's name.
const SEQUENCES_TAG: &[u8] = b"\x81\xa9Sequences";
/// How an encoded [`Control::Marks`] starts.
const MARKS_TAG: &[u8] = b"\x81\xa5Marks";
/// How encoded [`Control::Hello`], [`Control::Heartbeat`] and [`Control::Bye`] start.
const PRESENCE_TAGS: [&[u8]; 3] = [b"\x81\xa5Hello", b"\x81\xa9Heartbeat", b"\x81\xa3Bye"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let msg = Control::Snapshot {
            epoch: 1,
            version: 2,
            interest: vec![InterestEntry {
                pattern: "a.+".into(),
                count: 3,
                since: 0,
                role: Role::Group("workers".into()),
            }],
        };
        assert_eq!(Control::decode(&msg.encode()).expect("decodes"), msg);
        assert!(Control::decode(b"\xc1garbage").is_err());
        assert!(Control::decode(&[]).is_err());
    }

    #[test]
    fn a_listeners_entry_says_no_role_and_the_others_do() {
        let entry = |role| InterestEntry {
            pattern: "a.+".into(),
            count: 1,
            since: 2,
            role,
        };
        let hello = |interest| Control::Hello {
            epoch: 1,
            version: 2,
            interest,
        };
        let listeners = hello(vec![entry(Role::Listen)]).encode();
        assert!(
            !listeners.windows(4).any(|w| w == b"role"),
            "as before roles"
        );
        for role in [Role::Listen, Role::Group("w".into()), Role::Serve] {
            let msg = hello(vec![entry(role)]);
            assert_eq!(Control::decode(&msg.encode()).expect("decodes"), msg);
        }
        let bad = hello(vec![entry(Role::Serve)])
            .encode()
            .iter()
            .map(|b| if *b == b'S' { b'X' } else { *b })
            .collect::<Vec<u8>>();
        assert!(Control::decode(&bad).is_err(), "an unknown role is refused");
    }

    #[test]
    fn only_sequences_are_taken_for_sequences() {
        let others = [
            Control::Hello {
                epoch: 1,
                version: 1,
                interest: Vec::new(),
            },
            Control::Resync { epoch: 1 },
            Control::Heartbeat {
                epoch: 1,
                version: 1,
                moved: 0,
            },
            Control::Bye { epoch: 1 },
            Control::MarksRequest {
                epoch: 1,
                to: "b".into(),
                after: 0,
            },
        ];
        for other in &others {
            assert!(!Control::is_sequences(&other.encode()), "{other:?}");
        }
        let marks = Control::Sequences {
            epoch: 7,
            last: vec![SequenceMark {
                name: "a".into(),
                seq: 3,
            }],
            moved: 2,
        };
        assert!(Control::is_sequences(&marks.encode()));
        assert!(!Control::is_marks(&marks.encode()));
        assert!(!Control::is_sequences(b"\x81\xa9Sequence"));
    }
}
