//! The server side of an authenticated bus: a `nats-server` configuration that requires
//! TLS with client certificates of one `demitter pki` hood, maps each certificate to a
//! user, and lets each user publish only on the subjects that carry its own name.
//!
//! A node's subjects ([`crate::subject`]) carry the sender's id as their third token, so
//! that one rule per node says what it may publish:
//!
//! ```text
//! publish   PREFIX.e.ID.>   PREFIX.c.ID   PREFIX.c.ID.*
//!           (its events and their marks, its control frames, those for one peer)
//! subscribe PREFIX.>          (the control subjects, and its patterns' event subjects)
//! ```
//!
//! The server finds a certificate's user by its subject alternative names and then its
//! subject (`verify_and_map`); a `demitter pki peer` certificate names the peer in both.
//! A client without a certificate of the hood, or whose certificate names no user, is
//! refused. With that in force, the subject a message arrives on proves who sent it, and
//! the transport hands that name to the core, which drops a frame claiming another source.
//!
//! ```
//! use demitter_nats::authorization::{ServerTls, server_config};
//! let tls = ServerTls {
//!     cert: "hood/nats-1.crt".into(),
//!     key: "hood/nats-1.key".into(),
//!     ca_cert: "hood/hood.crt".into(),
//! };
//! let config = server_config("demitter", &tls, &["alice", "bob"])?;
//! assert!(config.contains("verify_and_map: true"));
//! assert!(config.contains(
//!     r#"publish: { allow: ["demitter.e.alice.>", "demitter.c.alice", "demitter.c.alice.*"] }"#
//! ));
//! # Ok::<(), demitter_nats::NatsError>(())
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::error::NatsError;
use crate::subject;

/// The server's own certificate and key (one `demitter pki server` issues, naming the
/// hosts clients connect to), and the hood's certificate that client certificates must
/// be signed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The hood's certificate (PEM).
    pub ca_cert: PathBuf,
}

/// The subjects node `name` may publish on, under `prefix`: its events, its control
/// frames, and its control frames for one peer.
///
/// ```
/// use demitter_nats::authorization::publish_subjects;
/// assert_eq!(
///     publish_subjects("demitter", "shop-1"),
///     ["demitter.e.shop-1.>", "demitter.c.shop-1", "demitter.c.shop-1.*"]
/// );
/// ```
pub fn publish_subjects(prefix: &str, name: &str) -> [String; 3] {
    let id = subject::escape_segment(name);
    [
        format!("{prefix}.e.{id}.>"),
        format!("{prefix}.c.{id}"),
        format!("{prefix}.c.{id}.*"),
    ]
}

/// The `tls` and `authorization` blocks of a `nats-server` configuration for a bus
/// under `prefix` whose nodes are `peers` (their certificate names). Add `listen`,
/// `cluster` and the rest as usual; give servers of one cluster the same blocks.
///
/// Errors if a name is not a node id.
pub fn server_config(prefix: &str, tls: &ServerTls, peers: &[&str]) -> Result<String, NatsError> {
    let mut config = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        config,
        "tls {{\n  cert_file: {}\n  key_file: {}\n  ca_file: {}\n  verify_and_map: true\n}}",
        quoted(&tls.cert.display().to_string()),
        quoted(&tls.key.display().to_string()),
        quoted(&tls.ca_cert.display().to_string()),
    );
    config.push_str("authorization {\n  users = [\n");
    for name in peers {
        if demitter_core::NodeId::new(name).is_err() {
            return Err(NatsError::Config(
                "every peer name must be a node id (1 to 255 bytes, no NUL)",
            ));
        }
        let publish: Vec<String> = publish_subjects(prefix, name)
            .iter()
            .map(|s| quoted(s))
            .collect();
        let _ = writeln!(
            config,
            "    {{ user: {}, permissions: {{ publish: {{ allow: [{}] }}, subscribe: {{ allow: [{}] }} }} }}",
            quoted(name),
            publish.join(", "),
            quoted(&format!("{prefix}.>")),
        );
    }
    config.push_str("  ]\n}\n");
    Ok(config)
}

/// A string as the server's configuration reads it: in double quotes, with `"` and `\`
/// escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_subjects_and_quoted_in_the_file() {
        assert_eq!(
            publish_subjects("p", "a.b c"),
            ["p.e.a~2Eb~20c.>", "p.c.a~2Eb~20c", "p.c.a~2Eb~20c.*"]
        );
        let tls = ServerTls {
            cert: "dir \"x\"/s.crt".into(),
            key: "s.key".into(),
            ca_cert: "hood.crt".into(),
        };
        let config = server_config("p", &tls, &["a.b"]).expect("valid");
        assert!(
            config.contains(r#"cert_file: "dir \"x\"/s.crt""#),
            "{config}"
        );
        assert!(config.contains(r#"user: "a.b""#), "{config}");
        assert!(server_config("p", &tls, &[""]).is_err());
    }
}
