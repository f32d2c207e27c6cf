//! [`NodeId`]: who emitted an event.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::name::{short_text_problem, truncate_for_display};

/// The id of one emitter on the bus: the `source` of the events it emits.
///
/// Non-empty, at most 255 bytes, no NUL; never equal between two emitters. Transports that
/// authenticate peers (QUIC) use the peer's certificate name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Checks and wraps an id.
    pub fn new(id: &str) -> Result<Self, Error> {
        match short_text_problem(id) {
            Some(reason) => Err(Error::InvalidNodeId {
                id: truncate_for_display(id),
                reason,
            }),
            None => Ok(Self(id.into())),
        }
    }

    /// A fresh random id (`node-` and 16 hex digits).
    pub fn random() -> Self {
        Self(format!("node-{:016x}", fastrand::u64(..)).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a shared string.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:?})", &*self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for NodeId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}
