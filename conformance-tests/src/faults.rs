//! Faults under steady load: a node crashes and comes back, the hub restarts, while a
//! publisher emits a steady 1,000 events/s. After each, traffic resumes by itself within
//! [`RECOVERY_BOUND`], listener counts converge, and every subscriber's account balances:
//! events received plus losses reported equal events sent, to the event.
//!
//! A crash is [`Cluster::kill`]: the node stops at once and says no goodbye, so the others
//! learn of it only from silence, as they would after `kill -9`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demitter_core::{Emitter, EventStream, ListenOptions};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, ClusterFactory};
use crate::support::{check_no_hub, cluster, wait_for_count, within};

/// The longest traffic may take to resume after a node or the hub is back, with the
/// suite's timers ([`test_config`](crate::test_config) and each transport's test settings).
pub const RECOVERY_BOUND: Duration = Duration::from_secs(2);
/// The event the load is made of.
const NAME: &str = "fault.load";
/// Time between two events of the load.
const PACE: Duration = Duration::from_millis(1);
/// Events a subscriber must see before a fault and after recovery: the load is flowing.
const STEADY: u64 = 200;
/// What starts each line of an account written by [`report_account`].
const ACCOUNT_LINE: &str = "demitter-account: ";
/// How long losses may take to be reported after the last event.
const SETTLE: Duration = Duration::from_secs(10);
/// Each subscriber's queue: large enough that no subscriber lags at this pace.
const QUEUE: usize = 1 << 16;

/// What a fault case measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultFigures {
    /// The fault.
    pub fault: &'static str,
    /// Events emitted by the publisher.
    pub sent: u64,
    /// Events the surviving subscriber received.
    pub received: u64,
    /// Losses the surviving subscriber was told of (gaps and lag): the outage's loss.
    pub reported: u64,
    /// From the node or hub being back to the first event arriving after the fault.
    pub resumed_in: Duration,
    /// From the node being back to the publisher counting its listener again (crash case).
    pub counted_again_in: Option<Duration>,
}

/// A publisher emitting [`NAME`] with payloads 1, 2, 3, ... every [`PACE`].
struct Load {
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Load {
    fn start(publisher: Emitter) -> Self {
        let (sent, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (counter, stopping) = (Arc::clone(&sent), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            // Pacing, not synchronisation: the cases wait on what arrives.
            let mut every = tokio::time::interval(PACE);
            while !stopping.load(Ordering::Acquire) {
                every.tick().await;
                let n = counter.load(Ordering::Acquire) + 1;
                if publisher.emit(NAME, &n).await.is_err() {
                    return;
                }
                counter.store(n, Ordering::Release);
            }
        });
        Self { sent, stop, task }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Release);
        within("the load to stop", self.task)
            .await
            .expect("the load task");
        self.sent.load(Ordering::Acquire)
    }
}

/// A subscriber's account of the load so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// Events received.
    pub received: u64,
    /// The payload of the first event received (the load numbers events 1, 2, 3, ...).
    pub first: u64,
    /// The payload of the last event received.
    pub last: u64,
    /// Losses reported to the subscriber (gaps and lag).
    pub reported: u64,
}

/// A subscriber's running account of the load: kept in this process from an emitter
/// ([`local`](Self::local)), or read from another process that runs [`report_account`]
/// ([`from_lines`](Self::from_lines)).
#[derive(Debug)]
pub struct Account {
    seen: watch::Receiver<Seen>,
    tasks: Vec<JoinHandle<()>>,
}

impl Account {
    /// Listens to the load on `emitter` and keeps its account.
    pub fn local(emitter: &Emitter) -> Self {
        let stream: EventStream<u64> = emitter
            .events_with(NAME, ListenOptions::default().capacity(QUEUE))
            .expect("a valid pattern");
        let mut errors = emitter.errors();
        let (tx, seen) = watch::channel(Seen::default());
        let tx = Arc::new(tx);
        let counting = Arc::clone(&tx);
        let watcher = emitter.clone();
        let tasks = vec![
            tokio::spawn(async move {
                let mut stream = stream;
                while let Some(event) = stream.recv().await {
                    if let Ok(event) = event {
                        counting.send_modify(|s| s.add(event.data));
                    }
                }
            }),
            tokio::spawn(async move {
                // Counts are updated before a report is published: read them on each one.
                while errors.recv().await.is_some() {
                    let counts = watcher.error_counts();
                    tx.send_modify(|s| s.reported = counts.gap + counts.lagged);
                }
            }),
        ];
        Self { seen, tasks }
    }

    /// Keeps the account written by [`report_account`] in another process, as lines
    /// (`event N`, `lost TOTAL`, each after a marker) on `lines`; other lines are passed over.
    pub fn from_lines(lines: impl AsyncBufRead + Unpin + Send + 'static) -> Self {
        let (tx, seen) = watch::channel(Seen::default());
        // Reads to the end, even after the account is dropped, so the other process never
        // writes into a closed pipe; it ends when that process does.
        tokio::spawn(async move {
            let mut lines = lines.lines();
            while let Ok(Some(line)) = lines.next_line().await {
                // The other process's test harness may print on the same line first.
                let Some(at) = line.find(ACCOUNT_LINE) else {
                    continue;
                };
                match line[at + ACCOUNT_LINE.len()..].split_once(' ') {
                    Some(("event", n)) => {
                        let n = n
                            .parse()
                            .unwrap_or_else(|e| panic!("a bad account line ({e}): {line}"));
                        tx.send_modify(|s| s.add(n));
                    }
                    Some(("lost", total)) => {
                        let total = total
                            .parse()
                            .unwrap_or_else(|e| panic!("a bad account line ({e}): {line}"));
                        tx.send_modify(|s| s.reported = total);
                    }
                    _ => panic!("a bad account line: {line}"),
                }
            }
        });
        Self {
            seen,
            tasks: Vec::new(),
        }
    }

    /// The account now.
    pub fn now(&self) -> Seen {
        *self.seen.borrow()
    }

    /// Waits until the account satisfies `ready`.
    pub async fn until(&mut self, what: &str, ready: impl Fn(Seen) -> bool) -> Seen {
        let seen = within(what, self.seen.wait_for(|s| ready(*s)))
            .await
            .unwrap_or_else(|_| panic!("the subscriber's account ended while waiting for {what}"));
        *seen
    }

    /// Waits until received + reported reaches what `expected` says was sent: losses are
    /// reported when a later event or a sequence mark reveals them.
    pub async fn settle(&mut self, what: &str, expected: impl Fn(Seen) -> u64) -> Seen {
        let settled = tokio::time::timeout(
            SETTLE,
            self.seen
                .wait_for(|s| s.received + s.reported >= expected(*s)),
        )
        .await;
        match settled.map(|r| r.map(|seen| *seen)) {
            Ok(Ok(seen)) => seen,
            Ok(Err(_)) => panic!("the subscriber's account ended while waiting for {what}"),
            Err(_) => {
                let seen = self.now();
                panic!(
                    "{what}: not balanced within {SETTLE:?}: {seen:?}, expected {}",
                    expected(seen)
                )
            }
        }
    }
}

impl Seen {
    fn add(&mut self, n: u64) {
        if self.received == 0 {
            self.first = n;
        }
        self.received += 1;
        self.last = n;
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What a subscriber in another process runs for [`Account::from_lines`]: listens to the
/// load on `emitter` and writes its account to stdout, a line per event (`event N`) and per
/// change in reported losses (`lost TOTAL`), each after a marker, until stdin closes; then
/// closes `emitter`.
pub async fn report_account(emitter: &Emitter) {
    write_account(emitter).await;
    within("the subscriber to close", emitter.close()).await;
}

async fn write_account(emitter: &Emitter) {
    let mut stream: EventStream<u64> = emitter
        .events_with(NAME, ListenOptions::default().capacity(QUEUE))
        .expect("a valid pattern");
    let mut errors = emitter.errors();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    loop {
        let line = tokio::select! {
            event = stream.recv() => match event {
                Some(Ok(event)) => format!("{ACCOUNT_LINE}event {}\n", event.data),
                Some(Err(_)) => continue,
                None => return,
            },
            report = errors.recv() => {
                if report.is_none() {
                    return;
                }
                let counts = emitter.error_counts();
                format!("{ACCOUNT_LINE}lost {}\n", counts.gap + counts.lagged)
            }
            line = stdin.next_line() => match line {
                Ok(Some(_)) => continue,
                _ => return,
            },
        };
        if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
            return;
        }
    }
}

/// A subscriber node crashes under load and restarts: the publisher goes on, its listener
/// count drops and recovers, the restarted node receives again within [`RECOVERY_BOUND`]
/// and misses nothing unreported from then on, and the other subscriber's account balances
/// exactly. A cluster that declares no restart is checked to refuse it, after the crash.
pub async fn a_crashed_subscriber_recovers_under_load<F: ClusterFactory>(
    factory: &F,
) -> FaultFigures {
    let mut c = cluster(factory, 3).await;
    let mut survivor = Account::local(c.node(1));
    let victim = Account::local(c.node(2));
    wait_for_count(c.node(0), NAME, 2).await;
    let load = Load::start(c.node(0).clone());
    survivor
        .until("the load to reach the survivor", |s| s.received >= STEADY)
        .await;
    drop(victim);
    within("node 2 to crash", c.kill(2)).await;
    // The publisher notices by silence alone.
    wait_for_count(c.node(0), NAME, 1).await;
    let (resumed_in, counted_again_in, victim_account) = if c.capabilities().restart {
        let back = Instant::now();
        within("node 2 to restart", c.restart(2))
            .await
            .expect("restarts");
        let mut reborn = Account::local(c.node(2));
        let first = reborn
            .until("the first event at the restarted node", |s| s.received > 0)
            .await;
        let resumed_in = back.elapsed();
        wait_for_count(c.node(0), NAME, 2).await;
        let counted_again_in = back.elapsed();
        reborn
            .until("the load to go on at the restarted node", |s| {
                s.received >= first.received + STEADY
            })
            .await;
        (resumed_in, Some(counted_again_in), Some(reborn))
    } else {
        assert!(
            within("restart to refuse", c.restart(2)).await.is_err(),
            "a cluster that declares no restart must refuse it"
        );
        (Duration::ZERO, None, None)
    };
    let sent = load.stop().await;
    let seen = survivor
        .settle("the survivor's account to balance", |_| sent)
        .await;
    let reported = seen.reported;
    assert_eq!(
        seen.received + reported,
        sent,
        "the survivor: received {} + reported {reported} != sent {sent}",
        seen.received
    );
    if let Some(mut reborn) = victim_account {
        // From its first event on, the restarted node accounts for every one.
        let seen = reborn
            .settle("the restarted node's account to balance", |s| {
                sent - s.first + 1
            })
            .await;
        let reported = seen.reported;
        assert_eq!(
            seen.received + reported,
            sent - seen.first + 1,
            "the restarted node: received {} + reported {reported} != sent since its first \
             event ({} to {sent})",
            seen.received,
            seen.first
        );
    }
    let figures = FaultFigures {
        fault: "a subscriber crashes and restarts",
        sent,
        received: seen.received,
        reported,
        resumed_in,
        counted_again_in,
    };
    assert!(
        resumed_in <= RECOVERY_BOUND,
        "traffic resumed after {resumed_in:?}, over the {RECOVERY_BOUND:?} bound: {figures:?}"
    );
    within("the cluster to shut down", c.shutdown()).await;
    figures
}

/// The hub restarts under load: traffic resumes within [`RECOVERY_BOUND`] of the hub being
/// back, and the subscriber's account balances exactly, the outage's loss reported. A
/// cluster that declares no hub is checked to refuse the restart, and gives no figures.
pub async fn a_restarted_hub_recovers_under_load<F: ClusterFactory>(
    factory: &F,
) -> Option<FaultFigures> {
    let mut c = cluster(factory, 2).await;
    if !c.capabilities().hub_restart {
        check_no_hub(c).await;
        return None;
    }
    let (publisher, subscriber) = (c.node(0).clone(), c.node(1).clone());
    let account = Account::local(&subscriber);
    let figures = balances_across_an_outage("the hub restarts", &publisher, account, async {
        c.restart_hub().await.expect("the hub restarts");
    })
    .await;
    within("the cluster to shut down", c.shutdown()).await;
    Some(figures)
}

/// The general form of a fault case, for faults a [`Cluster`] hook cannot make (a forwarder
/// process killed with SIGKILL, a host cut off): `publisher` emits a steady load that the
/// subscriber keeping `tally` (its only listener) receives; once the load flows, `outage`
/// runs, and it returns when whatever it broke is back. Then traffic must resume within
/// [`RECOVERY_BOUND`] and the subscriber's account must balance exactly.
pub async fn balances_across_an_outage(
    fault: &'static str,
    publisher: &Emitter,
    mut tally: Account,
    outage: impl Future<Output = ()>,
) -> FaultFigures {
    within(
        "the publisher to count the subscriber",
        publisher.wait_for_listeners(NAME, 1),
    )
    .await
    .expect("the publisher is open");
    let load = Load::start(publisher.clone());
    tally
        .until("the load to reach the subscriber", |s| s.received >= STEADY)
        .await;
    within("the outage to end", outage).await;
    let back = Instant::now();
    let sent_before = load.sent();
    let after = tally
        .until("an event emitted after the outage", |s| {
            s.last > sent_before
        })
        .await;
    let resumed_in = back.elapsed();
    tally
        .until("the load to go on", |s| {
            s.received >= after.received + STEADY
        })
        .await;
    let sent = load.stop().await;
    let seen = tally
        .settle("the subscriber's account to balance", |_| sent)
        .await;
    let reported = seen.reported;
    assert_eq!(
        seen.received + reported,
        sent,
        "{fault}: received {} + reported {reported} != sent {sent}",
        seen.received
    );
    let figures = FaultFigures {
        fault,
        sent,
        received: seen.received,
        reported,
        resumed_in,
        counted_again_in: None,
    };
    assert!(
        resumed_in <= RECOVERY_BOUND,
        "traffic resumed after {resumed_in:?}, over the {RECOVERY_BOUND:?} bound: {figures:?}"
    );
    figures
}

/// A subscriber process killed with SIGKILL under load and started again: `start` starts
/// it (a child that runs [`report_account`]); `survivor` is another subscriber's account.
/// The publisher's count drops by silence alone and comes back, the new process receives
/// within [`RECOVERY_BOUND`] and accounts for every event from its first on, and the
/// survivor's account balances exactly.
pub async fn a_killed_subscriber_process_recovers(
    fault: &'static str,
    publisher: &Emitter,
    mut survivor: Account,
    mut start: impl FnMut() -> tokio::process::Child,
) -> FaultFigures {
    let accounted = |child: &mut tokio::process::Child| {
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        Account::from_lines(tokio::io::BufReader::new(stdout))
    };
    let mut victim = start();
    let mut doomed = accounted(&mut victim);
    wait_for_count(publisher, NAME, 2).await;
    let load = Load::start(publisher.clone());
    survivor
        .until("the load to reach the survivor", |s| s.received >= STEADY)
        .await;
    doomed
        .until("the load to reach the child", |s| s.received >= STEADY)
        .await;
    within("the child to be killed", victim.kill())
        .await
        .expect("SIGKILL");
    drop(doomed);
    // The publisher notices by silence alone.
    wait_for_count(publisher, NAME, 1).await;
    let back = Instant::now();
    let mut reborn = start();
    let mut account = accounted(&mut reborn);
    let first = account
        .until("the first event at the new process", |s| s.received > 0)
        .await;
    let resumed_in = back.elapsed();
    wait_for_count(publisher, NAME, 2).await;
    let counted_again_in = back.elapsed();
    account
        .until("the load to go on at the new process", |s| {
            s.received >= first.received + STEADY
        })
        .await;
    let sent = load.stop().await;
    let seen = survivor
        .settle("the survivor's account to balance", |_| sent)
        .await;
    assert_eq!(
        seen.received + seen.reported,
        sent,
        "the survivor: {seen:?}, sent {sent}"
    );
    let again = account
        .settle("the new process's account to balance", |s| {
            sent - s.first + 1
        })
        .await;
    assert_eq!(
        again.received + again.reported,
        sent - again.first + 1,
        "the new process: {again:?}, sent {sent}"
    );
    crate::child::finish(reborn).await;
    let figures = FaultFigures {
        fault,
        sent,
        received: seen.received,
        reported: seen.reported,
        resumed_in,
        counted_again_in: Some(counted_again_in),
    };
    assert!(
        resumed_in <= RECOVERY_BOUND,
        "traffic resumed after {resumed_in:?}, over the {RECOVERY_BOUND:?} bound: {figures:?}"
    );
    figures
}
