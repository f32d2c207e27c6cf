//! `demitter emit NAME [JSON]`: one event (or `--count` of them at `--rate`, or one per
//! line of standard input), and how many listeners it reached; with `--retain`, the value
//! stays on the bus as the name's last value until the command is stopped.

use std::time::Duration;

use std::io::Read as _;

use demitter::Emitter;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines, Stdin};

use crate::bus::BusArgs;
use crate::error::CliError;

/// What to emit, and where.
#[derive(Debug, clap::Args)]
pub(crate) struct EmitArgs {
    /// The event's name, for example `user.login`.
    name: String,
    /// The payload as JSON (`'{"id": 7}'`, `'"text"'` with its quotes, `42`); `-` reads
    /// standard input, one JSON document per line until it ends, and emits each; without
    /// it the payload is null.
    json: Option<String>,
    /// Wait until at least N listeners are known on the bus before emitting (an error if
    /// they do not appear within --timeout). Without it, emit waits until it has heard
    /// every node on the bus (at most --timeout), and emits to whoever listens then.
    #[arg(long, value_name = "N")]
    wait_for: Option<usize>,
    /// Emit the event this many times (each gets its own sequence number); with `-`, each
    /// line this many times.
    #[arg(short = 'n', long, default_value_t = 1)]
    count: u64,
    /// Events per second when there are more than one (default: as fast as possible).
    #[arg(short, long, value_name = "PER_SECOND", value_parser = crate::seconds::parse_rate)]
    rate: Option<f64>,
    /// Keep the (last) payload as the name's retained value (`emit_retained`), then stay on
    /// the bus holding it until stopped (Ctrl-C): a value lives as long as its node, and
    /// `demitter tap --last` shows it.
    #[arg(long)]
    retain: bool,
    #[command(flatten)]
    bus: BusArgs,
}

/// Where the payloads come from: the command line (or nothing), or standard input.
enum Payloads {
    /// One payload, emitted `--count` times.
    One(Value),
    /// One payload a line, read as they come.
    Lines {
        lines: Lines<BufReader<Stdin>>,
        number: u64,
    },
}

impl Payloads {
    fn new(json: Option<&str>) -> Result<Self, CliError> {
        Ok(match json {
            Some("-") => Self::Lines {
                lines: BufReader::new(tokio::io::stdin()).lines(),
                number: 0,
            },
            other => Self::One(payload(other)?),
        })
    }

    /// The next line's payload (blank lines skipped); `None` at the end of the input.
    async fn next_line(&mut self, emitted: u64) -> Result<Option<Value>, CliError> {
        let Self::Lines { lines, number } = self else {
            return Ok(None);
        };
        loop {
            let Some(line) = lines
                .next_line()
                .await
                .map_err(CliError::io("reading standard input"))?
            else {
                return Ok(None);
            };
            *number += 1;
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&line)
                .map(Some)
                .map_err(|source| CliError::PayloadLine {
                    line: *number,
                    source,
                    emitted,
                });
        }
    }
}

pub(crate) async fn run(args: EmitArgs) -> Result<(), CliError> {
    demitter::validate_user_name(&args.name)?;
    // A payload on the command line is checked before joining, so a typo is said first.
    let mut payloads = Payloads::new(args.json.as_deref())?;
    let emitter = args.bus.connect().await?.emitter;
    let mut reached = Reached::default();
    let mut result = emit_all(&emitter, &args, &mut payloads, &mut reached).await;
    if result.is_ok() {
        println!("{}", reached.describe());
        if args.retain {
            eprintln!(
                "holding `{}` as its retained value until stopped (Ctrl-C)",
                args.name
            );
            crate::interrupt::requested().await;
        }
    } else if let Err(CliError::Interrupted(signal)) = &result {
        result = Err(CliError::Interrupted(
            reached.interrupted(signal, &payloads, &args),
        ));
    }
    emitter.close().await;
    result
}

/// The payload the command line gives: JSON, standard input as one JSON document for
/// `-` (`request` and `reply`; `emit` reads a document a line), null for nothing.
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

/// What the emits reached so far.
#[derive(Debug, Default)]
struct Reached {
    emits: u64,
    total: u64,
    least: Option<u64>,
    most: u64,
    /// The most peers not heard yet at an emit (at least 1 when the bus was not heard in
    /// full): the counts may miss their listeners.
    unheard: u64,
}

impl Reached {
    /// One more emit, which reached `n` listeners.
    fn add(&mut self, n: u64) {
        self.emits += 1;
        self.total += n;
        self.least = Some(self.least.map_or(n, |least| least.min(n)));
        self.most = self.most.max(n);
    }

    /// `reached 1 listener`, or for several emits `emitted 3 events: reached …`; said to
    /// be a lower bound when the bus was not heard in full.
    fn describe(&self) -> String {
        let counts = self.counts();
        if self.unheard == 0 {
            return counts;
        }
        format!(
            "{counts} as far as known: the bus was not heard in full ({} peer{} not heard)",
            self.unheard,
            if self.unheard == 1 { "" } else { "s" }
        )
    }

    fn counts(&self) -> String {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        if self.emits == 1 {
            format!("reached {} listener{}", self.total, plural(self.total))
        } else {
            format!(
                "emitted {} event{}: reached {} listener{} in all ({} to {} each)",
                self.emits,
                plural(self.emits),
                self.total,
                plural(self.total),
                self.least.unwrap_or(0),
                self.most
            )
        }
    }

    /// What had been done when `signal` came: `by SIGINT after 312 of 1000 events: …`.
    fn interrupted(&self, signal: &str, payloads: &Payloads, args: &EmitArgs) -> String {
        let of = match payloads {
            Payloads::One(_) => format!(" of {}", args.count),
            Payloads::Lines { .. } => String::new(),
        };
        format!(
            "by {signal} after {}{of} events: reached {} listener{} in all",
            self.emits,
            self.total,
            if self.total == 1 { "" } else { "s" }
        )
    }
}

async fn emit_all(
    emitter: &Emitter,
    args: &EmitArgs,
    payloads: &mut Payloads,
    reached: &mut Reached,
) -> Result<(), CliError> {
    tokio::select! {
        result = emit_each(emitter, args, payloads, reached) => result,
        signal = crate::interrupt::requested() => Err(CliError::Interrupted(signal.to_owned())),
    }
}

async fn emit_each(
    emitter: &Emitter,
    args: &EmitArgs,
    payloads: &mut Payloads,
    reached: &mut Reached,
) -> Result<(), CliError> {
    wait_for_listeners(emitter, args).await?;
    let mut pace = args.rate.map(|rate| {
        let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        every
    });
    loop {
        let payload = match payloads {
            Payloads::One(value) if reached.emits == 0 => value.clone(),
            Payloads::One(_) => return Ok(()),
            Payloads::Lines { .. } => match payloads.next_line(reached.emits).await? {
                Some(value) => value,
                None => return Ok(()),
            },
        };
        for _ in 0..args.count {
            if let Some(pace) = pace.as_mut() {
                pace.tick().await;
            }
            let delivery = if args.retain {
                emitter.emit_retained(&args.name, &payload).await?
            } else {
                emitter.emit(&args.name, &payload).await?
            };
            reached.add(delivery.total() as u64);
            if !delivery.ready {
                reached.unheard = reached.unheard.max(delivery.unheard as u64).max(1);
            }
        }
        if args.count == 0 {
            return Ok(());
        }
    }
}

/// Waits until the bus is heard (not hearing it in --timeout is said with the count, not
/// an error), then for `--wait-for` listeners within what is left of --timeout.
async fn wait_for_listeners(emitter: &Emitter, args: &EmitArgs) -> Result<(), CliError> {
    let start = tokio::time::Instant::now();
    let _ = tokio::time::timeout(args.bus.timeout, emitter.ready()).await;
    let Some(wanted) = args.wait_for else {
        return Ok(());
    };
    tokio::time::timeout_at(
        start + args.bus.timeout,
        emitter.wait_for_listeners(&args.name, wanted),
    )
    .await
    .map_err(|_| {
        CliError::Timeout(format!(
            "{wanted} listener(s) for `{}` did not appear within {:?} (found {})",
            args.name,
            args.bus.timeout,
            emitter.listener_count(&args.name).unwrap_or(0)
        ))
    })??;
    Ok(())
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

    #[test]
    fn what_was_reached_is_said_for_one_emit_and_for_many() {
        let mut reached = Reached::default();
        reached.add(1);
        assert_eq!(reached.describe(), "reached 1 listener");
        reached.add(3);
        assert_eq!(
            reached.describe(),
            "emitted 2 events: reached 4 listeners in all (1 to 3 each)"
        );
        reached.unheard = 2;
        assert!(
            reached
                .describe()
                .ends_with("as far as known: the bus was not heard in full (2 peers not heard)"),
            "{}",
            reached.describe()
        );
    }
}
