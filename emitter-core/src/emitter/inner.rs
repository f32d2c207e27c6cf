//! The shared state behind an [`Emitter`](crate::Emitter) handle, and what every public
//! method does underneath.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::FutureExt;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::emitter::config::EmitterConfig;
use crate::emitter::errors::ErrorChannel;
use crate::emitter::event::{Delivery, LISTENER_ADDED, LISTENER_REMOVED, ListenerChange, RawEvent};
use crate::emitter::registry::{ErasedHandler, ListenerEntry, Registry, Sink};
use crate::emitter::remote::RemoteInterest;
use crate::error::Error;
use crate::frame::{ControlFrame, EVENT_OVERHEAD, EventFrame, Frame};
use crate::lag_queue::{LagQueue, Popped};
use crate::name::is_system;
use crate::node_id::NodeId;
use crate::pattern::Pattern;
use crate::payload::encode_payload;
use crate::protocol::{Action, Control, Presence, SequenceCounter, SequenceTracker};
use crate::report::{ERROR_EVENT, ErrorKind, ErrorReport};
use crate::transport::{Capabilities, Destination, Transport};

/// Someone watching a listener count.
pub(crate) struct Observer {
    pub(crate) subject: CountSubject,
    pub(crate) last: usize,
    pub(crate) queue: Arc<LagQueue<usize>>,
}

/// What a listener count counts.
#[derive(Clone)]
pub(crate) enum CountSubject {
    /// Listeners whose pattern matches this event name.
    Name(String),
    /// Listeners registered on exactly this wildcard pattern.
    Pattern(Pattern),
}

impl CountSubject {
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let pattern = Pattern::new(text)?;
        Ok(if pattern.is_exact() {
            CountSubject::Name(text.to_owned())
        } else {
            CountSubject::Pattern(pattern)
        })
    }
}

pub(crate) struct Inner {
    pub(crate) id: NodeId,
    pub(crate) epoch: u64,
    pub(crate) config: EmitterConfig,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) caps: Capabilities,
    pub(crate) registry: RwLock<Registry>,
    pub(crate) remote: RwLock<RemoteInterest>,
    pub(crate) presence: Mutex<Presence>,
    pub(crate) seq_out: Mutex<SequenceCounter>,
    pub(crate) seq_in: Mutex<SequenceTracker>,
    pub(crate) errors: ErrorChannel,
    pub(crate) observers: Mutex<Vec<Observer>>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) closed: AtomicBool,
}

impl Inner {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    // ---- listeners -------------------------------------------------------------------

    pub(crate) fn add_listener(
        self: &Arc<Self>,
        pattern: Pattern,
        spy: bool,
        any: bool,
        make_sink: impl FnOnce() -> Sink,
    ) -> Result<Arc<ListenerEntry>, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let entry = {
            let mut registry = self.registry.write();
            let entry = Arc::new(ListenerEntry {
                id: registry.next_id(),
                pattern,
                spy,
                any,
                sink: make_sink(),
            });
            let change = registry.add(Arc::clone(&entry));
            // Subscribe before announcing: a peer that hears of this listener must find the
            // subscription already on its way.
            if registry.count_listeners_on(&entry.pattern) == 1 {
                self.transport.subscribe(&entry.pattern);
            }
            self.announce(&change.pattern, change.count);
            entry
        };
        if let Sink::Handler { .. } = entry.sink {
            let inner = Arc::clone(self);
            let task_entry = Arc::clone(&entry);
            self.tasks
                .spawn_on(run_listener(inner, task_entry), &self.runtime);
        }
        self.notify_counts();
        if !is_system(entry.pattern.as_str()) {
            self.dispatch_system(
                LISTENER_ADDED,
                &ListenerChange {
                    pattern: entry.pattern.to_string(),
                    spy,
                },
            );
        }
        Ok(entry)
    }

    pub(crate) fn remove_listener(&self, id: u64) -> bool {
        let removed = {
            let mut registry = self.registry.write();
            let Some((entry, change)) = registry.remove(id) else {
                return false;
            };
            self.announce(&change.pattern, change.count);
            if change.count.is_none() {
                self.transport.unsubscribe(&change.pattern);
                // Events missed while nobody listened are not losses: forget their sequence.
                self.seq_in
                    .lock()
                    .retain_names(|name| registry.has_match(name));
            }
            entry
        };
        match &removed.sink {
            Sink::Handler { queue, .. } => queue.close_and_clear(),
            Sink::Stream(queue) => queue.close(),
        }
        self.notify_counts();
        if !is_system(removed.pattern.as_str()) {
            self.dispatch_system(
                LISTENER_REMOVED,
                &ListenerChange {
                    pattern: removed.pattern.to_string(),
                    spy: removed.spy,
                },
            );
        }
        true
    }

    /// Tells the bus this node's count for `pattern`. Called with the registry locked, so
    /// announcements leave in the order the registry changed.
    fn announce(&self, pattern: &Pattern, count: Option<u32>) {
        let delta = self.presence.lock().set_local(pattern.as_str(), count);
        if let Some(Action::Send { to, message }) = delta {
            self.send_control(&message, to);
        }
    }

    pub(crate) fn remove_where(&self, select: impl FnMut(&ListenerEntry) -> bool) -> usize {
        let ids = self.registry.read().ids_where(select);
        ids.into_iter()
            .filter(|id| self.remove_listener(*id))
            .count()
    }

    // ---- counts ----------------------------------------------------------------------

    pub(crate) fn count(&self, subject: &CountSubject) -> usize {
        match subject {
            CountSubject::Name(name) => {
                self.registry.read().count_matching(name) + self.remote.read().count_matching(name)
            }
            CountSubject::Pattern(p) => {
                self.registry.read().count_exact(p) + self.remote.read().count_exact(p)
            }
        }
    }

    pub(crate) fn observe(&self, subject: CountSubject) -> Arc<LagQueue<usize>> {
        let queue = Arc::new(LagQueue::new(64));
        let mut observers = self.observers.lock();
        let last = self.count(&subject);
        queue.push(last);
        if self.is_closed() {
            queue.close();
        } else {
            observers.push(Observer {
                subject,
                last,
                queue: Arc::clone(&queue),
            });
        }
        queue
    }

    pub(crate) fn notify_counts(&self) {
        let mut observers = self.observers.lock();
        observers.retain(|o| !o.queue.is_closed());
        for o in observers.iter_mut() {
            let now = self.count(&o.subject);
            if now != o.last {
                o.last = now;
                o.queue.push(now);
            }
        }
    }

    // ---- emitting --------------------------------------------------------------------

    pub(crate) async fn emit_payload(
        &self,
        name: &str,
        payload: Bytes,
        serial: bool,
    ) -> Result<Delivery, Error> {
        // Cooperative like any tokio resource: a loop that only emits still lets the
        // receive loops on its worker run (tokio's budget makes it yield now and then).
        tokio::task::coop::consume_budget().await;
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let size = EVENT_OVERHEAD + self.id.len() + name.len() + payload.len();
        if size > self.caps.max_frame_bytes {
            return Err(Error::FrameTooLarge {
                size,
                limit: self.caps.max_frame_bytes,
            });
        }
        let route = self.remote.read().route(name);
        let remote = route.count;
        let destination = if self.caps.sender_filtering {
            (!route.peers.is_empty()).then_some(Destination::Peers(route.peers))
        } else {
            Some(Destination::All)
        };
        // Numbering and queueing happen under one lock, so frames leave in sequence order
        // and a sequence mark never announces a number whose frame is not queued yet.
        // Most events have no listener in their own process: then the frame takes the
        // payload itself, and nothing is dispatched here.
        let has_local = self.registry.read().has_match(name);
        let mut payload = payload;
        let (name, seq, sent) = {
            let mut counter = self.seq_out.lock();
            let (name, seq) = counter.next(name);
            let sent = destination.map(|to| {
                let frame = Frame::Event(EventFrame {
                    name: Arc::clone(&name),
                    source: self.id.clone(),
                    epoch: self.epoch,
                    seq,
                    payload: if has_local {
                        payload.clone()
                    } else {
                        std::mem::take(&mut payload)
                    },
                });
                self.transport.send(frame, to)
            });
            (name, seq, sent)
        };
        match sent {
            None | Some(Ok(())) => {}
            Some(Err(Error::Closed)) => return Err(Error::Closed),
            Some(Err(e)) => self.report(
                ErrorReport::new(
                    ErrorKind::Network,
                    1,
                    format!("event not sent to every peer: {e}"),
                )
                .with_event(&*name),
            ),
        }
        if !has_local {
            return Ok(Delivery { local: 0, remote });
        }
        let raw = RawEvent {
            name,
            payload,
            source: self.id.clone(),
            seq,
        };
        let mut local = 0;
        let mut handlers: Vec<(ErasedHandler, Pattern)> = Vec::new();
        self.registry.read().for_each_match(&raw.name, |entry| {
            if !entry.spy {
                local += 1;
            }
            match &entry.sink {
                Sink::Handler { call, .. } => {
                    handlers.push((Arc::clone(call), entry.pattern.clone()));
                }
                Sink::Stream(queue) => {
                    queue.push(raw.clone());
                }
            }
        });
        match handlers.len() {
            0 => {}
            1 => self.run_handler(&handlers[0].0, &handlers[0].1, &raw).await,
            _ if serial => {
                for (call, pattern) in &handlers {
                    self.run_handler(call, pattern, &raw).await;
                }
            }
            _ => {
                futures_util::future::join_all(
                    handlers
                        .iter()
                        .map(|(call, pattern)| self.run_handler(call, pattern, &raw)),
                )
                .await;
            }
        }
        Ok(Delivery { local, remote })
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

    // ---- local dispatch --------------------------------------------------------------

    /// Queues an event for every matching listener without waiting on any.
    pub(crate) fn dispatch_queued(&self, raw: &RawEvent) {
        self.registry.read().for_each_match(&raw.name, |entry| {
            entry.sink.queue().push(raw.clone());
        });
    }

    /// Delivers a local-only system event (`$peer.up`, `$error`, ...).
    pub(crate) fn dispatch_system<T: Serialize>(&self, name: &'static str, data: &T) {
        if !self.registry.read().has_match(name) {
            return;
        }
        match encode_payload(data) {
            Ok(payload) => self.dispatch_queued(&RawEvent {
                name: name.into(),
                payload,
                source: self.id.clone(),
                seq: 0,
            }),
            Err(e) => tracing::error!("could not encode system event {name}: {e}"),
        }
    }

    /// Puts a report on the error channel and delivers it as `$error`.
    pub(crate) fn report(&self, report: ErrorReport) {
        // A lagging `$error` listener must not feed itself more reports.
        let about_system_listener =
            report.kind == ErrorKind::Lagged && report.event.as_deref().is_some_and(is_system);
        if !about_system_listener {
            self.dispatch_system(ERROR_EVENT, &report);
        }
        self.errors.publish(report);
    }

    pub(crate) fn send_control(&self, message: &Control, to: Destination) -> bool {
        // After the goodbye, nothing more: a late heartbeat would announce us again. (The
        // last sequence marks go out during close, just before the goodbye.)
        if self.is_closed() && !matches!(message, Control::Bye { .. } | Control::Sequences { .. }) {
            return false;
        }
        let frame = Frame::Control(ControlFrame {
            source: self.id.clone(),
            body: message.encode(),
        });
        match self.transport.send(frame, to) {
            Ok(()) => true,
            Err(e) => {
                // The protocol repairs lost control messages (heartbeat versions, resync,
                // repeated sequence marks).
                tracing::debug!("control message not sent: {e}");
                false
            }
        }
    }

    // ---- shutdown --------------------------------------------------------------------

    /// Stops everything that can be stopped without waiting. Returns false if already
    /// closed.
    pub(crate) fn shutdown_now(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        // The last numbers first, so receivers can tell what of the tail never arrived.
        self.announce_sequences();
        let bye = self.presence.lock().bye();
        self.send_control(&bye, Destination::All);
        self.cancel.cancel();
        // What reached a listener's queue is still handled (and a stream still yields
        // it): `emit` counted those listeners as reached.
        for entry in self.registry.read().all() {
            entry.sink.queue().close();
        }
        for o in self.observers.lock().drain(..) {
            o.queue.close();
        }
        self.errors.close();
        self.tasks.close();
        true
    }
}

/// The task behind one handler listener: runs queued (remote and system) events one at a
/// time, reports lag, ends when the listener is removed or, once the emitter closed, when
/// its queue is drained.
async fn run_listener(inner: Arc<Inner>, entry: Arc<ListenerEntry>) {
    let Sink::Handler { call, queue } = &entry.sink else {
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
                        entry.pattern,
                        queue.capacity()
                    ),
                )
                .with_event(entry.pattern.as_str()),
            ),
            Popped::Item(raw) => inner.run_handler(call, &entry.pattern, &raw).await,
        }
    }
}
