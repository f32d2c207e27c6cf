//! `demitter reply PATTERN [JSON]`: answers every request for a name matching PATTERN with
//! the same JSON value, or with what a command prints for it (`--command`), printing each
//! request it answers as a JSON line. It runs until stopped (or `--count` answers).

use std::process::Stdio;

use demitter::{Event, Pattern, RawPayload};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use crate::bus::BusArgs;
use crate::emit::payload;
use crate::error::CliError;
use crate::tap::{event_json, print_line};

/// What to answer, and where.
#[derive(Debug, clap::Args)]
// clap prints these comments as `--help`; backticks would show there literally.
#[allow(clippy::doc_markdown)]
pub(crate) struct ReplyArgs {
    /// The requests to answer: a name or a pattern (`stock.+`, `#`).
    pattern: String,
    /// The answer to every request, as JSON; `-` reads it from standard input; without it,
    /// null.
    #[arg(conflicts_with = "command")]
    json: Option<String>,
    /// Answer each request by running CMD (with `sh -c`): the request's JSON on its
    /// standard input, DEMITTER_REQUEST_NAME and DEMITTER_REQUEST_SOURCE in its
    /// environment, and its standard output (JSON; nothing is null) the reply. A command
    /// that exits non-zero, or prints what is not JSON, fails the request (the requester
    /// gets `ResponderFailed`, with the command's standard error).
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
    /// Stop after answering this many requests.
    #[arg(short = 'n', long)]
    count: Option<u64>,
    #[command(flatten)]
    bus: BusArgs,
}

/// How each request is answered.
#[derive(Debug, Clone)]
enum Answer {
    /// The same value every time.
    Value(Value),
    /// What a shell command prints.
    Command(String),
}

impl Answer {
    async fn to(&self, request: &Event<RawPayload>) -> Result<Value, String> {
        match self {
            Self::Value(value) => Ok(value.clone()),
            Self::Command(command) => run_command(command, request).await,
        }
    }
}

pub(crate) async fn run(args: ReplyArgs) -> Result<(), CliError> {
    let pattern = Pattern::new(&args.pattern)?;
    let answer = match &args.command {
        Some(command) => Answer::Command(command.clone()),
        None => Answer::Value(payload(args.json.as_deref())?),
    };
    let emitter = args.bus.connect().await?.emitter;
    let (served_tx, mut served) = mpsc::unbounded_channel();
    let responder = emitter.serve(pattern.as_str(), move |request: Event<RawPayload>| {
        let (answer, served_tx) = (answer.clone(), served_tx.clone());
        async move {
            // Said as it arrives, before a command takes its time over it.
            let _ = served_tx.send(request.clone());
            answer.to(&request).await
        }
    });
    let result = match responder {
        Ok(_responder) => serve(&args, &mut served).await,
        Err(e) => Err(e.into()),
    };
    emitter.close().await;
    result
}

/// Runs `command` for `request`: its JSON in, the reply's JSON out.
async fn run_command(command: &str, request: &Event<RawPayload>) -> Result<Value, String> {
    let input = request
        .data
        .decode::<Value>()
        .map_err(|e| format!("the request is not JSON-shaped: {e}"))?
        .to_string();
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", command])
        .env("DEMITTER_REQUEST_NAME", &*request.name)
        .env("DEMITTER_REQUEST_SOURCE", request.source.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not run `{command}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input closes it early: not a failure.
        let _ = stdin.write_all(input.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("`{command}` could not be waited for: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "`{command}` failed ({}): {}",
            output.status,
            stderr.trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&stdout).map_err(|e| {
        format!(
            "`{command}` printed what is not JSON ({e}): {}",
            stdout.trim()
        )
    })
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
            // Replying runs until stopped: a signal is its ordinary end.
            _ = crate::interrupt::requested() => return Ok(()),
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
