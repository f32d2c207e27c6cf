//! Memory stays bounded on a real forwarder with a subscriber that never reads: 250 MiB go past it
//! and the process grows by less than 100 MiB. Alone in its test binary, since it measures
//! the whole process's resident memory.
mod support;
use demitter_conformance::soak::memory_stays_bounded;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_with_a_subscriber_that_never_reads() {
    match memory_stays_bounded(
        &support::ZmqClusterFactory::NULL,
        4_000,
        64 * 1024,
        100 << 20,
    )
    .await
    {
        Some(figures) => println!("{figures:?}"),
        None => println!("SKIPPED: no /proc/self/statm to read resident memory from"),
    }
}
