//! `demitter pki`: the certificates a QUIC mesh (and an authenticated NATS bus) runs on,
//! and the CURVE keys of ZeroMQ.

use std::path::{Path, PathBuf};

use demitter::nats::authorization::{ServerTls, server_config};
use demitter::quic::pki::{PeerFiles, create_hood, create_peer, create_server};
use demitter::zmq::curve_keys::write_key_pair;

use crate::error::CliError;

const HOW_TO: &str = "\
How to set up a mesh (as tubemail's createHood / createPeer):
  demitter pki hood office            # office/hood.crt, office/hood.key: keep hood.key safe
  demitter pki peer office alice      # office/alice.crt, office/alice.key
  demitter pki peer office bob

On one machine (two terminals): alice listens on UDP port 4816; bob takes any free port (0)
and finds alice through her address as a seed:
  demitter tap '#' --url 'quic://127.0.0.1:4816?hood=./office&peer=alice'
  demitter emit hello '\"hi\"' --url 'quic://127.0.0.1:0?hood=./office&peer=bob&seed=127.0.0.1:4816'

On two machines: give each machine hood.crt and its own NAME.crt and NAME.key, then on alice's
  demitter tap '#' --url 'quic://0.0.0.0:4816?hood=./office&peer=alice'
and on bob's
  demitter emit hello '\"hi\"' --url 'quic://0.0.0.0:4816?hood=./office&peer=bob&seed=ALICE-HOST:4816'

Across networks, with no address known in advance: the nodes find each other through a DHT
(BitTorrent's Mainline DHT). Run a private one's node on a host they all reach (DHT-HOST),
then give its address as dht= (bob on another machine, as above):
  demitter dht --port 6881
  demitter tap '#' --url 'quic://0.0.0.0:4816?hood=./office&peer=alice&dht=DHT-HOST:6881'
  demitter emit hello '\"hi\"' --url 'quic://0.0.0.0:0?hood=./office&peer=bob&dht=DHT-HOST:6881'
dht=on joins the public DHT instead. Either way the DHT sees only a key derived from the
hood's certificate and the nodes' addresses: anyone can see that some hood lives there, and
nobody without a certificate of the hood gets in.

quic://IP:PORTS: IP is the address to listen on (0.0.0.0 for every interface, 127.0.0.1 for
this machine only); PORTS is one UDP port (4816), a list (4816,5000), a range (4816-4819) or 0
(any free port). The node takes the first free one, so several nodes on one machine can share
a range. More parameters: seed=HOST:PORT (repeatable or comma-separated), allow=NAME,NAME,
gossip=off, mdns=on (find the hood's peers on the local network), dht=on or dht=HOST:PORT
(find them through a DHT; IPv4), dht-port=P (the DHT's own UDP port; default any).

Peers of one hood accept each other, and no one else; a peer's name is its events' source.

An authenticated NATS bus on the same hood: a server certificate for the hosts clients use,
a server configuration that lets each peer publish only under its own name, and peers that
connect with their certificates:
  demitter pki server office nats-1 --host 127.0.0.1 --host nats-1.example
  demitter pki nats-config office nats-1 alice bob > nats.conf
  nats-server -c nats.conf
  demitter tap '#' --url 'nats://127.0.0.1:4222?hood=./office&peer=alice'

CURVE keys for ZeroMQ (libzmq's Z85 key files): one pair for the forwarder, one per client;
each client's line goes into the forwarder's allow file:
  demitter pki curve forwarder --dir keys   # keys/forwarder.key, keys/forwarder.pub
  demitter pki curve alice --dir keys >> keys/allow";

/// The `pki` subcommands.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = HOW_TO)]
// clap prints these comments as `--help`; backticks would show there literally.
#[allow(clippy::doc_markdown)]
pub(crate) enum PkiCommand {
    /// Creates a hood (the certificate authority its peers trust): writes DIR/hood.crt and
    /// DIR/hood.key. Nothing is overwritten.
    #[command(after_help = HOW_TO)]
    Hood {
        /// The hood's name.
        name: String,
        /// Where to write (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Creates peer NAME of the hood in HOOD_DIR: writes HOOD_DIR/NAME.crt and
    /// HOOD_DIR/NAME.key, signed by the hood. Nothing is overwritten.
    #[command(after_help = HOW_TO)]
    Peer {
        /// The hood's directory (holding hood.crt and hood.key).
        hood_dir: PathBuf,
        /// The peer's name: its id on the bus (letters, digits, `.`, `-`, `_`).
        name: String,
    },
    /// Creates server NAME of the hood in HOOD_DIR (a NATS server's certificate, naming the
    /// hosts its clients connect to): writes HOOD_DIR/NAME.crt and HOOD_DIR/NAME.key.
    /// Nothing is overwritten.
    #[command(after_help = HOW_TO)]
    Server {
        /// The hood's directory (holding hood.crt and hood.key).
        hood_dir: PathBuf,
        /// The server's name (letters, digits, `.`, `-`, `_`).
        name: String,
        /// A DNS name or IP address clients reach the server as (at least one).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
    },
    /// Creates a CURVE key pair for ZeroMQ: writes DIR/NAME.key (the Z85 secret key,
    /// readable by its owner only) and DIR/NAME.pub (the Z85 public key), and prints the
    /// forwarder's allow-file line for it, `NAME PUBLIC_KEY`. Nothing is overwritten.
    #[command(after_help = HOW_TO)]
    Curve {
        /// The key's name: for a client, the name it emits under (letters, digits, `.`,
        /// `-`, `_`).
        name: String,
        /// Where to write.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Prints a nats-server configuration for an authenticated bus: TLS with server
    /// SERVER's certificate, clients must present a certificate of the hood, and each PEER
    /// may publish only on its own subjects.
    #[command(after_help = HOW_TO)]
    NatsConfig {
        /// The hood's directory (holding hood.crt, SERVER.crt and SERVER.key).
        hood_dir: PathBuf,
        /// The server certificate's name (from `pki server`).
        server: String,
        /// The peers allowed on the bus.
        #[arg(required = true)]
        peers: Vec<String>,
        /// The bus's subject prefix (the URL's prefix=).
        #[arg(long, default_value = "demitter")]
        prefix: String,
    },
}

pub(crate) fn run(command: &PkiCommand) -> Result<(), CliError> {
    match command {
        PkiCommand::Hood { name, dir } => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from(name));
            if dir.join("hood.crt").exists() || dir.join("hood.key").exists() {
                return Err(CliError::HoodExists(dir));
            }
            let files = create_hood(&dir, name)?;
            println!(
                "hood `{name}`: {} and {} (keep the key secret)",
                files.cert.display(),
                files.key.display()
            );
        }
        PkiCommand::Peer { hood_dir, name } => {
            refuse_to_overwrite(hood_dir, name)?;
            let files = create_peer(hood_dir, name)?;
            say_issued(&format!("peer `{name}`"), &files);
        }
        PkiCommand::Server {
            hood_dir,
            name,
            hosts,
        } => {
            refuse_to_overwrite(hood_dir, name)?;
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            let files = create_server(hood_dir, name, &hosts)?;
            say_issued(&format!("server `{name}` for {}", hosts.join(", ")), &files);
        }
        PkiCommand::Curve { name, dir } => {
            let files = write_key_pair(dir, name)?;
            eprintln!(
                "CURVE key pair `{name}`: {} (keep it secret) and {}",
                files.secret.display(),
                files.public.display()
            );
            println!("{}", files.allow_line);
        }
        PkiCommand::NatsConfig {
            hood_dir,
            server,
            peers,
            prefix,
        } => {
            // Absolute paths: the server reads them from wherever it runs.
            let dir =
                std::fs::canonicalize(hood_dir).map_err(|_| CliError::NoHood(hood_dir.clone()))?;
            let tls = ServerTls {
                cert: dir.join(format!("{server}.crt")),
                key: dir.join(format!("{server}.key")),
                ca_cert: dir.join("hood.crt"),
            };
            for file in [&tls.cert, &tls.key, &tls.ca_cert] {
                if !file.is_file() {
                    return Err(CliError::MissingFile(file.clone()));
                }
            }
            let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
            print!("{}", server_config(prefix, &tls, &peers)?);
        }
    }
    Ok(())
}

/// Says which files were written for `what`.
fn say_issued(what: &str, files: &PeerFiles) {
    println!(
        "{what}: {} and {}, with {}",
        files.cert.display(),
        files.key.display(),
        files.hood_cert.display()
    );
}

/// Refuses a name whose files exist in the hood's directory, or a directory without a
/// hood.
fn refuse_to_overwrite(hood_dir: &Path, name: &str) -> Result<(), CliError> {
    if !has_hood(hood_dir) {
        return Err(CliError::NoHood(hood_dir.to_path_buf()));
    }
    if hood_dir.join(format!("{name}.crt")).exists()
        || hood_dir.join(format!("{name}.key")).exists()
    {
        return Err(CliError::PeerExists {
            dir: hood_dir.to_path_buf(),
            name: name.to_owned(),
        });
    }
    Ok(())
}

fn has_hood(dir: &Path) -> bool {
    dir.join("hood.crt").is_file() && dir.join("hood.key").is_file()
}
