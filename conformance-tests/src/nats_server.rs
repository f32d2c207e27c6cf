//! A `nats-server` process for tests ([`demitter_nats::local_server`], which panics here
//! instead of returning errors). Where there is none, [`available`] prints `SKIPPED:` and
//! why; with `DEMITTER_REQUIRE_NATS` set (as `.ci/run` sets it) a missing server fails the
//! test instead, so that CI cannot pass by skipping.

use demitter_nats::local_server::LocalServer;
pub use demitter_nats::local_server::{MAX_PAYLOAD, missing};

/// Whether a server can be started here; if not, prints `SKIPPED:` and why (or panics,
/// with `DEMITTER_REQUIRE_NATS` set).
pub fn available(test: &str) -> bool {
    let Some(why) = missing() else {
        return true;
    };
    assert!(
        std::env::var_os("DEMITTER_REQUIRE_NATS").is_none(),
        "{test}: {why} (DEMITTER_REQUIRE_NATS is set, so this fails instead of skipping)"
    );
    println!("SKIPPED: {test}: {why}");
    false
}

/// A running server, killed on drop.
#[derive(Debug)]
pub struct NatsServer(LocalServer);

impl NatsServer {
    /// Starts a server on a port it picks.
    ///
    /// Panics if it cannot (call [`available`] first).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts `n` servers routed into one cluster ([`LocalServer::start_cluster`]).
    ///
    /// Panics if it cannot (call [`available`] first).
    pub fn start_cluster(n: usize) -> Vec<Self> {
        LocalServer::start_cluster(n)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(Self)
            .collect()
    }

    fn start_with(args: &[String]) -> Self {
        Self(LocalServer::start(args).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Starts a server on a port it picks, with `config` added to its configuration file
    /// (TLS and permissions, for example).
    ///
    /// Panics if it cannot (call [`available`] first).
    pub fn start_configured(config: &str) -> Self {
        Self(LocalServer::start_configured(config, &[]).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Starts a server listening on `host` (an address of this machine), on a port it picks.
    ///
    /// Panics if it cannot (call [`available`] first).
    pub fn start_at(host: &str) -> Self {
        Self(LocalServer::start_at(host, "", &[]).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Where clients connect: `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.0.addr()
    }

    /// Kills the server (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        self.0.kill();
    }

    /// Starts it again on the same port.
    pub fn start_again(&mut self) {
        self.0.start_again().unwrap_or_else(|e| panic!("{e}"));
    }
}
