//! `demitter emit NAME JSON`: one event, and how many listeners it reached.

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
    /// The payload as JSON (`'{"id": 7}'`, `'"text"'`, `42`); `-` or nothing reads it from
    /// standard input.
    json: Option<String>,
    /// Wait until at least this many listeners are known on the bus before emitting (an
    /// error if they do not appear within --timeout). Without it, emit waits up to a second
    /// for the first listener.
    #[arg(long, default_value_t = 0)]
    wait_for: usize,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: EmitArgs) -> Result<(), CliError> {
    let text = match args.json.as_deref() {
        Some(text) if text != "-" => text.to_owned(),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(CliError::io("reading the payload from stdin"))?;
            text
        }
    };
    let payload: Value = serde_json::from_str(&text)?;
    let emitter = args.bus.connect().await?;
    let result = emit(&emitter, &args, &payload).await;
    emitter.close().await;
    let reached = result?;
    println!(
        "reached {reached} listener{}",
        if reached == 1 { "" } else { "s" }
    );
    Ok(())
}

async fn emit(emitter: &Emitter, args: &EmitArgs, payload: &Value) -> Result<usize, CliError> {
    if args.wait_for > 0 {
        tokio::time::timeout(
            args.bus.timeout(),
            emitter.wait_for_listeners(&args.name, args.wait_for),
        )
        .await
        .map_err(|_| {
            CliError::Timeout(format!(
                "{} listener(s) for `{}` did not appear within {:?} (found {})",
                args.wait_for,
                args.name,
                args.bus.timeout(),
                emitter.listener_count(&args.name).unwrap_or(0)
            ))
        })??;
    } else {
        // A moment for the bus to say who listens; no listener is not an error.
        let _ = tokio::time::timeout(SETTLE, emitter.wait_for_listeners(&args.name, 1)).await;
    }
    let delivery = emitter.emit(&args.name, payload).await?;
    Ok(delivery.local + delivery.remote)
}
