//! QUIC for demitter: a brokerless peer mesh with mutual TLS.
//!
//! Every node is a peer. Peers of one *hood* (one certificate authority) authenticate
//! each other with certificates that carry their names; a peer's name is the `source` its
//! events carry. Nodes find each other through [`discovery`] (static seeds, gossip, multicast
//! DNS, the BitTorrent DHT, or any [`discovery::Discovery`] you plug in), keep exactly one connection per pair, and send each event
//! only to the peers that listen for it.
//!
//! - [`pki`]: make a hood and its peers' certificates (PEM files, keys mode 0600).
//! - [`QuicConfig`], [`QuicTransport`]: run a node.
//! - [`wire`]: the stream format, documented in `docs/wire-format.md`.
//!
//! ```
//! use demitter_core::{Emitter, Event};
//! use demitter_quic::{pki::Hood, QuicConfig, QuicTransport};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hood = Hood::create("example")?;
//! let alice = QuicTransport::bind(QuicConfig::new(hood.issue("alice")?).loopback())?;
//! let seed = alice.local_addr().to_string();
//! let bob = QuicTransport::bind(QuicConfig::new(hood.issue("bob")?).loopback().with_seed(seed))?;
//! let (alice, bob) = (Emitter::new(alice)?, Emitter::new(bob)?);
//!
//! let greeting = bob.once::<String>("greet.+")?;
//! alice.wait_for_listeners("greet.bob", 1).await?;
//! alice.emit("greet.bob", "hello over QUIC").await?;
//! let event: Event<String> = greeting.await?;
//! assert_eq!(&*event.source, "alice"); // the name in alice's certificate
//! # alice.close().await; bob.close().await;
//! # Ok(()) }
//! ```

mod config;
mod connect;
pub mod dht;
mod dht_node;
pub mod discovery;
mod endpoint;
mod error;
mod gossip;
mod link;
pub mod mdns;
mod mesh;
mod namesake;
pub mod pki;
mod pump;
pub mod raw;
mod tls;
mod transport;
pub mod wire;

pub use config::{ListenPorts, QuicConfig};
pub use dht::DhtDiscovery;
pub use dht_node::DhtNode;
pub use error::QuicError;
pub use mdns::MdnsDiscovery;
pub use pki::{Hood, PeerIdentity};
pub use raw::RawPeer;
pub use transport::QuicTransport;
