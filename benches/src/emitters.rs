//! Running a scenario on emitters: the same for every transport.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use demitter_core::{Emitter, EventStream, ListenOptions};

use crate::measure::now_ns;
use crate::run::{BenchEvent, Deliveries, EVENT, Run};
use crate::scenario::{Layer, Outcome, Scenario, Workload};
use crate::workloads;
use crate::{BenchError, Progress};

/// [`BenchEvent`] as it is sent: the padding borrowed, not copied per event.
#[derive(Serialize)]
struct OutgoingEvent<'a> {
    sent_ns: u64,
    #[serde(with = "serde_bytes")]
    pad: &'a [u8],
}

impl Deliveries for EventStream<BenchEvent> {
    async fn next_stamp(&mut self) -> Option<Option<u64>> {
        // Lag and undecodable events are not deliveries; the emitter reports them.
        self.recv()
            .await
            .map(|item| item.ok().map(|e| e.data.sent_ns))
    }
}

/// The name bystanders listen on, which no publisher emits.
const ELSEWHERE: &str = "bench.elsewhere";

/// What an emitter of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It publishes.
    Publisher,
    /// It listens for every event.
    Subscriber,
    /// It listens elsewhere.
    Bystander,
}

/// The emitters of a run.
#[derive(Debug, Default)]
pub struct RunEmitters {
    /// Those that publish.
    pub publishers: Vec<Emitter>,
    /// Those that listen for every event.
    pub subscribers: Vec<Emitter>,
    /// Those that listen only on `bench.elsewhere`, which no publisher emits.
    pub bystanders: Vec<Emitter>,
}

impl RunEmitters {
    /// Makes `scenario`'s emitters with `join`, told the role of each.
    pub async fn join<F, Fut>(scenario: &Scenario, join: F) -> Result<Self, BenchError>
    where
        F: Fn(Role) -> Fut,
        Fut: Future<Output = Result<Emitter, BenchError>>,
    {
        let mut emitters = Self::default();
        for (count, role, into) in [
            (
                scenario.publishers,
                Role::Publisher,
                &mut emitters.publishers,
            ),
            (
                scenario.subscribers,
                Role::Subscriber,
                &mut emitters.subscribers,
            ),
            (
                scenario.bystanders,
                Role::Bystander,
                &mut emitters.bystanders,
            ),
        ] {
            for _ in 0..count {
                into.push(join(role).await?);
            }
        }
        Ok(emitters)
    }

    /// Runs `scenario` on them, then closes them whatever the outcome.
    pub async fn run(
        self,
        transport: &str,
        scenario: &Scenario,
        progress: &Progress,
    ) -> Result<Outcome, BenchError> {
        let result = match scenario.workload {
            Workload::Events => run_emitters(transport, &self, scenario, progress).await,
            Workload::Requests => workloads::requests(transport, &self, scenario, progress).await,
            Workload::Groups => workloads::groups(transport, &self, scenario, progress).await,
        };
        for e in self
            .publishers
            .iter()
            .chain(&self.subscribers)
            .chain(&self.bystanders)
        {
            e.close().await;
        }
        result
    }
}

/// Publishes `scenario`'s events from the publishers to the subscribers, with the
/// bystanders listening elsewhere, and measures.
async fn run_emitters(
    transport: &str,
    emitters: &RunEmitters,
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    let RunEmitters {
        publishers,
        subscribers,
        bystanders,
    } = emitters;
    // Kept until the run ends: a bystander listens all along.
    let _elsewhere = bystanders
        .iter()
        .map(|b| b.events::<BenchEvent>(ELSEWHERE))
        .collect::<Result<Vec<_>, _>>()?;
    let mut run = Run::new();
    for sub in subscribers {
        run.subscribe(
            sub.events_with::<BenchEvent>(EVENT, ListenOptions::default().capacity(1 << 16))?,
        );
    }
    for publisher in publishers {
        for (name, count, who) in [
            (EVENT, subscribers.len(), "subscribers"),
            (ELSEWHERE, bystanders.len(), "bystanders"),
        ] {
            tokio::time::timeout(
                Duration::from_secs(10),
                publisher.wait_for_listeners(name, count),
            )
            .await
            .map_err(|_| {
                BenchError::Setup(format!(
                    "{who} were not seen by every publisher within 10 s"
                ))
            })??;
        }
    }
    run.start_clock();
    let pad: Arc<[u8]> = vec![0x5a; scenario.payload].into();
    for publisher in publishers {
        let publisher = publisher.clone();
        let counters = Arc::clone(run.counters());
        let pad = Arc::clone(&pad);
        run.publish(scenario, move || {
            let (publisher, counters, pad) =
                (publisher.clone(), Arc::clone(&counters), Arc::clone(&pad));
            async move {
                let event = OutgoingEvent {
                    sent_ns: now_ns(),
                    pad: &pad,
                };
                counters.published(&publisher.emit(EVENT, &event).await);
            }
        });
    }
    // What the subscribers were told they missed. (Publishers also report the same drops
    // as send failures; counting both would count each loss twice.)
    let subscribers = subscribers.clone();
    run.finish(transport, Layer::Emitter, scenario, progress, move |_| {
        subscribers
            .iter()
            .map(|s| {
                let c = s.error_counts();
                c.gap + c.lagged
            })
            .sum()
    })
    .await
}

/// Makes the scenario's emitters with `join`, runs it on them, and closes them whatever
/// the outcome.
pub async fn run_on_new_emitters(
    transport: &str,
    scenario: &Scenario,
    progress: &Progress,
    join: impl Fn() -> Result<Emitter, demitter_core::Error>,
) -> Result<Outcome, BenchError> {
    RunEmitters::join(scenario, |_| {
        std::future::ready(join().map_err(BenchError::from))
    })
    .await?
    .run(transport, scenario, progress)
    .await
}
