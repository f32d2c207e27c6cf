//! Responder handles, and what runs one request through a responder's handler.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;

use crate::emitter::inner::Inner;
use crate::error::Error;
use crate::event::RawEvent;
use crate::node::IncomingRequest;
use crate::pattern::Pattern;
use crate::protocol::ReplyOutcome;

/// The most requests one responder runs at once; more are answered at once as failed
/// (busy), so that a flood of requests cannot grow the tasks without bound.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 1024;

/// A handler with its types erased: decodes the request, then returns the handler's
/// future, which resolves to the encoded answer or the handler's error as text.
pub(crate) type ErasedResponder = Arc<
    dyn Fn(&RawEvent) -> Result<BoxFuture<'static, Result<Bytes, String>>, Error> + Send + Sync,
>;

/// One responder's driver side.
pub(crate) struct ResponderEntry {
    pub(crate) pattern: Pattern,
    pub(crate) call: ErasedResponder,
    /// Where its replies go: the emitter, while it lives.
    pub(crate) inner: Weak<Inner>,
    in_flight: AtomicUsize,
}

impl ResponderEntry {
    pub(crate) fn new(pattern: Pattern, call: ErasedResponder, inner: Weak<Inner>) -> Self {
        Self {
            pattern,
            call,
            inner,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Counts one more request in flight, unless there are already too many.
    pub(crate) fn admit(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_REQUESTS_IN_FLIGHT).then_some(n + 1)
            })
            .is_ok()
    }

    /// A request given up before it ran to the end (the emitter closed).
    pub(crate) fn abandon(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Runs `request` through the handler: the outcome to reply with. A request that does
    /// not decode, a handler that fails and a handler that panics each fail the request
    /// with why.
    pub(crate) async fn run(&self, request: &IncomingRequest) -> ReplyOutcome {
        let raw = RawEvent {
            name: Arc::clone(&request.name),
            payload: request.payload.clone(),
            source: request.from.clone(),
            seq: 0,
        };
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| (self.call)(&raw))) {
            Ok(Ok(future)) => match AssertUnwindSafe(future).catch_unwind().await {
                Ok(Ok(answer)) => ReplyOutcome::Value(answer.to_vec()),
                Ok(Err(message)) => ReplyOutcome::Failed(message),
                Err(_) => {
                    ReplyOutcome::Failed(format!("the responder on `{}` panicked", self.pattern))
                }
            },
            Ok(Err(e)) => ReplyOutcome::Failed(format!("the request did not decode: {e}")),
            Err(_) => ReplyOutcome::Failed(format!("the responder on `{}` panicked", self.pattern)),
        };
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        outcome
    }
}

/// A registered responder ([`Emitter::serve`](crate::Emitter::serve)). It serves until
/// [`stop`](Self::stop) or the emitter closes; dropping the handle leaves it serving.
#[derive(Debug)]
pub struct Responder {
    id: u64,
    pattern: Pattern,
    inner: Weak<Inner>,
}

impl Responder {
    pub(crate) fn new(id: u64, pattern: Pattern, inner: Weak<Inner>) -> Self {
        Self { id, pattern, inner }
    }

    /// The pattern it serves.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Stops serving: requests that come from now on go to other responders (or fail as
    /// finding none); those already running finish. Returns whether it was still serving.
    pub fn stop(self) -> bool {
        self.inner
            .upgrade()
            .is_some_and(|inner| inner.remove_responder(self.id))
    }
}
