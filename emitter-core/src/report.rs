//! The error channel: what went wrong in the background, with counts.
//!
//! Demitter reports such failures as `distributed:error`; here they arrive as
//! [`ErrorReport`]s on [`Emitter::errors`](crate::Emitter::errors) and as the local system
//! event [`ERROR_EVENT`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// The local system event that carries every [`ErrorReport`].
pub const ERROR_EVENT: &str = "$error";

/// What kind of failure a report describes (Demitter's kinds plus this project's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A frame or payload could not be decoded, or broke a size limit.
    Deserialization,
    /// The transport failed to send or receive; `count` frames were lost.
    Network,
    /// A listener failed (panicked) while handling an event.
    Emission,
    /// Events from one source went missing in transit: `count` were skipped.
    Gap,
    /// A listener fell behind its bounded queue and missed `count` events.
    Lagged,
    /// A peer was refused (failed authentication, not allowed, or spoofed its source).
    Refused,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Deserialization => "deserialization",
            ErrorKind::Network => "network",
            ErrorKind::Emission => "emission",
            ErrorKind::Gap => "gap",
            ErrorKind::Lagged => "lagged",
            ErrorKind::Refused => "refused",
        })
    }
}

/// One failure reported on the error channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorReport {
    /// What went wrong.
    pub kind: ErrorKind,
    /// How many events or frames it concerns (at least 1).
    pub count: u64,
    /// The peer involved, when known.
    pub peer: Option<String>,
    /// The event name or listener pattern involved, when known.
    pub event: Option<String>,
    /// A human-readable explanation.
    pub message: String,
}

impl ErrorReport {
    /// A report of `count` failures of `kind`.
    pub fn new(kind: ErrorKind, count: u64, message: impl Into<String>) -> Self {
        Self {
            kind,
            count: count.max(1),
            peer: None,
            event: None,
            message: message.into(),
        }
    }

    /// The same report, naming the peer involved.
    #[must_use]
    pub fn with_peer(mut self, peer: impl Into<String>) -> Self {
        self.peer = Some(peer.into());
        self
    }

    /// The same report, naming the event or pattern involved.
    #[must_use]
    pub fn with_event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }
}

impl fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.kind, self.count, self.message)?;
        if let Some(peer) = &self.peer {
            write!(f, " [peer {peer}]")?;
        }
        if let Some(event) = &self.event {
            write!(f, " [event {event}]")?;
        }
        Ok(())
    }
}

/// Running totals of everything reported, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// Total `count` of [`ErrorKind::Deserialization`] reports.
    pub deserialization: u64,
    /// Total `count` of [`ErrorKind::Network`] reports.
    pub network: u64,
    /// Total `count` of [`ErrorKind::Emission`] reports.
    pub emission: u64,
    /// Total `count` of [`ErrorKind::Gap`] reports: events lost in transit.
    pub gap: u64,
    /// Total `count` of [`ErrorKind::Lagged`] reports: events a slow listener missed.
    pub lagged: u64,
    /// Total `count` of [`ErrorKind::Refused`] reports.
    pub refused: u64,
    /// Events lost on the way that came back (sent again from their sender's window, with
    /// recovery on) and were delivered in order: not losses, and not in `gap`.
    pub recovered: u64,
}
