//! The accounting soak on a real forwarder on loopback: for every subscriber, received + reported lost == sent,
//! to the event. A short run in CI; the long one with `cargo test --test soak -- --ignored`.
mod support;

use std::time::Duration;

use demitter_conformance::soak::accounting_soak;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_balance_after_3_seconds() {
    let figures = accounting_soak(&support::ZmqClusterFactory::NULL, Duration::from_secs(3)).await;
    println!("{figures:?}");
    assert!(figures.received > 0, "{figures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "60 s, too long for plain cargo test; .ci/run runs it: cargo test --test soak -- --ignored"]
async fn accounts_balance_after_60_seconds() {
    let figures = accounting_soak(&support::ZmqClusterFactory::NULL, Duration::from_secs(60)).await;
    println!("{figures:?}");
    assert!(figures.received > 0, "{figures:?}");
}
