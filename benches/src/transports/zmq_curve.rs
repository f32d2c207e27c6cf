//! ZeroMQ with CURVE: emitters through this project's forwarder with CURVE on both sides,
//! against the same emitters over NULL in the same run: what CURVE costs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use demitter_core::{Emitter, NodeId};
use demitter_forwarder::{Forwarder, ForwarderConfig, ForwarderCurve};
use demitter_zmq::conn::CurveClientKeys;
use demitter_zmq::curve_keys::{AllowList, CurveSecretKey};
use demitter_zmq::{ZmqConfig, ZmqTransport};

use crate::scenario::{Layer, Outcome, Scenario};
use crate::{BenchError, Progress};

const NAME: &str = "zmq-curve";

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// Emitters with keys of their own, through a forwarder that allows each of them.
pub async fn emitters(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let server = CurveSecretKey::generate();
    let nodes = scenario.publishers + scenario.subscribers + scenario.bystanders;
    let keys: Vec<(NodeId, CurveSecretKey)> = (0..nodes)
        .map(|i| {
            let name = NodeId::new(&format!("bench-{i}")).map_err(setup)?;
            Ok((name, CurveSecretKey::generate()))
        })
        .collect::<Result<_, BenchError>>()?;
    let mut lines = String::new();
    for (name, secret) in &keys {
        let _ = writeln!(lines, "{name} {}", secret.public_key());
    }
    let allow = AllowList::parse(&lines).map_err(setup)?;
    let forwarder = Forwarder::bind(ForwarderConfig {
        curve: Some(ForwarderCurve::new(server.clone(), allow)),
        ..ForwarderConfig::loopback_free_ports()
    })
    .await
    .map_err(setup)?;
    let (xsub, xpub) = (
        forwarder.xsub_addr().to_string(),
        forwarder.xpub_addr().to_string(),
    );
    let next = AtomicUsize::new(0);
    let result = crate::emitters::run_on_new_emitters(NAME, scenario, progress, || {
        let (name, secret) = keys[next.fetch_add(1, Ordering::Relaxed) % keys.len()].clone();
        let mut config = ZmqConfig::new(xsub.clone(), xpub.clone());
        config.curve = Some(CurveClientKeys::new(name, secret, server.public_key()));
        Emitter::with_config(ZmqTransport::connect(config), scenario.emitter_config())
    })
    .await;
    forwarder.close().await;
    result
}

/// The same emitters over NULL, as the baseline row of this transport.
pub async fn baseline(scenario: &Scenario, progress: &Progress) -> Result<Outcome, BenchError> {
    let mut outcome = super::zmq::emitters(scenario, progress).await?;
    NAME.clone_into(&mut outcome.transport);
    outcome.layer = Layer::Baseline;
    Ok(outcome)
}
