//! SIGINT and SIGTERM, one convention for every command on a bus: the first signal asks
//! the command to stop ([`requested`]); it leaves the bus and ends — with 0 if it runs
//! until stopped (`tap`, `reply`, `listeners --watch`, `peers --watch`, `demo`,
//! `emit --retain`), with 130 and what it had done if it was cut short (`emit -n`,
//! `request`, `bench`, any command still joining). A second signal ends the process at
//! once, with 130.

use std::sync::OnceLock;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::CliError;

/// The exit status of a command cut short by a signal (128 + SIGINT, as shells report it).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// The signal that asked to stop, once one has.
static STOP: OnceLock<watch::Sender<Option<&'static str>>> = OnceLock::new();

/// From now on, SIGINT and SIGTERM ask the command to stop instead of ending the process.
/// Call within the runtime, before the command starts.
pub(crate) fn listen() -> Result<(), CliError> {
    let handler = |name: &'static str, kind: SignalKind| {
        signal(kind).map_err(CliError::io(format!("listening for {name}")))
    };
    let mut interrupt = handler("SIGINT", SignalKind::interrupt())?;
    let mut terminate = handler("SIGTERM", SignalKind::terminate())?;
    let stop = STOP.get_or_init(|| watch::channel(None).0).clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = interrupt.recv() => "SIGINT",
                Some(()) = terminate.recv() => "SIGTERM",
                else => return,
            };
            if stop.borrow().is_some() {
                eprintln!("{name} again: ending at once");
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
            stop.send_replace(Some(name));
        }
    });
    Ok(())
}

/// Resolves once a signal has asked to stop (at once if one already has), with its name;
/// never if [`listen`] was not called.
pub(crate) async fn requested() -> &'static str {
    let Some(stop) = STOP.get() else {
        return std::future::pending().await;
    };
    let mut asked = stop.subscribe();
    loop {
        if let Some(name) = *asked.borrow_and_update() {
            return name;
        }
        if asked.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}
