//! The whole protocol of one emitter as a deterministic state machine, in the manner of
//! quinn-proto's `Connection`: `handle_*` and the API calls feed it, `poll_*` drain it, time
//! is passed in, and it never touches a socket, a lock, a task or a clock.
//!
//! A [`Node`] owns the listener table (patterns, ids, flags and an opaque sink per listener
//! of the driver's choosing), what the peers listen on, presence and counts, sequence
//! numbers both ways, the count observers. The [`Emitter`](crate::Emitter) drives one;
//! tests drive many on a virtual clock.
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use demitter_core::node::{Dispatch, ListenerFlags, Node, NodeConfig, Transmit};
//! use demitter_core::{Capabilities, Incoming, NodeId, Pattern};
//!
//! let now = Instant::now();
//! let config = |id: &str| NodeConfig::new(NodeId::new(id).unwrap(), Capabilities::broadcast(1 << 20));
//! let mut alice: Node<&str> = Node::new(config("alice"), now);
//! let mut bob: Node<&str> = Node::new(config("bob"), now);
//! bob.add_listener(Pattern::new("user.+")?, ListenerFlags::default(), "bob's handler")?;
//!
//! // Wire them by hand: whatever one transmits, the other handles.
//! let mut carry = |from: &mut Node<&str>, to: &mut Node<&str>| {
//!     while let Some(t) = from.poll_transmit() {
//!         if let Transmit::Frame { frame, .. } = t {
//!             to.handle_incoming(now, Incoming::Frame { from: None, frame });
//!         }
//!     }
//! };
//! carry(&mut bob, &mut alice);
//! carry(&mut alice, &mut bob);
//! assert_eq!(alice.listener_count_of("user.login")?, 1);
//!
//! alice.emit("user.login", Bytes::from_static(b"\xa3ann"))?;
//! carry(&mut alice, &mut bob);
//! let delivered = std::iter::from_fn(|| bob.poll_dispatch()).find_map(|d| match d {
//!     Dispatch::Event { event, to } => Some((event.name.to_string(), to.to_vec())),
//!     _ => None,
//! });
//! assert_eq!(delivered, Some(("user.login".to_owned(), vec!["bob's handler"])));
//! # Ok::<(), demitter_core::Error>(())
//! ```

mod acknowledgements;
mod acknowledging;
mod bus_listeners;
mod coverage;
mod duplicates;
mod groups;
mod hearing;
mod lingering;
mod listeners;
mod observers;
mod output;
mod own_id;
mod recovery_config;
mod repairing;
mod repairs;
mod requests;
mod retained;
mod sequencing;
mod tail_asking;
mod tails;
mod turns;
mod window;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

pub use crate::name::validate_group;
pub use bus_listeners::BusListener;
pub use hearing::Readiness;
pub use listeners::{ListenerFlags, ListenerInfo};
pub use observers::CountSubject;
pub use output::{Dispatch, Emitted, FrameKind, Targets, Transmit};
pub use recovery_config::RecoveryConfig;
pub use requests::{IncomingRequest, RequestFailure};

use crate::error::Error;
use crate::event::{
    Delivery, LISTENER_ADDED, LISTENER_REMOVED, ListenerChange, PEER_DOWN, PEER_UP, PeerChange,
    RawEvent,
};
use crate::frame::{ControlFrame, EVENT_OVERHEAD, EventFrame, Frame};
use crate::name::is_system;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::payload::encode_payload;
use crate::protocol::remote_interest::RemoteInterest;
use crate::protocol::remote_interest::Route;
use crate::protocol::{
    Action, Control, Interest, Presence, PresenceConfig, ReplyOutcome, RetainedValue, SeqCheck,
};
use crate::report::{ERROR_EVENT, ErrorKind, ErrorReport};
use crate::transport::{Capabilities, Destination, Incoming};
use acknowledgements::Acknowledgements;
use coverage::Coverage;
use duplicates::Duplicates;
use groups::{GroupRoute, Groups};
use hearing::Hearing;
use listeners::{InterestChange, ListenerTable};
use observers::Observers;
use repairing::RepairBudget;
use repairs::Repairs;
use requests::Requests;
use retained::{Finished, Retained};
use sequencing::Sequencing;
use tails::Tails;
use window::Window;

/// Bytes a request or reply frame takes beside its ids, name and payload (the frame and
/// MessagePack headers, with room to spare).
const REQUEST_OVERHEAD: usize = 128;

/// Bytes one retained value takes in a [`Control::LastValues`] beside its name and payload.
const LAST_VALUE_OVERHEAD: usize = 48;

/// When a closed node says its timers want it next: never, in effect.
const CLOSED_TIMER: Duration = Duration::from_secs(3600);

/// The longest node id: an answer's `to` can be any peer's.
const MAX_NODE_ID_BYTES: usize = 255;

/// What a node is and how it behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeConfig {
    /// Its id: the `source` of what it emits.
    pub id: NodeId,
    /// Its incarnation: a node restarted with the same id takes a new one.
    pub epoch: u64,
    /// What its transport does itself.
    pub capabilities: Capabilities,
    /// Presence timing and limits.
    pub presence: PresenceConfig,
    /// The most (source, event name) pairs whose sequence numbers are tracked.
    pub max_tracked_sequences: usize,
    /// How often the last sequence numbers of names emitted lately are announced.
    pub sequence_mark_interval: Duration,
    /// What it keeps of what it emitted for peers that lost it, and how long it waits for
    /// what it lost itself (off unless set: the emitter sets it on by default).
    pub recovery: RecoveryConfig,
}

impl NodeConfig {
    /// A node `id` in a random incarnation, with default timing.
    pub fn new(id: NodeId, capabilities: Capabilities) -> Self {
        Self {
            id,
            epoch: fastrand::u64(1..),
            capabilities,
            presence: PresenceConfig::default(),
            max_tracked_sequences: 100_000,
            sequence_mark_interval: Duration::from_millis(100),
            recovery: RecoveryConfig::OFF,
        }
    }
}

/// The non-spy listeners here and on every known peer that `subject` counts (a free
/// function, so the observers can be updated while the node is borrowed in parts).
fn count_on_bus<S: Clone>(
    listeners: &ListenerTable<S>,
    remote: &RemoteInterest,
    requests: &Requests,
    groups: &Groups<S>,
    subject: &CountSubject,
) -> usize {
    match subject {
        CountSubject::Responders(name) => {
            requests.local_matching(name) + remote.responders_matching(name)
        }
        CountSubject::Name(name) => {
            listeners.count_matching(name)
                + remote.listeners_matching(name)
                + groups.members_matching(name, remote)
        }
        CountSubject::Pattern(p) => {
            listeners.count_exact(p) + remote.listeners_exact(p) + groups.members_exact(p, remote)
        }
    }
}

/// Where events of one name go.
struct EmitRoute<S> {
    name: String,
    remote: Route,
    local: Targets<S>,
    /// Non-spy listeners in `local`.
    counted: usize,
    /// The groups with a member matching, anywhere.
    groups: GroupRoute,
}

impl<S> Default for EmitRoute<S> {
    fn default() -> Self {
        Self {
            name: String::new(),
            remote: Route::nowhere(),
            local: Targets::new(),
            counted: 0,
            groups: GroupRoute::new(),
        }
    }
}

/// One emitter's protocol state. `S` is the driver's handle for delivering to a listener
/// (the [`Emitter`](crate::Emitter) uses its queues; a test can use anything cloneable).
pub struct Node<S> {
    id: NodeId,
    epoch: u64,
    caps: Capabilities,
    listeners: ListenerTable<S>,
    /// Who is on the bus, and what each peer has interest in (the one table of it).
    presence: Presence,
    /// Whether the bus was heard: whom this node still waits for.
    hearing: Hearing,
    /// What `hearing` said last (and every `Delivery` says).
    readiness: Readiness,
    /// Other nodes with this id.
    duplicates: Duplicates,
    /// Which peers acknowledged this node's interest, and since when each listener is in it.
    acks: Acknowledgements,
    /// Where this node's names started for each peer, as acknowledged to it.
    coverage: Coverage,
    /// The last source an event came from, known up in that incarnation: a run of events
    /// from one peer asks presence once. Forgotten at every `$peer.down`.
    known_source: Option<(NodeId, u64)>,
    sequencing: Sequencing,
    /// Each source's announcements of moved names, followed for none missed.
    tails: Tails,
    /// Where the name emitted last goes, kept until a listener here or on a peer comes or
    /// goes: a run of emits of one name looks nothing up.
    last_emitted: Option<EmitRoute<S>>,
    /// The local listeners of the event name received last (a run of one name from the
    /// network looks nothing up), until any listener comes or goes.
    last_received: Option<(Arc<str>, Targets<S>)>,
    observers: Observers,
    requests: Requests,
    groups: Groups<S>,
    retained: Retained,
    /// The latest time the driver passed in.
    now: Instant,
    /// How long a listener made `with_last` waits for a peer's retained values: twice the
    /// presence timeout, so that a peer that crashed is known down first.
    catch_up_timeout: Duration,
    transmits: VecDeque<Transmit>,
    dispatches: VecDeque<Dispatch<S>>,
    closed: bool,
    /// Control messages refused for exceeding the frame limit.
    oversize_controls: u64,
    recovery: RecoveryConfig,
    /// What this node emitted lately, for peers that lost it.
    window: Window,
    /// What this node lost and asked for.
    repairs: Repairs,
    /// What it may still send again in this period.
    repair_budget: RepairBudget,
    /// Events lost on the way that came back.
    recovered: u64,
    /// While leaving with recovery on: the peers that follow this node's names and have
    /// not said they have them all.
    lingering: Option<std::collections::HashSet<NodeId>>,
    /// Leaving peers (with their incarnation) to tell once nothing of theirs is missing.
    owe_settled: foldhash::HashMap<NodeId, u64>,
}

impl<S> std::fmt::Debug for Node<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("epoch", &self.epoch)
            .field("listeners", &self.listeners.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<S: Clone> Node<S> {
    /// A node that joins the bus at `now`: its hello is the first transmit.
    pub fn new(config: NodeConfig, now: Instant) -> Self {
        let catch_up_timeout = config.presence.peer_timeout * 2;
        let hearing = Hearing::new(
            config.capabilities.census,
            now,
            config.presence.heartbeat_interval,
            config.presence.peer_timeout,
        );
        let duplicates = Duplicates::new(config.epoch, now, config.presence.heartbeat_interval);
        let tails = Tails::new(config.presence.heartbeat_interval);
        let mut presence = Presence::new(config.id.clone(), config.epoch, config.presence, now);
        let hello = presence.start(now);
        let mut node = Self {
            duplicates,
            acks: Acknowledgements::default(),
            coverage: Coverage::default(),
            hearing,
            readiness: Readiness::default(),
            sequencing: Sequencing::new(
                config.epoch,
                config.max_tracked_sequences,
                config.sequence_mark_interval,
                now,
            ),
            tails,
            id: config.id,
            epoch: config.epoch,
            caps: config.capabilities,
            listeners: ListenerTable::default(),
            presence,
            known_source: None,
            last_emitted: None,
            last_received: None,
            observers: Observers::default(),
            requests: Requests::default(),
            groups: Groups::default(),
            retained: Retained::default(),
            now,
            catch_up_timeout,
            transmits: VecDeque::new(),
            dispatches: VecDeque::new(),
            closed: false,
            oversize_controls: 0,
            window: Window::new(
                if config.recovery.is_on() {
                    config.recovery.window_bytes
                } else {
                    0
                },
                config.recovery.window_age,
            ),
            repairs: Repairs::new(config.recovery.repair_deadline),
            repair_budget: RepairBudget::new(),
            recovered: 0,
            recovery: config.recovery,
            lingering: None,
            owe_settled: foldhash::HashMap::default(),
        };
        node.apply(hello);
        node
    }

    /// Its id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// Its incarnation.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Events lost on the way that came back (repaired from their sender's window, or
    /// late), so far.
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// Whether [`close`](Self::close) was called, or the node gave way to another with its
    /// id.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Why calls fail once closed: [`Error::DuplicateId`] for a node that gave way to
    /// another with its id, [`Error::Closed`] otherwise.
    pub fn closed_error(&self) -> Error {
        if self.duplicates.is_refused() {
            Error::DuplicateId {
                id: self.id.to_string(),
                address: self.duplicates.other_address().map(str::to_owned),
            }
        } else {
            Error::Closed
        }
    }

    // ---- listeners ---------------------------------------------------------------------

    /// Adds a listener on `pattern` delivering to `sink`; returns its id.
    pub fn add_listener(
        &mut self,
        pattern: Pattern,
        flags: ListenerFlags,
        sink: S,
    ) -> Result<u64, Error> {
        if self.closed {
            return Err(self.closed_error());
        }
        let (id, change) = self.listeners.add(pattern, flags, sink);
        self.forget_last_route();
        // Subscribe before announcing: a peer that hears of this listener must find the
        // subscription already on its way.
        if change.first {
            self.transmits
                .push_back(Transmit::Subscribe(change.pattern.clone()));
        }
        self.announce(&change);
        let since = self
            .presence
            .local_since(&Interest::Listen(change.pattern.clone()))
            .unwrap_or_else(|| self.presence.version());
        self.acks.listener_added(id, since);
        self.notify_counts();
        if !is_system(change.pattern.as_str()) {
            self.dispatch_system(
                LISTENER_ADDED,
                &ListenerChange {
                    pattern: change.pattern.to_string(),
                    spy: flags.spy,
                },
            );
        }
        Ok(id)
    }

    /// Adds a listener that first receives the retained values whose names `pattern`
    /// matches: this node's at once, and each peer's (those known up at `now`, and those
    /// that come up later) before that peer's live events, which are held back until the
    /// peer has answered, is known down, or twice the presence timeout passed (reported).
    /// Returns its id.
    pub fn add_listener_with_last(
        &mut self,
        now: Instant,
        pattern: Pattern,
        flags: ListenerFlags,
        sink: S,
    ) -> Result<u64, Error> {
        let id = self.add_listener(pattern.clone(), flags, sink)?;
        if is_system(pattern.as_str()) {
            // Nothing is retained under a system name.
            return Ok(id);
        }
        self.now = self.now.max(now);
        let text = pattern.to_string();
        let own = self.retained.add_listener(id, pattern, &self.id);
        self.deliver_to(id, own);
        let peers: Vec<NodeId> = self.presence.peers().cloned().collect();
        if !peers.is_empty() {
            let request = self
                .retained
                .start_with(id, peers, now + self.catch_up_timeout);
            // After the announcement of the listener: a peer that answers already sends
            // it the live events that follow its answer.
            self.send_control(
                Control::LastRequest {
                    epoch: self.epoch,
                    id: request,
                    pattern: text,
                },
                Destination::All,
            );
        }
        Ok(id)
    }

    /// Adds a member of listener group `group` on `pattern`: each event matching it
    /// reaches one member of the group bus-wide, chosen by its sender in turn. Returns its
    /// id (one of the listener ids; [`remove_listener`](Self::remove_listener) removes it).
    pub fn add_group_member(
        &mut self,
        pattern: Pattern,
        group: &str,
        sink: S,
    ) -> Result<u64, Error> {
        if self.closed {
            return Err(self.closed_error());
        }
        validate_group(group)?;
        if is_system(pattern.as_str()) {
            return Err(Error::ReservedName(pattern.as_str().to_owned()));
        }
        let id = self.listeners.allocate_id();
        let interest = Interest::members(group, pattern.clone());
        let text = pattern.to_string();
        let count = self.groups.add_local(id, group, pattern, sink);
        self.announce_interest(&interest, Some(count));
        self.forget_last_route();
        self.notify_counts();
        self.dispatch_system(
            LISTENER_ADDED,
            &ListenerChange {
                pattern: text,
                spy: false,
            },
        );
        Ok(id)
    }

    /// For each group with a member matching `name` (here or on a known peer), how many
    /// members match.
    pub fn group_members(&self, name: &str) -> std::collections::BTreeMap<String, usize> {
        self.groups.members_by_group(name, self.presence.remote())
    }

    fn remove_group_member(&mut self, id: u64) -> Option<ListenerInfo<S>> {
        let (group, info, left) = self.groups.remove_local(id)?;
        self.announce_interest(
            &Interest::members(&group, info.pattern.clone()),
            (left > 0).then_some(left),
        );
        self.forget_last_route();
        self.notify_counts();
        self.dispatch_system(
            LISTENER_REMOVED,
            &ListenerChange {
                pattern: info.pattern.to_string(),
                spy: false,
            },
        );
        Some(info)
    }

    /// Removes a listener; returns what the node knew of it, if it was still there.
    pub fn remove_listener(&mut self, id: u64) -> Option<ListenerInfo<S>> {
        if self.groups.local(id).is_some() {
            return self.remove_group_member(id);
        }
        let (info, change) = self.listeners.remove(id)?;
        let since = self.acks.since(id);
        self.acks.listener_removed(id);
        if change.count.is_none()
            && let Some(since) = since
        {
            self.acks.dropped(&(change.pattern.clone(), since));
        }
        self.retained.forget(id);
        self.forget_last_route();
        self.announce(&change);
        if change.count.is_none() {
            self.transmits
                .push_back(Transmit::Unsubscribe(change.pattern.clone()));
            let listeners = &self.listeners;
            self.sequencing
                .forget_unheard(|name| listeners.has_match(name));
            self.acks
                .forget_provisional(|name| listeners.has_match(name));
        }
        self.notify_counts();
        if !is_system(change.pattern.as_str()) {
            self.dispatch_system(
                LISTENER_REMOVED,
                &ListenerChange {
                    pattern: change.pattern.to_string(),
                    spy: info.flags.spy,
                },
            );
        }
        Some(info)
    }

    /// A listener (or group member), by id.
    pub fn listener(&self, id: u64) -> Option<&ListenerInfo<S>> {
        self.listeners
            .get(id)
            .or_else(|| self.groups.local(id).map(|(_, info)| info))
    }

    /// The ids of the listeners for which `select` is true.
    pub fn listeners_where(&self, mut select: impl FnMut(&ListenerInfo<S>) -> bool) -> Vec<u64> {
        let mut ids = Vec::new();
        self.listeners.for_each(|l| {
            if select(l) {
                ids.push(l.id);
            }
        });
        ids.extend(self.groups.locals().filter(|l| select(l)).map(|l| l.id));
        ids
    }

    /// Every listener's sink (to close them all at the end).
    pub fn sinks(&self) -> Vec<S> {
        let mut sinks = Vec::with_capacity(self.listeners.len());
        self.listeners.for_each(|l| sinks.push(l.sink.clone()));
        sinks.extend(self.groups.locals().map(|l| l.sink.clone()));
        sinks
    }

    fn announce(&mut self, change: &InterestChange) {
        self.announce_interest(&Interest::Listen(change.pattern.clone()), change.count);
    }

    /// Tells the bus this node's count on `interest` changed.
    fn announce_interest(&mut self, interest: &Interest, count: Option<u32>) {
        if let Some(Action::Send { to, message }) = self.presence.set_local(interest, count) {
            self.send_control(message, to);
        }
    }

    /// A listener here or on a peer came or went: the next emit looks its route up again.
    fn forget_last_route(&mut self) {
        self.last_received = None;
        if let Some(route) = &mut self.last_emitted {
            // No event has the empty name: this matches nothing, and keeps the buffers.
            route.name.clear();
            route.local.clear();
        }
    }

    // ---- counts ------------------------------------------------------------------------

    /// How many non-spy listeners on the bus (here and on every known peer) `subject`
    /// counts.
    pub fn listener_count(&self, subject: &CountSubject) -> usize {
        count_on_bus(
            &self.listeners,
            self.presence.remote(),
            &self.requests,
            &self.groups,
            subject,
        )
    }

    /// The listeners [`listener_count`](Self::listener_count) counts, one entry each: the
    /// node each lives on, its pattern, its group. This node's come first.
    pub fn bus_listeners(&self, subject: &CountSubject) -> Vec<BusListener> {
        bus_listeners::Tables {
            me: &self.id,
            listeners: &self.listeners,
            remote: self.presence.remote(),
            requests: &self.requests,
            groups: &self.groups,
        }
        .list(subject)
    }

    /// [`listener_count`](Self::listener_count) of a name or pattern given as text.
    pub fn listener_count_of(&self, name_or_pattern: &str) -> Result<usize, Error> {
        Ok(self.listener_count(&CountSubject::parse(name_or_pattern)?))
    }

    /// Starts watching `subject`: returns the observer's id and the count now; every change
    /// comes as a [`Dispatch::Count`].
    pub fn observe(&mut self, subject: CountSubject) -> (u64, usize) {
        let now = self.listener_count(&subject);
        (self.observers.add(subject, now), now)
    }

    /// Stops watching.
    pub fn unobserve(&mut self, observer: u64) {
        self.observers.remove(observer);
    }

    fn notify_counts(&mut self) {
        let Self {
            observers,
            listeners,
            presence,
            requests,
            groups,
            dispatches,
            ..
        } = self;
        let remote = presence.remote();
        observers.update(
            |subject| count_on_bus(listeners, remote, requests, groups, subject),
            |observer, count| dispatches.push_back(Dispatch::Count { observer, count }),
        );
    }

    /// The peers known to be up.
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.presence.peers()
    }

    /// When `peer` came up (its current incarnation first heard) and on how many patterns
    /// it has counted listeners (spies not); `None` for a peer not up.
    pub fn peer_presence(&self, peer: &NodeId) -> Option<(Instant, usize)> {
        self.presence.peer_presence(peer)
    }

    // ---- emitting ----------------------------------------------------------------------

    /// [`emit`](Self::emit), and keeps the payload as `name`'s retained value on this node:
    /// every listener made `with_last` from now on gets it first, until it is replaced or
    /// [cleared](Self::clear_retained). Values live as long as the node.
    pub fn emit_retained(&mut self, name: &str, payload: Bytes) -> Result<Emitted<S>, Error> {
        // Checked first: a value must fit the answer that carries it to any peer.
        let size = REQUEST_OVERHEAD
            + LAST_VALUE_OVERHEAD
            + self.id.len()
            + MAX_NODE_ID_BYTES
            + name.len()
            + payload.len();
        if size > self.caps.max_frame_bytes {
            return Err(Error::FrameTooLarge {
                size,
                limit: self.caps.max_frame_bytes,
            });
        }
        let kept = payload.clone();
        let emitted = self.emit(name, payload)?;
        if let Some((name, seq)) = self.sequencing.last_number(name) {
            self.retained.keep(name, seq, kept);
        }
        Ok(emitted)
    }

    /// Forgets this node's retained value of `name`; whether it had one. Listeners that
    /// already received it are not told.
    pub fn clear_retained(&mut self, name: &str) -> bool {
        self.retained.clear(name)
    }

    /// Emits an event whose name the caller has checked and whose payload is MessagePack:
    /// numbers it, queues its frame for the peers that listen (every peer, on a transport
    /// that does not filter), and returns the local listeners to run. Takes no time: it
    /// starts no timer.
    pub fn emit(&mut self, name: &str, payload: Bytes) -> Result<Emitted<S>, Error> {
        if self.closed || self.lingering.is_some() {
            return Err(self.closed_error());
        }
        let size = EVENT_OVERHEAD + self.id.len() + name.len() + payload.len();
        if size > self.caps.max_frame_bytes {
            return Err(Error::FrameTooLarge {
                size,
                limit: self.caps.max_frame_bytes,
            });
        }
        self.look_up_route(name);
        let route = self.last_emitted.get_or_insert_with(EmitRoute::default);
        let destination = if self.caps.sender_filtering {
            (!route.remote.peers.is_empty())
                .then(|| Destination::Peers(Arc::clone(&route.remote.peers)))
        } else {
            Some(Destination::All)
        };
        let targets = route.local.clone();
        let mut delivery = Delivery {
            local: route.counted,
            remote: route.remote.count,
            unheard: self.readiness.unheard,
            ready: self.readiness.ready,
        };
        let groups = std::mem::take(&mut route.groups);
        if !groups.is_empty() {
            // Checked first: the event must fit the message that takes it to any member.
            let size = REQUEST_OVERHEAD
                + self.id.len()
                + MAX_NODE_ID_BYTES
                + groups.iter().map(|(g, _)| g.len()).max().unwrap_or(0)
                + name.len()
                + payload.len();
            if size > self.caps.max_frame_bytes {
                if let Some(route) = &mut self.last_emitted {
                    route.groups = groups;
                }
                return Err(Error::FrameTooLarge {
                    size,
                    limit: self.caps.max_frame_bytes,
                });
            }
        }
        let (name, seq) = self.sequencing.number(name);
        if self.recovery.is_on() {
            self.window.keep(&name, seq, &payload, self.now);
        }
        let mut payload = payload;
        if let Some(to) = destination {
            // Most events have no listener in their own process: then the frame takes the
            // payload itself.
            let frame_payload = if targets.is_empty() && groups.is_empty() {
                std::mem::take(&mut payload)
            } else {
                payload.clone()
            };
            self.transmits.push_back(Transmit::Frame {
                frame: Frame::Event(EventFrame {
                    name: Arc::clone(&name),
                    source: self.id.clone(),
                    epoch: self.epoch,
                    seq,
                    payload: frame_payload,
                }),
                to,
                kind: FrameKind::Event,
            });
        }
        if !groups.is_empty() {
            self.send_to_groups(&groups, &name, seq, &payload, &mut delivery);
            if let Some(route) = &mut self.last_emitted {
                route.groups = groups;
            }
        }
        // Nothing of this node's own is ever held back: its values went out when the
        // listener was added.
        let local = (!targets.is_empty()).then(|| {
            (
                RawEvent {
                    name,
                    payload,
                    source: self.id.clone(),
                    seq,
                },
                targets,
            )
        });
        Ok(Emitted { delivery, local })
    }

    /// Makes `last_emitted` the route of `name`, looking it up unless it already is.
    fn look_up_route(&mut self, name: &str) {
        if self
            .last_emitted
            .as_ref()
            .is_none_or(|last| last.name != name)
        {
            // The last route's buffers are reused: switching names allocates nothing.
            let mut route = self.last_emitted.take().unwrap_or_default();
            route.name.clear();
            route.name.push_str(name);
            route.local.clear();
            route.counted = 0;
            self.listeners.for_each_match(name, |l| {
                if !l.flags.spy {
                    route.counted += 1;
                }
                route.local.push(l.sink.clone());
            });
            route.remote = self.presence.remote_mut().route(name);
            if self.caps.sender_filtering && !self.hearing.reachable().is_empty() {
                // Peers not heard yet get everything: they match exactly on receipt.
                route.remote = route.remote.with_peers(self.hearing.reachable());
            }
            route.groups = self.groups.route(name, &self.id, self.presence.remote());
            self.last_emitted = Some(route);
        }
    }

    /// Sends event `name` (number `seq`) to one member of each of `groups`, chosen in
    /// turn: a member here gets it through its queue, one on a peer by a message directed
    /// at its node. Each group counts once in `delivery`.
    fn send_to_groups(
        &mut self,
        groups: &GroupRoute,
        name: &Arc<str>,
        seq: u64,
        payload: &Bytes,
        delivery: &mut Delivery,
    ) {
        for (group, candidates) in groups {
            let Some(chosen) = self.groups.pick_node(group, candidates) else {
                continue;
            };
            if chosen == self.id {
                if let Some(sink) = self.groups.pick_local(group, name) {
                    let mut to = Targets::new();
                    to.push(sink);
                    self.dispatches.push_back(Dispatch::Event {
                        event: RawEvent {
                            name: Arc::clone(name),
                            payload: payload.clone(),
                            source: self.id.clone(),
                            seq,
                        },
                        to,
                    });
                    delivery.local += 1;
                }
                continue;
            }
            let nth = self.groups.number_for(&chosen);
            self.send_control(
                Control::GroupEvent {
                    epoch: self.epoch,
                    to: chosen.to_string(),
                    group: group.to_string(),
                    name: name.to_string(),
                    seq,
                    nth,
                    payload: payload.to_vec(),
                },
                Destination::Peer(chosen),
            );
            delivery.remote += 1;
        }
    }

    /// A group event or acknowledgement: for this node only if it is addressed here.
    fn receive_group_control(&mut self, now: Instant, source: &NodeId, message: Control) {
        match message {
            Control::GroupEvent {
                epoch,
                to,
                group,
                name,
                seq,
                nth,
                payload,
            } if to == self.id.as_str() => {
                self.heard(now, source, epoch);
                self.receive_group_event(
                    source,
                    GroupEventIn {
                        epoch,
                        group,
                        name,
                        seq,
                        nth,
                        payload,
                    },
                );
            }
            Control::GroupMark { epoch, to, nth } if to == self.id.as_str() => {
                self.heard(now, source, epoch);
                let missed = self.groups.marked(source, epoch, nth);
                self.report_group_gap(source, missed);
            }
            Control::GroupAck { epoch, to, nth } if to == self.id.as_str() => {
                self.heard(now, source, epoch);
                self.groups.acked(source, nth);
            }
            _ => {}
        }
    }

    fn report_group_gap(&mut self, source: &NodeId, missed: u64) {
        if missed > 0 {
            self.report(
                ErrorReport::new(
                    ErrorKind::Gap,
                    missed,
                    format!("{missed} events for group members here from `{source}` never arrived"),
                )
                .with_peer(source.as_str()),
            );
        }
    }

    /// An event for one of this node's members of `group`.
    fn receive_group_event(&mut self, source: &NodeId, event: GroupEventIn) {
        let missed = self.groups.take(source, event.epoch, event.nth);
        self.report_group_gap(source, missed);
        if let Err(e) = crate::name::validate_user_name(&event.name) {
            return self.report(
                ErrorReport::new(ErrorKind::Deserialization, 1, format!("a group event: {e}"))
                    .with_peer(source.as_str()),
            );
        }
        let Some(sink) = self.groups.pick_local(&event.group, &event.name) else {
            return self.report(
                ErrorReport::new(
                    ErrorKind::Emission,
                    1,
                    format!(
                        "`{}` from `{source}` came for group `{}`, which no longer has a member here that matches; dropped",
                        event.name, event.group
                    ),
                )
                .with_peer(source.as_str())
                .with_event(event.name),
            );
        };
        let mut to = Targets::new();
        to.push(sink);
        self.dispatches.push_back(Dispatch::Event {
            event: RawEvent {
                name: event.name.into(),
                payload: Bytes::from(event.payload),
                source: source.clone(),
                seq: event.seq,
            },
            to,
        });
    }

    /// The listeners of `event` that are not catching up with its source; it is held
    /// back for those that are.
    fn hold_for_catch_ups(&mut self, event: &RawEvent) -> Targets<S> {
        let mut targets = Targets::new();
        let mut finished = Vec::new();
        let retained = &mut self.retained;
        self.listeners.for_each_match(&event.name, |l| {
            if retained.is_catching_up(l.id, &event.source) {
                finished.extend(retained.hold(l.id, event.clone()));
            } else {
                targets.push(l.sink.clone());
            }
        });
        for done in finished {
            self.deliver_caught_up(done);
        }
        targets
    }

    /// A catch-up ended: its listener gets what it gathered, in order, and a peer that
    /// never answered in full is reported.
    fn deliver_caught_up(&mut self, finished: Finished) {
        if let Some(epoch) = finished.epoch {
            // The values start the sequence where no live event has yet: a live event
            // that then does not follow its value is a gap, reported.
            for value in &finished.events[..finished.values] {
                self.sequencing
                    .check(&finished.peer, epoch, &value.name, value.seq);
            }
        }
        self.deliver_to(finished.listener, finished.events);
        if let Some(why) = finished.cut_short {
            let pattern = self
                .listeners
                .get(finished.listener)
                .map(|l| l.pattern.to_string())
                .unwrap_or_default();
            let peer = finished.peer;
            let report = ErrorReport::new(
                ErrorKind::Network,
                1,
                format!(
                    "listener on `{pattern}` went on without all the retained values of `{peer}`: {why}"
                ),
            )
            .with_peer(peer.as_str())
            .with_event(pattern);
            self.report(report);
        }
    }

    /// Queues `events` for listener `id`, in order.
    fn deliver_to(&mut self, id: u64, events: Vec<RawEvent>) {
        let Some(sink) = self.listeners.get(id).map(|l| l.sink.clone()) else {
            return;
        };
        for event in events {
            let mut to = Targets::new();
            to.push(sink.clone());
            self.dispatches.push_back(Dispatch::Event { event, to });
        }
    }

    /// Asks `peer`, which just came up, for the retained values of every listener made
    /// `with_last`.
    fn catch_up_with(&mut self, peer: &NodeId) {
        let deadline = self.now + self.catch_up_timeout;
        for (request, pattern) in self.retained.peer_up(peer, deadline) {
            self.send_control(
                Control::LastRequest {
                    epoch: self.epoch,
                    id: request,
                    pattern: pattern.to_string(),
                },
                Destination::Peer(peer.clone()),
            );
        }
    }

    /// Answers `from`'s request for its retained values matching `pattern`, in parts that
    /// fit a frame, the last one `done`.
    fn answer_last_request(&mut self, from: &NodeId, id: u64, pattern: &str) {
        let values = match Pattern::new(pattern) {
            Ok(pattern) => self.retained.own_matching(&pattern),
            Err(e) => {
                self.report(
                    ErrorReport::new(
                        ErrorKind::Deserialization,
                        1,
                        format!("a request for retained values: {e}"),
                    )
                    .with_peer(from.as_str()),
                );
                Vec::new()
            }
        };
        let room = self
            .caps
            .max_frame_bytes
            .saturating_sub(REQUEST_OVERHEAD + self.id.len() + from.len());
        let mut part: Vec<RetainedValue> = Vec::new();
        let mut used = 0;
        for value in values {
            let size = LAST_VALUE_OVERHEAD + value.name.len() + value.payload.len();
            if !part.is_empty() && used + size > room {
                self.send_last_values(from, id, std::mem::take(&mut part), false);
                used = 0;
            }
            used += size;
            part.push(value);
        }
        self.send_last_values(from, id, part, true);
    }

    fn send_last_values(&mut self, to: &NodeId, id: u64, values: Vec<RetainedValue>, done: bool) {
        self.send_control(
            Control::LastValues {
                epoch: self.epoch,
                to: to.to_string(),
                id,
                values,
                done,
            },
            Destination::Peer(to.clone()),
        );
    }

    // ---- requests and replies -----------------------------------------------------------

    /// Adds a responder on `pattern`: requests for matching names may now come to this node
    /// (as [`Dispatch::Request`]). Returns its id.
    pub fn add_responder(&mut self, pattern: Pattern) -> Result<u64, Error> {
        if self.closed {
            return Err(self.closed_error());
        }
        let interest = Interest::Serve(pattern.clone());
        let (id, count) = self.requests.add_responder(pattern);
        self.announce_interest(&interest, Some(count));
        self.notify_counts();
        Ok(id)
    }

    /// Removes a responder; false if it was not there.
    pub fn remove_responder(&mut self, id: u64) -> bool {
        let Some((pattern, left)) = self.requests.remove_responder(id) else {
            return false;
        };
        self.announce_interest(&Interest::Serve(pattern), (left > 0).then_some(left));
        self.notify_counts();
        true
    }

    /// How many responders on the bus (here and on every known peer) match `name`.
    pub fn responder_count(&self, name: &str) -> usize {
        self.listener_count(&CountSubject::responders(name))
    }

    /// Sends a request for `name` to one responder that matches it, chosen in turn among
    /// the nodes known to have one (this one included); its outcome comes as a
    /// [`Dispatch::Reply`] with the returned number, at the latest after `timeout`.
    /// [`Error::NoResponder`] at once if no node is known to serve `name`.
    pub fn request(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<u64, Error> {
        if self.closed {
            return Err(self.closed_error());
        }
        let size = REQUEST_OVERHEAD + 2 * self.id.len() + name.len() + payload.len();
        if size > self.caps.max_frame_bytes {
            return Err(Error::FrameTooLarge {
                size,
                limit: self.caps.max_frame_bytes,
            });
        }
        let mut candidates = self.presence.remote().serving(name);
        if self.requests.local_matching(name) > 0 {
            candidates.push(self.id.clone());
        }
        candidates.sort();
        let Some(responder) = self.requests.pick_node(&candidates) else {
            return Err(Error::NoResponder {
                name: name.to_owned(),
            });
        };
        let name: Arc<str> = name.into();
        let id = self
            .requests
            .start(responder.clone(), Arc::clone(&name), now, timeout);
        if responder == self.id {
            self.receive_request(&responder, id, &name, payload.to_vec());
        } else {
            self.send_control(
                Control::Request {
                    epoch: self.epoch,
                    to: responder.to_string(),
                    id,
                    name: name.to_string(),
                    payload: payload.to_vec(),
                },
                Destination::Peer(responder),
            );
        }
        Ok(id)
    }

    /// Answers request `id` of node `to` (from a [`Dispatch::Request`]) with `outcome`.
    pub fn reply(&mut self, to: &NodeId, id: u64, outcome: ReplyOutcome) {
        if *to == self.id {
            let me = self.id.clone();
            return self.settle(id, &me, outcome);
        }
        if self.closed {
            return;
        }
        let outcome = match outcome {
            ReplyOutcome::Value(value)
                if REQUEST_OVERHEAD + 2 * self.id.len() + value.len()
                    > self.caps.max_frame_bytes =>
            {
                ReplyOutcome::Failed(format!(
                    "the reply of {} bytes exceeds the frame limit of {} bytes",
                    value.len(),
                    self.caps.max_frame_bytes
                ))
            }
            other => other,
        };
        self.send_control(
            Control::Reply {
                epoch: self.epoch,
                to: to.to_string(),
                id,
                outcome,
            },
            Destination::Peer(to.clone()),
        );
    }

    /// A request for this node from `from`: to a local responder, or answered at once.
    fn receive_request(&mut self, from: &NodeId, id: u64, name: &str, payload: Vec<u8>) {
        if let Err(e) = crate::name::validate_user_name(name) {
            self.report(
                ErrorReport::new(ErrorKind::Deserialization, 1, format!("a request: {e}"))
                    .with_peer(from.as_str()),
            );
            return self.reply(from, id, ReplyOutcome::Failed(e.to_string()));
        }
        match self.requests.pick_local(name) {
            Some(responder) => self
                .dispatches
                .push_back(Dispatch::Request(IncomingRequest {
                    responder,
                    from: from.clone(),
                    id,
                    name: name.into(),
                    payload: Bytes::from(payload),
                })),
            None => self.reply(from, id, ReplyOutcome::NoResponder),
        }
    }

    /// A reply from `from` to request `id`: the request ends, if it went there.
    fn settle(&mut self, id: u64, from: &NodeId, outcome: ReplyOutcome) {
        let Some(name) = self.requests.finish(id, from) else {
            // Late (timed out already) or not ours: nobody waits for it.
            return;
        };
        let responder = from.clone();
        let result = match outcome {
            ReplyOutcome::Value(payload) => Ok(RawEvent {
                name,
                payload: Bytes::from(payload),
                source: responder,
                seq: 0,
            }),
            ReplyOutcome::Failed(message) => Err(RequestFailure::Failed { responder, message }),
            ReplyOutcome::NoResponder => Err(RequestFailure::NoResponder { responder }),
        };
        self.dispatches.push_back(Dispatch::Reply { id, result });
    }

    /// Ends these requests as failed.
    fn fail_requests(&mut self, failed: Vec<(u64, RequestFailure)>) {
        for (id, failure) in failed {
            self.dispatches.push_back(Dispatch::Reply {
                id,
                result: Err(failure),
            });
        }
    }

    /// A peer was heard from: known from now on, if it was not.
    fn heard(&mut self, now: Instant, source: &NodeId, epoch: u64) {
        if !self.presence.is_known(source, epoch) {
            let actions = self.presence.heard_from(source, epoch, now);
            self.apply(actions);
        }
    }

    // ---- what arrives ------------------------------------------------------------------

    /// Handles what the transport received.
    pub fn handle_incoming(&mut self, now: Instant, incoming: Incoming) {
        match incoming {
            Incoming::Frame { from, frame } => self.handle_frame(now, from.as_ref(), frame),
            Incoming::PeerUp(peer) => {
                self.now = self.now.max(now);
                if !self.presence.has_heard(&peer) && self.hearing.pending(&peer, true, now) {
                    self.forget_last_route();
                }
                let actions = self.presence.peer_connected(&peer);
                self.apply(actions);
            }
            Incoming::PeerDown(peer) => {
                if self.hearing.settled(&peer) {
                    self.forget_last_route();
                }
                let actions = self.presence.peer_lost(&peer);
                self.apply(actions);
            }
            Incoming::PeerExists(peer) => {
                self.now = self.now.max(now);
                if peer != self.id && !self.presence.has_heard(&peer) {
                    self.hearing.pending(&peer, false, now);
                    self.update_readiness();
                }
            }
            Incoming::Joined { peers } => {
                self.now = self.now.max(now);
                self.hearing.joined(peers, now);
                self.update_readiness();
            }
            Incoming::NoCensus => {
                self.now = self.now.max(now);
                self.hearing.by_time(now);
                self.update_readiness();
            }
            Incoming::DuplicateId { address } => {
                if self.duplicates.refuse(address) {
                    self.give_way();
                }
            }
            Incoming::Report(report) => self.report(report),
        }
    }

    /// Whether this node has heard the bus, and how many peers it still waits for.
    pub fn readiness(&self) -> Readiness {
        self.readiness
    }

    /// Works out the readiness again; a change is dispatched.
    fn update_readiness(&mut self) {
        let mut now = self.hearing.readiness(self.presence.heard_count());
        if self.duplicates.is_refused() {
            now.ready = false;
            now.refused = true;
        }
        if now != self.readiness {
            self.readiness = now;
            self.dispatches.push_back(Dispatch::Readiness(now));
        }
    }

    fn handle_frame(&mut self, now: Instant, from: Option<&NodeId>, frame: Frame) {
        let source = frame.source();
        if self.caps.authenticated && from != Some(source) {
            let peer = from.map_or("an unauthenticated peer", NodeId::as_str);
            let report = ErrorReport::new(
                ErrorKind::Refused,
                1,
                format!("frame claiming source `{source}` came from {peer}; dropped"),
            )
            .with_peer(peer);
            return self.report(report);
        }
        if *source == self.id {
            return self.own_id_heard(now, &frame);
        }
        match frame {
            Frame::Event(event) => self.receive_event(now, event),
            Frame::Control(control) => match Control::decode(&control.body) {
                Ok(message) => self.receive_control(now, &control.source, message),
                Err(e) => self.report(
                    ErrorReport::new(ErrorKind::Deserialization, 1, e.to_string())
                        .with_peer(control.source.as_str()),
                ),
            },
        }
    }

    fn receive_control(&mut self, now: Instant, source: &NodeId, message: Control) {
        // Kept for what `apply` starts without being given the time (catch-ups). Events
        // from known peers, the hot path, start nothing.
        self.now = self.now.max(now);
        let message = match message {
            Control::Request {
                epoch,
                to,
                id,
                name,
                payload,
            } => {
                if to == self.id.as_str() {
                    self.heard(now, source, epoch);
                    self.receive_request(source, id, &name, payload);
                }
                return;
            }
            Control::Reply {
                epoch,
                to,
                id,
                outcome,
            } => {
                if to == self.id.as_str() {
                    self.heard(now, source, epoch);
                    self.settle(id, source, outcome);
                }
                return;
            }
            message @ (Control::GroupEvent { .. }
            | Control::GroupMark { .. }
            | Control::GroupAck { .. }) => {
                return self.receive_group_control(now, source, message);
            }
            message @ (Control::Ack { .. } | Control::AckRequest { .. }) => {
                return self.receive_acknowledgement(now, source, message);
            }
            message @ (Control::MarksRequest { .. } | Control::Marks { .. }) => {
                return self.receive_marks_control(now, source, message);
            }
            message @ (Control::Repair { .. } | Control::Repaired { .. }) => {
                return self.receive_repair_control(now, source, message);
            }
            message @ (Control::Closing { .. } | Control::Settled { .. }) => {
                return self.receive_leaving_control(now, source, message);
            }
            Control::LastRequest { epoch, id, pattern } => {
                self.heard(now, source, epoch);
                self.answer_last_request(source, id, &pattern);
                return;
            }
            Control::LastValues {
                epoch,
                to,
                id,
                values,
                done,
            } => {
                if to == self.id.as_str() {
                    self.heard(now, source, epoch);
                    let answered = self.retained.answer(source, epoch, id, &values, done);
                    if answered.refused > 0 {
                        self.report(
                            ErrorReport::new(
                                ErrorKind::Refused,
                                answered.refused as u64,
                                format!(
                                    "{} retained values from `{source}` were not asked for; dropped",
                                    answered.refused
                                ),
                            )
                            .with_peer(source.as_str()),
                        );
                    }
                    for finished in answered.finished {
                        self.deliver_caught_up(finished);
                    }
                }
                return;
            }
            other => other,
        };
        if let Control::Sequences { epoch, last, moved } = &message {
            self.receive_sequences(source, *epoch, last, *moved);
        }
        let leaving = matches!(message, Control::Bye { .. });
        let heartbeat = match message {
            Control::Heartbeat { moved, .. } => Some(moved),
            _ => None,
        };
        let epoch = message.epoch();
        let actions = self.presence.receive(source, message, now);
        self.apply(actions);
        if let Some(moved) = heartbeat {
            self.check_heartbeat(now, source, epoch, moved);
        }
        if leaving {
            self.acks.peer_left(source);
            self.coverage.forget(source);
            self.sequencing.forget_source(source);
            self.tails.forget(source);
        }
    }

    fn receive_event(&mut self, now: Instant, event: EventFrame) {
        // Known peers are kept alive by their heartbeats; only a stranger needs work here.
        let known = self
            .known_source
            .as_ref()
            .is_some_and(|(id, epoch)| *epoch == event.epoch && *id == event.source);
        if !known {
            self.now = self.now.max(now);
            if !self.presence.is_known(&event.source, event.epoch) {
                let actions = self.presence.heard_from(&event.source, event.epoch, now);
                self.apply(actions);
            }
            if self.presence.is_known(&event.source, event.epoch) {
                self.known_source = Some((event.source.clone(), event.epoch));
            } else if self.presence.has_departed(&event.source, event.epoch) {
                // A copy that trails its sender's goodbye (a second connection of a dial
                // race): its sequence state is gone, so it would be taken as new.
                tracing::debug!(source = %event.source, "dropped an event that trails its sender's goodbye");
                return;
            }
        }
        let hit = self
            .last_received
            .as_ref()
            .is_some_and(|(name, _)| Arc::ptr_eq(name, &event.name) || **name == *event.name);
        if !hit {
            let mut targets = Targets::new();
            self.listeners
                .for_each_match(&event.name, |l| targets.push(l.sink.clone()));
            self.last_received = Some((Arc::clone(&event.name), targets));
        }
        let targets = self.last_received.as_ref().map_or(&[][..], |(_, t)| &t[..]);
        // The sequence is checked only if a listener here matches: events nobody here
        // listens to are not tracked.
        if targets.is_empty() {
            return;
        }
        let mut verdict = self
            .sequencing
            .check(&event.source, event.epoch, &event.name, event.seq);
        if verdict == SeqCheck::Fresh {
            if let Some(start) = self.owed_from(&event.source, event.epoch, &event.name) {
                // The first event this node sees of a name it was owed from `start`.
                if event.seq > start + 1 {
                    verdict = SeqCheck::Gap(event.seq - start - 1);
                }
            } else {
                // Its acknowledgement, still to come, says where the name started.
                self.acks
                    .follow_provisionally(&event.source, &event.name, event.seq);
            }
        }
        if self.recovering() && self.recover(verdict, &event) {
            return;
        }
        let targets = self.last_received.as_ref().map_or(&[][..], |(_, t)| &t[..]);
        let to: Targets<S> = if verdict == SeqCheck::Stale {
            Targets::new()
        } else {
            targets.iter().cloned().collect()
        };
        let gap = match verdict {
            SeqCheck::Gap(missed) => Some(Sequencing::gap_report(
                &event.source,
                &event.name,
                event.seq,
                missed,
            )),
            _ => None,
        };
        if !to.is_empty() {
            let event = RawEvent {
                name: event.name,
                payload: event.payload,
                source: event.source,
                seq: event.seq,
            };
            self.dispatch_event(event, to);
        }
        if let Some(report) = gap {
            self.report(report);
        }
    }

    /// Queues `event` for the listeners `to`, holding it back from those catching up with
    /// retained values.
    fn dispatch_event(&mut self, event: RawEvent, to: Targets<S>) {
        if self.retained.catching_up() {
            let to = self.hold_for_catch_ups(&event);
            if !to.is_empty() {
                self.dispatches.push_back(Dispatch::Event { event, to });
            }
        } else {
            self.dispatches.push_back(Dispatch::Event { event, to });
        }
    }

    // ---- time --------------------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) has work next (calling it earlier is
    /// harmless).
    pub fn poll_timeout(&self) -> Instant {
        if self.closed {
            // A closed node has nothing more to do; a driver may still ask.
            return self.now + CLOSED_TIMER;
        }
        let next = self
            .presence
            .next_deadline()
            .min(self.sequencing.next_deadline());
        let next = self.requests.next_deadline().map_or(next, |d| d.min(next));
        let next = self.hearing.next_deadline().map_or(next, |d| d.min(next));
        let next = self.window.next_deadline().map_or(next, |d| d.min(next));
        let next = self.repairs.next_deadline().map_or(next, |d| d.min(next));
        self.retained.next_deadline().map_or(next, |d| d.min(next))
    }

    /// Heartbeats, silent peers expired, sequence marks announced: whatever is due at
    /// `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.now = self.now.max(now);
        if let Some(marks) = self.sequencing.marks_due(now) {
            self.send_control(marks, Destination::All);
        }
        let actions = self.presence.tick(now, self.sequencing.moves());
        self.apply(actions);
        if self.hearing.expire(now) {
            self.forget_last_route();
        }
        self.update_readiness();
        let failed = self.requests.expire(now);
        self.fail_requests(failed);
        for finished in self.retained.expire(now) {
            self.deliver_caught_up(finished);
        }
        self.expire_repairs(now);
        for (peer, nth) in self.groups.marks_due() {
            self.send_control(
                Control::GroupMark {
                    epoch: self.epoch,
                    to: peer.to_string(),
                    nth,
                },
                Destination::Peer(peer),
            );
        }
        for (peer, nth) in self.groups.acks_due() {
            self.send_control(
                Control::GroupAck {
                    epoch: self.epoch,
                    to: peer.to_string(),
                    nth,
                },
                Destination::Peer(peer),
            );
        }
    }

    // ---- the driver's feedback ---------------------------------------------------------

    /// The transport refused a frame this node transmitted.
    pub fn handle_send_failure(&mut self, kind: FrameKind, error: &Error) {
        match kind {
            FrameKind::Event => self.report(ErrorReport::new(
                ErrorKind::Network,
                1,
                format!("event not sent to every peer: {error}"),
            )),
            // The protocol repairs lost control messages (heartbeat versions, resync).
            FrameKind::Control => tracing::debug!("control message not sent: {error}"),
            FrameKind::Group => self.report(ErrorReport::new(
                ErrorKind::Network,
                1,
                format!("an event for a group member was not sent: {error}"),
            )),
            FrameKind::Marks(marks) => {
                tracing::debug!("sequence marks not sent: {error}");
                self.sequencing.unsent(&marks);
            }
        }
    }

    /// Puts a report on the error channel (as a [`Dispatch::Report`]) and delivers it as
    /// the `$error` event.
    pub fn report(&mut self, report: ErrorReport) {
        // A lagging `$error` listener must not feed itself more reports.
        let about_system_listener =
            report.kind == ErrorKind::Lagged && report.event.as_deref().is_some_and(is_system);
        if !about_system_listener {
            self.dispatch_system(ERROR_EVENT, &report);
        }
        self.dispatches.push_back(Dispatch::Report(report));
    }

    // ---- closing -----------------------------------------------------------------------

    /// Leaves the bus: the last sequence marks, then the goodbye. Returns false if it was
    /// already closed. Nothing is transmitted after these.
    pub fn close(&mut self) -> bool {
        if self.closed {
            return false;
        }
        // The last numbers first, so receivers can tell what of the tail never arrived.
        if let Some(marks) = self.sequencing.marks_now() {
            self.send_control(marks, Destination::All);
        }
        self.leave();
        true
    }

    /// The goodbye, and nothing transmitted after it: requests fail, catch-ups end.
    fn leave(&mut self) {
        let bye = self.presence.bye();
        self.send_control(bye, Destination::All);
        self.closed = true;
        self.observers.clear();
        let failed = self.requests.close();
        self.fail_requests(failed);
        // What the catch-ups gathered and held arrived: it is delivered, not dropped.
        for finished in self.retained.close() {
            self.deliver_caught_up(finished);
        }
    }

    // ---- draining ----------------------------------------------------------------------

    /// The next thing for the transport.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Moves everything for the transport to the back of `into`, in order. When `into` is
    /// empty (a driver that sends all it takes), the two swap buffers: nothing is copied.
    pub fn drain_transmits(&mut self, into: &mut VecDeque<Transmit>) {
        if into.is_empty() {
            std::mem::swap(&mut self.transmits, into);
        } else {
            into.extend(self.transmits.drain(..));
        }
    }

    /// The next delivery to make.
    pub fn poll_dispatch(&mut self) -> Option<Dispatch<S>> {
        self.dispatches.pop_front()
    }

    // ---- inside ------------------------------------------------------------------------

    /// Carries out what the presence protocol asked for.
    fn apply(&mut self, actions: Vec<Action>) {
        let mut counts_changed = false;
        let mut came_up = Vec::new();
        for action in actions {
            match action {
                Action::Send { to, message } => self.send_control(message, to),
                Action::PeerUp(peer) => {
                    tracing::info!(%peer, "peer up");
                    if !self.presence.has_heard(&peer)
                        && self.hearing.pending(&peer, true, self.now)
                    {
                        self.forget_last_route();
                    }
                    // A peer back from an outage learns at once what of ours it missed,
                    // however long ago our repeated marks ended.
                    for marks in self.sequencing.all_marks() {
                        self.send_control(marks, Destination::Peer(peer.clone()));
                    }
                    self.dispatch_system(
                        PEER_UP,
                        &PeerChange {
                            peer: peer.to_string(),
                        },
                    );
                    came_up.push(peer);
                }
                Action::PeerDown(peer) => {
                    self.known_source = None;
                    // Back, it is asked for what moved since its first announcement.
                    self.tails.forget(&peer);
                    // Acknowledgements both ways are kept, as sequence state is: the same
                    // incarnation back from a cut is owed what it was owed.
                    self.dispatches.push_back(Dispatch::Acknowledged);
                    if self.hearing.settled(&peer) {
                        self.forget_last_route();
                    }
                    let failed = self.requests.peer_lost(&peer);
                    self.fail_requests(failed);
                    self.repairs_source_gone(&peer);
                    self.leaving_peer_down(&peer);
                    for finished in self.retained.peer_lost(&peer) {
                        self.deliver_caught_up(finished);
                    }
                    let untaken = self.groups.peer_lost(&peer);
                    if untaken > 0 {
                        self.report(
                            ErrorReport::new(
                                ErrorKind::Network,
                                untaken,
                                format!(
                                    "{untaken} events sent to group members on `{peer}` were not taken before it was lost"
                                ),
                            )
                            .with_peer(peer.as_str()),
                        );
                    }
                    // Its sequence state is kept: if the same incarnation comes back (a cut
                    // network), what it emitted meanwhile shows up as a reported gap.
                    tracing::info!(%peer, "peer down");
                    self.dispatch_system(
                        PEER_DOWN,
                        &PeerChange {
                            peer: peer.to_string(),
                        },
                    );
                }
                // Already in the table routing, counts and groups read.
                Action::Interest { .. } => {
                    self.forget_last_route();
                    counts_changed = true;
                }
                Action::Heard(peer) => {
                    if self.hearing.settled(&peer) {
                        self.forget_last_route();
                    }
                }
                Action::Acknowledge { peer, version } => self.acknowledge(&peer, version),
                Action::Report(report) => self.report(report),
            }
        }
        if counts_changed {
            self.notify_counts();
        }
        self.update_readiness();
        // Last, after whatever told the peer of this node's interest: what it emits after
        // answering is already on its way here.
        for peer in came_up {
            self.catch_up_with(&peer);
        }
    }

    fn send_control(&mut self, message: Control, to: Destination) {
        // After the goodbye, nothing more: a late heartbeat would announce us again.
        if self.closed {
            return;
        }
        let body = message.encode();
        let kind = match message {
            Control::Sequences { last, .. } => FrameKind::Marks(last),
            Control::GroupEvent { .. } => FrameKind::Group,
            _ => FrameKind::Control,
        };
        let frame = Frame::Control(ControlFrame {
            source: self.id.clone(),
            body,
        });
        // Checked here, once for every transport, as events are checked in `emit`.
        let size = frame.encoded_len();
        if size > self.caps.max_frame_bytes {
            self.refuse_oversize_control(size);
            return;
        }
        self.transmits
            .push_back(Transmit::Frame { frame, to, kind });
    }

    /// A control message too large for the transport: not sent (nor retried, which would
    /// fail the same way), and reported, since a presence message that never goes out
    /// leaves the peers' counts wrong until the listeners change.
    fn refuse_oversize_control(&mut self, size: usize) {
        let limit = self.caps.max_frame_bytes;
        self.oversize_controls += 1;
        if self.oversize_controls.is_power_of_two() {
            tracing::warn!(
                size,
                limit,
                refused = self.oversize_controls,
                "a control message exceeds the frame limit"
            );
        }
        self.report(ErrorReport::new(
            ErrorKind::Emission,
            1,
            format!(
                "a control message of {size} bytes was not sent: the transport carries frames of at most {limit} bytes (too many listener patterns?)"
            ),
        ));
    }

    /// Delivers a local-only system event (`$peer.up`, `$error`, ...) to its listeners.
    fn dispatch_system<T: Serialize>(&mut self, name: &'static str, data: &T) {
        let mut to = Targets::new();
        self.listeners
            .for_each_match(name, |l| to.push(l.sink.clone()));
        if to.is_empty() {
            return;
        }
        match encode_payload(data) {
            Ok(payload) => self.dispatches.push_back(Dispatch::Event {
                event: RawEvent {
                    name: name.into(),
                    payload,
                    source: self.id.clone(),
                    seq: 0,
                },
                to,
            }),
            Err(e) => tracing::error!("could not encode system event {name}: {e}"),
        }
    }
}

/// A [`Control::GroupEvent`] for this node, unpacked.
struct GroupEventIn {
    epoch: u64,
    group: String,
    name: String,
    seq: u64,
    nth: u64,
    payload: Vec<u8>,
}
