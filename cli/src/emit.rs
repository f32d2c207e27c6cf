//! `demitter emit NAME [JSON]`: one event (or `--count` of them at `--rate`), and how many
//! listeners it reached.

use std::io::Read as _;
use std::time::Duration;

use demitter::Emitter;
use serde_json::Value;

use crate::bus::BusArgs;
use crate::error::CliError;

/// How long `emit` gives the bus to tell it about listeners when it waits for none in
/// particular.
const SETTLE: Duration = Duration::from_secs(1);

/// What to emit, and where.
#[derive(Debug, clap::Args)]
pub(crate) struct EmitArgs {
    /// The event's name, for example `user.login`.
    name: String,
    /// The payload as JSON (`'{"id": 7}'`, `'"text"'` with its quotes, `42`); `-` reads it
    /// from standard input; without it the payload is null.
    json: Option<String>,
    /// Wait until at least this many listeners are known on the bus before emitting (an
    /// error if they do not appear within --timeout). Without it, emit waits up to a second
    /// for the first listener.
    #[arg(long, value_name = "N", default_value_t = 0)]
    wait_for: usize,
    /// Emit the event this many times (each gets its own sequence number).
    #[arg(short = 'n', long, default_value_t = 1)]
    count: u64,
    /// Events per second when --count is more than 1 (default: as fast as possible).
    #[arg(short, long, value_name = "PER_SECOND", value_parser = crate::seconds::parse_rate)]
    rate: Option<f64>,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: EmitArgs) -> Result<(), CliError> {
    demitter::validate_user_name(&args.name)?;
    let payload = payload(args.json.as_deref())?;
    let emitter = args.bus.connect().await?.emitter;
    let result = emit(&emitter, &args, &payload).await;
    emitter.close().await;
    let reached = result?;
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if args.count == 1 {
        println!(
            "reached {} listener{}",
            reached.total,
            plural(reached.total)
        );
    } else {
        println!(
            "emitted {} events: reached {} listener{} in all ({} to {} each)",
            args.count,
            reached.total,
            plural(reached.total),
            reached.least,
            reached.most
        );
    }
    Ok(())
}

/// The payload the command line gives: JSON, standard input for `-`, null for nothing.
pub(crate) fn payload(json: Option<&str>) -> Result<Value, CliError> {
    let text = match json {
        None => return Ok(Value::Null),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(CliError::io("reading the payload from stdin"))?;
            text
        }
        Some(text) => text.to_owned(),
    };
    serde_json::from_str(&text).map_err(|source| CliError::Payload {
        hint: payload_hint(&text),
        source,
    })
}

/// A word of help for the usual mistake: text without JSON's quotes.
fn payload_hint(text: &str) -> &'static str {
    let starts_like_json = text.trim_start().starts_with(|c: char| {
        matches!(c, '{' | '[' | '"' | '-' | '0'..='9') || text.trim_start().starts_with("true")
    });
    if starts_like_json || ["true", "false", "null"].contains(&text.trim()) {
        ""
    } else {
        " (a JSON string needs its quotes: '\"hello\"')"
    }
}

/// What a run of emits reached.
struct Reached {
    total: u64,
    least: u64,
    most: u64,
}

async fn emit(emitter: &Emitter, args: &EmitArgs, payload: &Value) -> Result<Reached, CliError> {
    if args.wait_for > 0 {
        tokio::time::timeout(
            args.bus.timeout,
            emitter.wait_for_listeners(&args.name, args.wait_for),
        )
        .await
        .map_err(|_| {
            CliError::Timeout(format!(
                "{} listener(s) for `{}` did not appear within {:?} (found {})",
                args.wait_for,
                args.name,
                args.bus.timeout,
                emitter.listener_count(&args.name).unwrap_or(0)
            ))
        })??;
    } else {
        // A moment for the bus to say who listens; no listener is not an error.
        let _ = tokio::time::timeout(SETTLE, emitter.wait_for_listeners(&args.name, 1)).await;
    }
    let mut pace = args.rate.map(|rate| {
        let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        every
    });
    let mut reached = Reached {
        total: 0,
        least: u64::MAX,
        most: 0,
    };
    for _ in 0..args.count {
        if let Some(pace) = pace.as_mut() {
            pace.tick().await;
        }
        let delivery = emitter.emit(&args.name, payload).await?;
        let n = (delivery.local + delivery.remote) as u64;
        reached.total += n;
        reached.least = reached.least.min(n);
        reached.most = reached.most.max(n);
    }
    reached.least = reached.least.min(reached.most);
    Ok(reached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_quotes_gets_a_hint() {
        assert!(payload_hint("hello").contains("needs its quotes"));
        for json in ["{bad", "[1,", "\"x", "12x", "true", "null"] {
            assert_eq!(payload_hint(json), "", "{json}");
        }
        assert_eq!(payload(None).ok(), Some(Value::Null));
    }
}
