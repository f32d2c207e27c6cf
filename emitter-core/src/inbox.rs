//! [`BatchInbox`]: the receive side of a transport whose reader tasks or threads hand over
//! what they received in batches ([`InboxSender`]), either through a channel to the
//! emitter's receive loop or, once the emitter asks for it
//! ([`Transport::receive_directly`](crate::Transport::receive_directly)), straight into
//! the emitter on the reader's own task: one hand-off fewer per event.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Mutex, mpsc};

use crate::transport::Incoming;

/// What takes received batches straight from a transport's tasks: the emitter. It must
/// not wait: it handles the batch and queues what it produced.
pub trait Receive: Send + Sync {
    /// Handles `batch`, leaving it empty.
    fn receive(&self, batch: &mut Vec<Incoming>);
}

/// Where a direct receiver, once attached, is found by every sender.
type Direct = parking_lot::Mutex<Option<Weak<dyn Receive>>>;

/// The reader side of a [`BatchInbox`]: cheap to clone, one per reader task.
#[derive(Clone)]
pub struct InboxSender {
    batches: mpsc::Sender<Vec<Incoming>>,
    direct: Arc<Direct>,
}

impl std::fmt::Debug for InboxSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxSender").finish_non_exhaustive()
    }
}

impl InboxSender {
    /// Hands over `batch`: straight to the attached receiver, or onto the channel (waiting
    /// while it is full). `false` once the inbox is gone.
    pub async fn send(&self, mut batch: Vec<Incoming>) -> bool {
        loop {
            // Checked and sent under one lock, which `attach` takes to switch over: no
            // batch can land on the channel after the switch drained it.
            {
                let direct = self.direct.lock();
                if let Some(receiver) = direct.as_ref() {
                    let receiver = receiver.upgrade();
                    drop(direct);
                    if let Some(receiver) = receiver {
                        receiver.receive(&mut batch);
                    }
                    return true;
                }
                match self.batches.try_send(batch) {
                    Ok(()) => return true,
                    Err(TrySendError::Closed(_)) => return false,
                    Err(TrySendError::Full(back)) => batch = back,
                }
            }
            // Full: wait for room without the lock, then decide again.
            match self.batches.reserve().await {
                Ok(permit) => {
                    let direct = self.direct.lock();
                    if direct.is_none() {
                        permit.send(batch);
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }
}

/// Batches of received items, read one at a time ([`recv`](Self::recv)) or many at a time
/// ([`recv_many`](Self::recv_many)) by the emitter's receive loop. Both are cancel-safe: an
/// item is taken out only in the poll that returns it.
///
/// ```
/// use demitter_core::{BatchInbox, Incoming, NodeId};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tx, rx) = tokio::sync::mpsc::channel(16);
/// let inbox = BatchInbox::new(rx);
/// let peer = NodeId::new("peer-a").expect("valid");
/// tx.send(vec![Incoming::PeerUp(peer.clone()), Incoming::PeerDown(peer)]).await.expect("open");
/// let mut items = Vec::new();
/// assert!(inbox.recv_many(&mut items, 256).await);
/// assert_eq!(items.len(), 2);
/// drop(tx);
/// assert!(inbox.recv().await.is_none(), "ends when the senders are gone");
/// # }
/// ```
pub struct BatchInbox {
    state: Mutex<State>,
    direct: Arc<Direct>,
}

impl std::fmt::Debug for BatchInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchInbox")
            .field("direct", &self.direct.lock().is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    batches: mpsc::Receiver<Vec<Incoming>>,
    pending: VecDeque<Incoming>,
}

impl BatchInbox {
    /// Reads the batches `batches` delivers.
    pub fn new(batches: mpsc::Receiver<Vec<Incoming>>) -> Self {
        Self {
            state: Mutex::new(State {
                batches,
                pending: VecDeque::new(),
            }),
            direct: Arc::default(),
        }
    }

    /// An inbox and the sender its reader tasks clone, with room for `capacity` batches
    /// on the channel.
    pub fn channel(capacity: usize) -> (InboxSender, Self) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let inbox = Self::new(rx);
        let sender = InboxSender {
            batches: tx,
            direct: Arc::clone(&inbox.direct),
        };
        (sender, inbox)
    }

    /// From now on, senders hand their batches to `receiver` on their own tasks; what is
    /// already waiting on the channel goes to it first, in order. Returns false (and
    /// changes nothing) while a receive is in progress: attach before receiving.
    pub fn attach(&self, receiver: Weak<dyn Receive>) -> bool {
        let Ok(mut state) = self.state.try_lock() else {
            return false;
        };
        let Some(strong) = receiver.upgrade() else {
            return false;
        };
        let mut direct = self.direct.lock();
        let mut waiting: Vec<Incoming> = state.pending.drain(..).collect();
        while let Ok(batch) = state.batches.try_recv() {
            waiting.extend(batch);
        }
        if !waiting.is_empty() {
            strong.receive(&mut waiting);
        }
        *direct = Some(receiver);
        true
    }

    /// The next item; `None` once every sender is gone and nothing is left.
    pub async fn recv(&self) -> Option<Incoming> {
        let mut state = self.state.lock().await;
        loop {
            if let Some(item) = state.pending.pop_front() {
                return Some(item);
            }
            let batch = state.batches.recv().await?;
            state.pending.extend(batch);
        }
    }

    /// Moves at most `max` items into `into`, waiting for at least one, then taking what
    /// has already arrived; `false` once every sender is gone and nothing is left.
    pub async fn recv_many(&self, into: &mut Vec<Incoming>, max: usize) -> bool {
        let mut state = self.state.lock().await;
        if state.pending.is_empty() {
            match state.batches.recv().await {
                Some(batch) => state.pending.extend(batch),
                None => return false,
            }
        }
        while state.pending.len() < max {
            match state.batches.try_recv() {
                Ok(batch) => state.pending.extend(batch),
                Err(_) => break,
            }
        }
        let take = state.pending.len().min(max);
        into.extend(state.pending.drain(..take));
        true
    }
}
