//! `demitter-instructions SCENARIO EVENTS`: runs one hot path for EVENTS events on one
//! thread, for `valgrind --tool=callgrind` to count its instructions (see
//! `benches/count-instructions.sh`, which runs it twice and takes the difference, so that
//! set-up and tear-down cancel out).
//!
//! Scenarios: `emit` (in-process emit to one listener), `receive` (the receive path into
//! one stream). A third argument, `recovery=on` or `recovery=off`, sets the emitters'
//! recovery ([`RecoveryConfig::ON`] or [`RecoveryConfig::OFF`]; else the default).

use std::process::ExitCode;

use demitter_benches::BenchError;
use demitter_benches::hot_path::{EmitToListeners, ReceiveIntoStream};
use demitter_core::EmitterConfig;
use demitter_core::node::RecoveryConfig;

async fn run(scenario: &str, events: u64, config: EmitterConfig) -> Result<(), BenchError> {
    match scenario {
        "emit" => {
            let path = EmitToListeners::with_config(1, config)?;
            path.run(events).await?;
            if path.seen() != events {
                return Err(BenchError::Setup(format!(
                    "the listener ran {} times for {events} events",
                    path.seen()
                )));
            }
            path.close().await;
        }
        "receive" => {
            let mut path = ReceiveIntoStream::with_config(config)?;
            path.run(events).await?;
            path.close().await;
        }
        other => {
            return Err(BenchError::Setup(format!(
                "unknown scenario `{other}`: emit or receive"
            )));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(scenario), Some(Ok(events))) = (args.first(), args.get(1).map(|n| n.parse())) else {
        eprintln!("usage: demitter-instructions emit|receive EVENTS [recovery=on|off]");
        return ExitCode::from(2);
    };
    let recovery = match args.get(2).map(String::as_str) {
        None => EmitterConfig::default().recovery,
        Some("recovery=on") => RecoveryConfig::ON,
        Some("recovery=off") => RecoveryConfig::OFF,
        Some(other) => {
            eprintln!("unknown setting `{other}`: recovery=on or recovery=off");
            return ExitCode::from(2);
        }
    };
    let config = EmitterConfig {
        recovery,
        ..EmitterConfig::default()
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(scenario, events, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
