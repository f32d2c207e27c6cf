//! Starting the `demitter-forwarder` binary in tests.

// Each test binary uses a part of this.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary, with the environment it reads cleared and logging at `warn`.
pub fn forwarder(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demitter-forwarder"));
    command
        .args(args)
        .env_remove("XSUB_PORT")
        .env_remove("XPUB_PORT")
        .env_remove("XSUB_ADDRESS")
        .env_remove("XPUB_ADDRESS")
        .env("LOG_LEVEL", "warn");
    command
}

/// A running forwarder, killed (SIGKILL) on drop if a test has not stopped it.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on the `xsub` and `xpub` ports ("0": free ones) and reads back where
/// it listens: `tcp://HOST:PORT` for each side.
pub fn start_on(xsub: &str, xpub: &str) -> (Running, String, String) {
    let mut child = forwarder(&[
        "--xsub-port",
        xsub,
        "--xpub-port",
        xpub,
        "--stats-every",
        "0",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a first line");
    let endpoints: Vec<String> = line
        .split_whitespace()
        .filter(|w| w.starts_with("tcp://"))
        .map(|w| w.trim_end_matches(',').to_owned())
        .collect();
    assert_eq!(endpoints.len(), 2, "says where it listens: {line}");
    (Running(child), endpoints[0].clone(), endpoints[1].clone())
}
