//! `demitter request NAME [JSON]`: one request to one responder on the bus, and its reply
//! on stdout as JSON.

use std::time::Duration;

use demitter::{Error, RawPayload};
use serde_json::Value;

use crate::bus::BusArgs;
use crate::emit::payload;
use crate::error::CliError;

/// What to ask, and where.
#[derive(Debug, clap::Args)]
pub(crate) struct RequestArgs {
    /// The request's name, for example `stock.count`.
    name: String,
    /// The request as JSON (`'"apples"'`, `'{"id": 7}'`); `-` reads it from standard input;
    /// without it, null.
    json: Option<String>,
    /// Seconds to wait for the reply once the request is sent.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = crate::seconds::parse)]
    reply_timeout: Duration,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: RequestArgs) -> Result<(), CliError> {
    demitter::validate_user_name(&args.name)?;
    let query = payload(args.json.as_deref())?;
    let emitter = args.bus.connect().await?.emitter;
    // Cut short by a signal, it still leaves the bus, and says what it was waiting for.
    let result = tokio::select! {
        result = request(&emitter, &args, &query) => result,
        signal = crate::interrupt::requested() => Err(CliError::Interrupted(format!(
            "by {signal} while waiting for a reply to `{}`",
            args.name
        ))),
    };
    emitter.close().await;
    let reply = result?;
    println!("{}", serde_json::to_string(&reply)?);
    Ok(())
}

async fn request(
    emitter: &demitter::Emitter,
    args: &RequestArgs,
    query: &Value,
) -> Result<Value, CliError> {
    // A node that just joined learns of the responders as the bus tells it: once it has
    // heard the bus it knows them all; a responder still on its way gets what is left of
    // --timeout.
    let start = tokio::time::Instant::now();
    let _ = tokio::time::timeout(args.bus.timeout, emitter.ready()).await;
    let known = tokio::time::timeout_at(
        start + args.bus.timeout,
        emitter.wait_for_responders(&args.name, 1),
    )
    .await;
    if known.is_err() {
        return Err(CliError::Request(Error::NoResponder {
            name: args.name.clone(),
        }));
    }
    let reply = emitter
        .request::<_, RawPayload>(&args.name, query, args.reply_timeout)
        .await
        .map_err(CliError::Request)?;
    eprintln!("reply from {}", reply.source);
    reply.data.decode::<Value>().map_err(CliError::Request)
}
