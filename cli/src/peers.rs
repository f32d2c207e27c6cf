//! `demitter peers`: the nodes this one sees on the bus, once or, with `--watch`, as they
//! come and go until stopped.

use std::collections::BTreeSet;
use std::time::Duration;

use demitter::{Emitter, EventStream, PEER_DOWN, PEER_UP, PeerChange};

use crate::bus::BusArgs;
use crate::error::CliError;
use crate::tap::print_line;

/// How long the peer list must stay the same before it is taken as the bus's answer.
const QUIET: Duration = Duration::from_millis(500);

/// Where to look, and how to say it.
#[derive(Debug, clap::Args)]
pub(crate) struct PeersArgs {
    /// Print `up NAME` for each peer there now, then `up NAME` and `down NAME` as peers
    /// come and go, until stopped (Ctrl-C).
    #[arg(short, long)]
    watch: bool,
    /// JSON: the list as `{"node":"ME","peers":["A","B"],"details":[…]}`, each detail with
    /// the peer's `id`, `proven_name` (the name its certificate or key proved, or null),
    /// `address` (or null), `up_seconds` and `patterns`; with --watch, each change as a
    /// line `{"peer":"A","up":true}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: PeersArgs) -> Result<(), CliError> {
    let emitter = args.bus.connect().await?.emitter;
    let result = async {
        let mut changes = emitter.events::<PeerChange>(PEER_UP)?;
        changes.also(PEER_DOWN)?;
        if args.watch {
            return watch(&emitter, &mut changes, args.json).await;
        }
        tokio::select! {
            settled = settle(&mut changes, args.bus.timeout.max(QUIET)) => settled?,
            signal = crate::interrupt::requested() => {
                return Err(CliError::Interrupted(format!(
                    "by {signal} before the list of peers had settled"
                )));
            }
        }
        list(&emitter, args.json)
    }
    .await;
    emitter.close().await;
    result
}

/// Returns once no peer has come or gone for [`QUIET`] (or at `limit`).
async fn settle(changes: &mut EventStream<PeerChange>, limit: Duration) -> Result<(), CliError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let quiet_until = (tokio::time::Instant::now() + QUIET).min(deadline);
        tokio::select! {
            change = changes.recv() => if change.is_none() {
                return Err(CliError::Bus(demitter::Error::Closed));
            },
            () = tokio::time::sleep_until(quiet_until) => return Ok(()),
        }
    }
}

/// The peers, one a line (`ID  up 3.2s  2 patterns  at ADDRESS  proven`; and a count on
/// stderr), or as one JSON document.
fn list(emitter: &Emitter, json: bool) -> Result<(), CliError> {
    let peers = emitter.peer_info();
    let up_for = |peer: &demitter::PeerInfo| {
        // A clock set back since: up for no time.
        std::time::SystemTime::now()
            .duration_since(peer.up_since)
            .map_or(std::time::Duration::ZERO, |up| up)
    };
    if json {
        let ids: Vec<&str> = peers.iter().map(|p| p.id.as_str()).collect();
        let details: Vec<serde_json::Value> = peers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.id.as_str(),
                    "proven_name": p.proven_name.as_ref().map(demitter::NodeId::as_str),
                    "address": p.address,
                    "up_seconds": up_for(p).as_secs_f64(),
                    "patterns": p.patterns,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "node": emitter.id().as_str(),
            "peers": ids,
            "details": details,
        });
        return print_line(&doc.to_string());
    }
    for peer in &peers {
        let mut line = format!(
            "{}  up {:.1}s  {} pattern{}",
            peer.id,
            up_for(peer).as_secs_f64(),
            peer.patterns,
            if peer.patterns == 1 { "" } else { "s" }
        );
        if let Some(address) = &peer.address {
            line.push_str("  at ");
            line.push_str(address);
        }
        if peer.proven_name.is_some() {
            line.push_str("  proven");
        }
        print_line(&line)?;
    }
    eprintln!(
        "{} peer{} besides this node ({})",
        peers.len(),
        if peers.len() == 1 { "" } else { "s" },
        emitter.id()
    );
    Ok(())
}

/// The peers there now, then each one that comes or goes, until stopped.
async fn watch(
    emitter: &Emitter,
    changes: &mut EventStream<PeerChange>,
    json: bool,
) -> Result<(), CliError> {
    let say = |peer: &str, up: bool| {
        if json {
            print_line(&serde_json::json!({ "peer": peer, "up": up }).to_string())
        } else {
            print_line(&format!("{} {peer}", if up { "up" } else { "down" }))
        }
    };
    // Changes are listened for before the list is read: one in between is said once.
    let mut known = BTreeSet::new();
    for peer in emitter.peers() {
        say(peer.as_str(), true)?;
        known.insert(peer.as_str().to_owned());
    }
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            // Watching runs until stopped: a signal is its ordinary end.
            _ = crate::interrupt::requested() => return Ok(()),
        };
        let Some(change) = change else {
            return Err(CliError::Bus(demitter::Error::Closed));
        };
        let event = match change {
            Ok(event) => event,
            Err(e) => {
                eprintln!("warning: {e}");
                continue;
            }
        };
        let up = &*event.name == PEER_UP;
        let peer = event.data.peer;
        let changed = if up {
            known.insert(peer.clone())
        } else {
            known.remove(&peer)
        };
        if changed {
            say(&peer, up)?;
        }
    }
}
