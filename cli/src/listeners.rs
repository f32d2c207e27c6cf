//! `demitter listeners NAME`: how many listeners the whole bus has for an event (or a
//! pattern), once or, with `--watch`, on every change.

use std::time::Duration;

use demitter::CountStream;

use crate::bus::BusArgs;
use crate::error::CliError;

/// How long the count must stay the same before `listeners` (without `--watch`) takes it
/// as the bus's answer: peers announce their listeners as soon as they hear of a new
/// node, well within this.
const QUIET: Duration = Duration::from_millis(500);

/// Which count, and how.
#[derive(Debug, clap::Args)]
pub(crate) struct ListenersArgs {
    /// An event name (the listeners that would receive it: `user.login`) or a pattern (the
    /// listeners on exactly that pattern: `user.+`).
    name: String,
    /// Print the count now and again at every change, until Ctrl-C.
    #[arg(short, long)]
    watch: bool,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: ListenersArgs) -> Result<(), CliError> {
    let emitter = args.bus.connect().await?.emitter;
    let result = async {
        let mut counts = emitter.observe_listener_count(&args.name)?;
        if args.watch {
            watch(&mut counts, &args.name).await
        } else {
            let count = settled(&mut counts, args.bus.timeout.max(QUIET)).await?;
            println!("{}", describe(count, &args.name));
            Ok(())
        }
    }
    .await;
    emitter.close().await;
    result
}

/// The count once it has not changed for [`QUIET`] (or at `limit`).
async fn settled(counts: &mut CountStream, limit: Duration) -> Result<usize, CliError> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut count = counts.recv().await.ok_or(demitter::Error::Closed)?;
    loop {
        let quiet_until = (tokio::time::Instant::now() + QUIET).min(deadline);
        tokio::select! {
            next = counts.recv() => count = next.ok_or(demitter::Error::Closed)?,
            () = tokio::time::sleep_until(quiet_until) => return Ok(count),
        }
    }
}

async fn watch(counts: &mut CountStream, name: &str) -> Result<(), CliError> {
    loop {
        tokio::select! {
            next = counts.recv() => match next {
                Some(count) => println!("{}", describe(count, name)),
                None => return Err(CliError::Demo("the bus closed".into())),
            },
            stop = tokio::signal::ctrl_c() => {
                return stop.map_err(CliError::io("listening for Ctrl-C"));
            }
        }
    }
}

fn describe(count: usize, name: &str) -> String {
    format!(
        "{count} listener{} for `{name}`",
        if count == 1 { "" } else { "s" }
    )
}
