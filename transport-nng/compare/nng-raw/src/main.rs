//! Raw bus0 throughput with the `nng` crate (NNG 1.4): blocking sends and receives on
//! threads of their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nng::options::Options as _;
use nng::options::transport::tcp::BoundPort;
use nng::{Protocol, Socket};

const FRAME: usize = 94;
const RUN: Duration = Duration::from_secs(3);

fn run(message_bytes: usize) -> (u64, u64) {
    let sub = Socket::new(Protocol::Bus0).expect("socket");
    let listener = nng::Listener::new(&sub, "tcp://127.0.0.1:0").expect("listen");
    let port = listener.get_opt::<BoundPort>().expect("port");
    let publisher = Socket::new(Protocol::Bus0).expect("socket");
    publisher.dial(&format!("tcp://127.0.0.1:{port}")).expect("dial");
    let received = Arc::new(AtomicU64::new(0));
    let counting = Arc::clone(&received);
    let reader = sub.clone();
    let reading = std::thread::spawn(move || {
        while let Ok(message) = reader.recv() {
            counting.fetch_add((message.len() / FRAME) as u64, Ordering::Relaxed);
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let payload = vec![0x5a_u8; message_bytes];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < RUN && !stop.load(Ordering::Relaxed) {
        if publisher.send(&payload[..]).is_ok() {
            sent += (message_bytes / FRAME) as u64;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = received.load(Ordering::Relaxed);
    sub.close();
    publisher.close();
    let _ = reading.join();
    (sent, got)
}

fn main() {
    for (what, bytes) in [("one frame per message", FRAME), ("64 KiB messages", FRAME * 697)] {
        let (sent, got) = run(bytes);
        println!(
            "nng 1.0.1 (NNG 1.4), {what}: sent {sent} frames, received {got}: {:.0} frames/s delivered",
            got as f64 / RUN.as_secs_f64()
        );
    }
}
