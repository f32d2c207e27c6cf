//! Two processes on one bus: a forwarder between them, as Demitter runs.
//!
//! ```sh
//! demitter forwarder                              # or: cargo run -p demitter-forwarder
//! cargo run --example two_processes -- listen     # in a second terminal
//! cargo run --example two_processes -- emit       # in a third
//! ```
//!
//! `--url zmq://HOST:PORT` after the role uses another forwarder.

use std::time::Duration;

use demitter::{Emitter, Event};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Login {
    user: String,
}

/// Demitter's default forwarder on this machine (the XPUB side is the next port, 5556).
const URL: &str = "zmq://127.0.0.1:5555";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let role = args.next().unwrap_or_default();
    let url = match (args.next().as_deref(), args.next()) {
        (Some("--url"), Some(url)) => url,
        _ => URL.to_owned(),
    };
    // `connect` returns at once: the transport connects (and reconnects) in the background
    // and says what goes wrong on `errors()`.
    let emitter = demitter::connect(&url).await?;
    let mut errors = emitter.errors();
    tokio::spawn(async move {
        while let Some(report) = errors.recv().await {
            eprintln!("bus: {report}");
        }
    });
    let result = match role.as_str() {
        "listen" => listen(&emitter, 3).await,
        "emit" => emit(&emitter, 3).await,
        _ => Err("give a role: listen or emit".into()),
    };
    // Before returning: flushes what is queued and tells the bus this node is gone.
    emitter.close().await;
    result
}

/// Prints `logins` logins, then returns.
async fn listen(emitter: &Emitter, logins: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut events = emitter.events::<Login>("user.+")?;
    println!("listening on user.+ as {}", emitter.id());
    for _ in 0..logins {
        let Some(event) = events.recv().await else {
            break;
        };
        let event: Event<Login> = event?;
        println!("{} from {}: {}", event.name, event.source, event.data.user);
    }
    Ok(())
}

/// Waits for a listener (at most 10 s), then emits `logins` logins.
async fn emit(emitter: &Emitter, logins: usize) -> Result<(), Box<dyn std::error::Error>> {
    let wait = Duration::from_secs(10);
    tokio::time::timeout(wait, emitter.wait_for_listeners("user.login", 1))
        .await
        .map_err(|_| "no listener for user.login within 10 s: is `listen` running?")??;
    for n in 1..=logins {
        let login = Login {
            user: format!("user-{n}"),
        };
        let reached = emitter.emit("user.login", &login).await?;
        println!("user.login reached {} listener(s)", reached.total());
    }
    Ok(())
}
