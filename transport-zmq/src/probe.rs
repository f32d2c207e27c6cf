//! [`probe_forwarder`]: is there a forwarder at these addresses, with its two sides where
//! they are said to be?

use std::time::Duration;

use tokio::net::TcpStream;

use crate::conn;
use crate::error::ZmqError;
use crate::zmtp::SocketType;

/// Checks that a forwarder answers at `xsub` (its publishers' side) and `xpub` (its
/// subscribers' side), each within `timeout`, by a real ZMTP handshake on each (as a PUB
/// and as a SUB) that is then closed. The forwarder logs such a visit at debug only.
///
/// [`ZmqTransport::connect`](crate::ZmqTransport::connect) returns at once and retries in
/// the background, so a wrong address only shows as reports on the error channel; a tool
/// that must say at once whether a bus is there calls this first. The error names the
/// cause: nothing listening ([`ZmqError::Unreachable`]), the two ports swapped or another
/// kind of ZeroMQ socket ([`ZmqError::WrongSide`]), something that does not speak ZMTP
/// ([`ZmqError::NotAForwarder`]).
///
/// ```
/// use std::time::Duration;
/// use demitter_forwarder::{Forwarder, ForwarderConfig};
/// use demitter_zmq::{ZmqError, probe_forwarder};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let forwarder = Forwarder::bind(ForwarderConfig::loopback_free_ports()).await?;
/// let (xsub, xpub) = (forwarder.xsub_addr().to_string(), forwarder.xpub_addr().to_string());
/// let second = Duration::from_secs(1);
/// probe_forwarder(&xsub, &xpub, second).await?;
/// let swapped = probe_forwarder(&xpub, &xsub, second).await.unwrap_err();
/// assert!(matches!(swapped, ZmqError::WrongSide { .. }), "{swapped}");
/// forwarder.close().await;
/// # Ok(()) }
/// ```
pub async fn probe_forwarder(xsub: &str, xpub: &str, timeout: Duration) -> Result<(), ZmqError> {
    probe(xsub, SocketType::Pub, "XSUB", timeout).await?;
    probe(xpub, SocketType::Sub, "XPUB", timeout).await
}

async fn probe(
    addr: &str,
    ours: SocketType,
    expected: &'static str,
    timeout: Duration,
) -> Result<(), ZmqError> {
    let unreachable = |source| ZmqError::Unreachable {
        addr: addr.to_owned(),
        source,
    };
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(unreachable(e)),
        Err(_) => {
            return Err(unreachable(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            )));
        }
    };
    let not_a_forwarder = |source: ZmqError| ZmqError::NotAForwarder {
        addr: addr.to_owned(),
        source: Box::new(source),
    };
    let handshake = tokio::time::timeout(timeout, conn::handshake(stream, ours, 64 * 1024));
    match handshake.await {
        // Whatever the transport could talk to is good enough: a libzmq proxy, or ours.
        Ok(Ok(_)) => Ok(()),
        Ok(Err(ZmqError::IncompatiblePeer { theirs, .. })) => Err(ZmqError::WrongSide {
            addr: addr.to_owned(),
            expected,
            found: theirs,
        }),
        Ok(Err(e)) => Err(not_a_forwarder(e)),
        Err(_) => Err(not_a_forwarder(ZmqError::Handshake(format!(
            "no ZMTP handshake within {timeout:?}"
        )))),
    }
}
