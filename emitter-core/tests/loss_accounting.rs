//! With recovery off, every lost event is reported, including the last ones of a burst,
//! which no later event reveals: a transport that drops chosen frames stands in for a
//! lossy network. (With recovery on, the same losses come back: `recovery_sim.rs` and the
//! conformance suite; what cannot come back is reported the way these show.)

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use demitter_core::faulty::Filtered;
use demitter_core::node::RecoveryConfig;
use demitter_core::{Emitter, EmitterConfig, ErrorKind, Frame, MemoryHub, protocol::Control};

/// What a lossy network loses: the event frames whose sequence numbers it is given, and
/// the first `drop_marks` sequence announcements.
fn lossy_network(drop_seqs: HashSet<u64>, drop_marks: usize) -> impl Fn(&Frame) -> bool {
    let drop_marks = AtomicUsize::new(drop_marks);
    move |frame: &Frame| match frame {
        Frame::Event(e) => !drop_seqs.contains(&e.seq),
        Frame::Control(c) => {
            !(matches!(Control::decode(&c.body), Ok(Control::Sequences { .. }))
                && drop_marks
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok())
        }
    }
}

/// Settings without recovery: what is lost stays lost, and is reported.
fn reporting() -> EmitterConfig {
    EmitterConfig {
        recovery: RecoveryConfig::OFF,
        ..EmitterConfig::default()
    }
}

fn fast() -> EmitterConfig {
    reporting().with_heartbeat(Duration::from_millis(50), Duration::from_secs(5))
}

/// How the sender tells the tail: by its periodic sequence marks, or by closing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    Marks,
    Close,
}

async fn lost_events_are_reported(drop_seqs: &[u64], sent: u64) {
    lost_events_are_reported_with(drop_seqs, sent, fast(), Tail::Marks).await;
}

async fn lost_events_are_reported_with(
    drop_seqs: &[u64],
    sent: u64,
    sender_config: EmitterConfig,
    tail: Tail,
) {
    lost_events_and_marks_are_reported(drop_seqs, 0, sent, sender_config, tail).await;
}

async fn lost_events_and_marks_are_reported(
    drop_seqs: &[u64],
    drop_marks: usize,
    sent: u64,
    sender_config: EmitterConfig,
    tail: Tail,
) {
    let hub = MemoryHub::new();
    let sender = Emitter::with_config(
        Filtered::new(
            hub.join(),
            lossy_network(drop_seqs.iter().copied().collect(), drop_marks),
        ),
        sender_config,
    )
    .expect("emitter");
    let receiver = Emitter::with_config(hub.join(), fast()).expect("emitter");
    let mut events = receiver.events::<u64>("loss.x").expect("valid");
    let mut errors = receiver.errors();
    tokio::time::timeout(
        Duration::from_secs(10),
        sender.wait_for_listeners("loss.x", 1),
    )
    .await
    .expect("listener seen")
    .expect("open");
    for i in 1..=sent {
        sender.emit("loss.x", &i).await.expect("emits");
    }
    if tail == Tail::Close {
        sender.close().await;
    }
    let expected_received = sent - drop_seqs.len() as u64;
    let (mut received, mut reported) = (0u64, 0u64);
    tokio::time::timeout(Duration::from_secs(10), async {
        while received + reported < sent {
            tokio::select! {
                Some(event) = events.recv() => {
                    let event = event.expect("decodes");
                    assert!(!drop_seqs.contains(&event.seq), "a dropped event arrived");
                    received += 1;
                }
                Some(report) = errors.recv() => {
                    assert_eq!(report.kind, ErrorKind::Gap, "{report}");
                    reported += report.count;
                }
            }
        }
    })
    .await
    .expect("every event is received or reported lost");
    assert_eq!(
        (received, reported),
        (expected_received, drop_seqs.len() as u64)
    );
    assert_eq!(receiver.error_counts().gap, drop_seqs.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loss_in_the_middle_is_reported_by_the_next_event() {
    lost_events_are_reported(&[3, 4], 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_tail_is_reported_by_the_senders_sequence_marks() {
    lost_events_are_reported(&[9, 10], 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_tail_is_reported_even_when_its_first_marks_are_lost_too() {
    // The marks are repeated while the name stays still (1, 2, 4, ... ticks apart), so the
    // fourth announcement after the burst still tells the tail.
    let config = reporting().with_heartbeat(Duration::from_secs(3600), Duration::from_secs(7200));
    lost_events_and_marks_are_reported(&[9, 10], 3, 10, config, Tail::Marks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_tail_is_reported_long_before_the_next_heartbeat() {
    // Heartbeats an hour apart: only the sequence marks can tell the tail in time.
    let config = reporting().with_heartbeat(Duration::from_secs(3600), Duration::from_secs(7200));
    lost_events_are_reported_with(&[10], 10, config, Tail::Marks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_tail_is_reported_when_the_sender_closes() {
    // Neither heartbeats nor periodic marks come in time: the marks sent at close do.
    let config = EmitterConfig {
        sequence_mark_interval: Duration::from_secs(3600),
        ..reporting()
    }
    .with_heartbeat(Duration::from_secs(3600), Duration::from_secs(7200));
    lost_events_are_reported_with(&[9, 10], 10, config, Tail::Close).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losses_in_the_middle_and_at_the_tail_add_up() {
    lost_events_are_reported(&[2, 5, 6, 20], 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_emits_of_one_name_leave_in_sequence() {
    const TASKS: u64 = 4;
    const EACH: u64 = 2_500;
    let hub = MemoryHub::new();
    let sender = Emitter::with_config(hub.join(), fast()).expect("emitter");
    let receiver = Emitter::with_config(hub.join(), fast()).expect("emitter");
    let mut events = receiver
        .events_with::<u64>(
            "race.x",
            demitter_core::ListenOptions::default().capacity((TASKS * EACH) as usize),
        )
        .expect("valid");
    tokio::time::timeout(
        Duration::from_secs(10),
        sender.wait_for_listeners("race.x", 1),
    )
    .await
    .expect("listener seen")
    .expect("open");
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let sender = sender.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    sender.emit("race.x", &(t * EACH + i)).await.expect("emits");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("emitting task");
    }
    let mut last_seq = 0;
    for _ in 0..TASKS * EACH {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("arrives")
            .expect("open")
            .expect("decodes");
        assert_eq!(event.seq, last_seq + 1, "frames leave in sequence order");
        last_seq = event.seq;
    }
    assert_eq!(receiver.error_counts().gap, 0);
}
