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
    let (xsub, xpub) = forwarder_ports(&line);
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

/// The ports of a forwarder's first line, `demitter-forwarder listening: publishers
/// tcp://127.0.0.1:P, subscribers tcp://127.0.0.1:S`: (P, S).
pub fn forwarder_ports(line: &str) -> (u16, u16) {
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
    (
        port("publishers tcp://127.0.0.1:"),
        port("subscribers tcp://127.0.0.1:"),
    )
}

/// `line` through `sh` as a user types it, in `dir`, with the test's `demitter` first on
/// PATH and nothing from the environment that would change its bus; a single command is
/// exec'd, so that a signal reaches `demitter` itself. `under` runs the shell under a
/// command (`ip netns exec NS`).
pub fn shell(under: &[&str], line: &str, dir: &std::path::Path) -> Command {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_demitter"))
        .parent()
        .expect("the binary's directory");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = if line.contains("&&") {
        line.to_owned()
    } else {
        format!("exec {line}")
    };
    let (program, before) = match under.split_first() {
        Some((program, rest)) => (*program, rest),
        None => ("sh", &[][..]),
    };
    let mut command = Command::new(program);
    if !under.is_empty() {
        command.args(before).arg("sh");
    }
    command
        .args(["-c", &script])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("DEMITTER_URL")
        .env_remove("DEMITTER_LOG")
        .env_remove("XSUB_PORT")
        .env_remove("XPUB_PORT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
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

/// Issue 31's scenario: two taps on `q.+`, then `emits` short-lived `demitter emit q.x N`,
/// each of which must have heard the bus, say it reached both, and reach both.
pub async fn short_lived_emits_reach_two_taps(url: &str, emits: u32) {
    let (_a, mut at_a, _) = tap(url, &["q.+", "--no-system"]).await;
    let (_b, mut at_b, _) = tap(url, &["q.+", "--no-system"]).await;
    for n in 0..emits {
        let sent = emit(url, &["q.x", &n.to_string()], None).await;
        assert!(sent.status.success(), "{sent:?}");
        assert_eq!(stdout(&sent).trim(), "reached 2 listeners", "emit {n}");
        for (name, out) in [("a", &mut at_a), ("b", &mut at_b)] {
            let line = json(&next_line(out, name).await);
            assert_eq!(line["data"], n, "tap {name}: {line}");
        }
    }
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

/// Sends `signal` to `child`.
pub fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = child.id().expect("running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid")),
        signal,
    )
    .expect("signalled");
}

/// A command that runs until stopped, started and ready; what it prints on stdout after it
/// said it was ready is collected (and its stderr drained), so no pipe fills.
pub struct Running {
    /// What it is (for messages).
    pub line: String,
    pub child: Child,
    /// The line that said it was ready.
    pub ready_line: String,
    stdout: tokio::task::JoinHandle<Vec<String>>,
}

impl Running {
    /// Starts `command` (with its output piped) and waits for a line containing `ready` on
    /// its stdout (`on_stdout`) or stderr.
    pub async fn start(mut command: Command, line: &str, on_stdout: bool, ready: &str) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("`{line}` starts: {e}"));
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let ready_line = if on_stdout {
            line_with(&mut out, ready).await
        } else {
            line_with(&mut err, ready).await
        };
        tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
        let stdout = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Ok(Some(line)) = out.next_line().await {
                lines.push(line);
            }
            lines
        });
        Self {
            line: line.to_owned(),
            child,
            ready_line,
            stdout,
        }
    }

    /// Stops it with SIGINT: it must exit 0. Returns what it printed.
    pub async fn stop(mut self) -> Vec<String> {
        signal(&self.child, nix::sys::signal::Signal::SIGINT);
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("`{}` ends on SIGINT", self.line))
            .expect("waited for");
        assert_eq!(status.code(), Some(0), "`{}` on SIGINT", self.line);
        self.stdout.await.expect("its output")
    }
}

/// Runs `command` (what `line` says, for messages) to its end within `limit`: it must
/// exit 0. Returns its output.
pub async fn succeeds(mut command: Command, line: &str, limit: Duration) -> std::process::Output {
    let output = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("`{line}` ends within {limit:?}"))
        .unwrap_or_else(|e| panic!("`{line}` runs: {e}"));
    assert!(
        output.status.success(),
        "`{line}`: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
