//! ZeroMQ: ZMTP streams (frames and whole messages) and Demitter's three-part messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    demitter_zmq::fuzzing::zmtp_stream(data);
    demitter_zmq::fuzzing::demitter_message(data);
});
