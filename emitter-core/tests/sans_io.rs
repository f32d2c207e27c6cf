//! The protocol state machine stays sans-IO: nothing under `src/node/` or `src/protocol/`
//! (tests aside) reaches for a runtime, a lock, a thread or a clock. Time comes in as an
//! argument; the driver owns everything else.

use std::path::Path;

const FORBIDDEN: [&str; 6] = [
    "tokio",
    "parking_lot",
    "std::sync::Mutex",
    "std::thread",
    "Instant::now",
    "SystemTime::now",
];

#[test]
fn the_node_and_the_protocol_do_no_io_and_read_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for dir in ["node", "protocol"] {
        let entries = std::fs::read_dir(src.join(dir)).expect("the folder is there");
        for entry in entries {
            let path = entry.expect("readable").path();
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            // A file's unit tests and its doc examples may use what they like.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for word in FORBIDDEN {
                assert!(
                    !code.contains(word),
                    "{} uses `{word}`: the node takes time as an argument and does no I/O",
                    path.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} files found");
}
