//! Closing an emitter delivers what it emitted last, even while its writes are held for
//! the forwarder to confirm subscription changes: the close writes everything still queued
//! (it used to write only the batch being held, losing the last event, the sequence marks
//! and the goodbye, with nothing to report the event, the first of its name), then ends
//! the connection in order so the forwarder reads every byte.

use std::time::Duration;

use demitter_core::{Emitter, RawPayload};
use demitter_forwarder::{Forwarder, ForwarderConfig};
use demitter_zmq::{ZmqConfig, ZmqTransport};

const WAIT: Duration = Duration::from_secs(10);
const ROUNDS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_event_before_close_arrives_every_time() {
    let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports())
        .await
        .expect("a forwarder");
    let config = || {
        ZmqConfig::new(
            forwarder.xsub_addr().to_string(),
            forwarder.xpub_addr().to_string(),
        )
    };
    let listener = Emitter::new(ZmqTransport::connect(config())).expect("an emitter");
    let mut seen = listener.events::<RawPayload>("last.+").expect("listens");
    let mut churn = Vec::new();
    for round in 0..ROUNDS {
        let name = format!("last.{round}");
        let transport = ZmqTransport::connect(config());
        tokio::time::timeout(WAIT, transport.wait_connected())
            .await
            .expect("connected");
        let sender = Emitter::new(transport).expect("an emitter");
        tokio::time::timeout(WAIT, sender.wait_for_listeners(&name, 1))
            .await
            .expect("the listener is known")
            .expect("open");
        // A new subscription elsewhere: the forwarder tells every publisher, this one too,
        // so it has something unread when it closes.
        churn.push(
            listener
                .events::<RawPayload>(&format!("churn.{round}"))
                .expect("listens"),
        );
        // A listener that comes and goes just before: its announcements are queued while
        // the forwarder has yet to confirm its subscription changes, which holds the
        // publisher's writes, as `once` does when its event arrives.
        drop(sender.events::<RawPayload>("brief.+").expect("listens"));
        sender.emit(&name, &round).await.expect("emitted");
        sender.close().await;
        let event = tokio::time::timeout(WAIT, seen.recv())
            .await
            .unwrap_or_else(|_| panic!("round {round}: the last event never arrived"))
            .expect("open")
            .expect("decodes");
        assert_eq!(&*event.name, name.as_str());
    }
    assert_eq!(listener.error_counts().gap, 0);
    listener.close().await;
    forwarder.close().await;
}
