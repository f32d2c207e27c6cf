//! NATS: emitters on `nats-server` on loopback, against raw `async-nats` clients publishing
//! the same frames through the same servers, with no emitter layer. `nats` is one server;
//! `nats-routed` is two servers in a cluster, the publishers on one and everyone else on
//! the other, so that every event crosses a route.

use std::sync::Arc;
use std::time::{Duration, Instant};

use demitter_core::{Emitter, Frame};
use demitter_nats::local_server::{LocalServer, missing};
use demitter_nats::{NatsConfig, NatsTransport};
use futures_util::StreamExt as _;

use crate::baseline::{BaselineFrames, frame_stamp};
use crate::emitters::{Role, RunEmitters};
use crate::round_trips::{RawEnd, raw_baseline};
use crate::run::{Deliveries, Run};
use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

/// The subject of the baseline's frames.
const RAW_SUBJECT: &str = "bench.raw";
/// The subject the baseline's subscribers answer on, once subscribed.
const READY_SUBJECT: &str = "bench.ready";
/// How long the baseline's subscriptions may take to reach the publishers' server.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// The servers of a run: one, or two routed into a cluster.
struct Servers {
    name: &'static str,
    servers: Vec<LocalServer>,
}

impl Servers {
    fn start(routed: bool) -> Result<Self, BenchError> {
        let name = if routed { "nats-routed" } else { "nats" };
        if let Some(why) = missing() {
            return Err(BenchError::Setup(format!(
                "--transport {name} needs nats-server: {why}"
            )));
        }
        let servers = tokio::task::block_in_place(|| {
            if routed {
                LocalServer::start_cluster(2)
            } else {
                LocalServer::start(&[]).map(|server| vec![server])
            }
        })
        .map_err(setup)?;
        Ok(Self { name, servers })
    }

    /// Where a node of this role connects: publishers to the first server, the others to
    /// the last.
    fn addr(&self, role: Role) -> String {
        match (role, self.servers.first(), self.servers.last()) {
            (Role::Publisher, Some(first), _) => first.addr(),
            (_, _, Some(last)) => last.addr(),
            _ => String::new(),
        }
    }
}

/// Emitters, each with its own connection.
pub async fn emitters(
    routed: bool,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    let servers = Servers::start(routed)?;
    RunEmitters::join(scenario, |role| {
        let addr = servers.addr(role);
        async move {
            let transport = NatsTransport::connect(NatsConfig::new([addr]))
                .await
                .map_err(setup)?;
            Ok(Emitter::with_config(transport, scenario.emitter_config())?)
        }
    })
    .await?
    .run(servers.name, scenario, progress)
    .await
}

struct RawSubscriber(async_nats::Subscriber);

impl Deliveries for RawSubscriber {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        let message = self.0.next().await?;
        Some(
            Frame::decode(message.payload, usize::MAX)
                .ok()
                .and_then(|frame| frame_stamp(&frame)),
        )
    }
}

/// Answers requests on [`READY_SUBJECT`]: a publisher that gets an answer knows the
/// subscriptions made before it reached its server.
async fn answer_ready(client: async_nats::Client) -> Result<(), BenchError> {
    let mut ready = client.subscribe(READY_SUBJECT).await.map_err(setup)?;
    tokio::spawn(async move {
        while let Some(request) = ready.next().await {
            if let Some(reply) = request.reply {
                let _ = client.publish(reply, "ready".into()).await;
            }
        }
    });
    Ok(())
}

/// Waits until every subscriber has answered through `client`'s server.
async fn wait_ready(client: &async_nats::Client, subscribers: usize) -> Result<(), BenchError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut answered = 0;
    while answered < subscribers {
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "only {answered} of {subscribers} raw subscriptions reached the publishers' server within {READY_TIMEOUT:?}"
            )));
        }
        // Every subscriber hears the question and answers it: ask until all answer.
        let inbox = client.new_inbox();
        let mut answers = client.subscribe(inbox.clone()).await.map_err(setup)?;
        client
            .publish_with_reply(READY_SUBJECT, inbox, "ready?".into())
            .await
            .map_err(setup)?;
        answered = 0;
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(200), answers.next()).await
        {
            answered += 1;
        }
    }
    Ok(())
}

/// Raw `async-nats`: each subscriber and each publisher a client of its own, one frame per
/// message on one subject (the client drops what a full subscription cannot take, and
/// says so only as a slow-consumer event).
pub async fn baseline(
    routed: bool,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    let servers = Servers::start(routed)?;
    let mut run = Run::new();
    for _ in 0..scenario.subscribers {
        let client = async_nats::connect(servers.addr(Role::Subscriber))
            .await
            .map_err(setup)?;
        let subscriber = client.subscribe(RAW_SUBJECT).await.map_err(setup)?;
        answer_ready(client).await?;
        run.subscribe(RawSubscriber(subscriber));
    }
    let mut publishers = Vec::new();
    for _ in 0..scenario.publishers {
        let client = async_nats::connect(servers.addr(Role::Publisher))
            .await
            .map_err(setup)?;
        wait_ready(&client, scenario.subscribers).await?;
        publishers.push(client);
    }
    run.start_clock();
    for (i, client) in publishers.iter().enumerate() {
        let counters = Arc::clone(run.counters());
        let frames = Arc::new(parking_lot::Mutex::new(BaselineFrames::new(i, scenario)?));
        let client = client.clone();
        run.publish(scenario, move || {
            let payload = frames.lock().next_frame().to_bytes();
            let (client, counters) = (client.clone(), Arc::clone(&counters));
            async move {
                counters.published(&client.publish(RAW_SUBJECT, payload).await);
            }
        });
    }
    let outcome = run
        .finish(servers.name, Layer::Baseline, scenario, progress, |_| 0)
        .await;
    for client in &publishers {
        let _ = client.flush().await;
    }
    drop(servers);
    outcome
}

/// The subjects of the raw round trips' requests and of their answers.
const PING_SUBJECT: &str = "bench.ping";
const PONG_SUBJECT: &str = "bench.pong";

/// One end of a raw round trip: a client publishing on one subject and subscribed to the
/// other.
struct SubjectEnd {
    client: async_nats::Client,
    subscriber: async_nats::Subscriber,
    to: &'static str,
}

impl SubjectEnd {
    async fn connect(addr: String, from: &str, to: &'static str) -> Result<Self, BenchError> {
        let client = async_nats::connect(addr).await.map_err(setup)?;
        let subscriber = client.subscribe(from.to_owned()).await.map_err(setup)?;
        Ok(Self {
            client,
            subscriber,
            to,
        })
    }
}

impl RawEnd for SubjectEnd {
    type Message = bytes::Bytes;

    async fn send(&mut self, payload: bytes::Bytes) -> bool {
        self.client.publish(self.to, payload).await.is_ok()
    }

    async fn recv(&mut self) -> Option<bytes::Bytes> {
        self.subscriber.next().await.map(|message| message.payload)
    }
}

/// Raw `async-nats`: the requester publishes frames on one subject and the responder
/// publishes them back on another, each a client of its own (on different servers for
/// `nats-routed`, so that both directions cross the route).
pub async fn round_trips(
    routed: bool,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    let servers = Servers::start(routed)?;
    let requester =
        SubjectEnd::connect(servers.addr(Role::Publisher), PONG_SUBJECT, PING_SUBJECT).await?;
    let responder =
        SubjectEnd::connect(servers.addr(Role::Subscriber), PING_SUBJECT, PONG_SUBJECT).await?;
    let mut frames = BaselineFrames::new(0, scenario)?;
    let make = move || frames.next_frame().to_bytes();
    let outcome = raw_baseline(
        servers.name,
        scenario,
        progress,
        (requester, responder),
        make,
    )
    .await;
    drop(servers);
    outcome
}
