//! DHT discovery across hosts: a private DHT's bootstrap node on one network-namespace
//! host, QUIC nodes on three others that know only its address. They find each other, form
//! a mesh, greet each other, and find a fifth host's node when it joins.
//!
//! Each host is a child process (this same test, run again inside the host's namespace
//! with `ROLE` set). The namespaces have no route off their bridge, so nothing here can
//! reach the public DHT. Needs root and `ip` (iproute2); where namespaces cannot be made,
//! the test says so in its output and checks nothing else.

#![cfg(target_os = "linux")]

mod support;

use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use demitter_conformance::netns::Hosts;
use demitter_conformance::support::{next_event, wait_for_count, within};
use demitter_core::Emitter;
use demitter_quic::dht::DhtBootstrap;
use demitter_quic::{DhtDiscovery, DhtNode, PeerIdentity, QuicConfig, QuicTransport, pki};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const TEST: &str = "nodes_on_separate_hosts_find_each_other_through_a_private_dht";
/// Set in a child: `boot ADDR`, or `node NAME IP BOOTSTRAP HOOD_DIR GREET` (GREET: `greet`
/// to greet the first three nodes, or `quiet`).
const ROLE: &str = "DEMITTER_TEST_DHT_ROLE";
const QUIC_PORT: u16 = 4816;
const DHT_PORT: u16 = 6881;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_separate_hosts_find_each_other_through_a_private_dht() {
    if let Ok(role) = std::env::var(ROLE) {
        return run_child(&role).await;
    }
    let Some(hosts) = Hosts::or_skip(Hosts::make(&["boot", "a", "b", "c", "d"])) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("demitter-dht-netns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    pki::create_hood(&dir, "dht-netns").expect("hood");
    let bootstrap = SocketAddrV4::new(hosts.host_ip("boot"), DHT_PORT);
    let child = |host: &str, role: String| {
        let mut child = hosts.run_this_test(host, TEST, &[(ROLE, role)]);
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        (child, lines)
    };
    let (boot, mut boot_lines) = child("boot", format!("boot {bootstrap}"));
    expect_line(&mut boot_lines, "READY").await;
    let node = |host: &str| {
        pki::create_peer(&dir, &format!("node-{host}")).expect("peer");
        let greet = if host == "d" { "quiet" } else { "greet" };
        let role = format!(
            "node node-{host} {} {bootstrap} {} {greet}",
            hosts.host_ip(host),
            dir.display()
        );
        child(host, role)
    };
    let mut nodes: Vec<(Child, Lines<BufReader<ChildStdout>>)> =
        ["a", "b", "c"].into_iter().map(node).collect();
    for (_, lines) in &mut nodes {
        expect_line(lines, "PEERS 2").await;
    }
    for (_, lines) in &mut nodes {
        expect_line(lines, "HEARD node-a,node-b,node-c").await;
    }
    nodes.push(node("d"));
    for (_, lines) in &mut nodes {
        expect_line(lines, "PEERS 3").await;
    }
    for (child, _) in nodes {
        finish(child).await;
    }
    finish(boot).await;
    std::fs::remove_dir_all(&dir).ok();
    drop(hosts);
}

/// Ends a child: closes its stdin, and waits for it to exit, successfully.
async fn finish(mut child: Child) {
    drop(child.stdin.take());
    let status = within("the child to exit", child.wait())
        .await
        .expect("the child exits");
    assert!(status.success(), "a child failed: {status}");
}

/// Reads the child's lines until `wanted` (other lines are shown, not judged).
async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, wanted: &str) {
    within(&format!("a child to say `{wanted}`"), async {
        loop {
            match lines.next_line().await.expect("the child's output") {
                // The test harness's `test NAME ... ` has no newline: a first line ends
                // with what the child printed.
                Some(line) if line.ends_with(wanted) => return,
                Some(line) => println!("child: {line}"),
                None => panic!("the child ended before saying `{wanted}`"),
            }
        }
    })
    .await;
}

/// A child's whole life: run its part until the parent closes its stdin.
async fn run_child(role: &str) {
    let parts: Vec<&str> = role.split(' ').collect();
    let running = match parts.as_slice() {
        ["boot", addr] => {
            let node = DhtNode::start(addr.parse().expect("address"), &[])
                .await
                .expect("the bootstrap node starts");
            println!("READY");
            Running::Boot(node)
        }
        ["node", name, ip, bootstrap, hood, greet] => {
            let node = run_node(name, ip, bootstrap, Path::new(hood));
            if *greet == "greet" {
                greet_the_first_three(&node, name).await;
            }
            Running::Node(node)
        }
        _ => panic!("unknown role `{role}`"),
    };
    // Serve until the parent is done.
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    match running {
        Running::Node(emitter) => within("the node to close", emitter.close()).await,
        Running::Boot(node) => drop(node),
    }
}

enum Running {
    Boot(DhtNode),
    Node(Emitter),
}

/// A node that knows only the bootstrap node (gossip off: every peer it has, the DHT gave):
/// says `PEERS n` as it connects to its n-th peer.
fn run_node(name: &str, ip: &str, bootstrap: &str, hood: &Path) -> Emitter {
    let identity = PeerIdentity::load(hood, name).expect("the identity");
    let dht = DhtDiscovery::new(DhtBootstrap::Nodes(vec![bootstrap.to_owned()]))
        .with_lookup_interval(Duration::from_millis(200), Duration::from_secs(1));
    let mut config = QuicConfig::new(identity).with_dht(dht);
    let addr = SocketAddr::new(ip.parse().expect("ip"), QUIC_PORT);
    config.bind_ip = addr.ip();
    config.ports = demitter_quic::ListenPorts::single(QUIC_PORT);
    config.gossip = false;
    let transport = std::sync::Arc::new(QuicTransport::bind(config).expect("starts"));
    let watching = std::sync::Arc::clone(&transport);
    tokio::spawn(async move {
        for n in 1..=3 {
            watching.wait_for_peers(n).await;
            println!("PEERS {n}");
        }
    });
    let shared: std::sync::Arc<dyn demitter_core::Transport> = transport;
    Emitter::from_shared(shared, support::fast_config_emitter()).expect("emitter")
}

/// Greets the other two of the first three nodes, and says whom it heard.
async fn greet_the_first_three(emitter: &Emitter, name: &str) {
    let mut greetings = emitter.events::<String>("dht.hello").expect("valid");
    wait_for_count(emitter, "dht.hello", 3).await;
    emitter
        .emit("dht.hello", &name.to_owned())
        .await
        .expect("emits");
    let mut heard = Vec::new();
    for _ in 0..3 {
        heard.push(next_event(&mut greetings, "a greeting").await.data);
    }
    heard.sort();
    println!("HEARD {}", heard.join(","));
}
