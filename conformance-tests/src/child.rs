//! Running the current test again in a child process: how a multi-process test starts its
//! other processes without any other binary. The child sees the environment variables it
//! is given, which is how it knows it is the child.

use std::process::Stdio;

/// Runs the test `test` of the current test binary again, alone, with `env` set, stdin and
/// stdout piped (stderr shared), behind `wrapper` if it is not empty (for example
/// `["ip", "netns", "exec", NAMESPACE]`). The child is killed (SIGKILL) when dropped.
///
/// # Panics
///
/// If the child cannot be started.
pub fn run_this_test(
    wrapper: &[&str],
    test: &str,
    env: &[(&str, String)],
) -> tokio::process::Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = tokio::process::Command::new(program);
            command.args(args).arg(exe);
            command
        }
        None => tokio::process::Command::new(exe),
    };
    command
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("the child starts")
}

/// Ends a child started by [`run_this_test`] that serves until its stdin closes (as
/// [`report_account`](crate::faults::report_account) does): closes its stdin and waits for
/// it to exit.
///
/// # Panics
///
/// If it has not exited within [`STEP_TIMEOUT`](crate::STEP_TIMEOUT).
pub async fn finish(mut child: tokio::process::Child) {
    drop(child.stdin.take());
    crate::support::within("the child to exit", child.wait())
        .await
        .expect("the child exits");
}
