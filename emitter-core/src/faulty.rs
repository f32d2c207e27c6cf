//! Transports that wrap another to stand in for a failing network, for tests: written
//! once, so that every transport's tests can kill a node or lose chosen frames the same
//! way. Wrappers compose, and a shared transport (`Arc<T>`) is a transport too.
//!
//! ```
//! use demitter_core::faulty::{Filtered, Losing, faulty};
//! use demitter_core::{Emitter, Frame, MemoryHub};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), demitter_core::Error> {
//! let hub = MemoryHub::new();
//! // Loses every event frame it would send, and can be killed besides.
//! let lossy = Filtered::new(hub.join(), |frame: &Frame| !matches!(frame, Frame::Event(_)));
//! let (transport, switch) = faulty(lossy);
//! let emitter = Emitter::new(transport)?;
//! switch.lose(Losing::EventsAndMarks); // a burst, and all that would tell of it
//! switch.lose(Losing::Nothing);
//! switch.kill(); // from now on it sends nothing, not even a goodbye
//! emitter.close().await;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;

use crate::error::Error;
use crate::frame::Frame;
use crate::inbox::Receive;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::Control;
use crate::transport::{Capabilities, Destination, Incoming, Transport};

/// Sends only the frames `pass` lets through; the others vanish without an error, as on a
/// lossy network. Everything else goes to the wrapped transport unchanged.
pub struct Filtered<T, F> {
    inner: T,
    pass: F,
}

impl<T, F> Filtered<T, F>
where
    F: Fn(&Frame) -> bool + Send + Sync + 'static,
{
    /// Wraps `inner`, sending a frame only when `pass` says so.
    pub fn new(inner: T, pass: F) -> Self {
        Self { inner, pass }
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: std::fmt::Debug, F> std::fmt::Debug for Filtered<T, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filtered")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What a [`faulty`] transport loses of what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Losing {
    /// Nothing: every frame goes.
    Nothing,
    /// Every event frame.
    Events,
    /// Every event frame, and every sequence mark (`Sequences`, and `Marks` answers): a
    /// link that stays up (heartbeats go) but loses a burst and everything that tells of
    /// it.
    EventsAndMarks,
    /// Everything, the goodbye included, as a crashed process would.
    Everything,
}

impl Losing {
    const ALL: [Losing; 4] = [
        Losing::Nothing,
        Losing::Events,
        Losing::EventsAndMarks,
        Losing::Everything,
    ];

    /// Whether a frame like `frame` is lost.
    fn loses(self, frame: &Frame) -> bool {
        match (self, frame) {
            (Losing::Nothing, _) | (Losing::Events, Frame::Control(_)) => false,
            (Losing::Everything, _)
            | (Losing::Events | Losing::EventsAndMarks, Frame::Event(_)) => true,
            (Losing::EventsAndMarks, Frame::Control(control)) => {
                Control::is_sequences(&control.body) || Control::is_marks(&control.body)
            }
        }
    }
}

/// Chooses what a [`faulty`] transport loses, while it runs.
#[derive(Debug, Clone)]
pub struct FaultSwitch(Arc<AtomicU8>);

impl Default for FaultSwitch {
    fn default() -> Self {
        Self(Arc::new(AtomicU8::new(0)))
    }
}

impl FaultSwitch {
    /// From now on the transport loses `what`.
    pub fn lose(&self, what: Losing) {
        let at = Losing::ALL.iter().position(|l| *l == what).unwrap_or(0);
        self.0
            .store(u8::try_from(at).unwrap_or(0), Ordering::Release);
    }

    /// From now on the transport sends nothing, as a crashed process would.
    pub fn kill(&self) {
        self.lose(Losing::Everything);
    }

    /// What the transport loses now.
    pub fn losing(&self) -> Losing {
        Losing::ALL
            .get(usize::from(self.0.load(Ordering::Acquire)))
            .copied()
            .unwrap_or(Losing::Nothing)
    }

    /// Whether [`kill`](Self::kill) was called.
    pub fn is_killed(&self) -> bool {
        self.losing() == Losing::Everything
    }
}

/// `inner`, and a switch that chooses what it loses of what it sends (at first nothing);
/// it still receives everything.
pub fn faulty<T: Transport>(
    inner: T,
) -> (
    Filtered<T, impl Fn(&Frame) -> bool + Send + Sync + 'static>,
    FaultSwitch,
) {
    let switch = FaultSwitch::default();
    let choice = switch.clone();
    (
        Filtered::new(inner, move |frame: &Frame| !choice.losing().loses(frame)),
        switch,
    )
}

/// Writes the methods a wrapper passes on unchanged to `$inner` (an expression of
/// `$this`, the receiver): everything but `send`.
macro_rules! pass_on {
    ($this:ident => $inner:expr) => {
        fn capabilities(&$this) -> Capabilities {
            $inner.capabilities()
        }
        fn local_id(&$this) -> Option<NodeId> {
            $inner.local_id()
        }
        fn peer_address(&$this, peer: &NodeId) -> Option<String> {
            $inner.peer_address(peer)
        }
        fn subscribe(&$this, pattern: &Pattern) {
            $inner.subscribe(pattern);
        }
        fn unsubscribe(&$this, pattern: &Pattern) {
            $inner.unsubscribe(pattern);
        }
        fn recv(&$this) -> BoxFuture<'_, Option<Incoming>> {
            $inner.recv()
        }
        fn recv_many<'a>(&'a $this, into: &'a mut Vec<Incoming>, max: usize) -> BoxFuture<'a, bool> {
            $inner.recv_many(into, max)
        }
        fn wait_for_room(&$this, bytes: usize) -> BoxFuture<'_, ()> {
            $inner.wait_for_room(bytes)
        }
        fn receive_directly(&$this, receiver: Weak<dyn Receive>) -> bool {
            $inner.receive_directly(receiver)
        }
        fn close(&$this) -> BoxFuture<'_, ()> {
            $inner.close()
        }
    };
}

impl<T, F> Transport for Filtered<T, F>
where
    T: Transport,
    F: Fn(&Frame) -> bool + Send + Sync + 'static,
{
    pass_on!(self => self.inner);

    fn send(&self, frame: Frame, to: Destination) -> Result<(), Error> {
        if (self.pass)(&frame) {
            self.inner.send(frame, to)
        } else {
            Ok(())
        }
    }
}

/// A shared transport is a transport: every call goes to the one it shares.
impl<T: Transport + ?Sized> Transport for Arc<T> {
    pass_on!(self => (**self));

    fn send(&self, frame: Frame, to: Destination) -> Result<(), Error> {
        (**self).send(frame, to)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures_util::FutureExt;

    use super::*;
    use crate::frame::ControlFrame;
    use crate::memory::MemoryHub;

    fn frame(body: &'static [u8]) -> Frame {
        Frame::Control(ControlFrame {
            source: NodeId::new("a").expect("valid"),
            body: Bytes::from_static(body),
        })
    }

    /// What `receiver` holds right now, without waiting (the hub delivers as it sends).
    fn arrived(receiver: &dyn Transport) -> Vec<Bytes> {
        let mut got = Vec::new();
        while let Some(Some(incoming)) = receiver.recv().now_or_never() {
            match incoming {
                Incoming::Frame {
                    frame: Frame::Control(c),
                    ..
                } => got.push(c.body),
                Incoming::Joined { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        got
    }

    #[test]
    fn a_killed_transport_sends_nothing_more_and_a_shared_one_is_the_same() {
        let hub = MemoryHub::new();
        let receiver = hub.join();
        let (sender, switch) = faulty(Arc::new(hub.join()));
        sender.send(frame(b"1"), Destination::All).expect("sends");
        assert_eq!(arrived(&receiver), [Bytes::from_static(b"1")]);
        switch.kill();
        assert!(switch.is_killed());
        sender
            .send(frame(b"2"), Destination::All)
            .expect("vanishes quietly");
        assert!(arrived(&receiver).is_empty(), "nothing after the kill");
    }

    #[test]
    fn a_switch_loses_events_then_marks_then_nothing() {
        let hub = MemoryHub::new();
        let receiver = hub.join();
        let (sender, switch) = faulty(hub.join());
        let marks = Control::Sequences {
            epoch: 1,
            last: Vec::new(),
            moved: 1,
        }
        .encode();
        let marks = Frame::Control(ControlFrame {
            source: NodeId::new("a").expect("valid"),
            body: marks.clone(),
        });
        let event = Frame::Event(crate::frame::EventFrame {
            name: "x".into(),
            source: NodeId::new("a").expect("valid"),
            epoch: 1,
            seq: 1,
            payload: Bytes::new(),
        });
        let send_all = |sender: &dyn Transport| {
            for f in [frame(b"other"), marks.clone(), event.clone()] {
                sender.send(f, Destination::All).expect("sends or loses");
            }
        };
        let count = |receiver: &dyn Transport| {
            let mut n = 0;
            while let Some(Some(incoming)) = receiver.recv().now_or_never() {
                n += usize::from(matches!(incoming, Incoming::Frame { .. }));
            }
            n
        };
        switch.lose(Losing::Events);
        send_all(&sender);
        assert_eq!(count(&receiver), 2, "the event lost");
        switch.lose(Losing::EventsAndMarks);
        assert_eq!(switch.losing(), Losing::EventsAndMarks);
        send_all(&sender);
        assert_eq!(count(&receiver), 1, "the event and the marks lost");
        switch.lose(Losing::Nothing);
        send_all(&sender);
        assert_eq!(count(&receiver), 3);
    }

    #[test]
    fn a_filter_loses_what_it_does_not_pass() {
        let hub = MemoryHub::new();
        let receiver = hub.join();
        let sender = Filtered::new(
            hub.join(),
            |f: &Frame| matches!(f, Frame::Control(c) if &c.body[..] != b"lost"),
        );
        for body in [&b"kept"[..], b"lost", b"kept too"] {
            sender
                .send(frame(body), Destination::All)
                .expect("sends or loses quietly");
        }
        assert_eq!(
            arrived(&receiver),
            [Bytes::from_static(b"kept"), Bytes::from_static(b"kept too")]
        );
        assert_eq!(sender.inner().capabilities(), sender.capabilities());
    }
}
