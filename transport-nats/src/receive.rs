//! The receiving task: what the node's subscriptions bring (the control subscription, and
//! those of its patterns as the publisher adds and gives them up), each message read from
//! one subscription only ([`Owners`]), decoded ([`MessageDecoder`]) and handed to the
//! emitter in batches.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_nats::{Message, Subscriber};
use demitter_core::InboxSender;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::decode::MessageDecoder;
use crate::subscriptions::Owners;

/// The most frames handed to the emitter in one batch.
const RECEIVE_BATCH: usize = 256;
/// A batch is handed over once it holds this many bytes: with the inbox's batches, what
/// the inbox may hold stays near 16 MiB whatever the size of the events.
const RECEIVE_BATCH_BYTES: usize = 64 * 1024;

/// A change to the subscriptions of the node's patterns, from the publisher (which makes
/// them in order with what it publishes).
#[derive(Debug)]
pub(crate) enum SubscriptionChange {
    /// A new subscription, the youngest.
    Add {
        /// Its filter.
        filter: String,
        /// What it receives.
        subscriber: Subscriber,
    },
    /// The subscription of this filter is given up.
    Retire(String),
}

/// Everything the node reads: the control subscription and the event subscriptions,
/// oldest first.
struct Subscriptions {
    control: Subscriber,
    events: Vec<Subscriber>,
    owners: Owners,
    changes: mpsc::UnboundedReceiver<SubscriptionChange>,
    /// Where the next poll starts (0 is the control subscription), so that a busy
    /// subscription does not starve the others.
    next: usize,
}

impl Subscriptions {
    fn apply(&mut self, change: SubscriptionChange) {
        match change {
            SubscriptionChange::Add { filter, subscriber } => {
                self.owners.push(filter);
                self.events.push(subscriber);
            }
            SubscriptionChange::Retire(filter) => {
                if let Some(at) = self.owners.position(&filter) {
                    self.owners.remove(at);
                    // Dropping it unsubscribes; what it still holds no listener wants.
                    drop(self.events.remove(at));
                }
            }
        }
    }

    /// The next message to read; `None` once the connection is gone.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        while let Poll::Ready(Some(change)) = self.changes.poll_recv(cx) {
            self.apply(change);
        }
        let all = 1 + self.events.len();
        let mut step = 0;
        while step < all {
            let at = (self.next + step) % all;
            let polled = if at == 0 {
                Pin::new(&mut self.control).poll_next(cx)
            } else {
                Pin::new(&mut self.events[at - 1]).poll_next(cx)
            };
            match polled {
                Poll::Ready(Some(message)) => {
                    if at == 0 || self.owners.reads(at - 1, message.subject.as_str()) {
                        self.next = at + 1;
                        return Poll::Ready(Some(message));
                    }
                    // A copy an older subscription also receives: read there. Look at
                    // this subscription again.
                }
                // The control subscription ends only with the connection.
                Poll::Ready(None) if at == 0 => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => step += 1,
            }
        }
        Poll::Pending
    }

    async fn next_message(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }
}

/// Hands what the node's subscriptions receive to the emitter, in batches, until
/// cancelled.
pub(crate) async fn receive(
    control: Subscriber,
    changes: mpsc::UnboundedReceiver<SubscriptionChange>,
    inbox: InboxSender,
    mut decoder: MessageDecoder,
    cancel: CancellationToken,
) {
    let mut subscriptions = Subscriptions {
        control,
        events: Vec::new(),
        owners: Owners::default(),
        changes,
        next: 0,
    };
    loop {
        let first = tokio::select! {
            () = cancel.cancelled() => break,
            message = subscriptions.next_message() => message,
        };
        let Some(first) = first else { break };
        let mut bytes = first.payload.len();
        let mut batch = Vec::with_capacity(16);
        decoder.decode(&first.subject, first.payload, &mut batch);
        while batch.len() < RECEIVE_BATCH && bytes < RECEIVE_BATCH_BYTES {
            match futures_util::FutureExt::now_or_never(subscriptions.next_message()) {
                Some(Some(message)) => {
                    bytes += message.payload.len();
                    decoder.decode(&message.subject, message.payload, &mut batch);
                }
                _ => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            sent = inbox.send(batch) => if !sent { break },
        }
    }
}
