//! The accounting soak: several publishers emit as fast as they can to subscribers with
//! mixed patterns, and in the end, for every subscriber, the events it received plus the
//! losses it was told of (gaps and lag) equal the events sent that its pattern matches, to
//! the event. Each transport runs a short soak in CI and a long one on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demitter_core::{Emitter, ListenOptions, Pattern};
use tokio::sync::Notify;

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{cluster, within};

/// The publishing nodes.
const PUBLISHERS: usize = 2;
/// One subscribing node per pattern.
const PATTERNS: [&str; 4] = ["soak.#", "soak.a.+", "soak.+.x", "soak.b.y"];
/// What the publishers emit, in turn.
const NAMES: [&str; 4] = ["soak.a.x", "soak.a.y", "soak.b.x", "soak.b.y"];
/// How long the losses may take to be reported after the last event.
const SETTLE: Duration = Duration::from_secs(30);
/// Each subscriber's queue: small enough that a busy subscriber lags now and then.
const QUEUE: usize = 4096;

/// What a soak measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoakFigures {
    /// Events emitted, over all publishers.
    pub sent: u64,
    /// Deliveries expected, over all subscribers (each event counts once per subscriber
    /// whose pattern matches it).
    pub expected: u64,
    /// Deliveries that arrived.
    pub received: u64,
    /// Deliveries the subscribers were told they lost (gaps and lag).
    pub reported: u64,
    /// How long the publishers published.
    pub published_for: Duration,
    /// How long after the last event the accounts took to balance.
    pub settled_in: Duration,
}

/// One subscriber's account.
struct Account {
    emitter: Emitter,
    pattern: Pattern,
    received: Arc<AtomicU64>,
}

impl Account {
    fn reported(&self) -> u64 {
        let counts = self.emitter.error_counts();
        counts.gap + counts.lagged
    }
}

/// Runs the soak for `duration` and checks every subscriber's account; panics with the
/// figures if one does not balance within 30 s of the last event.
pub async fn accounting_soak<F: ClusterFactory>(factory: &F, duration: Duration) -> SoakFigures {
    let c = cluster(factory, PUBLISHERS + PATTERNS.len()).await;
    let changed = Arc::new(Notify::new());
    let (accounts, tasks) = subscribe(&c, &changed);
    for name in NAMES {
        let listening = accounts.iter().filter(|a| a.pattern.matches(name)).count();
        for p in 0..PUBLISHERS {
            crate::support::wait_for_listeners(c.node(p), &[name], listening).await;
        }
    }

    let (sent, published_for) = publish(&c, duration).await;
    let ended = Instant::now();

    let expected: Vec<u64> = accounts
        .iter()
        .map(|a| {
            NAMES
                .iter()
                .enumerate()
                .filter(|(_, name)| a.pattern.matches(name))
                .map(|(n, _)| {
                    sent.iter()
                        .map(|s| s[n].load(Ordering::Relaxed))
                        .sum::<u64>()
                })
                .sum()
        })
        .collect();
    let balanced = |accounts: &[Account]| {
        accounts
            .iter()
            .zip(&expected)
            .all(|(a, want)| a.received.load(Ordering::Relaxed) + a.reported() >= *want)
    };
    let settled = tokio::time::timeout(SETTLE, async {
        loop {
            let notified = changed.notified();
            if balanced(&accounts) {
                break;
            }
            notified.await;
        }
    })
    .await;
    let settled_in = ended.elapsed();
    let mut figures = SoakFigures {
        sent: sent
            .iter()
            .flat_map(|s| s.iter())
            .map(|n| n.load(Ordering::Relaxed))
            .sum(),
        expected: expected.iter().sum(),
        received: 0,
        reported: 0,
        published_for,
        settled_in,
    };
    for (account, want) in accounts.iter().zip(&expected) {
        let (received, reported) = (account.received.load(Ordering::Relaxed), account.reported());
        figures.received += received;
        figures.reported += reported;
        assert_eq!(
            received + reported,
            *want,
            "subscriber on `{}`: received {received} + reported lost {reported} != sent {want} \
             (settled: {})",
            account.pattern,
            settled.is_ok()
        );
    }
    within("the cluster to shut down", c.shutdown()).await;
    for task in tasks {
        let _ = task.await;
    }
    figures
}

/// Makes one subscriber per pattern, each counting what it receives and pinging `changed`
/// on every delivery and report.
fn subscribe<C: Cluster>(
    c: &C,
    changed: &Arc<Notify>,
) -> (Vec<Account>, Vec<tokio::task::JoinHandle<()>>) {
    let mut accounts = Vec::new();
    let mut tasks = Vec::new();
    for (i, pattern) in PATTERNS.iter().enumerate() {
        let emitter = c.node(PUBLISHERS + i).clone();
        let mut events = emitter
            .events_with::<u64>(pattern, ListenOptions::default().capacity(QUEUE))
            .expect("a valid pattern");
        let mut errors = emitter.errors();
        let received = Arc::new(AtomicU64::new(0));
        let (count, ping) = (Arc::clone(&received), Arc::clone(changed));
        tasks.push(tokio::spawn(async move {
            while let Some(item) = events.recv().await {
                if item.is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                ping.notify_one();
            }
        }));
        let ping = Arc::clone(changed);
        tasks.push(tokio::spawn(async move {
            while errors.recv().await.is_some() {
                ping.notify_one();
            }
        }));
        accounts.push(Account {
            emitter,
            pattern: Pattern::new(pattern).expect("a valid pattern"),
            received,
        });
    }
    (accounts, tasks)
}

/// Publishes from every publisher for `duration`; returns what each sent of each name.
async fn publish<C: Cluster>(c: &C, duration: Duration) -> (Vec<Arc<[AtomicU64; 4]>>, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let sent: Vec<Arc<[AtomicU64; 4]>> = (0..PUBLISHERS)
        .map(|_| Arc::new([const { AtomicU64::new(0) }; 4]))
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let (emitter, counts, stop) =
                (c.node(p).clone(), Arc::clone(&sent[p]), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let which = (i % 4) as usize;
                    if emitter.emit(NAMES[which], &i).await.is_ok() {
                        counts[which].fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                    // Let the receivers on these two cores have their turn.
                    if i.is_multiple_of(64) {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for publisher in publishers {
        publisher.await.expect("a publisher task");
    }
    (sent, started.elapsed())
}

/// The process's resident memory, in bytes (Linux; `None` elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// What [`memory_stays_bounded`] measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryFigures {
    /// Bytes of payload sent to the subscriber that never reads.
    pub sent_bytes: u64,
    /// Resident memory growth over the run.
    pub grew_by: u64,
    /// Losses reported to the subscriber by then (lag shows only when it reads again, so
    /// this counts mostly gaps).
    pub reported: u64,
}

/// Sends `events` events of `size` bytes to a subscriber that never reads, and checks that
/// the process's resident memory grows by less than `bound` bytes: the listener's queue
/// (and every transport queue) is bounded, so the rest is dropped and reported as lag.
/// Recovery is off here: the sender's window is a bound of its own
/// (`recovery.window_bytes`, checked where the window is), not a queue.
pub async fn memory_stays_bounded<F: ClusterFactory>(
    factory: &F,
    events: u64,
    size: usize,
    bound: u64,
) -> Option<MemoryFigures> {
    let before = resident_bytes()?;
    crate::support::log_to_test_output();
    let config = demitter_core::EmitterConfig {
        recovery: demitter_core::node::RecoveryConfig::OFF,
        ..crate::support::test_config()
    };
    let c = within("the cluster to start", factory.build(2, config))
        .await
        .expect("the cluster starts");
    let stalled = c
        .node(1)
        .events_with::<serde_bytes::ByteBuf>("memory.+", ListenOptions::default().capacity(64))
        .expect("a valid pattern");
    crate::support::wait_for_listeners(c.node(0), &["memory.data"], 1).await;
    let blob = serde_bytes::ByteBuf::from(vec![0x5a_u8; size]);
    for i in 0..events {
        c.node(0).emit("memory.data", &blob).await.expect("emits");
        if i.is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
    }
    // Measured as the last event leaves, when every queue on the way is at its fullest.
    let after = resident_bytes()?;
    let counts = c.node(1).error_counts();
    let figures = MemoryFigures {
        sent_bytes: events * size as u64,
        grew_by: after.saturating_sub(before),
        reported: counts.gap + counts.lagged,
    };
    drop(stalled);
    within("the cluster to shut down", c.shutdown()).await;
    assert!(
        figures.grew_by < bound,
        "resident memory grew by {} MiB (bound {} MiB): {figures:?}",
        figures.grew_by >> 20,
        bound >> 20
    );
    Some(figures)
}
