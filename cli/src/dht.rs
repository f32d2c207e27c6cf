//! `demitter dht`: a plain node of a private DHT, for QUIC nodes to find each other through
//! (`dht=HOST:PORT` in their URLs), until stopped.

use std::net::{Ipv4Addr, SocketAddrV4};

use demitter::quic::DhtNode;

use crate::error::CliError;
use crate::tap::print_line;

/// Where the node listens, and whom it joins.
#[derive(Debug, clap::Args)]
pub(crate) struct DhtArgs {
    /// The UDP port (0: any free port, printed).
    #[arg(short, long, default_value_t = 6881)]
    port: u16,
    /// The IPv4 address to listen on (0.0.0.0: every interface).
    #[arg(long, default_value_t = Ipv4Addr::UNSPECIFIED)]
    bind: Ipv4Addr,
    /// Other nodes of the same private DHT (HOST:PORT, repeatable or comma-separated), so
    /// that several bootstrap nodes back each other up.
    #[arg(long, value_delimiter = ',')]
    join: Vec<String>,
}

pub(crate) async fn run(args: DhtArgs) -> Result<(), CliError> {
    let node = DhtNode::start(SocketAddrV4::new(args.bind, args.port), &args.join)
        .await
        .map_err(demitter::Error::from)?;
    let addr = node.local_addr();
    // What a node on this machine gives as dht=; other machines give this machine's address.
    let here = if addr.ip().is_unspecified() {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, addr.port())
    } else {
        addr
    };
    print_line(&format!("dht={here}"))?;
    eprintln!(
        "DHT node on UDP {addr}; QUIC nodes find each other through it with dht=HOST:{} in \
         their URL (HOST: this machine's address as they reach it). Ctrl-C stops it.",
        addr.port()
    );
    // Serving runs until stopped: a signal is its ordinary end.
    let _ = crate::interrupt::requested().await;
    Ok(())
}
