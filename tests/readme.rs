//! The README's programs are the files in `examples/`, word for word, and they run: the
//! quick start alone, and the two-process example as two processes over a forwarder.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use demitter::forwarder::{Forwarder, ForwarderConfig};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(30);

/// The code blocks of the README marked `rust`, in order.
fn readme_programs() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut programs = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(String::new()),
            (Some(_), "```") => programs.extend(current.take()),
            (Some(text), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    programs
}

#[test]
fn the_readme_shows_the_examples_word_for_word() {
    let programs = readme_programs();
    for (name, text) in [
        ("quick_start.rs", include_str!("../examples/quick_start.rs")),
        (
            "two_processes.rs",
            include_str!("../examples/two_processes.rs"),
        ),
    ] {
        assert!(
            programs.iter().any(|p| p == text),
            "README.md must show examples/{name} whole, as a rust code block"
        );
    }
    assert!(
        programs
            .iter()
            .all(|p| !p.lines().any(|l| l.starts_with("# "))),
        "no rustdoc-hidden lines: GitHub shows them as they are"
    );
}

/// An example's program, which `cargo test` builds beside the tests.
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join(name);
    path.is_file().then_some(path)
}

async fn run(mut command: Command) -> std::process::Output {
    command.kill_on_drop(true).stdin(Stdio::null());
    tokio::time::timeout(WAIT, command.output())
        .await
        .expect("the example ends by itself")
        .expect("the example runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_runs() {
    let Some(path) = example("quick_start") else {
        println!("SKIPPED: examples/quick_start is not built (plain `cargo test` builds it)");
        return;
    };
    let out = run(Command::new(path)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("bids 100 on lot 1"), "{stdout}");
    assert!(stdout.contains("lot 1 closed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_process_example_talks_through_a_forwarder() {
    let Some(path) = example("two_processes") else {
        println!("SKIPPED: examples/two_processes is not built (plain `cargo test` builds it)");
        return;
    };
    let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports())
        .await
        .expect("a forwarder on free ports");
    // The xpub side is not given: it is the next port only by chance here, so say it.
    let url = format!(
        "zmq://127.0.0.1:{}?xpub={}",
        forwarder.xsub_addr().port(),
        forwarder.xpub_addr().port()
    );
    let mut listen = Command::new(&path);
    listen
        .args(["listen", "--url", &url])
        .stdout(Stdio::piped());
    let listening = tokio::spawn(run(listen));
    let mut emit = Command::new(&path);
    emit.args(["emit", "--url", &url]).stdout(Stdio::piped());
    let emitted = run(emit).await;
    assert!(emitted.status.success(), "{emitted:?}");
    let listened = tokio::time::timeout(WAIT, listening)
        .await
        .expect("the listener ends after three logins")
        .expect("joined");
    assert!(listened.status.success(), "{listened:?}");
    let stdout = String::from_utf8_lossy(&listened.stdout);
    for n in 1..=3 {
        assert!(stdout.contains(&format!(": user-{n}")), "{stdout}");
    }
    assert_eq!(
        String::from_utf8_lossy(&emitted.stdout)
            .matches("reached 1 listener(s)")
            .count(),
        3
    );
    forwarder.close().await;
}
