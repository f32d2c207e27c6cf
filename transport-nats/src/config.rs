//! [`NatsConfig`]: which servers, under which subject prefix, and the limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::NatsError;

/// A node's certificate and key, and the certificate authority (a `demitter pki` hood)
/// that signed them and the servers' certificates: mutual TLS to the servers.
///
/// With it the transport requires TLS, presents the certificate, takes `name` as the
/// emitter's id, checks at connect that the server refuses it a subject of another node,
/// and declares itself authenticated (see [`crate::authorization`] for the server side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsIdentity {
    /// The node's name: its certificate's name, its id on the bus.
    pub name: String,
    /// The authority's certificate (PEM), which the servers' certificates are checked
    /// against.
    pub ca_cert: PathBuf,
    /// The node's certificate (PEM).
    pub cert: PathBuf,
    /// The node's private key (PEM).
    pub key: PathBuf,
}

impl NatsIdentity {
    /// Peer `name` of the hood in `dir`, as `demitter pki` writes it: `dir/hood.crt`,
    /// `dir/NAME.crt` and `dir/NAME.key`.
    ///
    /// ```
    /// use demitter_nats::NatsIdentity;
    /// let alice = NatsIdentity::in_hood("office", "alice");
    /// assert_eq!(alice.cert, std::path::Path::new("office/alice.crt"));
    /// ```
    pub fn in_hood(dir: impl AsRef<Path>, name: &str) -> Self {
        let dir = dir.as_ref();
        Self {
            name: name.to_owned(),
            ca_cert: dir.join("hood.crt"),
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        }
    }

    /// The node id it gives, once its files are found to be there.
    pub(crate) fn check(&self) -> Result<demitter_core::NodeId, NatsError> {
        for path in [&self.ca_cert, &self.cert, &self.key] {
            std::fs::metadata(path).map_err(|source| NatsError::IdentityFile {
                path: path.clone(),
                source,
            })?;
        }
        demitter_core::NodeId::new(&self.name)
            .map_err(|_| NatsError::Config("the identity's name must be a node id"))
    }
}

/// Settings of one NATS transport. [`NatsConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The servers, `HOST:PORT` or `nats://HOST:PORT`, tried in this order (then the
    /// others the cluster names), at first and after a lost connection. Give every server
    /// of a cluster: the client learns others only when it first connects.
    pub servers: Vec<String>,
    /// The first subject token of every subject this bus uses; buses with different
    /// prefixes share a server without hearing each other. Default `demitter`.
    pub prefix: String,
    /// The largest frame sent or accepted; the server's `max_payload` lowers it. Default
    /// 8 MiB.
    pub max_frame_bytes: usize,
    /// Bytes of frames queued for the publishing task before `send` refuses more (they are
    /// dropped and reported; receivers see the gap). Default 16 MiB.
    pub send_queue_bytes: usize,
    /// Messages the client buffers for the bus subscription before the server's messages
    /// are dropped as a slow consumer (reported). Default 65,536.
    pub subscription_capacity: usize,
    /// How long connecting to one server may take. Default 5 s.
    pub connect_timeout: Duration,
    /// Mutual TLS with this node's certificate, and an authenticated bus; `None` (the
    /// default): plain TCP, unauthenticated.
    pub identity: Option<NatsIdentity>,
}

impl NatsConfig {
    /// Defaults, on `servers`.
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Self {
        Self {
            servers: servers.into_iter().map(Into::into).collect(),
            prefix: "demitter".to_owned(),
            max_frame_bytes: 8 * 1024 * 1024,
            send_queue_bytes: 16 * 1024 * 1024,
            subscription_capacity: 65_536,
            connect_timeout: Duration::from_secs(5),
            identity: None,
        }
    }

    /// Parses `nats://HOST:PORT[,HOST:PORT…][?prefix=NAME][&hood=DIR&peer=NAME]`:
    /// `hood` and `peer` (together) give the node's [`NatsIdentity`] in a `demitter pki`
    /// hood directory.
    ///
    /// ```
    /// use demitter_nats::NatsConfig;
    /// let config = NatsConfig::from_url("nats://10.0.0.1:4222,10.0.0.2:4222?prefix=shop")?;
    /// assert_eq!(config.servers, ["10.0.0.1:4222", "10.0.0.2:4222"]);
    /// assert_eq!(config.prefix, "shop");
    /// assert!(config.identity.is_none());
    /// let secure = NatsConfig::from_url("nats://10.0.0.1:4222?hood=./office&peer=alice")?;
    /// assert_eq!(secure.identity.map(|i| i.name).as_deref(), Some("alice"));
    /// # Ok::<(), demitter_nats::NatsError>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self, NatsError> {
        let bad = |reason| NatsError::Url {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("nats://")
            .ok_or_else(|| bad("it does not start with nats://"))?;
        let (hosts, query) = rest.split_once('?').unwrap_or((rest, ""));
        let servers: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if servers.is_empty() {
            return Err(bad("it names no server (nats://HOST:PORT)"));
        }
        let mut config = Self::new(servers);
        let (mut hood, mut peer) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("prefix", prefix)) => prefix.clone_into(&mut config.prefix),
                Some(("hood", dir)) if !dir.is_empty() => hood = Some(dir),
                Some(("peer", name)) if !name.is_empty() => peer = Some(name),
                _ => {
                    return Err(bad(
                        "its parameters are prefix=NAME, hood=DIR and peer=NAME (non-empty)",
                    ));
                }
            }
        }
        config.identity = match (hood, peer) {
            (Some(dir), Some(name)) => Some(NatsIdentity::in_hood(dir, name)),
            (None, None) => None,
            _ => return Err(bad("hood=DIR and peer=NAME go together")),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings can work.
    pub(crate) fn validate(&self) -> Result<(), NatsError> {
        if self.servers.is_empty() {
            return Err(NatsError::Config("no server given"));
        }
        let token_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
        if self.prefix.is_empty() || !self.prefix.bytes().all(token_ok) {
            return Err(NatsError::Config(
                "prefix must be one NATS token of letters, digits, - and _",
            ));
        }
        if self.max_frame_bytes < 1024 || self.send_queue_bytes < self.max_frame_bytes {
            return Err(NatsError::Config(
                "max_frame_bytes must be at least 1 KiB and send_queue_bytes hold one such frame",
            ));
        }
        if self.subscription_capacity == 0 || self.connect_timeout.is_zero() {
            return Err(NatsError::Config(
                "subscription_capacity and connect_timeout must be non-zero",
            ));
        }
        if let Some(identity) = &self.identity
            && demitter_core::NodeId::new(&identity.name).is_err()
        {
            return Err(NatsError::Config(
                "the identity's name must be a node id (1 to 255 bytes, no NUL)",
            ));
        }
        Ok(())
    }

    /// The servers as the client takes them.
    pub(crate) fn server_urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| {
                if s.contains("://") {
                    s.clone()
                } else {
                    format!("nats://{s}")
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_say_why_not() {
        let config = NatsConfig::from_url("nats://127.0.0.1:4222").expect("valid");
        assert_eq!(config.prefix, "demitter");
        assert_eq!(config.server_urls(), ["nats://127.0.0.1:4222"]);
        for bad in [
            "tcp://127.0.0.1:4222",
            "nats://",
            "nats://h:1?prefix=a.b",
            "nats://h:1?other=1",
            "nats://h:1?hood=office",
            "nats://h:1?peer=alice",
            "nats://h:1?hood=&peer=alice",
        ] {
            assert!(NatsConfig::from_url(bad).is_err(), "{bad} is refused");
        }
    }
}
