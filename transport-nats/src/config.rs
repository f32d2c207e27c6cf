//! [`NatsConfig`]: which servers, under which subject prefix, and the limits.

use std::time::Duration;

use crate::error::NatsError;

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
        }
    }

    /// Parses `nats://HOST:PORT[,HOST:PORT…][?prefix=NAME]`.
    ///
    /// ```
    /// use demitter_nats::NatsConfig;
    /// let config = NatsConfig::from_url("nats://10.0.0.1:4222,10.0.0.2:4222?prefix=shop")?;
    /// assert_eq!(config.servers, ["10.0.0.1:4222", "10.0.0.2:4222"]);
    /// assert_eq!(config.prefix, "shop");
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
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("prefix", prefix)) => prefix.clone_into(&mut config.prefix),
                _ => return Err(bad("its only parameter is prefix=NAME")),
            }
        }
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
        ] {
            assert!(NatsConfig::from_url(bad).is_err(), "{bad} is refused");
        }
    }
}
