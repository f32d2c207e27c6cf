//! The in-memory transport keeps the `Transport` contract: cancel-safe receive, order per
//! sender, no echo, hostile bytes reported, `recv` ends after `close`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use demitter_core::{
    Destination, ErrorKind, EventFrame, Frame, Incoming, MemoryHub, NodeId, Transport,
};
use futures_util::FutureExt;

fn event(seq: u64) -> Frame {
    Frame::Event(EventFrame {
        name: "t.x".into(),
        source: NodeId::new("sender").expect("valid"),
        epoch: 1,
        seq,
        payload: Bytes::from_static(b"\xc0"),
    })
}

async fn next_seq(t: &impl Transport) -> u64 {
    match tokio::time::timeout(Duration::from_secs(5), t.recv()).await {
        Ok(Some(Incoming::Frame {
            frame: Frame::Event(e),
            ..
        })) => e.seq,
        other => panic!("expected an event frame, got {other:?}"),
    }
}

/// The census comes first: how many others were on the hub at join.
async fn census(t: &impl Transport) -> Option<usize> {
    match tokio::time::timeout(Duration::from_secs(5), t.recv()).await {
        Ok(Some(Incoming::Joined { peers })) => peers,
        other => panic!("expected the census, got {other:?}"),
    }
}

#[tokio::test]
async fn dropped_receive_futures_lose_nothing_and_order_holds() {
    let hub = MemoryHub::new();
    let (a, b) = (hub.join(), hub.join());
    assert_eq!(census(&a).await, Some(0));
    assert_eq!(census(&b).await, Some(1));
    for seq in 1..=300 {
        a.send(event(seq), Destination::All).expect("queued");
    }
    // Futures made and dropped unpolled (as `select!` does when another branch wins), and
    // futures polled once and dropped, must not take frames with them.
    drop(b.recv());
    assert_eq!(next_seq(&b).await, 1);
    drop(b.recv());
    for seq in 2..=300 {
        drop(b.recv());
        assert_eq!(next_seq(&b).await, seq);
    }
    assert!(b.recv().now_or_never().is_none(), "nothing more is queued");
    assert!(
        a.recv().now_or_never().is_none(),
        "the sender hears no echo"
    );
}

#[tokio::test]
async fn hostile_bytes_are_reported_and_close_ends_receiving() {
    let transport = Arc::new(MemoryHub::new().join());
    assert_eq!(census(&*transport).await, Some(0));
    transport
        .inject(Bytes::from_static(b"\x01"))
        .expect("injected");
    match tokio::time::timeout(Duration::from_secs(5), transport.recv()).await {
        Ok(Some(Incoming::Report(r))) => assert_eq!(r.kind, ErrorKind::Deserialization),
        other => panic!("expected a report, got {other:?}"),
    }
    let waiting = tokio::spawn({
        let transport = Arc::clone(&transport);
        async move { transport.recv().await.is_none() }
    });
    tokio::task::yield_now().await;
    transport.close().await;
    let ended = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("a receive in progress ends on close")
        .expect("task ran");
    assert!(ended);
    assert!(matches!(
        transport.send(event(1), Destination::All),
        Err(demitter_core::Error::Closed)
    ));
}
