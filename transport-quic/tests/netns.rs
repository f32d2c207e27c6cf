//! Three hosts in three network namespaces, joined by veth links to a bridge; one host is
//! cut off by taking its link down and brought back. Counts drop and recover, events flow
//! again, and what was emitted during the cut is reported as lost, exactly.
//!
//! Needs root and `ip` (iproute2). Where namespaces cannot be made, the test says so in
//! its output and checks nothing else.

#![cfg(target_os = "linux")]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;

use demitter_conformance::support::{next_event, wait_for_count, within};
use demitter_core::{PEER_DOWN, PEER_UP, PeerChange};
use demitter_quic::{Hood, QuicTransport};
use support::{MESH_TIMEOUT, Node, fast_config, fast_config_emitter};

/// Network namespaces and links made for one test run; removed on drop.
struct Hosts {
    prefix: String,
    made: Vec<String>,
}

impl Hosts {
    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    fn ip(args: &[&str]) -> Result<(), String> {
        let out = Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `ip`: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`ip {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// A bridge in namespace `sw` and, per host, a namespace with a veth link to it, at
    /// 10.77.0.(i+1)/24.
    fn make(hosts: &[&str]) -> Result<Self, String> {
        let mut made = Self {
            prefix: format!("dmt{}", std::process::id()),
            made: Vec::new(),
        };
        let sw = made.ns("sw");
        Self::ip(&["netns", "add", &sw])?;
        made.made.push(sw.clone());
        Self::ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        Self::ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (i, host) in hosts.iter().enumerate() {
            let ns = made.ns(host);
            Self::ip(&["netns", "add", &ns])?;
            made.made.push(ns.clone());
            let (inside, outside) = (format!("h{host}"), format!("s{host}"));
            Self::ip(&[
                "-n", &sw, "link", "add", &outside, "type", "veth", "peer", "name", &inside,
                "netns", &ns,
            ])?;
            Self::ip(&["-n", &sw, "link", "set", &outside, "master", "br0"])?;
            Self::ip(&["-n", &sw, "link", "set", &outside, "up"])?;
            let addr = format!("10.77.0.{}/24", i + 1);
            Self::ip(&["-n", &ns, "addr", "add", &addr, "dev", &inside])?;
            Self::ip(&["-n", &ns, "link", "set", &inside, "up"])?;
            Self::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(made)
    }

    /// Takes `host`'s link to the bridge down (`up = false`) or up again.
    fn set_link(&self, host: &str, up: bool) {
        let state = if up { "up" } else { "down" };
        Self::ip(&[
            "-n",
            &self.ns("sw"),
            "link",
            "set",
            &format!("s{host}"),
            state,
        ])
        .expect("the link changes state");
    }

    /// A UDP socket bound inside `host`'s namespace.
    fn socket(&self, host: &str, addr: SocketAddr) -> UdpSocket {
        let path = format!("/run/netns/{}", self.ns(host));
        // setns moves only the calling thread: bind on a thread of its own.
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("the namespace exists");
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("enters it");
            UdpSocket::bind(addr).expect("binds inside the namespace")
        })
        .join()
        .expect("the binding thread")
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            let _ = Self::ip(&["netns", "del", ns]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_and_brought_back_recovers_and_reports_its_loss() {
    let hosts = match Hosts::make(&["a", "b", "c"]) {
        Ok(hosts) => hosts,
        Err(why) => {
            println!(
                "SKIPPED: cannot make network namespaces here (needs root and iproute2): {why}"
            );
            return;
        }
    };
    let hood = Hood::create("netns").expect("hood");
    let addr = |i: u8| SocketAddr::from(([10, 77, 0, i], 4816));
    let start = |host: &str, i: u8, seed: Option<SocketAddr>| {
        let identity = hood.issue(&format!("node-{host}")).expect("issues");
        let mut config = fast_config(identity.clone());
        config.seeds = seed.iter().map(ToString::to_string).collect();
        let transport =
            QuicTransport::with_socket(config, hosts.socket(host, addr(i))).expect("starts");
        let transport = std::sync::Arc::new(transport);
        let shared: std::sync::Arc<dyn demitter_core::Transport> = transport.clone();
        Node {
            emitter: demitter_core::Emitter::from_shared(shared, fast_config_emitter())
                .expect("emitter"),
            transport,
            identity,
        }
    };
    // b and c know only a: gossip introduces them to each other across the bridge.
    let a = start("a", 1, None);
    let b = start("b", 2, Some(addr(1)));
    let c = start("c", 3, Some(addr(1)));
    for node in [&a, &b, &c] {
        tokio::time::timeout(MESH_TIMEOUT, node.transport.wait_for_peers(2))
            .await
            .unwrap_or_else(|_| panic!("{} did not join the mesh", node.transport.name()));
    }

    let mut at_c = c.emitter.events::<u32>("cut.x").expect("valid");
    let _at_b = b.emitter.events::<u32>("cut.x").expect("valid");
    let mut c_errors = c.emitter.errors();
    let mut c_downs = c.emitter.events::<PeerChange>(PEER_DOWN).expect("valid");
    let mut c_ups = c.emitter.events::<PeerChange>(PEER_UP).expect("valid");
    wait_for_count(&a.emitter, "cut.x", 2).await;
    for n in 1..=10u32 {
        a.emitter.emit("cut.x", &n).await.expect("emits");
    }
    for n in 1..=10u32 {
        assert_eq!(
            next_event(&mut at_c, "an event before the cut").await.data,
            n
        );
    }

    hosts.set_link("c", false);
    // c's listener leaves the count when c is cut off.
    wait_for_count(&a.emitter, "cut.x", 1).await;
    loop {
        let down = next_event(&mut c_downs, "c notices it lost the others").await;
        if down.data.peer == "node-a" {
            break;
        }
    }
    for n in 11..=30u32 {
        a.emitter.emit("cut.x", &n).await.expect("emits");
    }

    demitter_conformance::support::drain(&mut c_ups);
    hosts.set_link("c", true);
    // c's listener counts again after the link is back.
    wait_for_count(&a.emitter, "cut.x", 2).await;
    a.emitter.emit("cut.x", &31u32).await.expect("emits");
    assert_eq!(
        next_event(&mut at_c, "the first event after the cut")
            .await
            .data,
        31,
        "traffic resumed by itself"
    );
    within("c to report the 20 events of the cut", async {
        while c.emitter.error_counts().gap < 20 {
            let _ = c_errors.recv().await;
        }
    })
    .await;
    assert_eq!(
        c.emitter.error_counts().gap,
        20,
        "exactly the events of the cut"
    );
    for node in [&a, &b, &c] {
        node.emitter.close().await;
    }
    drop(hosts);
}
