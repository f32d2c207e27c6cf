//! `demitter tap PATTERN`: every matching event as a JSON line on stdout, with the bus's
//! own `$peer.up`, `$peer.down`, `$error` and `$recovered` events in the order they
//! happened. It runs
//! until stopped (or `--count` events): a signal ends it with 0.

use std::fmt::Write as _;
use std::io::Write as _;

use demitter::{
    ERROR_EVENT, Event, EventStream, ListenOptions, PEER_DOWN, PEER_UP, Pattern, RECOVERED,
    RawPayload,
};
use serde_json::Value;

use crate::bus::BusArgs;
use crate::error::CliError;
use crate::join::Joined;

/// The system events `tap` shows beside the pattern's.
const SYSTEM_EVENTS: [&str; 4] = [PEER_UP, PEER_DOWN, ERROR_EVENT, RECOVERED];

/// What `tap` listens on and for how long.
#[derive(Debug, clap::Args)]
pub(crate) struct TapArgs {
    /// The events to print: a name, or a pattern where `+` stands for any run of characters
    /// within a segment and `#` for any run at all (`user.+`, `#`).
    pattern: String,
    /// Stop after this many matching events.
    #[arg(short = 'n', long)]
    count: Option<u64>,
    /// Leave out the bus's own events ($peer.up, $peer.down, $error, $recovered).
    #[arg(long)]
    no_system: bool,
    /// Add the time each event arrived here (`"time"`, RFC 3339, UTC).
    #[arg(long)]
    timestamps: bool,
    /// First print the last value every node retained (`emit_retained`) for each
    /// matching name, then the live events.
    #[arg(long)]
    last: bool,
    /// Take part in listener group NAME: each event reaches one member of the group on
    /// the whole bus, so several taps in one group share the events.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: TapArgs) -> Result<(), CliError> {
    // Checked before joining, so a bad pattern or group is said first.
    let pattern = Pattern::new(&args.pattern)?;
    if let Some(group) = &args.group {
        demitter::validate_group(group)?;
    }
    let joined = if args.no_system {
        args.bus.connect().await?
    } else {
        args.bus.connect_quietly().await?
    };
    let result = tap(&joined, &args, &pattern).await;
    joined.emitter.close().await;
    result
}

async fn tap(joined: &Joined, args: &TapArgs, pattern: &Pattern) -> Result<(), CliError> {
    let mut options = ListenOptions::default();
    if args.last {
        options = options.with_last();
    }
    if let Some(group) = &args.group {
        options = options.group(group);
    }
    let mut events = joined
        .emitter
        .events_with::<RawPayload>(pattern.as_str(), options)?;
    let mut system = if args.no_system {
        None
    } else {
        system_events(joined, &mut events, args, pattern)?
    };
    // Listening means the bus delivers here: the forwarder has the subscription, and
    // every node on the bus has acknowledged the tap, so that nothing emitted from now on
    // goes missing without a report (within --timeout: not hearing from them all is said,
    // but another node with this id is an error).
    joined.subscribed().await?;
    let acknowledged = match tokio::time::timeout(args.bus.timeout, events.subscribed()).await {
        Ok(Err(refused @ demitter::Error::DuplicateId { .. })) => return Err(refused.into()),
        Ok(result) => result.is_ok(),
        Err(_) => false,
    };
    eprintln!("listening on `{}` at {}", args.pattern, args.bus.url);
    if !acknowledged {
        eprintln!(
            "warning: not every node on the bus acknowledged this tap within {:?}; what they emit before they do may be missed without a report",
            args.bus.timeout
        );
    }
    let mut printed = 0u64;
    if args.count == Some(0) {
        return Ok(());
    }
    loop {
        let item = tokio::select! {
            item = events.recv() => item,
            Some(item) = next(&mut system) => Some(item),
            // Tapping runs until stopped: a signal is its ordinary end.
            _ = crate::interrupt::requested() => return Ok(()),
        };
        let Some(item) = item else {
            // The emitter closed under the tap: it gave way to another node with its id
            // (met only after the tap was listening), or the bus closed.
            return Err(match joined.emitter.ready().await {
                Err(refused @ demitter::Error::DuplicateId { .. }) => refused.into(),
                _ => CliError::Demo("the bus closed".into()),
            });
        };
        match item {
            Ok(event) => {
                print_line(&event_json(&event, args.timestamps)?)?;
                if pattern.matches(&event.name) {
                    printed += 1;
                    if args.count.is_some_and(|n| printed >= n) {
                        return Ok(());
                    }
                }
            }
            // Lag is reported on $error too; the stream goes on.
            Err(e) => eprintln!("warning: {e}"),
        }
    }
}

/// Listens on the bus's own events that the pattern does not match. They join the
/// pattern's stream, so that everything prints in the order this node received it, unless
/// that stream is a group member's or takes retained values, which a `$` listener cannot
/// be: then they come in a stream of their own.
fn system_events(
    joined: &Joined,
    events: &mut EventStream<RawPayload>,
    args: &TapArgs,
    pattern: &Pattern,
) -> Result<Option<EventStream<RawPayload>>, CliError> {
    let mut names = SYSTEM_EVENTS
        .into_iter()
        .filter(|name| !pattern.matches(name));
    if args.group.is_none() && !args.last {
        for name in names {
            events.also(name)?;
        }
        return Ok(None);
    }
    let Some(first) = names.next() else {
        return Ok(None);
    };
    let mut own = joined.emitter.events::<RawPayload>(first)?;
    for name in names {
        own.also(name)?;
    }
    Ok(Some(own))
}

/// The next item of a stream that may not be there (never, then).
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
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    name: &'a str,
    source: &'a str,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_hex: Option<String>,
}

/// `{"name", "source", "seq", "data"}`, the data decoded from MessagePack (or, if it is
/// not JSON-shaped, its bytes in hex as `data_hex`), with `"time"` first if asked for.
pub(crate) fn event_json(event: &Event<RawPayload>, timestamps: bool) -> Result<String, CliError> {
    let data = event.data.decode::<Value>().ok();
    let data_hex = data.is_none().then(|| {
        event.data.bytes().iter().fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    });
    let line = Line {
        time: timestamps.then(now_rfc3339),
        name: &event.name,
        source: event.source.as_str(),
        seq: event.seq,
        data,
        data_hex,
    };
    Ok(serde_json::to_string(&line)?)
}

/// Now, as `2026-12-01T14:36:58.123456Z`.
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

pub(crate) fn print_line(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(CliError::io("writing to stdout"))
}
