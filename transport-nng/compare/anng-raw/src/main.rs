//! Raw bus0 throughput with the `anng` crate (NNG 1.11): tokio tasks sending and receiving.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anng::Message;
use anng::protocols::bus0;

const FRAME: usize = 94;
const RUN: Duration = Duration::from_secs(3);

async fn run(message_bytes: usize, port: u16) -> (u64, u64) {
    let url = std::ffi::CString::new(format!("tcp://127.0.0.1:{port}")).expect("url");
    let mut sub = bus0::Bus0::listen(&url).await.expect("listen");
    let mut publisher = bus0::Bus0::dial(&url).await.expect("dial");
    let received = Arc::new(AtomicU64::new(0));
    let counting = Arc::clone(&received);
    let reading = tokio::spawn(async move {
        while let Ok(message) = sub.receive().await {
            counting.fetch_add((message.as_slice().len() / FRAME) as u64, Ordering::Relaxed);
        }
    });
    let payload = vec![0x5a_u8; message_bytes];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < RUN {
        let mut message = Message::with_capacity(message_bytes);
        std::io::Write::write_all(&mut message, &payload).expect("fits");
        if publisher.send(message).await.is_ok() {
            sent += (message_bytes / FRAME) as u64;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = received.load(Ordering::Relaxed);
    reading.abort();
    (sent, got)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    for (what, bytes) in [("one frame per message", FRAME), ("64 KiB messages", FRAME * 697)] {
        let (sent, got) = run(bytes, free_port()).await;
        println!(
            "anng 0.1.3 (NNG 1.11), {what}: sent {sent} frames, received {got}: {:.0} frames/s delivered",
            got as f64 / RUN.as_secs_f64()
        );
    }
}
