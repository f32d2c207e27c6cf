//! The driver behind an [`Emitter`](crate::Emitter) handle: one [`Node`] under one lock,
//! the listeners' queues and tasks, and the hand-over of what the node produced to the
//! transport and the listeners.
//!
//! Every call locks the node once, feeds it, delivers what it dispatched (pushing onto
//! bounded queues: nothing runs there) and lets it go before the transport sees a frame.
//! Frames leave in the order the node produced them: whoever drains the node takes the
//! outbox lock before letting the node go.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use foldhash::HashMap;
use futures_util::FutureExt;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::emitter::config::{Congestion, EmitterConfig};
use crate::emitter::errors::ErrorChannel;
use crate::emitter::responder::{MAX_REQUESTS_IN_FLIGHT, ResponderEntry};
use crate::emitter::sink::{ErasedHandler, Sink, Target};
use crate::error::Error;
use crate::event::{Delivery, RawEvent};
use crate::inbox::Receive;
use crate::lag_queue::{LagQueue, Popped};
use crate::node::{
    CountSubject, Dispatch, FrameKind, IncomingRequest, ListenerFlags, ListenerInfo, Node,
    Readiness, RequestFailure, Transmit,
};
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::protocol::ReplyOutcome;
use crate::report::{ErrorKind, ErrorReport};
use crate::transport::{Incoming, Transport};

/// How `emit_payload` runs the local handlers, and whether it retains the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmitMode {
    Concurrent,
    Serial,
    Retained,
}

/// What the node lock guards: the node and the queues of the counts it reports.
pub(crate) struct State {
    pub(crate) node: Node<Arc<Sink>>,
    counts: HashMap<u64, Arc<LagQueue<usize>>>,
    /// This node's responders, by id.
    responders: HashMap<u64, Arc<ResponderEntry>>,
    /// The requests this node made, by number: where their outcome goes.
    replies: HashMap<u64, oneshot::Sender<Result<RawEvent, RequestFailure>>>,
}

impl State {
    pub(crate) fn new(node: Node<Arc<Sink>>) -> Self {
        Self {
            node,
            counts: HashMap::default(),
            responders: HashMap::default(),
            replies: HashMap::default(),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) id: NodeId,
    pub(crate) config: EmitterConfig,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) state: Mutex<State>,
    /// Taken before the node is let go, so frames reach the transport in the node's order;
    /// the buffer is reused by every hand-over.
    pub(crate) outbox: Mutex<VecDeque<Transmit>>,
    pub(crate) errors: ErrorChannel,
    /// When the receive loop's timer is set for, and how a batch received directly on a
    /// transport's task tells it of an earlier deadline.
    pub(crate) timer_deadline: Mutex<Instant>,
    pub(crate) timer_moved: Notify,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
    /// The requests being served: `close` lets them answer before the goodbye.
    pub(crate) serving: TaskTracker,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) closed: AtomicBool,
    /// Whether the node has heard the bus, as it last said.
    pub(crate) readiness: tokio::sync::watch::Sender<Readiness>,
    /// Bumped at each acknowledgement of this node's interest (or a peer lost): whoever
    /// waits for a listener to be subscribed looks again.
    pub(crate) acknowledged: tokio::sync::watch::Sender<u64>,
    /// Set when the node gave way to another with its id: the next hand-over, once its
    /// goodbye is sent, closes the transport.
    pub(crate) transport_to_close: AtomicBool,
}

impl Inner {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Why calls fail once closed: [`Error::DuplicateId`] if the node gave way to another
    /// with its id, [`Error::Closed`] otherwise.
    pub(crate) fn closed_error(&self) -> Error {
        self.state.lock().node.closed_error()
    }

    // ---- the hand-over ---------------------------------------------------------------

    /// Delivers what the node dispatched: events onto listener queues, counts onto
    /// observers' queues, reports onto the error channel, requests to their responders'
    /// tasks, replies to their requesters. Never waits.
    fn deliver(&self, state: &mut State) {
        let mut gave_way = false;
        while let Some(dispatch) = state.node.poll_dispatch() {
            match dispatch {
                Dispatch::Event { event, mut to } => {
                    // The last listener gets the event itself, the others copies: with one
                    // listener, nothing is cloned.
                    let last = to.pop();
                    for sink in &to {
                        sink.queue().push(event.clone());
                    }
                    if let Some(sink) = last {
                        sink.queue().push(event);
                    }
                }
                Dispatch::Count { observer, count } => match state.counts.get(&observer) {
                    Some(queue) if !queue.is_closed() => {
                        queue.push(count);
                    }
                    _ => {
                        state.counts.remove(&observer);
                        state.node.unobserve(observer);
                    }
                },
                Dispatch::Report(report) => self.errors.publish(report),
                Dispatch::Request(request) => {
                    match state.responders.get(&request.responder) {
                        Some(entry) if entry.admit() => {
                            self.serving.spawn_on(
                                serve_request(Arc::clone(entry), request, self.cancel.clone()),
                                &self.runtime,
                            );
                        }
                        Some(entry) => state.node.reply(
                            &request.from,
                            request.id,
                            ReplyOutcome::Failed(format!(
                                "the responder on `{}` is busy: {MAX_REQUESTS_IN_FLIGHT} requests in flight",
                                entry.pattern
                            )),
                        ),
                        None => state.node.reply(
                            &request.from,
                            request.id,
                            ReplyOutcome::NoResponder,
                        ),
                    }
                }
                Dispatch::Readiness(readiness) => {
                    self.readiness.send_replace(readiness);
                    gave_way |= readiness.refused;
                }
                Dispatch::Acknowledged => {
                    self.acknowledged.send_modify(|n| *n += 1);
                }
                Dispatch::Reply { id, result } => {
                    if let Some(waiting) = state.replies.remove(&id) {
                        // The requester may have given up (dropped its future): fine.
                        let _ = waiting.send(result);
                    }
                }
            }
        }
        if gave_way {
            // After the whole batch: the report of why is on the error channel first.
            self.stop_after_giving_way(state);
        }
    }

    /// Delivers, then hands the node's transmits to the transport, in order, after letting
    /// the node go. Returns whether an event met a closed transport.
    fn flush(&self, mut state: MutexGuard<'_, State>) -> bool {
        self.deliver(&mut state);
        let mut outbox = self.outbox.lock();
        state.node.drain_transmits(&mut outbox);
        drop(state);
        if outbox.is_empty() {
            return false;
        }
        let mut event_closed = false;
        let mut failed = Vec::new();
        while let Some(transmit) = outbox.pop_front() {
            match transmit {
                Transmit::Subscribe(pattern) => self.transport.subscribe(&pattern),
                Transmit::Unsubscribe(pattern) => self.transport.unsubscribe(&pattern),
                Transmit::Frame { frame, to, kind } => match self.transport.send(frame, to) {
                    Ok(()) => {}
                    Err(Error::Closed) if kind == FrameKind::Event => event_closed = true,
                    Err(e) => failed.push((kind, e)),
                },
            }
        }
        drop(outbox);
        if !failed.is_empty() {
            let mut state = self.state.lock();
            for (kind, e) in failed {
                state.node.handle_send_failure(kind, &e);
            }
            self.deliver(&mut state);
        }
        if self.transport_to_close.load(Ordering::Acquire)
            && self.transport_to_close.swap(false, Ordering::AcqRel)
        {
            // The goodbye is in the transport's hands: `close` sends it before it ends.
            let transport = Arc::clone(&self.transport);
            self.tasks
                .spawn_on(async move { transport.close().await }, &self.runtime);
        }
        event_closed
    }

    /// Tells the receive loop when the node's timers want it next, if that is sooner than
    /// its timer is set for.
    fn move_timer_for(&self, next: Instant) {
        if next < *self.timer_deadline.lock() {
            self.timer_moved.notify_one();
        }
    }

    /// Hands over whatever the node has for the transport and the listeners.
    pub(crate) fn flush_now(&self) {
        self.flush(self.state.lock());
    }

    // ---- listeners -------------------------------------------------------------------

    pub(crate) fn add_listener(
        self: &Arc<Self>,
        flags: ListenerFlags,
        sink: Sink,
    ) -> Result<u64, Error> {
        let sink = Arc::new(sink);
        let mut state = self.state.lock();
        let pattern = sink.pattern.clone();
        let id = if let Some(group) = &sink.group {
            state
                .node
                .add_group_member(pattern, group, Arc::clone(&sink))?
        } else if sink.with_last {
            state
                .node
                .add_listener_with_last(Instant::now(), pattern, flags, Arc::clone(&sink))?
        } else {
            state.node.add_listener(pattern, flags, Arc::clone(&sink))?
        };
        let next = state.node.poll_timeout();
        self.flush(state);
        self.move_timer_for(next);
        if let Target::Handler { .. } = sink.target {
            self.tasks
                .spawn_on(run_listener(Arc::clone(self), sink), &self.runtime);
        }
        Ok(id)
    }

    /// Waits until listeners `ids` are subscribed ([`Node::is_subscribed`]).
    pub(crate) async fn subscribed(&self, ids: &[u64]) -> Result<(), Error> {
        let mut acks = self.acknowledged.subscribe();
        let mut readiness = self.readiness.subscribe();
        loop {
            acks.borrow_and_update();
            let refused = readiness.borrow_and_update().refused;
            {
                let state = self.state.lock();
                if refused {
                    return Err(state.node.closed_error());
                }
                if self.is_closed() {
                    return Err(state.node.closed_error());
                }
                let mut all = true;
                for id in ids {
                    match state.node.is_subscribed(*id) {
                        None => return Err(state.node.closed_error()),
                        Some(subscribed) => all &= subscribed,
                    }
                }
                if all {
                    return Ok(());
                }
            }
            tokio::select! {
                _ = acks.changed() => {}
                _ = readiness.changed() => {}
                () = self.cancel.cancelled() => return Err(self.closed_error()),
            }
        }
    }

    pub(crate) fn remove_listener(&self, id: u64) -> bool {
        let mut state = self.state.lock();
        let Some(removed) = state.node.remove_listener(id) else {
            return false;
        };
        match &removed.sink.target {
            Target::Handler { queue, .. } => queue.close_and_clear(),
            Target::Stream(queue) => queue.close(),
        }
        self.flush(state);
        true
    }

    pub(crate) fn remove_where(
        &self,
        select: impl FnMut(&ListenerInfo<Arc<Sink>>) -> bool,
    ) -> usize {
        let ids = self.state.lock().node.listeners_where(select);
        ids.into_iter()
            .filter(|id| self.remove_listener(*id))
            .count()
    }

    // ---- requests --------------------------------------------------------------------

    pub(crate) fn add_responder(&self, entry: ResponderEntry) -> Result<u64, Error> {
        let mut state = self.state.lock();
        let id = state.node.add_responder(entry.pattern.clone())?;
        state.responders.insert(id, Arc::new(entry));
        self.flush(state);
        Ok(id)
    }

    /// Stops every responder (announced to the bus: requesters stop choosing this node);
    /// a request that still comes is answered as finding no responder.
    pub(crate) fn stop_serving(&self) {
        let mut state = self.state.lock();
        let ids: Vec<u64> = state.responders.drain().map(|(id, _)| id).collect();
        for id in ids {
            state.node.remove_responder(id);
        }
        self.flush(state);
    }

    pub(crate) fn remove_responder(&self, id: u64) -> bool {
        let mut state = self.state.lock();
        if state.responders.remove(&id).is_none() {
            return false;
        }
        state.node.remove_responder(id);
        self.flush(state);
        true
    }

    /// Sends a request; what becomes of it arrives on the returned channel.
    pub(crate) fn request(
        &self,
        name: &str,
        payload: &[u8],
        timeout: std::time::Duration,
    ) -> Result<oneshot::Receiver<Result<RawEvent, RequestFailure>>, Error> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let mut state = self.state.lock();
        let id = state.node.request(Instant::now(), name, payload, timeout)?;
        // Registered before anything is delivered: a local responder's answer (or a
        // refusal) is dispatched by the flush below at the earliest.
        state.replies.insert(id, reply_tx);
        let next = state.node.poll_timeout();
        self.flush(state);
        self.move_timer_for(next);
        Ok(reply_rx)
    }

    // ---- counts and peers ------------------------------------------------------------

    pub(crate) fn group_members(&self, name: &str) -> std::collections::BTreeMap<String, usize> {
        self.state.lock().node.group_members(name)
    }

    pub(crate) fn recovered(&self) -> u64 {
        self.state.lock().node.recovered()
    }

    pub(crate) fn count(&self, subject: &CountSubject) -> usize {
        self.state.lock().node.listener_count(subject)
    }

    pub(crate) fn observe(&self, subject: CountSubject) -> Arc<LagQueue<usize>> {
        let queue = Arc::new(LagQueue::new(64));
        let mut state = self.state.lock();
        if state.node.is_closed() {
            queue.push(state.node.listener_count(&subject));
            queue.close();
        } else {
            let (observer, now) = state.node.observe(subject);
            queue.push(now);
            state.counts.insert(observer, Arc::clone(&queue));
        }
        queue
    }

    pub(crate) fn bus_listeners(&self, subject: &CountSubject) -> Vec<crate::BusListener> {
        self.state.lock().node.bus_listeners(subject)
    }

    /// Each peer up, with when it came up and its number of patterns.
    pub(crate) fn peer_presence(&self) -> Vec<(NodeId, Instant, usize)> {
        let state = self.state.lock();
        let mut peers: Vec<(NodeId, Instant, usize)> = state
            .node
            .peers()
            .filter_map(|peer| {
                let (since, patterns) = state.node.peer_presence(peer)?;
                Some((peer.clone(), since, patterns))
            })
            .collect();
        peers.sort_by(|a, b| a.0.cmp(&b.0));
        peers
    }

    pub(crate) fn peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self.state.lock().node.peers().cloned().collect();
        peers.sort();
        peers
    }

    // ---- what the transport received, and time ----------------------------------------

    /// Feeds the node a batch; returns when its timers want it next.
    pub(crate) fn handle_batch(&self, batch: &mut Vec<Incoming>) -> Instant {
        let now = Instant::now();
        let mut state = self.state.lock();
        for incoming in batch.drain(..) {
            state.node.handle_incoming(now, incoming);
        }
        let next = state.node.poll_timeout();
        self.flush(state);
        next
    }

    /// When the node's timers want it next.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.state.lock().node.poll_timeout()
    }

    /// Runs the node's timers; returns when they want it next.
    pub(crate) fn handle_timeout(&self) -> Instant {
        let mut state = self.state.lock();
        state.node.handle_timeout(Instant::now());
        let next = state.node.poll_timeout();
        self.flush(state);
        next
    }

    // ---- emitting --------------------------------------------------------------------

    pub(crate) fn clear_retained(&self, name: &str) -> bool {
        self.state.lock().node.clear_retained(name)
    }

    pub(crate) async fn emit_payload(
        &self,
        name: &str,
        payload: Bytes,
        mode: EmitMode,
    ) -> Result<Delivery, Error> {
        // Cooperative like any tokio resource: a loop that only emits still lets the
        // receive loops on its worker run (tokio's budget makes it yield now and then).
        tokio::task::coop::consume_budget().await;
        if let Congestion::Block { deadline } = self.config.congestion {
            // What fits is then queued below; what still does not is dropped and reported.
            self.wait_for_room(deadline, name.len() + payload.len() + 64)
                .await;
        }
        let (emitted, event_closed) = {
            let mut state = self.state.lock();
            let emitted = if mode == EmitMode::Retained {
                state.node.emit_retained(name, payload)?
            } else {
                state.node.emit(name, payload)?
            };
            (emitted, self.flush(state))
        };
        if event_closed {
            return Err(Error::Closed);
        }
        let Some((raw, sinks)) = emitted.local else {
            return Ok(emitted.delivery);
        };
        let mut handlers = 0;
        for sink in &sinks {
            match &sink.target {
                Target::Handler { .. } if !sink.with_last => handlers += 1,
                Target::Handler { queue, .. } | Target::Stream(queue) => {
                    queue.push(raw.clone());
                }
            }
        }
        let calls = sinks.iter().filter_map(|sink| match &sink.target {
            Target::Handler { call, .. } if !sink.with_last => Some((call, &sink.pattern)),
            _ => None,
        });
        if handlers == 1 || mode == EmitMode::Serial {
            for (call, pattern) in calls {
                self.run_handler(call, pattern, &raw).await;
            }
        } else if handlers > 1 {
            futures_util::future::join_all(
                calls.map(|(call, pattern)| self.run_handler(call, pattern, &raw)),
            )
            .await;
        }
        Ok(emitted.delivery)
    }

    /// Waits for room in the transport's queue, at most `deadline`. Boxed, so that the
    /// timer does not grow every `emit`'s future when congestion is `Drop`.
    fn wait_for_room(
        &self,
        deadline: std::time::Duration,
        bytes: usize,
    ) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = tokio::time::timeout(deadline, self.transport.wait_for_room(bytes)).await;
        })
    }

    /// Runs one handler on one event; a decode failure or a panic is reported, never
    /// propagated.
    pub(crate) async fn run_handler(
        &self,
        call: &ErasedHandler,
        pattern: &Pattern,
        raw: &RawEvent,
    ) {
        let future = match std::panic::catch_unwind(AssertUnwindSafe(|| call(raw))) {
            Ok(Ok(future)) => future,
            Ok(Err(e)) => {
                return self.report(
                    ErrorReport::new(
                        ErrorKind::Deserialization,
                        1,
                        format!(
                            "listener on `{pattern}` could not decode `{}`: {e}",
                            raw.name
                        ),
                    )
                    .with_peer(raw.source.as_str())
                    .with_event(&*raw.name),
                );
            }
            Err(panic) => return self.report_panic(pattern, raw, &*panic),
        };
        if let Err(panic) = AssertUnwindSafe(future).catch_unwind().await {
            self.report_panic(pattern, raw, &*panic);
        }
    }

    fn report_panic(&self, pattern: &Pattern, raw: &RawEvent, panic: &(dyn std::any::Any + Send)) {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        self.report(
            ErrorReport::new(
                ErrorKind::Emission,
                1,
                format!(
                    "listener on `{pattern}` panicked handling `{}`: {why}",
                    raw.name
                ),
            )
            .with_event(&*raw.name),
        );
    }

    /// Puts a report on the error channel and delivers it as `$error`.
    pub(crate) fn report(&self, report: ErrorReport) {
        let mut state = self.state.lock();
        state.node.report(report);
        self.deliver(&mut state);
    }

    // ---- shutdown --------------------------------------------------------------------

    /// The node gave way to another with its id (it has said goodbye): the emitter closes
    /// as [`shutdown_now`](Self::shutdown_now) closes it, so that nothing waits on it in
    /// vain, and the transport closes after the goodbye is sent.
    fn stop_after_giving_way(&self, state: &mut State) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for sink in state.node.sinks() {
            sink.queue().close();
        }
        for (_, queue) in state.counts.drain() {
            queue.close();
        }
        self.errors.close();
        self.cancel.cancel();
        self.tasks.close();
        self.transport_to_close.store(true, Ordering::Release);
    }

    /// With recovery on: tells the bus this node is leaving and waits, at most the
    /// configured linger, until every peer that follows its names has them all (the node
    /// answers their repairs meanwhile).
    pub(crate) async fn linger(&self) {
        let waiting = {
            let mut state = self.state.lock();
            let waiting = state.node.linger();
            self.flush(state);
            waiting
        };
        if waiting == 0 {
            return;
        }
        let settled = async {
            let mut acks = self.acknowledged.subscribe();
            loop {
                acks.borrow_and_update();
                if self.state.lock().node.lingering_for() == 0 {
                    return;
                }
                tokio::select! {
                    changed = acks.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = self.cancel.cancelled() => return,
                }
            }
        };
        if tokio::time::timeout(self.config.recovery.linger, settled)
            .await
            .is_err()
        {
            tracing::debug!(
                peers = self.state.lock().node.lingering_for(),
                "linger over with peers not settled: they report what they miss"
            );
        }
    }

    /// Stops everything that can be stopped without waiting. Returns false if already
    /// closed.
    pub(crate) fn shutdown_now(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut state = self.state.lock();
        state.node.close();
        self.deliver(&mut state);
        // What reached a listener's queue is still handled (and a stream still yields
        // it): `emit` counted those listeners as reached.
        for sink in state.node.sinks() {
            sink.queue().close();
        }
        for (_, queue) in state.counts.drain() {
            queue.close();
        }
        self.errors.close();
        self.flush(state);
        self.cancel.cancel();
        self.tasks.close();
        true
    }
}

/// Batches a transport hands over on its own tasks: handled there, no receive loop between.
impl Receive for Inner {
    fn receive(&self, batch: &mut Vec<Incoming>) {
        if self.is_closed() {
            batch.clear();
            return;
        }
        let next = self.handle_batch(batch);
        self.move_timer_for(next);
    }
}

/// Runs one request through its responder and sends the reply. Dropped when the emitter
/// closes: a closed node sends nothing, and its goodbye tells the requester the responder
/// is gone.
async fn serve_request(
    entry: Arc<ResponderEntry>,
    request: IncomingRequest,
    closing: CancellationToken,
) {
    let outcome = tokio::select! {
        () = closing.cancelled() => return entry.abandon(),
        outcome = entry.run(&request) => outcome,
    };
    if let Some(inner) = entry.inner.upgrade() {
        let mut state = inner.state.lock();
        state.node.reply(&request.from, request.id, outcome);
        inner.flush(state);
    }
}

/// The task behind one handler listener: runs queued (remote and system) events one at a
/// time, reports lag, ends when the listener is removed or, once the emitter closed, when
/// its queue is drained.
async fn run_listener(inner: Arc<Inner>, sink: Arc<Sink>) {
    let Target::Handler { call, queue } = &sink.target else {
        return;
    };
    while let Some(popped) = queue.pop().await {
        match popped {
            Popped::Lagged(missed) => inner.report(
                ErrorReport::new(
                    ErrorKind::Lagged,
                    missed,
                    format!(
                        "listener on `{}` fell behind its queue of {} and missed {missed} events",
                        sink.pattern,
                        queue.capacity()
                    ),
                )
                .with_event(sink.pattern.as_str()),
            ),
            Popped::Item(raw) => inner.run_handler(call, &sink.pattern, &raw).await,
        }
    }
}
