//! The README renders (its code fences pair up), its programs are the files in `examples/`,
//! word for word and once each, and they run: the quick start alone, and the two-process
//! example as two processes over a forwarder. (Its `demitter` commands are checked by the
//! CLI's tests, which have the binary.)

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use demitter::forwarder::{Forwarder, ForwarderConfig};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(30);

/// The code blocks of the README marked `rust`, in order.
fn readme_programs() -> Vec<String> {
    let mut programs = Vec::new();
    let mut current: Option<String> = None;
    for line in README.lines() {
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

const README: &str = include_str!("../README.md");

/// The examples the README shows, with their text.
const EXAMPLES: [(&str, &str); 2] = [
    ("quick_start.rs", include_str!("../examples/quick_start.rs")),
    (
        "two_processes.rs",
        include_str!("../examples/two_processes.rs"),
    ),
];

#[test]
fn every_code_fence_of_the_readme_is_closed() {
    let fences: Vec<usize> = README
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with("```"))
        .map(|(n, _)| n + 1)
        .collect();
    assert!(
        fences.len().is_multiple_of(2),
        "README.md has {} code fences (lines {fences:?}): one is never closed, and \
         everything after it renders as code",
        fences.len()
    );
    // An opening fence names its language; a closing one is bare. Two bare fences in a row
    // mean a block was closed twice, or opened without a language.
    for pair in fences.chunks(2) {
        let opening = README
            .lines()
            .nth(pair[0] - 1)
            .expect("a fence line")
            .trim();
        assert!(
            opening.len() > 3,
            "README.md line {}: a code block opens without a language (or a stray fence \
             closes nothing)",
            pair[0]
        );
    }
}

#[test]
fn no_text_after_an_example_repeats_it() {
    for (name, text) in EXAMPLES {
        let block = format!("```rust\n{text}```\n");
        let Some(at) = README.find(&block) else {
            panic!("README.md must show examples/{name} whole, as a rust code block");
        };
        let after = &README[at + block.len()..];
        // The prose up to the next heading: where a stray paste would land.
        let mut in_block = false;
        let mut until_heading = Vec::new();
        for line in after.lines() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
            } else if !in_block && line.starts_with('#') {
                break;
            } else if !in_block {
                until_heading.push(line);
            }
        }
        let repeated: Vec<&str> = text
            .lines()
            .filter(|line| line.trim().len() >= 12)
            .filter(|line| until_heading.contains(line))
            .collect();
        assert!(
            repeated.is_empty(),
            "after its block, README.md repeats lines of examples/{name}: {repeated:?}"
        );
    }
}

#[test]
fn the_readme_shows_the_examples_word_for_word() {
    let programs = readme_programs();
    for (name, text) in EXAMPLES {
        assert_eq!(
            programs.iter().filter(|p| *p == text).count(),
            1,
            "README.md must show examples/{name} whole, once, as a rust code block"
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
