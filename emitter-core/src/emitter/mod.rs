//! The [`Emitter`]: emittery's API over any [`Transport`].

mod config;
mod driver;
mod errors;
mod inner;
mod listener;
mod responder;
mod sink;
mod stream;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Congestion, EmitterConfig};

/// Waits for `tasks` to end, at most `timeout`; says so if they did not.
async fn wait_for_tasks(tasks: &TaskTracker, timeout: std::time::Duration, what: &str) {
    if tokio::time::timeout(timeout, tasks.wait()).await.is_err() {
        tracing::warn!(tasks = tasks.len(), "close timed out waiting for {what}");
    }
}

/// How much longer than its timeout a request's future waits for the node to end it.
const REQUEST_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
pub use listener::{ListenOptions, Listener};
pub use responder::{MAX_REQUESTS_IN_FLIGHT, Responder};
pub use stream::{CountStream, ErrorStream, EventStream, Once};

use crate::error::Error;
use crate::event::{Delivery, Event};
use crate::inbox::Receive;
use crate::lag_queue::LagQueue;
use crate::name::validate_user_name;
use crate::node::{CountSubject, Node, NodeConfig, Readiness, RequestFailure};
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::payload::{FromPayload, encode_payload};
use crate::report::ErrorCounts;
use crate::transport::{Capabilities, Transport};
use errors::ErrorChannel;
use inner::{EmitMode, Inner, State};
use sink::{ErasedHandler, Target};

/// The pattern `on_any` listens on: every event except `$` system events.
const ANY: &str = "#";

/// A distributed event emitter. Cheap to clone; every clone is the same emitter, and it
/// closes when the last clone is dropped (or on [`close`](Self::close)).
///
/// Listeners take patterns with `+` (any run without `.`) and `#` (any run without `$`).
/// `emit` runs the local listeners and resolves when they have finished, hands the event to
/// the transport without waiting on any remote listener, and resolves to a [`Delivery`]:
/// how many local listeners ran and how many remote ones are known to match.
///
/// **What reaches whom.** Once this emitter has heard the bus ([`ready`](Self::ready)) and
/// a listener elsewhere is subscribed ([`Listener::subscribed`](crate::Listener::subscribed):
/// every peer, this one included, has acknowledged its pattern), every event emitted here
/// that the listener matches reaches it exactly once, in order per name, or its node
/// reports it lost with an exact count (a `gap` on its error channel): first events,
/// short-lived emitters, re-added listeners and tails whose marks were all lost included.
/// A process that emits and exits waits for `ready` first. Two nodes with one id are
/// refused: the newer gives way with [`Error::DuplicateId`]. The limits (a sender that
/// leaves, or a listener that goes, before the acknowledgement arrived) are in
/// `docs/reliability.md`.
///
/// ```
/// use demitter_core::{Emitter, Event, MemoryHub};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, Clone)]
/// struct Bid { lot: u32, amount: u64 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), demitter_core::Error> {
/// let hub = MemoryHub::new();
/// let auctioneer = Emitter::new(hub.join())?;
/// let bidder = Emitter::new(hub.join())?;
///
/// // The auctioneer hears every bid on any lot.
/// auctioneer.on("bid.+", |event: Event<Bid>| async move {
///     println!("{} bids {} on lot {}", event.source, event.data.amount, event.data.lot);
/// })?;
/// bidder.wait_for_listeners("bid.lot1", 1).await?;
/// let reached = bidder.emit("bid.lot1", &Bid { lot: 1, amount: 100 }).await?;
/// assert_eq!(reached.remote, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Emitter {
    handle: Arc<Handle>,
}

/// Closes the emitter when the last [`Emitter`] clone goes.
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.inner.shutdown_now() {
            let transport = Arc::clone(&self.inner.transport);
            self.inner
                .runtime
                .spawn(async move { transport.close().await });
        }
    }
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("id", &self.inner().id)
            .field("closed", &self.inner().is_closed())
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// An emitter on `transport` with default settings. Call from within a tokio runtime.
    pub fn new(transport: impl Transport) -> Result<Self, Error> {
        Self::with_config(transport, EmitterConfig::default())
    }

    /// An emitter on `transport` with these settings.
    pub fn with_config(transport: impl Transport, config: EmitterConfig) -> Result<Self, Error> {
        Self::from_shared(Arc::new(transport), config)
    }

    /// An emitter on a shared transport.
    pub fn from_shared(
        transport: Arc<dyn Transport>,
        config: EmitterConfig,
    ) -> Result<Self, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let id = match (&config.id, transport.local_id()) {
            (_, Some(proven)) => proven,
            (Some(id), None) => NodeId::new(id)?,
            (None, None) => NodeId::random(),
        };
        let node = Node::new(
            NodeConfig {
                id: id.clone(),
                epoch: fresh_epoch(std::time::SystemTime::now()),
                capabilities: transport.capabilities(),
                presence: config.presence.clone(),
                max_tracked_sequences: config.max_tracked_sequences,
                sequence_mark_interval: config.sequence_mark_interval,
                recovery: config.recovery,
            },
            Instant::now(),
        );
        let inner = Arc::new(Inner {
            id,
            transport,
            state: Mutex::new(State::new(node)),
            outbox: Mutex::new(std::collections::VecDeque::new()),
            errors: ErrorChannel::default(),
            timer_deadline: Mutex::new(Instant::now()),
            timer_moved: tokio::sync::Notify::new(),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            serving: TaskTracker::new(),
            runtime,
            closed: AtomicBool::new(false),
            readiness: tokio::sync::watch::Sender::new(Readiness::default()),
            acknowledged: tokio::sync::watch::Sender::new(0),
            transport_to_close: AtomicBool::new(false),
            config,
        });
        // The hello the node made goes out first.
        inner.flush_now();
        let receiver: Weak<dyn Receive> = Arc::downgrade(&inner) as Weak<dyn Receive>;
        let direct = inner.transport.receive_directly(receiver);
        tracing::debug!(id = %inner.id, direct, "emitter started");
        inner
            .tasks
            .spawn_on(driver::run(Arc::clone(&inner)), &inner.runtime);
        Ok(Self {
            handle: Arc::new(Handle { inner }),
        })
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// This emitter's id: the `source` of the events it emits.
    pub fn id(&self) -> &NodeId {
        &self.inner().id
    }

    // ---- listening -------------------------------------------------------------------

    /// Calls `handler` for every event matching `pattern`, with its payload decoded as `T`.
    ///
    /// Local emits call the handler directly (and `emit` waits for it); remote and system
    /// events queue for it (bounded; if it falls behind, the oldest are dropped and a
    /// [`Lagged`](crate::ErrorKind::Lagged) report says how many) and it handles them one
    /// at a time, never delaying other listeners. A payload that is not a `T`, or a panic
    /// in the handler, is reported on the error channel.
    pub fn on<T, F, Fut>(&self, pattern: &str, handler: F) -> Result<Listener, Error>
    where
        T: FromPayload,
        F: Fn(Event<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_with(pattern, ListenOptions::default(), handler)
    }

    /// [`on`](Self::on) with options (spy, queue size).
    pub fn on_with<T, F, Fut>(
        &self,
        pattern: &str,
        options: ListenOptions,
        handler: F,
    ) -> Result<Listener, Error>
    where
        T: FromPayload,
        F: Fn(Event<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add_handler(Pattern::new(pattern)?, options, false, handler)
    }

    /// A spy: like [`on`](Self::on), but never counted anywhere.
    pub fn spy<T, F, Fut>(&self, pattern: &str, handler: F) -> Result<Listener, Error>
    where
        T: FromPayload,
        F: Fn(Event<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_with(pattern, ListenOptions::default().spy(), handler)
    }

    /// Calls `handler` for every event except `$` system events (the pattern `#`).
    pub fn on_any<T, F, Fut>(&self, handler: F) -> Result<Listener, Error>
    where
        T: FromPayload,
        F: Fn(Event<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.add_handler(Pattern::new(ANY)?, ListenOptions::default(), true, handler)
    }

    fn add_handler<T, F, Fut>(
        &self,
        pattern: Pattern,
        options: ListenOptions,
        any: bool,
        handler: F,
    ) -> Result<Listener, Error>
    where
        T: FromPayload,
        F: Fn(Event<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let call: ErasedHandler = Arc::new(move |raw| Ok(handler(raw.decode::<T>()?).boxed()));
        let capacity = options.capacity_or(self.inner().config.listener_capacity);
        let flags = options.flags(any);
        let sink = options.into_sink(
            pattern.clone(),
            Target::Handler {
                call,
                queue: Arc::new(LagQueue::new(capacity)),
            },
        )?;
        let id = self.inner().add_listener(flags, sink)?;
        Ok(Listener::new(id, pattern, Arc::downgrade(self.inner())))
    }

    /// The events matching `pattern` as a [`Stream`](futures_core::Stream) (see
    /// [`EventStream`] for its lag contract). Dropping the stream removes the listener.
    pub fn events<T: FromPayload>(&self, pattern: &str) -> Result<EventStream<T>, Error> {
        self.events_with(pattern, ListenOptions::default())
    }

    /// [`events`](Self::events) with options (spy, queue size).
    pub fn events_with<T: FromPayload>(
        &self,
        pattern: &str,
        options: ListenOptions,
    ) -> Result<EventStream<T>, Error> {
        self.add_stream(Pattern::new(pattern)?, options, false)
    }

    /// Every event except `$` system events, as a stream.
    pub fn any_event<T: FromPayload>(&self) -> Result<EventStream<T>, Error> {
        self.add_stream(Pattern::new(ANY)?, ListenOptions::default(), true)
    }

    fn add_stream<T: FromPayload>(
        &self,
        pattern: Pattern,
        options: ListenOptions,
        any: bool,
    ) -> Result<EventStream<T>, Error> {
        let queue = Arc::new(LagQueue::new(
            options.capacity_or(self.inner().config.listener_capacity),
        ));
        let sink = options
            .clone()
            .into_sink(pattern.clone(), Target::Stream(Arc::clone(&queue)))?;
        let id = self.inner().add_listener(options.flags(any), sink)?;
        Ok(EventStream::new(
            id,
            pattern,
            options,
            queue,
            Arc::downgrade(self.inner()),
        ))
    }

    /// The first event matching `pattern`. The listener is registered now (so nothing
    /// emitted after this call is missed) and counted until the event arrives.
    ///
    /// ```
    /// # use demitter_core::{Emitter, MemoryHub};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), demitter_core::Error> {
    /// let emitter = Emitter::new(MemoryHub::new().join())?;
    /// let ready = emitter.once::<String>("service.ready")?;
    /// emitter.emit("service.ready", "db").await?;
    /// assert_eq!(ready.await?.data, "db");
    /// # Ok(()) }
    /// ```
    pub fn once<T: FromPayload>(&self, pattern: &str) -> Result<Once<T>, Error> {
        Ok(Once::new(self.events_with(
            pattern,
            ListenOptions::default().capacity(16),
        )?))
    }

    /// Removes a listener. Returns whether it was still registered.
    pub fn off(&self, listener: &Listener) -> bool {
        self.inner().remove_listener(listener.id())
    }

    /// Removes every listener added with [`on_any`](Self::on_any) or
    /// [`any_event`](Self::any_event). Returns how many.
    pub fn off_any(&self) -> usize {
        self.inner().remove_where(|l| l.flags.any)
    }

    /// Removes every listener (`None`), or those registered on exactly this pattern.
    /// Returns how many. Streams and `once` futures of removed listeners end.
    pub fn clear_listeners(&self, pattern: Option<&str>) -> Result<usize, Error> {
        Ok(match pattern {
            None => self.inner().remove_where(|_| true),
            Some(p) => {
                let p = Pattern::new(p)?;
                self.inner().remove_where(|l| l.pattern == p)
            }
        })
    }

    // ---- requests --------------------------------------------------------------------

    /// Answers requests for names matching `pattern`: `handler` gets each request as an
    /// event (its `source` the requester), and what it returns goes back to the requester
    /// alone, `Ok` as the reply and `Err` as the error the requester gets
    /// ([`Error::ResponderFailed`], with the error's text).
    ///
    /// Requests run concurrently, at most [`MAX_REQUESTS_IN_FLIGHT`] per responder (more
    /// fail at once as busy). A request that does not decode as `Q`, or a handler that
    /// panics, fails the request with why. Every node on the bus learns of the responder
    /// as it learns of listeners; it serves until [`Responder::stop`] or the emitter closes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use demitter_core::{Emitter, Event, MemoryHub};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), demitter_core::Error> {
    /// let hub = MemoryHub::new();
    /// let stock = Emitter::new(hub.join())?;
    /// let shop = Emitter::new(hub.join())?;
    /// stock.serve("stock.count", |request: Event<String>| async move {
    ///     match request.data.as_str() {
    ///         "apples" => Ok(7u32),
    ///         other => Err(format!("no {other} here")),
    ///     }
    /// })?;
    /// shop.wait_for_responders("stock.count", 1).await?;
    /// let reply = shop.request::<_, u32>("stock.count", "apples", Duration::from_secs(5)).await?;
    /// assert_eq!((reply.data, reply.source.as_str()), (7, stock.id().as_str()));
    /// let refused = shop.request::<_, u32>("stock.count", "pears", Duration::from_secs(5)).await;
    /// assert!(matches!(refused, Err(demitter_core::Error::ResponderFailed { .. })));
    /// # Ok(()) }
    /// ```
    pub fn serve<Q, R, E, F, Fut>(&self, pattern: &str, handler: F) -> Result<Responder, Error>
    where
        Q: FromPayload,
        R: Serialize,
        E: std::fmt::Display,
        F: Fn(Event<Q>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let pattern = Pattern::new(pattern)?;
        if crate::name::is_system(pattern.as_str()) {
            return Err(Error::ReservedName(pattern.as_str().to_owned()));
        }
        let handler = Arc::new(handler);
        let call: responder::ErasedResponder = Arc::new(move |raw| {
            let request = raw.decode::<Q>()?;
            let answer = handler(request);
            Ok(async move {
                match answer.await {
                    Ok(reply) => encode_payload(&reply).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            .boxed())
        });
        let inner = self.inner();
        let id = inner.add_responder(responder::ResponderEntry::new(
            pattern.clone(),
            call,
            Arc::downgrade(inner),
        ))?;
        Ok(Responder::new(id, pattern, Arc::downgrade(inner)))
    }

    /// Sends `query` as a request for `name` to one responder on the bus (chosen in turn
    /// among the nodes known to serve `name`, this one included) and waits for its reply:
    /// an event whose `source` is the responder's node.
    ///
    /// Fails with [`Error::NoResponder`] at once when no node is known to serve `name`,
    /// [`Error::ResponderFailed`] when its handler fails, [`Error::ResponderLost`] as soon
    /// as the responder's node is known to be down, [`Error::RequestTimedOut`] after
    /// `timeout`.
    pub async fn request<Q: Serialize + ?Sized, R: FromPayload>(
        &self,
        name: &str,
        query: &Q,
        timeout: std::time::Duration,
    ) -> Result<Event<R>, Error> {
        validate_user_name(name)?;
        let payload = encode_payload(query)?;
        let reply = self.inner().request(name, &payload, timeout)?;
        // The node times the request out; this bound only guards against a driver that
        // stopped.
        let outcome = tokio::time::timeout(timeout + REQUEST_GRACE, reply).await;
        let timed_out = || Error::RequestTimedOut {
            name: name.to_owned(),
            after: timeout,
        };
        match outcome {
            Ok(Ok(Ok(raw))) => raw.decode::<R>(),
            Ok(Ok(Err(failure))) => Err(match failure {
                RequestFailure::Failed { responder, message } => Error::ResponderFailed {
                    responder: responder.to_string(),
                    message,
                },
                RequestFailure::NoResponder { .. } => Error::NoResponder {
                    name: name.to_owned(),
                },
                RequestFailure::Lost { responder } => Error::ResponderLost {
                    responder: responder.to_string(),
                },
                RequestFailure::TimedOut { .. } => timed_out(),
                _ => Error::Closed,
            }),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(timed_out()),
        }
    }

    /// For each listener group with a member matching `name` (on this node or a known
    /// peer), how many members match: the groups an event `name` would reach one member
    /// of. Members are counted in [`listener_count`](Self::listener_count) too, each once.
    pub fn group_members(
        &self,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, usize>, Error> {
        validate_user_name(name)?;
        Ok(self.inner().group_members(name))
    }

    /// How many responders on the bus (this node and every peer known) serve `name`.
    pub fn responder_count(&self, name: &str) -> Result<usize, Error> {
        validate_user_name(name)?;
        Ok(self.inner().count(&CountSubject::responders(name)))
    }

    /// Waits until at least `n` responders on the bus serve `name`. Wrap it in a timeout:
    /// it waits as long as it takes.
    pub async fn wait_for_responders(&self, name: &str, n: usize) -> Result<(), Error> {
        validate_user_name(name)?;
        let mut counts = CountStream::new(self.inner().observe(CountSubject::responders(name)));
        while let Some(count) = counts.recv().await {
            if count >= n {
                return Ok(());
            }
        }
        Err(self.inner().closed_error())
    }

    // ---- counting --------------------------------------------------------------------

    /// How many listeners on the whole bus (this node and every peer known) would receive
    /// the event `name`. Given a wildcard pattern instead of a name, how many are
    /// registered on exactly that pattern. Spies are never counted.
    pub fn listener_count(&self, name_or_pattern: &str) -> Result<usize, Error> {
        Ok(self.inner().count(&CountSubject::parse(name_or_pattern)?))
    }

    /// The listeners on the whole bus that [`listener_count`](Self::listener_count) counts,
    /// one entry each (partybus's `bus.listeners(event)`): the node each lives on, its
    /// pattern, its group. This node's come first, then by node; spies are never listed.
    /// Remote listeners are known per pattern, so two on one pattern of one peer are two
    /// equal entries.
    ///
    /// ```
    /// # use demitter_core::{Emitter, Event, MemoryHub};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = MemoryHub::new();
    /// let (here, there) = (Emitter::new(hub.join())?, Emitter::new(hub.join())?);
    /// let _mine = here.on("job.+", |_: Event<()>| async {})?;
    /// let _theirs = there.on("job.done", |_: Event<()>| async {})?;
    /// let wait = std::time::Duration::from_secs(5);
    /// tokio::time::timeout(wait, here.wait_for_listeners("job.done", 2)).await??;
    ///
    /// let listeners = here.listeners("job.done")?;
    /// assert_eq!(listeners.len(), here.listener_count("job.done")?);
    /// assert!(listeners[0].local && listeners[0].pattern.as_str() == "job.+");
    /// assert_eq!((&listeners[1].node, listeners[1].local), (there.id(), false));
    /// # Ok(()) }
    /// ```
    pub fn listeners(&self, name_or_pattern: &str) -> Result<Vec<crate::BusListener>, Error> {
        Ok(self
            .inner()
            .bus_listeners(&CountSubject::parse(name_or_pattern)?))
    }

    /// [`listener_count`](Self::listener_count) now, and again every time it changes
    /// (listeners added or removed here or on a peer, or lost with their peer).
    ///
    /// ```
    /// # use demitter_core::{Emitter, Event, MemoryHub};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), demitter_core::Error> {
    /// let emitter = Emitter::new(MemoryHub::new().join())?;
    /// let mut count = emitter.observe_listener_count("job.done")?;
    /// assert_eq!(count.recv().await, Some(0));
    /// let listener = emitter.on("job.+", |_: Event<()>| async {})?;
    /// assert_eq!(count.recv().await, Some(1));
    /// listener.off();
    /// assert_eq!(count.recv().await, Some(0));
    /// # Ok(()) }
    /// ```
    pub fn observe_listener_count(&self, name_or_pattern: &str) -> Result<CountStream, Error> {
        let subject = CountSubject::parse(name_or_pattern)?;
        Ok(CountStream::new(self.inner().observe(subject)))
    }

    /// Waits until at least `n` listeners on the bus would receive `name`. Wrap it in a
    /// timeout: it waits as long as it takes. [`Error::Closed`] if the emitter closes
    /// first; [`Error::DuplicateId`] if it gave way to another node with its id.
    pub async fn wait_for_listeners(&self, name: &str, n: usize) -> Result<(), Error> {
        let mut counts = self.observe_listener_count(name)?;
        while let Some(count) = counts.recv().await {
            if count >= n {
                return Ok(());
            }
        }
        Err(self.inner().closed_error())
    }

    /// Waits until this node has heard the bus: every peer it knows exists (the transport
    /// named it, connected to it, counted it, or it spoke) has told what it listens on.
    /// From then on an `emit` reaches every listener that was on the bus, and its
    /// [`Delivery`] counts them all; a short-lived process (a CLI call, a cron job) waits
    /// for this before it emits. Resolves at once when the node has heard the bus already.
    ///
    /// On transports that make contact themselves (QUIC, the memory hub) this is as soon as
    /// the peers answered; on the others, once every peer had a heartbeat interval to
    /// speak. Wrap it in a timeout: a node whose seeds never answer waits as long as it
    /// takes. [`Error::Closed`] if the emitter closes first; [`Error::DuplicateId`] if
    /// another node on the bus had this one's id first (this one then gave way).
    ///
    /// ```
    /// # use demitter_core::{Emitter, Event, MemoryHub};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = MemoryHub::new();
    /// let listener = Emitter::new(hub.join())?;
    /// let _on = listener.on("job.+", |_: Event<()>| async {})?;
    /// let sender = Emitter::new(hub.join())?;
    /// tokio::time::timeout(std::time::Duration::from_secs(5), sender.ready()).await??;
    /// let delivery = sender.emit("job.done", &()).await?;
    /// assert_eq!((delivery.remote, delivery.ready), (1, true));
    /// # Ok(()) }
    /// ```
    pub async fn ready(&self) -> Result<(), Error> {
        let inner = self.inner();
        let mut readiness = inner.readiness.subscribe();
        loop {
            let now = *readiness.borrow_and_update();
            if now.refused || inner.is_closed() {
                return Err(inner.closed_error());
            }
            if now.ready {
                return Ok(());
            }
            tokio::select! {
                changed = readiness.changed() => {
                    if changed.is_err() {
                        return Err(inner.closed_error());
                    }
                }
                () = inner.cancel.cancelled() => return Err(inner.closed_error()),
            }
        }
    }

    /// Whether this node has heard the bus now, and how many peers it still waits for
    /// (see [`ready`](Self::ready)).
    pub fn readiness(&self) -> Readiness {
        *self.inner().readiness.borrow()
    }

    /// The peers currently known on the bus.
    pub fn peers(&self) -> Vec<NodeId> {
        self.inner().peers()
    }

    /// Who the peers currently known are (partybus's `bus.hood`), by id: the name the
    /// transport proved, where each is, since when it is up, on how many patterns it
    /// listens.
    ///
    /// ```
    /// # use demitter_core::{Emitter, MemoryHub};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let hub = MemoryHub::new();
    /// let (here, there) = (Emitter::new(hub.join())?, Emitter::new(hub.join())?);
    /// let _listener = there.on("job.+", |_: demitter_core::Event<()>| async {})?;
    /// let wait = std::time::Duration::from_secs(5);
    /// tokio::time::timeout(wait, here.wait_for_listeners("job.x", 1)).await??;
    /// let peers = here.peer_info();
    /// assert_eq!((&peers[0].id, peers[0].patterns), (there.id(), 1));
    /// assert_eq!(peers[0].proven_name, None, "the memory hub proves no one");
    /// # Ok(()) }
    /// ```
    pub fn peer_info(&self) -> Vec<crate::PeerInfo> {
        let inner = self.inner();
        let proves = inner.transport.capabilities().authenticated;
        let (now, wall) = (Instant::now(), std::time::SystemTime::now());
        inner
            .peer_presence()
            .into_iter()
            .map(|(id, since, patterns)| crate::PeerInfo {
                proven_name: proves.then(|| id.clone()),
                address: inner.transport.peer_address(&id),
                up_since: wall - now.saturating_duration_since(since),
                patterns,
                id,
            })
            .collect()
    }

    /// What the transport under this emitter declares it does: whether
    /// [`Congestion::Block`](crate::Congestion::Block) can hold `emit` back, whether it
    /// authenticates peers, its largest frame.
    pub fn transport_capabilities(&self) -> Capabilities {
        self.inner().transport.capabilities()
    }

    // ---- emitting --------------------------------------------------------------------

    /// Emits `data` (any `serde` value, sent as MessagePack) as the event `name` to every
    /// matching listener on the bus. Local listeners run concurrently and this resolves when
    /// they have finished; remote delivery is handed to the transport without waiting.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
    ) -> Result<Delivery, Error> {
        // Not through `emit_as`: the extra future costs the hot path 11 instructions.
        validate_user_name(name)?;
        let payload = encode_payload(data)?;
        self.inner()
            .emit_payload(name, payload, EmitMode::Concurrent)
            .await
    }

    /// Like [`emit`](Self::emit), and keeps `data` on this node as the retained value of
    /// `name`: every listener made [`with_last`](ListenOptions::with_last) from now on, on
    /// any node, receives it before the live events, until a later `emit_retained` of the
    /// same name replaces it or [`clear_retained`](Self::clear_retained) removes it.
    ///
    /// Retained values live as long as this emitter: they are not stored anywhere else, so
    /// a node that closes or restarts takes its values with it (a restart starts empty).
    /// Fails with [`Error::FrameTooLarge`] when the value could not travel in one answer.
    ///
    /// ```
    /// use demitter_core::{Emitter, Event, ListenOptions, MemoryHub};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), demitter_core::Error> {
    /// let hub = MemoryHub::new();
    /// let thermostat = Emitter::new(hub.join())?;
    /// thermostat.emit_retained("temp.kitchen", &21.5).await?;
    ///
    /// // A display that starts later learns the temperature as soon as it meets the
    /// // thermostat, then every change.
    /// let display = Emitter::new(hub.join())?;
    /// let mut temps = display.events_with::<f64>("temp.+", ListenOptions::default().with_last())?;
    /// let first = temps.recv().await.expect("open")?;
    /// assert_eq!((first.data, first.source.as_str()), (21.5, thermostat.id().as_str()));
    /// # Ok(()) }
    /// ```
    pub async fn emit_retained<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
    ) -> Result<Delivery, Error> {
        self.emit_as(name, data, EmitMode::Retained).await
    }

    /// Forgets this node's retained value of `name`, so later
    /// [`with_last`](ListenOptions::with_last) listeners do not get it; returns whether
    /// there was one. Listeners that already received it are not told.
    pub fn clear_retained(&self, name: &str) -> Result<bool, Error> {
        validate_user_name(name)?;
        Ok(self.inner().clear_retained(name))
    }

    /// Like [`emit`](Self::emit), but runs local listeners one after another.
    pub async fn emit_serial<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
    ) -> Result<Delivery, Error> {
        self.emit_as(name, data, EmitMode::Serial).await
    }

    /// Checks the name, encodes `data` and emits it in `mode`.
    async fn emit_as<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
        mode: EmitMode,
    ) -> Result<Delivery, Error> {
        validate_user_name(name)?;
        let payload = encode_payload(data)?;
        self.inner().emit_payload(name, payload, mode).await
    }

    /// Emits a payload that is already MessagePack (for tools and bridges).
    pub async fn emit_raw(&self, name: &str, payload: Bytes) -> Result<Delivery, Error> {
        validate_user_name(name)?;
        self.inner()
            .emit_payload(name, payload, EmitMode::Concurrent)
            .await
    }

    // ---- errors ----------------------------------------------------------------------

    /// The error channel (Demitter's `distributed:error`): every failure that happens away
    /// from a call — gaps, lag, undecodable frames, refused peers, failing listeners, a
    /// transport that cannot reach its bus — with counts. The same reports are delivered
    /// locally as the `$error` event.
    ///
    /// Each stream gets the reports made after it; the first one made also gets those made
    /// before it (the first 64), so that what a transport says at once, as a forwarder
    /// refusing the connection, is not lost between `connect` and this call.
    pub fn errors(&self) -> ErrorStream {
        let queue = self
            .inner()
            .errors
            .subscribe(self.inner().config.error_capacity);
        if self.inner().is_closed() {
            queue.close();
        }
        ErrorStream::new(queue)
    }

    /// Running totals of everything reported on the error channel.
    pub fn error_counts(&self) -> ErrorCounts {
        ErrorCounts {
            recovered: self.inner().recovered(),
            ..self.inner().errors.counts()
        }
    }

    // ---- closing ---------------------------------------------------------------------

    /// Leaves the bus: peers are told, pending `once` futures resolve to
    /// [`Error::Closed`], the transport closes, and every task this emitter started has
    /// ended when this returns (or `close_timeout` passed; listener tasks still busy are
    /// then left to finish on their own).
    ///
    /// Nothing more arrives after the call, but nothing that already arrived is dropped:
    /// handlers run every event already in their queues before their tasks end, and
    /// streams yield what they hold, then end. Responders stop first (the bus is told),
    /// and the requests they are serving are answered before the goodbye (within
    /// `close_timeout`; those still running then are dropped, and their requesters learn
    /// the responder is gone). With recovery on
    /// ([`EmitterConfig::recovery`](crate::EmitterConfig::recovery)), it then lingers, at
    /// most `recovery.linger`, until every peer that follows this emitter's names says it
    /// has them all, answering their repairs meanwhile; new events are refused from then
    /// on.
    pub async fn close(&self) {
        let inner = self.inner();
        if !inner.is_closed() {
            // Requests being served answer first, before the goodbye; no new ones start.
            inner.stop_serving();
            inner.serving.close();
            wait_for_tasks(
                &inner.serving,
                inner.config.close_timeout,
                "requests being served (they are dropped)",
            )
            .await;
            // With recovery on: until the peers have everything this node emitted.
            inner.linger().await;
        }
        let first = inner.shutdown_now();
        if first {
            inner.transport.close().await;
        }
        wait_for_tasks(&inner.tasks, inner.config.close_timeout, "listener tasks").await;
    }

    /// Whether the emitter is closed.
    pub fn is_closed(&self) -> bool {
        self.inner().is_closed()
    }

    /// How many tasks this emitter has running (its receive loop and one per handler
    /// listener). Zero after [`close`](Self::close).
    pub fn tasks_running(&self) -> usize {
        self.inner().tasks.len()
    }
}

/// A new incarnation's epoch: its start time in milliseconds since the Unix epoch, times
/// 65,536, plus a random number under 65,536 (never 0). A later start has a higher epoch
/// where clocks agree, so of two nodes with one id started close together the later one
/// gives way; two starts in one millisecond differ by the random part.
fn fresh_epoch(now: std::time::SystemTime) -> u64 {
    let millis = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> 16)
    });
    (millis << 16) | fastrand::u64(1..1 << 16)
}

#[cfg(test)]
mod epoch_tests {
    #[test]
    fn a_later_start_has_a_higher_epoch() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let earlier = super::fresh_epoch(t);
        let later = super::fresh_epoch(t + std::time::Duration::from_millis(1));
        assert!(earlier > 0 && later > earlier, "{earlier} {later}");
    }
}
