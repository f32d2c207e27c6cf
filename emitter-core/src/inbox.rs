//! [`BatchInbox`]: the receive side of a transport whose reader tasks or threads hand over
//! what they received in batches.

use std::collections::VecDeque;

use tokio::sync::{Mutex, mpsc};

use crate::transport::Incoming;

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
#[derive(Debug)]
pub struct BatchInbox {
    state: Mutex<State>,
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
        }
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
