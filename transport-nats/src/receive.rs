//! The receiving task: what the bus subscription brings, decoded
//! ([`MessageDecoder`]), to the emitter in batches.

use async_nats::Subscriber;
use demitter_core::InboxSender;
use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::decode::MessageDecoder;

/// The most frames handed to the emitter in one batch.
const RECEIVE_BATCH: usize = 256;
/// A batch is handed over once it holds this many bytes: with the inbox's batches, what
/// the inbox may hold stays near 16 MiB whatever the size of the events.
const RECEIVE_BATCH_BYTES: usize = 64 * 1024;

/// Hands what the bus subscription receives to the emitter, in batches, until cancelled.
pub(crate) async fn receive(
    mut subscriber: Subscriber,
    inbox: InboxSender,
    mut decoder: MessageDecoder,
    cancel: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = cancel.cancelled() => break,
            message = subscriber.next() => message,
        };
        let Some(first) = first else { break };
        let mut bytes = first.payload.len();
        let mut batch = Vec::with_capacity(16);
        batch.extend(decoder.decode(&first.subject, first.payload));
        while batch.len() < RECEIVE_BATCH && bytes < RECEIVE_BATCH_BYTES {
            match futures_util::FutureExt::now_or_never(subscriber.next()) {
                Some(Some(message)) => {
                    bytes += message.payload.len();
                    batch.extend(decoder.decode(&message.subject, message.payload));
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
