//! Several emitters on one in-memory bus exchange events and print them.
//!
//! Run it with `cargo run --example in_memory_bus`. Three "services" join the hub
//! `mem://example`; a spy prints everything; the bus-wide listener count is watched while
//! listeners come and go; a dashboard waits for its audience before it speaks; and a
//! listener that cannot keep up is reported, not silently starved.

use std::time::Duration;

use demitter::{Event, ListenOptions, PEER_UP, PeerChange};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: u32,
    item: String,
    cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shipped {
    order: u32,
    carrier: String,
}

#[tokio::main]
async fn main() -> Result<(), demitter::Error> {
    // The audit service joins first and watches the others arrive.
    let audit = demitter::connect("mem://example").await?;
    audit.on(PEER_UP, |e: Event<PeerChange>| async move {
        println!("  [audit] peer up: {}", e.data.peer);
    })?;
    let shop = demitter::connect("mem://example").await?;
    let warehouse = demitter::connect("mem://example").await?;
    println!(
        "shop = {}, warehouse = {}, audit = {}",
        shop.id(),
        warehouse.id(),
        audit.id()
    );

    // It spies on orders and shipping (a spy is never counted).
    for pattern in ["order.#", "shipping.#"] {
        audit.spy(pattern, |e: Event<demitter::RawPayload>| async move {
            let value = e
                .data
                .to_value()
                .map_or_else(|err| err.to_string(), |v| v.to_string());
            println!("  [audit] {} #{} from {}: {value}", e.name, e.seq, e.source);
        })?;
    }

    // Watch how many listeners the bus has for `order.created`.
    let mut counts = shop.observe_listener_count("order.created")?;
    tokio::spawn(async move {
        while let Some(n) = counts.recv().await {
            println!("  [shop] listeners for order.created: {n}");
        }
    });

    // The warehouse ships every order and announces it.
    let announcer = warehouse.clone();
    warehouse.on("order.+", move |e: Event<Order>| {
        let announcer = announcer.clone();
        async move {
            println!(
                "[warehouse] packing order {} ({}, {} cents)",
                e.data.id, e.data.item, e.data.cents
            );
            let shipped = Shipped {
                order: e.data.id,
                carrier: "owl post".into(),
            };
            if let Err(err) = announcer.emit("shipping.done", &shipped).await {
                eprintln!("[warehouse] could not announce: {err}");
            }
        }
    })?;

    // The shop waits until the warehouse listens, then takes orders.
    let mut shipped = shop.events::<Shipped>("shipping.+")?;
    tokio::time::timeout(
        Duration::from_secs(5),
        shop.wait_for_listeners("order.created", 1),
    )
    .await
    .map_err(|_| demitter::Error::Transport("the warehouse never listened".into()))??;
    for (id, item, cents) in [(1, "teapot", 2_500), (2, "kettle", 4_200), (3, "mug", 900)] {
        let order = Order {
            id,
            item: item.into(),
            cents,
        };
        let reached = shop.emit("order.created", &order).await?;
        println!("[shop] order {id} reached {} listener(s)", reached.total());
    }
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), shipped.recv())
            .await
            .map_err(|_| demitter::Error::Transport("a shipment never arrived".into()))?
            .ok_or(demitter::Error::Closed)??;
        println!(
            "[shop] order {} shipped by {} (told by {})",
            event.data.order, event.data.carrier, event.source
        );
    }

    // A listener with room for 4 events that never keeps up: it is told how many it missed.
    let mut errors = audit.errors();
    let _slow = audit.on_with(
        "metrics.tick",
        ListenOptions::default().capacity(4),
        |_: Event<u32>| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        },
    )?;
    shop.wait_for_listeners("metrics.tick", 1).await?;
    for tick in 0..50u32 {
        shop.emit("metrics.tick", &tick).await?;
    }
    if let Ok(Some(report)) = tokio::time::timeout(Duration::from_secs(5), errors.recv()).await {
        println!("[audit] error channel: {report}");
    }

    for emitter in [&shop, &warehouse, &audit] {
        emitter.close().await;
    }
    println!("done: every emitter closed");
    Ok(())
}
