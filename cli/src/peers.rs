//! `demitter peers`: the nodes this one sees on the bus.

use std::time::Duration;

use demitter::{PEER_DOWN, PEER_UP, RawPayload};

use crate::bus::BusArgs;
use crate::error::CliError;

/// How long the peer list must stay the same before it is taken as the bus's answer.
const QUIET: Duration = Duration::from_millis(500);

/// Where to look.
#[derive(Debug, clap::Args)]
pub(crate) struct PeersArgs {
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: PeersArgs) -> Result<(), CliError> {
    let emitter = args.bus.connect().await?.emitter;
    let result = async {
        let mut changes = emitter.events::<RawPayload>(PEER_UP)?;
        changes.also(PEER_DOWN)?;
        let deadline = tokio::time::Instant::now() + args.bus.timeout.max(QUIET);
        loop {
            let quiet_until = (tokio::time::Instant::now() + QUIET).min(deadline);
            tokio::select! {
                change = changes.recv() => if change.is_none() {
                    return Err(CliError::Bus(demitter::Error::Closed));
                },
                () = tokio::time::sleep_until(quiet_until) => break,
            }
        }
        let peers = emitter.peers();
        for peer in &peers {
            println!("{peer}");
        }
        eprintln!(
            "{} peer{} besides this node ({})",
            peers.len(),
            if peers.len() == 1 { "" } else { "s" },
            emitter.id()
        );
        Ok(())
    }
    .await;
    emitter.close().await;
    result
}
