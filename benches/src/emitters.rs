//! Running a scenario on emitters: the same for every transport.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use demitter_core::{Emitter, EventStream, ListenOptions};

use crate::measure::now_ns;
use crate::run::{BenchEvent, Deliveries, EVENT, Run};
use crate::scenario::{Layer, Outcome, Scenario};
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

/// Publishes `scenario`'s events from `publishers` to `subscribers` and measures.
pub async fn run_emitters(
    transport: &str,
    publishers: &[Emitter],
    subscribers: &[Emitter],
    scenario: &Scenario,
    progress: &Progress,
) -> Result<Outcome, BenchError> {
    let mut run = Run::new();
    for sub in subscribers {
        run.subscribe(
            sub.events_with::<BenchEvent>(EVENT, ListenOptions::default().capacity(1 << 16))?,
        );
    }
    for publisher in publishers {
        tokio::time::timeout(
            Duration::from_secs(10),
            publisher.wait_for_listeners(EVENT, subscribers.len()),
        )
        .await
        .map_err(|_| {
            BenchError::Setup("subscribers were not seen by every publisher within 10 s".into())
        })??;
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
    let subscribers = subscribers.to_vec();
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

/// Makes the scenario's publishers and subscribers with `join`, runs it on them, and closes
/// them whatever the outcome.
pub async fn run_on_new_emitters(
    transport: &str,
    scenario: &Scenario,
    progress: &Progress,
    join: impl Fn() -> Result<Emitter, demitter_core::Error>,
) -> Result<Outcome, BenchError> {
    let publishers = (0..scenario.publishers)
        .map(|_| join())
        .collect::<Result<Vec<_>, _>>()?;
    let subscribers = (0..scenario.subscribers)
        .map(|_| join())
        .collect::<Result<Vec<_>, _>>()?;
    let result = run_emitters(transport, &publishers, &subscribers, scenario, progress).await;
    for e in publishers.iter().chain(&subscribers) {
        e.close().await;
    }
    result
}
