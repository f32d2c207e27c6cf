//! One item of a node's interest, typed and checked: a pattern, and what it is for —
//! listeners, one group's members, or responders. The wire carries it as an
//! [`InterestEntry`]'s `pattern` and `role`; inside the node it is this.

use std::sync::Arc;

use crate::error::Error;
use crate::name::validate_group;
use crate::pattern::Pattern;
use crate::protocol::control::Role;

/// A pattern a node has interest in, and for what.
///
/// ```
/// use demitter_core::Pattern;
/// use demitter_core::protocol::{Interest, Role};
///
/// let members = Interest::from_wire("jobs.+", &Role::Group("workers".into()))?;
/// assert_eq!(members.pattern(), &Pattern::new("jobs.+")?);
/// assert_eq!(members.group_name(), Some("workers"));
/// assert_eq!(members.role(), Role::Group("workers".into()));
/// assert!(Interest::from_wire("jobs.+", &Role::Group("a.b".into())).is_err());
/// # Ok::<(), demitter_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Interest {
    /// Listeners on the pattern.
    Listen(Pattern),
    /// Members of a listener group on the pattern.
    Group {
        /// The group's name (checked with [`validate_group`](crate::validate_group)).
        group: Arc<str>,
        /// The pattern its members here listen on.
        pattern: Pattern,
    },
    /// Responders on the pattern.
    Serve(Pattern),
}

impl Interest {
    /// Members of `group` on `pattern`.
    pub fn members(group: &str, pattern: Pattern) -> Self {
        Interest::Group {
            group: group.into(),
            pattern,
        }
    }

    /// Checks what the wire says: the pattern, and the group's name for a group.
    pub fn from_wire(pattern: &str, role: &Role) -> Result<Self, Error> {
        let pattern = Pattern::new(pattern)?;
        Ok(match role {
            Role::Listen => Interest::Listen(pattern),
            Role::Group(group) => {
                validate_group(group)?;
                Interest::members(group, pattern)
            }
            Role::Serve => Interest::Serve(pattern),
        })
    }

    /// The pattern.
    pub fn pattern(&self) -> &Pattern {
        match self {
            Interest::Listen(pattern)
            | Interest::Serve(pattern)
            | Interest::Group { pattern, .. } => pattern,
        }
    }

    /// The group, for group members.
    pub fn group_name(&self) -> Option<&str> {
        match self {
            Interest::Group { group, .. } => Some(group),
            Interest::Listen(_) | Interest::Serve(_) => None,
        }
    }

    /// What the wire calls its role.
    pub fn role(&self) -> Role {
        match self {
            Interest::Listen(_) => Role::Listen,
            Interest::Group { group, .. } => Role::Group(group.to_string()),
            Interest::Serve(_) => Role::Serve,
        }
    }
}
