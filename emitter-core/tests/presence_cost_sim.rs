//! What presence costs on the virtual clock: control frames each node receives per
//! heartbeat interval once the bus has settled (all-to-all heartbeats: one from each peer),
//! and what joining costs. Knowing who has heard whom (readiness, acknowledged interest)
//! must add nothing per heartbeat. `PRESENCE_COST_NODES=400` measures a bigger bus (slow in
//! a debug build).

mod sim;

use sim::Sim;

/// Returns (frames per node per heartbeat interval once settled, frames per node to join).
fn measure(nodes: usize) -> (f64, f64) {
    let mut sim = Sim::new(nodes, 41);
    for i in 0..nodes {
        sim.listen(i, "job.+", i as u64);
    }
    let interval = sim.presence.heartbeat_interval;
    sim.run_for(interval * 10);
    let joined = sim.frames_sent();
    let window = 20u32;
    sim.run_for(interval * window);
    let steady = sim.frames_sent() - joined;
    let per_node = |frames: u64| frames as f64 / nodes as f64;
    (per_node(steady) / f64::from(window), per_node(joined))
}

#[test]
fn settled_presence_costs_one_frame_per_peer_per_heartbeat() {
    let mut sizes = vec![10, 100];
    if let Some(n) = std::env::var("PRESENCE_COST_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        sizes.push(n);
    }
    for nodes in sizes {
        let (steady, join) = measure(nodes);
        eprintln!(
            "N = {nodes}: {steady:.1} control frames per node per heartbeat interval settled, {join:.1} per node to join and listen"
        );
        let peers = (nodes - 1) as f64;
        assert!(
            (steady - peers).abs() < 0.5,
            "N = {nodes}: {steady} frames per node per interval, not {peers}"
        );
    }
}
