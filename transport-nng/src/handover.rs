//! Handing received batches from the reader thread to the emitter without ever waiting
//! forever: a full inbox is waited on, but only while the node stays open.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

use tokio::sync::mpsc;

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Sends `item` on `inbox` from a thread outside any runtime, waiting while the inbox is
/// full; gives up (returning `false`) when the inbox's receiver is gone or when `closed`
/// becomes true, which is looked at least every `poll`.
pub(crate) fn send_unless_closed<T>(
    inbox: &mpsc::Sender<T>,
    item: T,
    closed: &AtomicBool,
    poll: Duration,
) -> bool {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut reserve = pin!(inbox.reserve());
    loop {
        match reserve.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(permit)) => {
                permit.send(item);
                return true;
            }
            Poll::Ready(Err(_)) => return false,
            Poll::Pending if closed.load(Ordering::Acquire) => return false,
            Poll::Pending => std::thread::park_timeout(poll),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_room_then_sends() {
        let (tx, mut rx) = mpsc::channel(1);
        tx.try_send(1).expect("room for one");
        let closed = AtomicBool::new(false);
        let reader = std::thread::spawn(move || {
            send_unless_closed(&tx, 2, &closed, Duration::from_secs(60))
        });
        assert_eq!(rx.blocking_recv(), Some(1));
        assert_eq!(
            rx.blocking_recv(),
            Some(2),
            "the waiting send was woken by the room"
        );
        assert!(reader.join().expect("no panic"));
    }

    #[test]
    fn gives_up_when_closed() {
        let (tx, _rx) = mpsc::channel(1);
        tx.try_send(1).expect("room for one");
        let closed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&closed);
        let reader = std::thread::spawn(move || {
            send_unless_closed(&tx, 2, &flag, Duration::from_millis(10))
        });
        closed.store(true, Ordering::Release);
        assert!(
            !reader.join().expect("no panic"),
            "a full inbox of a closed node gives up"
        );
    }

    #[test]
    fn gives_up_when_the_receiver_is_gone() {
        let (tx, rx) = mpsc::channel::<u8>(1);
        drop(rx);
        assert!(!send_unless_closed(
            &tx,
            2,
            &AtomicBool::new(false),
            Duration::from_secs(60)
        ));
    }
}
