//! Transports that wrap another to stand in for a failing network, for tests: written
//! once, so that every transport's tests can kill a node or lose chosen frames the same
//! way. Wrappers compose, and a shared transport (`Arc<T>`) is a transport too.
//!
//! ```
//! use demitter_core::faulty::{Filtered, killable};
//! use demitter_core::{Emitter, Frame, MemoryHub};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), demitter_core::Error> {
//! let hub = MemoryHub::new();
//! // Loses every event frame it would send, and can be killed besides.
//! let lossy = Filtered::new(hub.join(), |frame: &Frame| !matches!(frame, Frame::Event(_)));
//! let (transport, switch) = killable(lossy);
//! let emitter = Emitter::new(transport)?;
//! switch.kill(); // from now on it sends nothing, not even a goodbye
//! emitter.close().await;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;

use crate::error::Error;
use crate::frame::Frame;
use crate::inbox::Receive;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
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

/// Stops a [`killable`] transport from sending.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    /// From now on the transport sends nothing, as a crashed process would.
    pub fn kill(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`kill`](Self::kill) was called.
    pub fn is_killed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// `inner`, and a switch that makes it send nothing more (not even the emitter's goodbye);
/// it still receives.
pub fn killable<T: Transport>(
    inner: T,
) -> (
    Filtered<T, impl Fn(&Frame) -> bool + Send + Sync + 'static>,
    KillSwitch,
) {
    let switch = KillSwitch::default();
    let alive = switch.clone();
    (
        Filtered::new(inner, move |_: &Frame| !alive.is_killed()),
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
        let (sender, switch) = killable(Arc::new(hub.join()));
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
