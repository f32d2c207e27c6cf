//! `demitter pki`: the certificates a QUIC mesh runs on.

use std::path::{Path, PathBuf};

use demitter::quic::pki::{create_hood, create_peer};

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

quic://IP:PORTS: IP is the address to listen on (0.0.0.0 for every interface, 127.0.0.1 for
this machine only); PORTS is one UDP port (4816), a list (4816,5000), a range (4816-4819) or 0
(any free port). The node takes the first free one, so several nodes on one machine can share
a range. More parameters: seed=HOST:PORT (repeatable or comma-separated), allow=NAME,NAME,
gossip=off, mdns=on (find the hood's peers on the local network).

Peers of one hood accept each other, and no one else; a peer's name is its events' source.";

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
            if !has_hood(hood_dir) {
                return Err(CliError::NoHood(hood_dir.clone()));
            }
            if hood_dir.join(format!("{name}.crt")).exists()
                || hood_dir.join(format!("{name}.key")).exists()
            {
                return Err(CliError::PeerExists {
                    dir: hood_dir.clone(),
                    name: name.clone(),
                });
            }
            let files = create_peer(hood_dir, name)?;
            println!(
                "peer `{name}`: {} and {}, with {}",
                files.cert.display(),
                files.key.display(),
                files.hood_cert.display()
            );
        }
    }
    Ok(())
}

fn has_hood(dir: &Path) -> bool {
    dir.join("hood.crt").is_file() && dir.join("hood.key").is_file()
}
