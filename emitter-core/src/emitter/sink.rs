//! Where a listener's events go: the driver's side of a listener, which the node carries
//! as an opaque handle.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::error::Error;
use crate::event::RawEvent;
use crate::lag_queue::LagQueue;
use crate::pattern::Pattern;

/// A handler with its payload type erased: decodes, then returns the handler's future.
pub(crate) type ErasedHandler =
    Arc<dyn Fn(&RawEvent) -> Result<BoxFuture<'static, ()>, Error> + Send + Sync>;

/// One listener's delivery end.
pub(crate) struct Sink {
    /// The pattern it listens on, for the reports about it.
    pub(crate) pattern: Pattern,
    pub(crate) target: Target,
    /// Made `with_last`: it gets the retained values first, and its local emits queue as
    /// remote events do (a handler run directly could overtake the values still queued).
    pub(crate) with_last: bool,
    /// The listener group it is a member of, if any.
    pub(crate) group: Option<Arc<str>>,
}

/// What runs a listener's events.
pub(crate) enum Target {
    /// A handler: local emits call it directly (unless it was made `with_last`); remote
    /// and system events queue for its task.
    Handler {
        call: ErasedHandler,
        queue: Arc<LagQueue<RawEvent>>,
    },
    /// A stream (`events`, `once`): every event queues.
    Stream(Arc<LagQueue<RawEvent>>),
}

impl Sink {
    pub(crate) fn queue(&self) -> &Arc<LagQueue<RawEvent>> {
        match &self.target {
            Target::Handler { queue, .. } | Target::Stream(queue) => queue,
        }
    }
}
