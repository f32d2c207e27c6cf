//! What the CLI's process-level tests share: the `demitter` binary, a forwarder on free
//! ports, a tap, an emit, reading lines with a timeout.

#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

pub const WAIT: Duration = Duration::from_secs(20);

/// The `demitter` command, with nothing from the environment that would change its bus.
pub fn demitter() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demitter"));
    command
        .env_remove("DEMITTER_URL")
        .env_remove("DEMITTER_LOG")
        .env_remove("XSUB_PORT")
        .env_remove("XPUB_PORT")
        .kill_on_drop(true);
    command
}

pub async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
    what: &str,
) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
        .expect("readable")
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
}

/// The next line that contains `needle`, the lines before it skipped.
pub async fn line_with<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
    needle: &str,
) -> String {
    loop {
        let line = next_line(lines, needle).await;
        if line.contains(needle) {
            return line;
        }
    }
}

/// A running forwarder (`demitter forwarder` on free ports) and the URL that reaches it.
pub struct RunningForwarder {
    pub child: Child,
    pub url: String,
    pub xsub: u16,
    pub xpub: u16,
    /// Its log, when asked for.
    pub log: Option<Lines<BufReader<ChildStderr>>>,
}

/// A forwarder on `ports` (0 for free ones), its log kept if `keep_log`.
pub async fn forwarder_on(ports: (u16, u16), keep_log: bool) -> RunningForwarder {
    let mut child = demitter()
        .args(["forwarder", "--stats-every", "0", "--log-level", "warn"])
        .args(["--xsub-port", &ports.0.to_string()])
        .args(["--xpub-port", &ports.1.to_string()])
        .stdout(Stdio::piped())
        .stderr(if keep_log {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("the forwarder starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = next_line(&mut lines, "the forwarder's address line").await;
    let port = |side: &str| -> u16 {
        let at = line
            .find(side)
            .unwrap_or_else(|| panic!("{side} in {line}"))
            + side.len();
        line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("a port")
    };
    let (xsub, xpub) = (
        port("publishers tcp://127.0.0.1:"),
        port("subscribers tcp://127.0.0.1:"),
    );
    let log = child
        .stderr
        .take()
        .map(|stderr| BufReader::new(stderr).lines());
    RunningForwarder {
        child,
        url: format!("zmq://127.0.0.1:{xsub}?xpub={xpub}"),
        xsub,
        xpub,
        log,
    }
}

/// A forwarder on free ports, and the URL that reaches it.
pub async fn forwarder() -> (Child, String) {
    let running = forwarder_on((0, 0), false).await;
    (running.child, running.url)
}

pub type Out = Lines<BufReader<ChildStdout>>;
pub type Err = Lines<BufReader<ChildStderr>>;

/// A tap, once it says it listens.
pub async fn tap(url: &str, args: &[&str]) -> (Child, Out, Err) {
    tap_with(url, args, &[]).await
}

/// A tap with environment variables, once it says it listens.
pub async fn tap_with(url: &str, args: &[&str], env: &[(&str, &str)]) -> (Child, Out, Err) {
    let mut child = demitter()
        .arg("tap")
        .args(args)
        .args(["--url", url])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tap starts");
    let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let said = next_line(&mut err, "tap's listening line").await;
    assert!(said.starts_with("listening on"), "{said}");
    (child, out, err)
}

/// Runs `demitter ARGS` to its end; `stdin` is written and closed if given.
pub async fn run(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = demitter()
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demitter starts");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(text.as_bytes()).await.expect("written");
    }
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("demitter ends")
        .expect("demitter runs")
}

/// `demitter emit ARGS --url URL`.
pub async fn emit(url: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut all = vec!["emit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", url]);
    run(&all, stdin).await
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A JSON line.
pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

/// A fresh directory under the system's temporary one, removed first if it is there.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("demitter-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
