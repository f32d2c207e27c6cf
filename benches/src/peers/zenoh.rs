//! Zenoh, peer to peer over TCP on loopback, multicast scouting off: each subscriber is a
//! session listening on its own port, each publisher a session that connects to all of
//! them and puts the baseline's payload (the send time, padded) with blocking congestion
//! control, as Zenoh's own `z_pub_thr` does.

use std::sync::Arc;
use std::time::Duration;

use zenoh::pubsub::Subscriber;
use zenoh::qos::CongestionControl;
use zenoh::{Config, Session, Wait as _};

use crate::baseline::stamp;
use crate::measure::now_ns;
use crate::run::{Deliveries, Run};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "zenoh";
const KEY: &str = "demitter/bench";
/// How long publishers may take to see every subscriber.
const MATCH_TIMEOUT: Duration = Duration::from_secs(10);

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("zenoh: {e}"))
}

/// A peer-mode session that listens on `listen` and connects to `connect`.
async fn session(listen: Option<&str>, connect: &[String]) -> Result<Session, BenchError> {
    let mut config = Config::default();
    let json = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|e| format!("\"{e}\"")).collect();
        format!("[{}]", quoted.join(","))
    };
    config.insert_json5("mode", "\"peer\"").map_err(setup)?;
    config
        .insert_json5("scouting/multicast/enabled", "false")
        .map_err(setup)?;
    config
        .insert_json5(
            "listen/endpoints",
            &json(&listen.map(str::to_owned).into_iter().collect::<Vec<_>>()),
        )
        .map_err(setup)?;
    config
        .insert_json5("connect/endpoints", &json(connect))
        .map_err(setup)?;
    zenoh::open(config).await.map_err(setup)
}

/// A free TCP port on loopback, as a Zenoh endpoint.
fn free_endpoint() -> Result<String, BenchError> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").map_err(setup)?;
    let port = socket.local_addr().map_err(setup)?.port();
    Ok(format!("tcp/127.0.0.1:{port}"))
}

/// A subscriber: its callback reads each sample's send stamp (as `z_sub_thr` counts in
/// its callback) and hands it over; the session stays open while it is read.
struct ZenohSubscriber {
    stamps: tokio::sync::mpsc::UnboundedReceiver<Option<u64>>,
    _subscriber: Subscriber<()>,
    _session: Session,
}

impl Deliveries for ZenohSubscriber {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        self.stamps.recv().await
    }
}

/// Runs `scenario` on Zenoh.
pub async fn run(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let mut endpoints = Vec::with_capacity(scenario.subscribers);
    let mut run = Run::new();
    for _ in 0..scenario.subscribers {
        let endpoint = free_endpoint()?;
        let session = session(Some(&endpoint), &[]).await?;
        let (tx, stamps) = tokio::sync::mpsc::unbounded_channel();
        let subscriber = session
            .declare_subscriber(KEY)
            .callback(move |sample| {
                let _ = tx.send(stamp(&sample.payload().to_bytes()));
            })
            .await
            .map_err(setup)?;
        run.subscribe(ZenohSubscriber {
            stamps,
            _subscriber: subscriber,
            _session: session,
        });
        endpoints.push(endpoint);
    }
    let mut publishers = Vec::with_capacity(scenario.publishers);
    for _ in 0..scenario.publishers {
        let session = session(None, &endpoints).await?;
        let publisher = session
            .declare_publisher(KEY)
            .congestion_control(CongestionControl::Block)
            .await
            .map_err(setup)?;
        publishers.push((session, publisher));
    }
    // Every publisher connected to every subscriber, and knows of a subscription.
    let matched = async {
        for (session, publisher) in &publishers {
            loop {
                let peers = session.info().peers_zid().await.count();
                let matching = publisher.matching_status().await.map_err(setup)?.matching();
                if peers >= scenario.subscribers && matching {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Ok::<_, BenchError>(())
    };
    tokio::time::timeout(MATCH_TIMEOUT, matched)
        .await
        .map_err(|_| setup("the sessions did not find each other"))??;
    run.start_clock();
    let pad = vec![0x5a_u8; scenario.payload.saturating_sub(8)];
    let mut sessions = Vec::new();
    for (session, publisher) in publishers {
        let counters = Arc::clone(run.counters());
        let pad = pad.clone();
        run.publish(scenario, move || {
            let mut payload = Vec::with_capacity(8 + pad.len());
            payload.extend_from_slice(&now_ns().to_be_bytes());
            payload.extend_from_slice(&pad);
            // As `z_pub_thr` puts: synchronously, blocking while Zenoh's queue is full.
            counters.published(&publisher.put(payload).wait());
            std::future::ready(())
        });
        sessions.push(session);
    }
    let outcome = run
        .finish(NAME, Layer::Peer, scenario, progress, |c| {
            c.send_failures.load(std::sync::atomic::Ordering::Relaxed)
        })
        .await;
    drop(sessions);
    outcome
}
