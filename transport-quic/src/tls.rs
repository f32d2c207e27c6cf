//! Mutual TLS from one hood: both sides present a certificate signed by the hood's CA and
//! verify the other's. A peer's name is its certificate's common name.
//!
//! The client side checks the server's chain against the hood but not a host name: peers
//! are found by address (seeds, gossip, discovery), and the name the certificate proves is what
//! counts. It is checked against the allowed names, if any, once the handshake is done.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::QuicError;
use crate::pki::{PeerIdentity, peer_name};

/// The ALPN protocol id: a peer speaking anything else is refused in the handshake.
pub(crate) const ALPN: &[u8] = b"demitter/1";

/// The server name the client side asks for; never checked (see the module docs).
pub(crate) const SERVER_NAME: &str = "demitter.peer";

/// The process's rustls provider: the one the application installed
/// ([`CryptoProvider::install_default`]), or else the one rustls's crate features select
/// (ring, which this crate builds rustls with), which rustls then installs. An application
/// whose build enables more than one provider must install one first, as rustls requires of
/// every `ClientConfig::builder`.
fn provider() -> Arc<CryptoProvider> {
    match CryptoProvider::get_default() {
        Some(installed) => Arc::clone(installed),
        None => Arc::clone(rustls::ClientConfig::builder().crypto_provider()),
    }
}

fn tls_error(e: impl std::error::Error + Send + Sync + 'static) -> QuicError {
    QuicError::Tls(Box::new(e))
}

fn roots(identity: &PeerIdentity) -> Result<Arc<RootCertStore>, QuicError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(identity.hood_cert().clone())
        .map_err(QuicError::HoodCertificate)?;
    Ok(Arc::new(roots))
}

/// The accepting side: requires a client certificate signed by the hood.
pub(crate) fn server_config(
    identity: &PeerIdentity,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ServerConfig, QuicError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(identity)?, provider.clone())
        .build()
        .map_err(tls_error)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.cert_chain().to_vec(), identity.private_key())
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport);
    Ok(config)
}

/// The dialing side: presents our certificate, requires one signed by the hood.
pub(crate) fn client_config(
    identity: &PeerIdentity,
    transport: Arc<quinn::TransportConfig>,
) -> Result<quinn::ClientConfig, QuicError> {
    let provider = provider();
    let verifier = HoodServerVerifier {
        roots: Some(roots(identity)?),
        provider: provider.clone(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(identity.cert_chain().to_vec(), identity.private_key())
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport);
    Ok(config)
}

/// A dialing side that presents no certificate and accepts any server's: for
/// [`RawPeer::connect_anonymous`](crate::RawPeer::connect_anonymous), which tests refusals.
pub(crate) fn anonymous_client_config() -> Result<quinn::ClientConfig, QuicError> {
    let provider = provider();
    let verifier = HoodServerVerifier {
        roots: None,
        provider: provider.clone(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(tls_error)?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// The mesh's TLS for QUIC endpoints outside the mesh (tools, benchmarks). Written here,
/// not in `pki`, so that certificates know nothing of TLS configurations.
impl PeerIdentity {
    /// A `quinn` server configuration with this identity and the mesh's mutual TLS (a
    /// client certificate of the hood is required).
    pub fn quinn_server_config(&self) -> Result<quinn::ServerConfig, QuicError> {
        server_config(self, Arc::default())
    }

    /// A `quinn` client configuration with this identity and the mesh's mutual TLS (the
    /// server must prove a certificate of the hood). Connect with any server name.
    pub fn quinn_client_config(&self) -> Result<quinn::ClientConfig, QuicError> {
        client_config(self, Arc::default())
    }
}

/// The name the peer's certificate proves, once the handshake is done.
pub(crate) fn remote_name(conn: &quinn::Connection) -> Result<String, QuicError> {
    let identity = conn
        .peer_identity()
        .ok_or(QuicError::NoPeerName("the peer presented no certificate"))?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| QuicError::NoPeerName("the peer's identity is not a certificate chain"))?;
    let leaf = chain
        .first()
        .ok_or(QuicError::NoPeerName("the peer presented no certificate"))?;
    peer_name(leaf)
}

/// Verifies a server's chain against the hood, without a host-name check (or, with no
/// roots, not at all: only the anonymous test client does that).
#[derive(Debug)]
struct HoodServerVerifier {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for HoodServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
