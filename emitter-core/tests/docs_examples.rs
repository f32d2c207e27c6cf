//! The examples in `docs/wire-format.md` decode to what the document says they are.

use demitter_core::{Frame, decode_payload};

/// The bytes of each ```` ```hex ```` block: the hex pairs before two spaces on each line
/// (what follows them is commentary).
fn hex_blocks(doc: &str) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```hex") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(bytes), line) => {
                let data = line.split("  ").next().unwrap_or("");
                for pair in data.split_whitespace() {
                    bytes.push(u8::from_str_radix(pair, 16).expect("a hex byte"));
                }
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_event_frame_example_decodes_as_described() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/wire-format.md"
    ))
    .expect("the document is there");
    let blocks = hex_blocks(&doc);
    assert_eq!(blocks.len(), 1, "one example in the document");
    let bytes = &blocks[0];
    let Frame::Event(event) = Frame::decode(bytes.clone().into(), 1024).expect("decodes") else {
        panic!("the example is an event frame");
    };
    assert_eq!(event.source.as_str(), "node-a");
    assert_eq!((event.epoch, event.seq), (7, 42));
    assert_eq!(&*event.name, "user.login");
    let payload: std::collections::BTreeMap<String, u8> =
        decode_payload(&event.payload).expect("MessagePack");
    assert_eq!(payload, [("a".to_owned(), 1)].into());
    assert_eq!(
        Frame::Event(event).to_bytes(),
        &bytes[..],
        "and encodes back"
    );
}
