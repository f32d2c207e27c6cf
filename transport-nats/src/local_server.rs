//! A local `nats-server` process, for demos, benchmarks and tests: `$NATS_SERVER` or
//! `nats-server` on PATH, on loopback, on a free port it picks and says, waited for until
//! it is ready, killed when dropped.
//!
//! ```no_run
//! use demitter_nats::local_server::LocalServer;
//! let server = LocalServer::start(&[])?;
//! println!("connect to {}", server.url());
//! # Ok::<(), demitter_nats::NatsError>(())
//! ```

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::NatsError;

/// How long a server may take to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The largest payload a local server takes: the core's frame limit (NATS's default is
/// 1 MB).
pub const MAX_PAYLOAD: usize = demitter_core::DEFAULT_MAX_FRAME_BYTES;

/// The server binary: `$NATS_SERVER`, else `nats-server`.
pub fn binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned())
}

/// Why no server can be started here, if none can: the reason and how to get one.
pub fn missing() -> Option<String> {
    let why = match Command::new(binary()).arg("--version").output() {
        Ok(out) if out.status.success() => return None,
        Ok(out) => format!("`{} --version` failed ({})", binary(), out.status),
        Err(e) => format!("no NATS server (`{}`: {e})", binary()),
    };
    Some(format!(
        "{why}; `apt-get install nats-server`, or set NATS_SERVER to a server binary"
    ))
}

/// The name the servers of [`LocalServer::start_cluster`] share.
const CLUSTER_NAME: &str = "demitter";

/// A running local server.
#[derive(Debug)]
pub struct LocalServer {
    child: Option<Child>,
    host: String,
    port: u16,
    route_port: Option<u16>,
    /// The arguments beside the address and port (the configuration file, `args`).
    args: Vec<String>,
    config: PathBuf,
}

impl LocalServer {
    /// Starts a server with these extra arguments (for example `--cluster …`), taking up
    /// to [`MAX_PAYLOAD`] a message. Blocks until it is ready (at most
    /// [`READY_TIMEOUT`]).
    pub fn start(args: &[String]) -> Result<Self, NatsError> {
        Self::start_configured("", args)
    }

    /// Starts a server as [`start`](Self::start) does, with `config` added to its
    /// configuration file (for example [`server_config`](crate::authorization::server_config)'s
    /// TLS and permissions).
    pub fn start_configured(config: &str, args: &[String]) -> Result<Self, NatsError> {
        Self::start_at("127.0.0.1", config, args)
    }

    /// Starts a server as [`start_configured`](Self::start_configured) does, listening on
    /// `host` (an address of this machine) instead of loopback.
    pub fn start_at(host: &str, config: &str, args: &[String]) -> Result<Self, NatsError> {
        static SERVERS: AtomicUsize = AtomicUsize::new(0);
        if let Some(why) = missing() {
            return Err(NatsError::ServerMissing(why));
        }
        let extra = config;
        let config = std::env::temp_dir().join(format!(
            "demitter-nats-{}-{}.conf",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&config, format!("max_payload: {MAX_PAYLOAD}\n{extra}")).map_err(
            |source| NatsError::ServerStart {
                binary: binary(),
                source,
            },
        )?;
        let mut all = vec!["-c".to_owned(), config.display().to_string()];
        all.extend_from_slice(args);
        let mut server = Self {
            child: None,
            host: host.to_owned(),
            port: 0,
            route_port: None,
            args: all,
            config,
        };
        server.spawn(None)?;
        Ok(server)
    }

    /// Starts `n` servers routed into one cluster (named `demitter`), each on ports it
    /// picks: the first listens for routes, the others route to it (and learn each other
    /// from it), so clients of any of them reach clients of all.
    pub fn start_cluster(n: usize) -> Result<Vec<Self>, NatsError> {
        let route = |extra: &[String]| {
            let mut args = vec![
                "--cluster".to_owned(),
                "nats://127.0.0.1:-1".to_owned(),
                "--cluster_name".to_owned(),
                CLUSTER_NAME.to_owned(),
            ];
            args.extend_from_slice(extra);
            args
        };
        let first = Self::start(&route(&[]))?;
        let Some(route_port) = first.route_port() else {
            return Err(NatsError::ServerStart {
                binary: binary(),
                source: std::io::Error::other("the server did not say where it listens for routes"),
            });
        };
        let seed = vec![
            "--routes".to_owned(),
            format!("nats://127.0.0.1:{route_port}"),
        ];
        let mut servers = vec![first];
        for _ in 1..n {
            servers.push(Self::start(&route(&seed))?);
        }
        Ok(servers)
    }

    /// Where clients connect: `HOST:PORT` (`127.0.0.1:PORT` unless started elsewhere).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The URL clients connect with: `nats://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr())
    }

    /// Where it listens for routes from other servers, when started with `--cluster`.
    pub fn route_port(&self) -> Option<u16> {
        self.route_port
    }

    /// Kills the server (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (killing it first if it runs).
    pub fn start_again(&mut self) -> Result<(), NatsError> {
        self.kill();
        self.spawn(Some(self.port))
    }

    /// Starts the process on `port` (or one it picks, `-p -1`) and waits for it to say it
    /// is ready (and, with `--cluster`, where it listens for routes).
    fn spawn(&mut self, port: Option<u16>) -> Result<(), NatsError> {
        let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let clustered = self.args.iter().any(|a| a == "--cluster");
        let mut child = Command::new(binary())
            .args(&self.args)
            .args(["-a", &self.host, "-p", &port_arg])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NatsError::ServerStart {
                binary: binary(),
                source,
            })?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            return Err(NatsError::ServerStart {
                binary: binary(),
                source: std::io::Error::other("no standard error to read"),
            });
        };
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end even once nobody listens, so the server never blocks on a
            // full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        let port_after = |line: &str, what: &str| {
            line.split(what)
                .nth(1)
                .and_then(|at| at.trim().rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok())
        };
        let (mut bound, mut route_port, mut ready) = (None, None, false);
        while !(ready && bound.is_some() && (route_port.is_some() || !clustered)) {
            let Ok(line) = lines.recv_timeout(READY_TIMEOUT) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NatsError::ServerNotReady {
                    binary: binary(),
                    waited: READY_TIMEOUT,
                });
            };
            bound = bound.or_else(|| port_after(&line, "Listening for client connections on "));
            route_port =
                route_port.or_else(|| port_after(&line, "Listening for route connections on "));
            ready |= line.contains("Server is ready");
        }
        self.port = bound.unwrap_or_default();
        self.route_port = route_port;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.config);
    }
}
