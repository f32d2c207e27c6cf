//! Log lines on stderr: `warn` and worse by default, `DEMITTER_LOG` says otherwise; colour
//! only on a terminal.

use std::io::IsTerminal as _;

/// The environment variable that sets what is logged (tracing's filter syntax).
pub(crate) const LOG_VARIABLE: &str = "DEMITTER_LOG";

/// Logs to stderr. Without `DEMITTER_LOG`, `default` is the filter. Colour codes only go to
/// a terminal, never into a redirected log.
pub(crate) fn init(default: &str) {
    let filter = std::env::var(LOG_VARIABLE).unwrap_or_else(|_| default.to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The default filter for commands on a bus: they print the error channel themselves
/// (`tap` as `$error` lines on stdout, the others as `warning:` lines on stderr), so the
/// core's own log line for each report would say it twice. The DHT library's own lines are
/// off too: what an operator must know of the DHT (it cannot be joined) is a report.
pub(crate) const WITHOUT_REPORT_LINES: &str =
    "warn,demitter_core::emitter::errors=off,mainline=off";
