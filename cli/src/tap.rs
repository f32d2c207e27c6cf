//! `demitter tap PATTERN`: every matching event as a JSON line on stdout.

use std::fmt::Write as _;
use std::io::Write as _;

use demitter::{Emitter, Event, EventStream, RawPayload};
use serde_json::Value;

use crate::bus::BusArgs;
use crate::error::CliError;

/// What `tap` listens on and for how long.
#[derive(Debug, clap::Args)]
pub(crate) struct TapArgs {
    /// The events to print: a name, or a pattern where `+` stands for any run of characters
    /// within a segment and `#` for any run at all (`user.+`, `#`).
    pattern: String,
    /// Stop after this many matching events.
    #[arg(long)]
    count: Option<u64>,
    /// Leave out the bus's own events ($peer.up, $peer.down, $error).
    #[arg(long)]
    no_system: bool,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: TapArgs) -> Result<(), CliError> {
    let emitter = args.bus.connect().await?;
    let result = tap(&emitter, &args).await;
    emitter.close().await;
    result
}

async fn tap(emitter: &Emitter, args: &TapArgs) -> Result<(), CliError> {
    let mut events = emitter.events::<RawPayload>(&args.pattern)?;
    let (mut peers, mut errors) = if args.no_system {
        (None, None)
    } else {
        (
            Some(emitter.events::<RawPayload>("$peer.+")?),
            Some(emitter.events::<RawPayload>("$error")?),
        )
    };
    eprintln!("listening on `{}` at {}", args.pattern, args.bus.url);
    let mut printed = 0u64;
    if args.count == Some(0) {
        return Ok(());
    }
    loop {
        let (item, counts) = tokio::select! {
            item = events.recv() => (item, true),
            Some(item) = next(&mut peers) => (Some(item), false),
            Some(item) = next(&mut errors) => (Some(item), false),
            stop = tokio::signal::ctrl_c() => {
                stop.map_err(CliError::io("listening for Ctrl-C"))?;
                return Ok(());
            }
        };
        let Some(item) = item else {
            return Err(CliError::Demo("the bus closed".into()));
        };
        match item {
            Ok(event) => print_line(&event_json(&event)?)?,
            // Lag is reported on $error too; the stream goes on.
            Err(e) => eprintln!("warning: {e}"),
        }
        if counts {
            printed += 1;
            if args.count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
        }
    }
}

async fn next(
    stream: &mut Option<EventStream<RawPayload>>,
) -> Option<Result<Event<RawPayload>, demitter::Error>> {
    match stream {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

/// One printed event.
#[derive(Debug, serde::Serialize)]
struct Line<'a> {
    name: &'a str,
    source: &'a str,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_hex: Option<String>,
}

/// `{"name", "source", "seq", "data"}`, the data decoded from MessagePack (or, if it is
/// not JSON-shaped, its bytes in hex as `data_hex`).
fn event_json(event: &Event<RawPayload>) -> Result<String, CliError> {
    let data = event.data.decode::<Value>().ok();
    let data_hex = data.is_none().then(|| {
        event.data.bytes().iter().fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    });
    let line = Line {
        name: &event.name,
        source: event.source.as_str(),
        seq: event.seq,
        data,
        data_hex,
    };
    Ok(serde_json::to_string(&line)?)
}

fn print_line(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(CliError::io("writing to stdout"))
}
