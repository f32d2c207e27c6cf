//! `demitter listeners NAME`: how many listeners the whole bus has for an event (or a
//! pattern), and where they are, node by node; or, with `--watch`, the count on every
//! change until stopped.

use std::time::Duration;

use demitter::CountStream;

use crate::bus::BusArgs;
use crate::error::CliError;
use crate::tap::print_line;

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
    /// Print the count now and again at every change, until stopped (Ctrl-C).
    #[arg(short, long)]
    watch: bool,
    /// Print each count as a JSON line, `{"name":"user.login","listeners":2}`; without
    /// --watch, with `"breakdown"`: each listener's node, whether that is this one, its
    /// pattern and its group.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: ListenersArgs) -> Result<(), CliError> {
    let emitter = args.bus.connect().await?.emitter;
    let result = async {
        let mut counts = emitter.observe_listener_count(&args.name)?;
        if args.watch {
            watch(&mut counts, &args).await
        } else {
            // Once the count has settled, the listing (its length is the count).
            tokio::select! {
                count = settled(&mut counts, args.bus.timeout.max(QUIET)) => count?,
                signal = crate::interrupt::requested() => {
                    return Err(CliError::Interrupted(format!(
                        "by {signal} before the count of `{}` had settled",
                        args.name
                    )));
                }
            };
            print_breakdown(&emitter.listeners(&args.name)?, &args)
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

async fn watch(counts: &mut CountStream, args: &ListenersArgs) -> Result<(), CliError> {
    loop {
        tokio::select! {
            next = counts.recv() => match next {
                Some(count) => print_line(&describe(count, args))?,
                None => return Err(CliError::Demo("the bus closed".into())),
            },
            // Watching runs until stopped: a signal is its ordinary end.
            _ = crate::interrupt::requested() => return Ok(()),
        }
    }
}

/// The count, then one line per node (`  NODE: PATTERN, PATTERN ×2, PATTERN (group G)`),
/// this node first; or one JSON document.
fn print_breakdown(
    listeners: &[demitter::BusListener],
    args: &ListenersArgs,
) -> Result<(), CliError> {
    if args.json {
        let breakdown: Vec<serde_json::Value> = listeners
            .iter()
            .map(|l| {
                serde_json::json!({
                    "node": l.node.as_str(),
                    "local": l.local,
                    "pattern": l.pattern.as_str(),
                    "group": l.group,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "name": args.name,
            "listeners": listeners.len(),
            "breakdown": breakdown,
        });
        return print_line(&doc.to_string());
    }
    print_line(&describe(listeners.len(), args))?;
    let mut at = 0;
    while at < listeners.len() {
        let node = &listeners[at].node;
        let end = listeners[at..]
            .iter()
            .position(|l| l.node != *node)
            .map_or(listeners.len(), |n| at + n);
        let here = if listeners[at].local {
            " (this node)"
        } else {
            ""
        };
        print_line(&format!(
            "  {node}{here}: {}",
            patterns(&listeners[at..end])
        ))?;
        at = end;
    }
    Ok(())
}

/// `user.+, user.login ×2, job.# (group packers)`: one node's listeners, alike ones once.
fn patterns(listeners: &[demitter::BusListener]) -> String {
    let mut said: Vec<(String, usize)> = Vec::new();
    for l in listeners {
        let text = match &l.group {
            Some(group) => format!("{} (group {group})", l.pattern.as_str()),
            None => l.pattern.as_str().to_owned(),
        };
        match said.iter_mut().find(|(t, _)| *t == text) {
            Some((_, n)) => *n += 1,
            None => said.push((text, 1)),
        }
    }
    said.into_iter()
        .map(|(text, n)| {
            if n == 1 {
                text
            } else {
                format!("{text} ×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "2 listeners for \`user.login\`", or its JSON line.
fn describe(count: usize, args: &ListenersArgs) -> String {
    if args.json {
        serde_json::json!({ "name": args.name, "listeners": count }).to_string()
    } else {
        format!(
            "{count} listener{} for `{}`",
            if count == 1 { "" } else { "s" },
            args.name
        )
    }
}
