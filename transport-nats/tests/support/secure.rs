//! An authenticated bus: a `demitter pki` hood, a `nats-server` with TLS that maps each
//! peer's certificate to a user allowed to publish only on its own subjects, and the
//! peers' identities.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use demitter_conformance::nats_server::NatsServer;
use demitter_nats::authorization::{ServerTls, server_config};
use demitter_nats::{NatsConfig, NatsIdentity};
use demitter_quic::pki::Hood;

/// The server certificate's name; clients reach it as 127.0.0.1.
const SERVER_NAME: &str = "nats-test";

/// A hood's files in a directory of their own, removed on drop.
#[derive(Debug)]
pub struct HoodDir {
    pub dir: PathBuf,
    pub hood: Hood,
}

impl HoodDir {
    /// A new hood with a server certificate for 127.0.0.1 and certificates for `peers`.
    pub fn create(peers: &[&str]) -> Self {
        static DIRS: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "demitter-nats-hood-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let hood = Hood::create("office").expect("a hood");
        hood.save(&dir).expect("the hood is saved");
        hood.issue_server(SERVER_NAME, &["127.0.0.1"])
            .expect("a server certificate")
            .save(&dir)
            .expect("saved");
        let hood_dir = Self { dir, hood };
        for peer in peers {
            hood_dir.add_peer(peer);
        }
        hood_dir
    }

    /// Issues and saves peer `name`'s certificate.
    pub fn add_peer(&self, name: &str) {
        self.hood
            .issue(name)
            .expect("a peer certificate")
            .save(&self.dir)
            .expect("saved");
    }

    /// The server's TLS files.
    pub fn server_tls(&self) -> ServerTls {
        ServerTls {
            cert: self.dir.join(format!("{SERVER_NAME}.crt")),
            key: self.dir.join(format!("{SERVER_NAME}.key")),
            ca_cert: self.dir.join("hood.crt"),
        }
    }

    /// Peer `name`'s identity.
    pub fn identity(&self, name: &str) -> NatsIdentity {
        NatsIdentity::in_hood(&self.dir, name)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for HoodDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server for the hood's `peers`: TLS required, each peer bound to its own subjects of
/// the tests' prefix.
pub fn start_server(hood: &HoodDir, peers: &[&str]) -> NatsServer {
    let config = server_config(super::PREFIX, &hood.server_tls(), peers).expect("a configuration");
    NatsServer::start_configured(&config)
}

/// A server that requires the hood's certificates but binds no one to their subjects.
pub fn start_server_without_permissions(hood: &HoodDir) -> NatsServer {
    let tls = hood.server_tls();
    NatsServer::start_configured(&format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n}}\n",
        tls.cert.display(),
        tls.key.display(),
        tls.ca_cert.display()
    ))
}

/// The tests' transport settings for peer `name` on the server at `addr`.
pub fn config(hood: &HoodDir, addr: &str, name: &str) -> NatsConfig {
    let mut config = super::config(addr);
    config.identity = Some(hood.identity(name));
    config
}

/// A raw client with peer `name`'s certificate.
pub async fn raw_client(
    hood: &HoodDir,
    addr: &str,
    name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let identity = hood.identity(name);
    async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(identity.ca_cert)
        .add_client_certificate(identity.cert, identity.key)
        .connect(addr)
        .await
}
