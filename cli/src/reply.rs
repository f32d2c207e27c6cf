//! `demitter reply PATTERN JSON`: answers every request for a name matching PATTERN with
//! the same JSON value, printing each request it answers as a JSON line.

use demitter::{Event, Pattern, RawPayload};
use tokio::sync::mpsc;

use crate::bus::BusArgs;
use crate::emit::payload;
use crate::error::CliError;
use crate::tap::{event_json, print_line};

/// What to answer, and where.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplyArgs {
    /// The requests to answer: a name or a pattern (`stock.+`, `#`).
    pattern: String,
    /// The answer to every request, as JSON; `-` reads it from standard input; without it,
    /// null.
    json: Option<String>,
    /// Stop after answering this many requests.
    #[arg(short = 'n', long)]
    count: Option<u64>,
    #[command(flatten)]
    bus: BusArgs,
}

pub(crate) async fn run(args: ReplyArgs) -> Result<(), CliError> {
    let pattern = Pattern::new(&args.pattern)?;
    let answer = payload(args.json.as_deref())?;
    let emitter = args.bus.connect().await?.emitter;
    let (served_tx, mut served) = mpsc::unbounded_channel();
    let responder = emitter.serve(pattern.as_str(), move |request: Event<RawPayload>| {
        let (answer, served_tx) = (answer.clone(), served_tx.clone());
        async move {
            let _ = served_tx.send(request);
            Ok::<_, String>(answer)
        }
    });
    let result = match responder {
        Ok(_responder) => serve(&args, &mut served).await,
        Err(e) => Err(e.into()),
    };
    emitter.close().await;
    result
}

async fn serve(
    args: &ReplyArgs,
    served: &mut mpsc::UnboundedReceiver<Event<RawPayload>>,
) -> Result<(), CliError> {
    eprintln!("answering `{}` at {}", args.pattern, args.bus.url);
    let mut answered = 0u64;
    if args.count == Some(0) {
        return Ok(());
    }
    loop {
        let request = tokio::select! {
            request = served.recv() => request,
            stop = tokio::signal::ctrl_c() => {
                stop.map_err(CliError::io("listening for Ctrl-C"))?;
                return Ok(());
            }
        };
        let Some(request) = request else {
            return Ok(());
        };
        print_line(&event_json(&request, false)?)?;
        answered += 1;
        if args.count.is_some_and(|n| answered >= n) {
            return Ok(());
        }
    }
}
