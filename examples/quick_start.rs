//! The README's quick start: an auctioneer and a bidder on one in-process bus.
//!
//! Run it with `cargo run --example quick_start`.

use std::time::Duration;

use demitter::{Emitter, Event, MemoryHub};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Bid {
    lot: u32,
    amount: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = MemoryHub::new();
    let auctioneer = Emitter::new(hub.join())?;
    let bidder = Emitter::new(hub.join())?;

    // Every bid on any lot; handlers are async and receive typed events.
    auctioneer.on("bid.+", |e: Event<Bid>| async move {
        println!("{} bids {} on lot {}", e.source, e.data.amount, e.data.lot);
    })?;

    // Wait (never forever) until someone listens, then emit: `emit` says how many
    // listeners it reached.
    let second = Duration::from_secs(1);
    tokio::time::timeout(second, bidder.wait_for_listeners("bid.lot1", 1)).await??;
    let reached = bidder
        .emit(
            "bid.lot1",
            &Bid {
                lot: 1,
                amount: 100,
            },
        )
        .await?;
    assert_eq!(reached.total(), 1);

    // `once` is a future, `events` a Stream; both listen from the moment they are made.
    let closing = bidder.once::<u32>("lot.closed")?;
    tokio::time::timeout(second, auctioneer.wait_for_listeners("lot.closed", 1)).await??;
    auctioneer.emit("lot.closed", &1u32).await?;
    println!("lot {} closed", closing.await?.data);

    // Leave the bus: queued events go out, peers are told.
    auctioneer.close().await;
    bidder.close().await;
    Ok(())
}
