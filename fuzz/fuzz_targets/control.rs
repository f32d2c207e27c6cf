//! The presence protocol's control messages.
#![no_main]

use demitter_core::protocol::Control;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(control) = Control::decode(data) {
        assert_eq!(Control::decode(&control.encode()).ok(), Some(control));
    }
});
