//! A subscribing peer's process killed with SIGKILL under steady load and started again:
//! the mesh notices by silence, the new process rejoins and receives within the stated
//! bound, and every account balances (see `demitter_conformance::faults`). The killed peer
//! is this same test run again as a child, with `PEER_OF` set.

mod support;

use std::net::SocketAddr;

use demitter_conformance::child::run_this_test;
use demitter_conformance::faults::{Account, a_killed_subscriber_process_recovers, report_account};
use demitter_conformance::support::within;
use demitter_quic::{Hood, PeerIdentity};
use support::{fast_config_emitter, start_node};

/// Set in the child: the directory of its identity, and the seed to dial.
const PEER_OF: &str = "DEMITTER_TEST_PEER_OF";
const TEST: &str = "a_peer_killed_under_load_recovers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_killed_under_load_recovers() {
    if let Ok(setting) = std::env::var(PEER_OF) {
        let (dir, seed) = setting.split_once(',').expect("dir,seed");
        let identity = PeerIdentity::load(dir.as_ref(), "victim").expect("the identity loads");
        let seed: SocketAddr = seed.parse().expect("an address");
        let node = start_node(&identity, &[seed], fast_config_emitter()).expect("starts");
        return report_account(&node.emitter).await;
    }
    let hood = Hood::create("kill").expect("hood");
    let dir = std::env::temp_dir().join(format!("demitter-kill-{}", std::process::id()));
    hood.issue("victim")
        .expect("issues")
        .save(&dir)
        .expect("saves the victim's identity");
    let publisher = start_node(
        &hood.issue("publisher").expect("issues"),
        &[],
        fast_config_emitter(),
    )
    .expect("starts");
    let seed = publisher.transport.local_addr();
    let survivor = start_node(
        &hood.issue("survivor").expect("issues"),
        &[seed],
        fast_config_emitter(),
    )
    .expect("starts");
    let setting = format!("{},{seed}", dir.display());
    let figures = a_killed_subscriber_process_recovers(
        "a peer process is killed (SIGKILL) and restarted",
        &publisher.emitter,
        Account::local(&survivor.emitter),
        || run_this_test(&[], TEST, &[(PEER_OF, setting.clone())]),
    )
    .await;
    println!("{figures:?}");
    within("the survivor to close", survivor.emitter.close()).await;
    within("the publisher to close", publisher.emitter.close()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
