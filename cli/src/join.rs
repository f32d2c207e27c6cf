//! Joining a bus before using it, so that a wrong URL fails at once with its cause
//! instead of emitting into nothing:
//!
//! - `zmq://`: a ZMTP handshake with each side of the forwarder (which also tells swapped
//!   ports and servers that are not forwarders), then until the transport's connections
//!   are up;
//! - `quic://` with seeds and `nng+tcp://` with peers: until a first peer is up, a peer
//!   refuses this node (a certificate of another hood, say), or the timeout passes;
//! - `quic://` with `dht=` and no seeds: until a first peer is up or the DHT has answered
//!   (the node may be its hood's first), failing when the DHT cannot be joined;
//! - `nats://`: connecting to one of the servers, which fails at once when none answers;
//! - anything else (`mem://`, a QUIC node without seeds): at once, it is the first node.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use demitter::quic::QuicTransport;
use demitter::quic::dht::DhtStatus;
use demitter::zmq::ZmqTransport;
use demitter::{Emitter, EmitterConfig, ErrorKind, PEER_UP, RawPayload};
use tokio::sync::watch;

use crate::error::CliError;

/// A bus joined: the emitter, and for `zmq://` its transport, to wait on.
pub(crate) struct Joined {
    pub(crate) emitter: Emitter,
    zmq: Option<Arc<ZmqTransport>>,
    /// For `quic://` with `dht=`: what the DHT discovery has done.
    dht: Option<watch::Receiver<DhtStatus>>,
    timeout: Duration,
}

impl Joined {
    /// Waits until the forwarder has every subscription asked for so far (on `zmq://`;
    /// other transports need no wait): a command that listens calls this before it says
    /// it listens.
    pub(crate) async fn subscribed(&self) -> Result<(), CliError> {
        let Some(zmq) = &self.zmq else {
            return Ok(());
        };
        let confirmed = tokio::time::timeout(self.timeout, zmq.wait_connected());
        tokio::select! {
            // A node that gives way to another with its id closes its transport: no
            // confirmation comes, and the refusal is the answer.
            Err(refused @ demitter::Error::DuplicateId { .. }) = self.emitter.ready() => {
                Err(refused.into())
            }
            confirmed = confirmed => confirmed.map_err(|_| {
                CliError::Timeout(format!(
                    "the forwarder did not confirm this node's subscriptions within {:?}",
                    self.timeout
                ))
            }),
        }
    }
}

/// Joins `url` within `timeout`; a signal (see [`crate::interrupt`]) while it joins leaves
/// the bus and fails with [`CliError::Interrupted`].
pub(crate) async fn join(
    url: &str,
    config: EmitterConfig,
    timeout: Duration,
) -> Result<Joined, CliError> {
    let interrupted =
        |signal: &str| CliError::Interrupted(format!("by {signal} while joining the bus at {url}"));
    let joined = tokio::select! {
        joined = start(url, config, timeout) => joined?,
        signal = crate::interrupt::requested() => return Err(interrupted(signal)),
    };
    let ready = tokio::select! {
        ready = joined.ready(url) => ready,
        signal = crate::interrupt::requested() => Err(interrupted(signal)),
    };
    match ready {
        Ok(()) => Ok(joined),
        Err(e) => {
            joined.emitter.close().await;
            Err(e)
        }
    }
}

/// Checks what can be checked before joining (a NULL forwarder answers a probe) and makes
/// the emitter.
async fn start(url: &str, config: EmitterConfig, timeout: Duration) -> Result<Joined, CliError> {
    if url.starts_with("quic://") {
        let quic = demitter::quic_config(url)?;
        let dht = quic.dht.as_ref().map(|dht| dht.status());
        let transport = QuicTransport::bind(quic).map_err(demitter::Error::from)?;
        return Ok(Joined {
            emitter: Emitter::with_config(transport, config)?,
            zmq: None,
            dht,
            timeout,
        });
    }
    if !url.starts_with("zmq://") {
        return Ok(Joined {
            emitter: demitter::connect_with(url, config).await?,
            zmq: None,
            dht: None,
            timeout,
        });
    }
    let zmq_config = demitter::zmq_config(url)?;
    // The probe speaks NULL: a CURVE forwarder answers only the handshake itself, whose
    // refusal the transport reports (see `Joined::ready`).
    if zmq_config.curve.is_none() {
        demitter::zmq::probe_forwarder(&zmq_config.xsub, &zmq_config.xpub, timeout)
            .await
            .map_err(|source| CliError::NoForwarder {
                hint: forwarder_hint(&source),
                source,
            })?;
    }
    let transport = Arc::new(ZmqTransport::connect(zmq_config));
    let shared: Arc<dyn demitter::Transport> = transport.clone();
    Ok(Joined {
        emitter: Emitter::from_shared(shared, config)?,
        zmq: Some(transport),
        dht: None,
        timeout,
    })
}

impl Joined {
    /// Waits until the bus is joined: on `zmq://`, until both connections are up and the
    /// forwarder has the subscriptions, failing with the first report of a failure to
    /// connect (refused, not a forwarder, a CURVE key not allowed, the wrong server key);
    /// with seeds or peers, until a first peer is up; otherwise at once.
    async fn ready(&self, url: &str) -> Result<(), CliError> {
        if self.zmq.is_some() {
            let mut errors = self.emitter.errors();
            return tokio::select! {
                subscribed = self.subscribed() => subscribed,
                failure = join_failure(&self.emitter, &mut errors) => Err(failure),
            };
        }
        let seeds = seeds_of(url);
        if !seeds.is_empty() {
            return first_peer(&self.emitter, &seeds, self.timeout).await;
        }
        match &self.dht {
            Some(status) => dht_joined(&self.emitter, status.clone(), self.timeout).await,
            None => Ok(()),
        }
    }
}

/// The first report of a failure to reach the bus (the transport's own, of kind network
/// or refused), as the error; never if the stream ends. A node that gave way to another
/// with its id fails with that.
async fn join_failure(emitter: &Emitter, errors: &mut demitter::ErrorStream) -> CliError {
    while let Some(report) = errors.recv().await {
        if report.kind == ErrorKind::Refused && emitter.readiness().refused {
            return gave_way(emitter).await;
        }
        if matches!(report.kind, ErrorKind::Network | ErrorKind::Refused) {
            return CliError::Refused {
                cause: report.message,
            };
        }
    }
    std::future::pending().await
}

/// What to suggest for a forwarder that is not there.
fn forwarder_hint(error: &demitter::zmq::ZmqError) -> &'static str {
    match error {
        demitter::zmq::ZmqError::Unreachable { source, .. }
            if source.kind() == std::io::ErrorKind::ConnectionRefused =>
        {
            "; is a forwarder running there? `demitter forwarder` starts one (on 5555/5556 by default)"
        }
        _ => "",
    }
}

/// The addresses a node dials first: `seed=` of a `quic://` URL, `peer=` of an
/// `nng+tcp://` one.
fn seeds_of(url: &str) -> Vec<String> {
    let key = if url.starts_with("quic://") {
        "seed"
    } else if url.starts_with("nng+tcp://") {
        "peer"
    } else {
        return Vec::new();
    };
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| *name == key)
        .flat_map(|(_, value)| value.split(','))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a wait for a first peer listens to, reports and `$peer.up`, made before the peers
/// are read so that nothing in between is missed; `None` when a peer is up already.
fn watch_for_peers(
    emitter: &Emitter,
) -> Result<Option<(demitter::ErrorStream, demitter::EventStream<RawPayload>)>, CliError> {
    let errors = emitter.errors();
    let ups = emitter.events::<RawPayload>(PEER_UP)?;
    Ok(emitter.peers().is_empty().then_some((errors, ups)))
}

/// Waits for a first peer; fails once every seed has refused this node, or at `timeout`.
async fn first_peer(
    emitter: &Emitter,
    seeds: &[String],
    timeout: Duration,
) -> Result<(), CliError> {
    let Some((mut errors, mut ups)) = watch_for_peers(emitter)? else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut refusals = Vec::new();
    let mut refused_by = HashSet::new();
    if emitter.error_counts().refused > 0 {
        // Before `errors` was listening: the count says so, not the reason.
        refusals.push("a peer refused this node (DEMITTER_LOG=debug says why)".to_owned());
        refused_by.insert(String::new());
    }
    while refused_by.len() < seeds.len() {
        tokio::select! {
            Some(_) = ups.recv() => return Ok(()),
            report = errors.recv() => match report {
                // This node met another with its name (it dialed it as a seed, say), and
                // gave way: that is the answer, not a seed's refusal.
                Some(report) if report.kind == ErrorKind::Refused && emitter.readiness().refused => {
                    return Err(gave_way(emitter).await);
                }
                Some(report) if report.kind == ErrorKind::Refused => {
                    refused_by.insert(report.peer.clone().unwrap_or_default());
                    refusals.push(refusal_cause(&report.message));
                }
                Some(_) => {}
                None => return Err(gave_way(emitter).await),
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    if !emitter.peers().is_empty() {
        return Ok(());
    }
    Err(match refusals.pop() {
        Some(cause) => CliError::Refused { cause },
        None => CliError::NoSeed {
            seeds: seeds.join(", "),
            waited: timeout,
        },
    })
}

/// Why the emitter stopped while joining: it gave way to another node with its id
/// ([`demitter::Error::DuplicateId`]), or closed.
async fn gave_way(emitter: &Emitter) -> CliError {
    CliError::Bus(match emitter.ready().await {
        Err(e) => e,
        Ok(()) => demitter::Error::Closed,
    })
}

/// With DHT discovery and no seeds: waits until a first peer is up, or the DHT has taken
/// this node's announcement and answered a lookup (it may be the hood's first node); fails
/// with the DHT's report when it cannot be joined, or at `timeout`.
async fn dht_joined(
    emitter: &Emitter,
    mut status: watch::Receiver<DhtStatus>,
    timeout: Duration,
) -> Result<(), CliError> {
    let Some((mut errors, mut ups)) = watch_for_peers(emitter)? else {
        return Ok(());
    };
    let dht_failure = async {
        while let Some(report) = errors.recv().await {
            if report.kind == ErrorKind::Network && report.message.contains("DHT") {
                return report.message;
            }
        }
        std::future::pending().await
    };
    tokio::select! {
        Some(_) = ups.recv() => Ok(()),
        answered = status.wait_for(|s| s.announced && s.lookups > 0) => answered
            .map(|_| ())
            .map_err(|_| CliError::Bus(demitter::Error::Closed)),
        cause = dht_failure => Err(CliError::Refused { cause }),
        () = tokio::time::sleep(timeout) => Err(CliError::Timeout(format!(
            "could not join the bus: the DHT did not take this node's announcement within {timeout:?}"
        ))),
    }
}

/// A refusal's report, said as its cause.
fn refusal_cause(message: &str) -> String {
    if message.contains("UnknownIssuer") {
        format!(
            "{message} (its certificate is not signed by this node's hood: a peer of another hood?)"
        )
    } else if message.contains("UnknownCA") || message.contains("BadCertificate") {
        format!("{message} (it does not accept this node's certificate: a peer of another hood?)")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_are_read_from_each_scheme() {
        assert_eq!(
            seeds_of("quic://0.0.0.0:4816?hood=h&peer=bob&seed=a:1,b:2&seed=c:3"),
            ["a:1", "b:2", "c:3"]
        );
        assert_eq!(seeds_of("nng+tcp://127.0.0.1:0?peer=x:9"), ["x:9"]);
        assert!(seeds_of("quic://0.0.0.0:4816?hood=h&peer=alice").is_empty());
        assert!(seeds_of("zmq://127.0.0.1:5555").is_empty());
    }
}
