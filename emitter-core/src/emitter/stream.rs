//! Streams and futures handed to users: events, `once`, listener counts, errors.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::emitter::inner::Inner;
use crate::emitter::listener::ListenOptions;
use crate::emitter::sink::Target;
use crate::error::Error;
use crate::event::{Event, RawEvent};
use crate::lag_queue::{LagQueue, Popped};
use crate::pattern::Pattern;
use crate::payload::FromPayload;
use crate::report::{ErrorKind, ErrorReport};

/// The events matching a pattern, as a [`Stream`]. Dropping it removes the listener.
///
/// Items are `Ok(event)`, or `Err(Error::Lagged { missed })` when the stream fell behind its
/// bounded queue (it stays subscribed and continues with the next event), or
/// `Err(Error::Decode(..))` for an event whose payload is not a `T`. Both errors are also
/// reported on the error channel. The stream ends when the emitter closes.
///
/// ```
/// use demitter_core::{Emitter, Error, MemoryHub};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let emitter = Emitter::with_config(
///     MemoryHub::new().join(),
///     demitter_core::EmitterConfig { listener_capacity: 2, ..Default::default() },
/// )?;
/// let mut ticks = emitter.events::<u32>("tick")?;
/// for i in 0..5 {
///     emitter.emit("tick", &i).await?; // never waits for the stream
/// }
/// // The queue held 2: three ticks were dropped, and the stream says so.
/// assert_eq!(ticks.recv().await.expect("open").unwrap_err(), Error::Lagged { missed: 3 });
/// assert_eq!(ticks.recv().await.expect("open")?.data, 3);
/// assert_eq!(ticks.recv().await.expect("open")?.data, 4);
/// # Ok(()) }
/// ```
pub struct EventStream<T> {
    id: u64,
    pattern: Pattern,
    /// How it listens (a spy, with the retained values first); patterns added later are
    /// listened on the same way.
    options: ListenOptions,
    /// The listeners of patterns added with [`also`](Self::also), sharing `queue`.
    more: Vec<u64>,
    queue: Arc<LagQueue<RawEvent>>,
    inner: Weak<Inner>,
    _payload: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("id", &self.id)
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}

impl<T: FromPayload> EventStream<T> {
    pub(crate) fn new(
        id: u64,
        pattern: Pattern,
        options: ListenOptions,
        queue: Arc<LagQueue<RawEvent>>,
        inner: Weak<Inner>,
    ) -> Self {
        Self {
            id,
            pattern,
            options,
            more: Vec::new(),
            queue,
            inner,
            _payload: PhantomData,
        }
    }

    /// The next item; `None` once the emitter is closed or the listener removed.
    pub async fn recv(&mut self) -> Option<Result<Event<T>, Error>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// Waits until the stream's listeners are subscribed: every peer on the bus has
    /// acknowledged them, so from then on nothing a peer emits that they match goes
    /// missing without a report (see [`Listener::subscribed`](crate::Listener::subscribed)).
    /// Wrap it in a timeout.
    pub async fn subscribed(&self) -> Result<(), Error> {
        let inner = self.inner.upgrade().ok_or(Error::Closed)?;
        let mut ids = vec![self.id];
        ids.extend(&self.more);
        inner.subscribed(&ids).await
    }

    /// The pattern listened on (the first one, if [`also`](Self::also) added more).
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Also listens on `pattern`, into this stream's one queue: events matching any of
    /// the stream's patterns arrive in the order this node received them, which separate
    /// streams cannot promise (a tool that prints events beside `$peer.up` and `$error`
    /// needs it). The new pattern is a listener of its own, counted like the first one
    /// (not at all for a spy) and, for a stream made `with_last`, given the retained values
    /// first; an event matching two of the patterns arrives twice.
    ///
    /// ```
    /// use demitter_core::{Emitter, MemoryHub, RawPayload};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), demitter_core::Error> {
    /// let emitter = Emitter::new(MemoryHub::new().join())?;
    /// let mut seen = emitter.events::<RawPayload>("user.+")?;
    /// seen.also("order.+")?;
    /// emitter.emit("order.paid", &1).await?;
    /// emitter.emit("user.login", &2).await?;
    /// let names = [seen.recv().await.expect("open")?.name, seen.recv().await.expect("open")?.name];
    /// assert_eq!(names.map(|n| n.to_string()), ["order.paid", "user.login"]);
    /// assert_eq!(emitter.listener_count("order.paid")?, 1);
    /// # Ok(()) }
    /// ```
    pub fn also(&mut self, pattern: &str) -> Result<(), Error> {
        let pattern = Pattern::new(pattern)?;
        let inner = self.inner.upgrade().ok_or(Error::Closed)?;
        let queue = Arc::clone(&self.queue);
        let flags = self.options.flags(false);
        let sink = self
            .options
            .clone()
            .into_sink(pattern, Target::Stream(queue))?;
        let id = inner.add_listener(flags, sink)?;
        self.more.push(id);
        Ok(())
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event<T>, Error>>> {
        let popped = match self.queue.poll_pop(cx) {
            Poll::Ready(Some(popped)) => popped,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(Some(match popped {
            Popped::Item(raw) => raw.decode::<T>().inspect_err(|e| {
                self.report(
                    ErrorReport::new(
                        ErrorKind::Deserialization,
                        1,
                        format!(
                            "stream on `{}` could not decode `{}`: {e}",
                            self.pattern, raw.name
                        ),
                    )
                    .with_peer(raw.source.as_str())
                    .with_event(&*raw.name),
                );
            }),
            Popped::Lagged(missed) => {
                self.report(
                    ErrorReport::new(
                        ErrorKind::Lagged,
                        missed,
                        format!(
                            "stream on `{}` fell behind its queue of {} and missed {missed} events",
                            self.pattern,
                            self.queue.capacity()
                        ),
                    )
                    .with_event(self.pattern.as_str()),
                );
                Err(Error::Lagged { missed })
            }
        }))
    }

    fn report(&self, report: ErrorReport) {
        if let Some(inner) = self.inner.upgrade() {
            inner.report(report);
        }
    }
}

impl<T: FromPayload> Stream for EventStream<T> {
    type Item = Result<Event<T>, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl<T> Drop for EventStream<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            for id in self.more.drain(..) {
                inner.remove_listener(id);
            }
            inner.remove_listener(self.id);
        }
    }
}

/// The first event matching a pattern, as a future; see
/// [`Emitter::once`](crate::Emitter::once). Resolves to `Err(Error::Closed)` if the
/// emitter closes first. Dropping it removes the listener.
#[derive(Debug)]
pub struct Once<T> {
    stream: Option<EventStream<T>>,
}

impl<T> Once<T> {
    pub(crate) fn new(stream: EventStream<T>) -> Self {
        Self {
            stream: Some(stream),
        }
    }
}

impl<T: FromPayload> Future for Once<T> {
    type Output = Result<Event<T>, Error>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(Err(Error::Closed));
        };
        loop {
            let result = match stream.poll_item(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => Err(Error::Closed),
                Poll::Ready(Some(Err(Error::Lagged { .. }))) => continue,
                Poll::Ready(Some(result)) => result,
            };
            this.stream = None;
            return Poll::Ready(result);
        }
    }
}

/// A listener count, now and on every change; see
/// [`Emitter::observe_listener_count`](crate::Emitter::observe_listener_count).
///
/// If it is not read for a while, older values are dropped; the latest is always kept.
#[derive(Debug)]
pub struct CountStream {
    queue: Arc<LagQueue<usize>>,
}

impl CountStream {
    pub(crate) fn new(queue: Arc<LagQueue<usize>>) -> Self {
        Self { queue }
    }

    /// The next count; `None` once the emitter is closed.
    pub async fn recv(&mut self) -> Option<usize> {
        std::future::poll_fn(|cx| self.poll_count(cx)).await
    }

    fn poll_count(&self, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        loop {
            return match self.queue.poll_pop(cx) {
                Poll::Ready(Some(Popped::Item(n))) => Poll::Ready(Some(n)),
                Poll::Ready(Some(Popped::Lagged(_))) => continue,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

impl Stream for CountStream {
    type Item = usize;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        self.poll_count(cx)
    }
}

impl Drop for CountStream {
    fn drop(&mut self) {
        self.queue.close_and_clear();
    }
}

/// The error channel as a stream; see [`Emitter::errors`](crate::Emitter::errors).
///
/// If it falls behind, it yields one [`ErrorKind::Lagged`] report saying how many reports
/// it missed (the totals in [`Emitter::error_counts`](crate::Emitter::error_counts) stay
/// exact).
#[derive(Debug)]
pub struct ErrorStream {
    queue: Arc<LagQueue<ErrorReport>>,
}

impl ErrorStream {
    pub(crate) fn new(queue: Arc<LagQueue<ErrorReport>>) -> Self {
        Self { queue }
    }

    /// The next report; `None` once the emitter is closed.
    pub async fn recv(&mut self) -> Option<ErrorReport> {
        std::future::poll_fn(|cx| self.poll_report(cx)).await
    }

    fn poll_report(&self, cx: &mut Context<'_>) -> Poll<Option<ErrorReport>> {
        self.queue.poll_pop(cx).map(|popped| {
            popped.map(|p| match p {
                Popped::Item(report) => report,
                Popped::Lagged(missed) => ErrorReport::new(
                    ErrorKind::Lagged,
                    missed,
                    format!("the error stream fell behind and missed {missed} reports"),
                ),
            })
        })
    }
}

impl Stream for ErrorStream {
    type Item = ErrorReport;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ErrorReport>> {
        self.poll_report(cx)
    }
}

impl Drop for ErrorStream {
    fn drop(&mut self) {
        self.queue.close_and_clear();
    }
}
