//! ZeroMQ: ZMTP streams (frames and whole messages), Demitter's three-part messages, and
//! the CURVE handshake's commands.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    demitter_zmq::fuzzing::zmtp_stream(data);
    demitter_zmq::fuzzing::demitter_message(data);
    demitter_zmq::fuzzing::curve_commands(data);
});
