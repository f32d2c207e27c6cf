//! A `nats-server` process for tests: `$NATS_SERVER` or `nats-server` on PATH, on a free
//! loopback port (the server picks it and says which), waited for until ready, killed on
//! drop. Where there is none, [`available`] prints `SKIPPED:` and why; with
//! `DEMITTER_REQUIRE_NATS` set (as `.ci/run` sets it) a missing server fails the test
//! instead, so that CI cannot pass by skipping.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The server binary: `$NATS_SERVER`, else `nats-server`.
fn binary() -> String {
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

/// The largest payload the test servers take (NATS's default is 1 MB, below the 1 MiB
/// event of the conformance suite).
pub const MAX_PAYLOAD: usize = 8 * 1024 * 1024;

/// A running server.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    /// The arguments beside the port (the configuration file, cluster settings).
    args: Vec<String>,
    config: PathBuf,
}

/// The name the test clusters' servers share.
const CLUSTER_NAME: &str = "demitter";

impl NatsServer {
    /// Starts a server on a port it picks.
    ///
    /// Panics if it cannot (call [`available`] first).
    pub fn start() -> Self {
        Self::start_with(Vec::new()).0
    }

    /// Starts `n` servers routed into one cluster, each on ports it picks: the first
    /// listens for routes, the others route to it (and learn each other from it).
    /// Clients of any of them reach clients of all.
    ///
    /// Panics if it cannot (call [`available`] first).
    pub fn start_cluster(n: usize) -> Vec<Self> {
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
        let (first, route_port) = Self::start_with(route(&[]));
        let route_port = route_port.expect("the first server says where it listens for routes");
        let seed = vec![
            "--routes".to_owned(),
            format!("nats://127.0.0.1:{route_port}"),
        ];
        let mut servers = vec![first];
        for _ in 1..n {
            servers.push(Self::start_with(route(&seed)).0);
        }
        servers
    }

    fn start_with(mut args: Vec<String>) -> (Self, Option<u16>) {
        static SERVERS: AtomicUsize = AtomicUsize::new(0);
        let config = std::env::temp_dir().join(format!(
            "demitter-nats-{}-{}.conf",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&config, format!("max_payload: {MAX_PAYLOAD}\n"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        args.splice(0..0, ["-c".to_owned(), config.display().to_string()]);
        let started = spawn(&args, None);
        let server = Self {
            child: Some(started.child),
            port: started.port,
            args,
            config,
        };
        (server, started.route_port)
    }

    /// Where clients connect: `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn start_again(&mut self) {
        self.kill();
        self.child = Some(spawn(&self.args, Some(self.port)).child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A server started, and the ports it took.
struct Started {
    child: Child,
    port: u16,
    route_port: Option<u16>,
}

/// Starts `nats-server` with `args` on `port` (or one it picks, `-p -1`), and waits for it
/// to say it is ready (and, with `--cluster`, where it listens for routes).
fn spawn(args: &[String], port: Option<u16>) -> Started {
    let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
    let clustered = args.iter().any(|a| a == "--cluster");
    let mut child = Command::new(binary())
        .args(args)
        .args(["-a", "127.0.0.1", "-p", &port_arg])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary()));
    let stderr = child.stderr.take().expect("stderr is piped");
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
    while !(ready && (route_port.is_some() || !clustered)) {
        let line = match lines.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("nats-server did not become ready within {READY_TIMEOUT:?}: {e}");
            }
        };
        bound = bound.or_else(|| port_after(&line, "Listening for client connections on "));
        route_port =
            route_port.or_else(|| port_after(&line, "Listening for route connections on "));
        ready |= line.contains("Server is ready");
    }
    let port = bound.unwrap_or_else(|| panic!("nats-server did not say which port it took"));
    Started {
        child,
        port,
        route_port,
    }
}
