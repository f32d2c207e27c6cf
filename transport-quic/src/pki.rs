//! The PKI helper: a *hood* is one certificate authority; every peer of the hood has a key
//! and a certificate, signed by the hood, that carries the peer's name.
//!
//! Files, all PEM, private keys written with mode 0600 and never overwritten:
//!
//! | file | what | who needs it |
//! | --- | --- | --- |
//! | `hood.crt` | the hood's certificate | every peer |
//! | `hood.key` | the hood's private key | only whoever adds peers; keep it offline |
//! | `NAME.crt`, `NAME.key` | peer `NAME`'s certificate and key | that peer |
//!
//! ```
//! use demitter_quic::pki::{self, Hood, PeerIdentity};
//! # fn main() -> Result<(), demitter_quic::QuicError> {
//! let dir = std::env::temp_dir().join(format!("demitter-pki-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! pki::create_hood(&dir, "office")?;
//! pki::create_peer(&dir, "alice")?;
//! let alice = PeerIdentity::load(&dir, "alice")?;
//! assert_eq!(alice.name(), "alice");
//! // Or all in memory, for tests and tools:
//! let bob = Hood::create("office")?.issue("bob")?;
//! assert_eq!(bob.name(), "bob");
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::QuicError;

/// The hood certificate's file name.
pub const HOOD_CERT_FILE: &str = "hood.crt";
/// The hood key's file name.
pub const HOOD_KEY_FILE: &str = "hood.key";
/// The longest peer or hood name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a hood certificate is valid by default: ten years.
pub const HOOD_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// How long a peer certificate is valid by default: two years.
pub const PEER_VALIDITY: Duration = Duration::from_secs(2 * 365 * 24 * 60 * 60);

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before this time.
    pub not_before: SystemTime,
    /// Not valid after this time.
    pub not_after: SystemTime,
}

impl Validity {
    /// From a day ago (tolerating clocks a little behind) until `lifetime` from now.
    pub fn from_now(lifetime: Duration) -> Self {
        let now = SystemTime::now();
        Self {
            not_before: now.checked_sub(DAY).unwrap_or(now),
            not_after: now + lifetime,
        }
    }
}

/// Checks a peer or hood name: 1 to 64 ASCII letters, digits, `.`, `-` or `_`, so that it
/// is a file name, a certificate name and a node id alike.
pub fn validate_name(name: &str) -> Result<(), QuicError> {
    let bad = |reason| {
        Err(QuicError::InvalidName {
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 64 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return bad("only ASCII letters, digits, `.`, `-` and `_` are allowed");
    }
    if name.starts_with('.') {
        return bad("must not start with `.`");
    }
    if name == "hood" {
        return bad("`hood` names the hood's own files");
    }
    Ok(())
}

/// A hood: the certificate authority whose peers trust each other.
#[derive(Clone)]
pub struct Hood {
    name: String,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Hood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hood")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Hood {
    /// A new hood called `name`, valid for [`HOOD_VALIDITY`].
    pub fn create(name: &str) -> Result<Self, QuicError> {
        Self::create_with(name, Validity::from_now(HOOD_VALIDITY))
    }

    /// A new hood valid for `validity`.
    pub fn create_with(name: &str, validity: Validity) -> Result<Self, QuicError> {
        validate_name(name)?;
        let key = KeyPair::generate().map_err(cert_error("hood key"))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("demitter hood {name}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, validity);
        let cert = params
            .self_signed(&key)
            .map_err(cert_error("hood certificate"))?;
        Ok(Self {
            name: name.to_owned(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The hood's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hood's certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a key and certificate for peer `name`, valid for [`PEER_VALIDITY`].
    pub fn issue(&self, name: &str) -> Result<PeerIdentity, QuicError> {
        self.issue_with(name, Validity::from_now(PEER_VALIDITY))
    }

    /// Issues a key and certificate for peer `name`, valid for `validity`.
    pub fn issue_with(&self, name: &str, validity: Validity) -> Result<PeerIdentity, QuicError> {
        self.issue_for(name, &[name], validity)
    }

    /// Issues a key and certificate for a server of the hood that clients reach as any of
    /// `hosts` (DNS names or IP addresses), valid for [`PEER_VALIDITY`]: a NATS server's,
    /// for example, which checks its clients against the hood.
    ///
    /// ```
    /// # fn main() -> Result<(), demitter_quic::QuicError> {
    /// let hood = demitter_quic::pki::Hood::create("office")?;
    /// let server = hood.issue_server("nats-1", &["nats-1.example", "127.0.0.1"])?;
    /// assert_eq!(server.name(), "nats-1");
    /// # Ok(()) }
    /// ```
    pub fn issue_server(&self, name: &str, hosts: &[&str]) -> Result<PeerIdentity, QuicError> {
        if hosts.is_empty() {
            return Err(QuicError::InvalidName {
                name: name.chars().take(80).collect(),
                reason: "a server certificate names at least one host",
            });
        }
        self.issue_for(name, hosts, Validity::from_now(PEER_VALIDITY))
    }

    /// A certificate named `name` for the subject alternative names `hosts`.
    fn issue_for(
        &self,
        name: &str,
        hosts: &[&str],
        validity: Validity,
    ) -> Result<PeerIdentity, QuicError> {
        validate_name(name)?;
        let hood_key = KeyPair::from_pem(&self.key_pem).map_err(cert_error("hood key"))?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, hood_key)
            .map_err(cert_error("hood certificate"))?;
        let key = KeyPair::generate().map_err(cert_error("peer key"))?;
        let hosts: Vec<String> = hosts.iter().map(|&h| h.to_owned()).collect();
        let mut params = CertificateParams::new(hosts).map_err(cert_error("peer name"))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, self.name.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        set_validity(&mut params, validity);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(cert_error("peer certificate"))?;
        PeerIdentity::from_pem(&self.cert_pem, &cert.pem(), &key.serialize_pem())
    }

    /// Writes `hood.crt` and `hood.key` (mode 0600) into `dir`, creating it; refuses to
    /// overwrite either.
    pub fn save(&self, dir: &Path) -> Result<HoodFiles, QuicError> {
        create_dir(dir)?;
        let files = HoodFiles::in_dir(dir);
        write_new(&files.cert, self.cert_pem.as_bytes(), false)?;
        write_new(&files.key, self.key_pem.as_bytes(), true)?;
        Ok(files)
    }

    /// Reads `hood.crt` and `hood.key` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, QuicError> {
        let files = HoodFiles::in_dir(dir);
        let cert_pem = read(&files.cert)?;
        let key_pem = read(&files.key)?;
        KeyPair::from_pem(&key_pem).map_err(|e| QuicError::Pem {
            path: files.key.clone(),
            reason: format!("not a usable private key: {e}"),
        })?;
        let der = first_cert(&files.cert, &cert_pem)?;
        let name = subject_field(&der, DnField::Organization).unwrap_or_default();
        Ok(Self {
            name,
            cert_pem,
            key_pem,
        })
    }
}

/// Where a hood's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoodFiles {
    /// `hood.crt`.
    pub cert: PathBuf,
    /// `hood.key`.
    pub key: PathBuf,
}

impl HoodFiles {
    fn in_dir(dir: &Path) -> Self {
        Self {
            cert: dir.join(HOOD_CERT_FILE),
            key: dir.join(HOOD_KEY_FILE),
        }
    }
}

/// Where a peer's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFiles {
    /// `NAME.crt`.
    pub cert: PathBuf,
    /// `NAME.key`.
    pub key: PathBuf,
    /// The hood's `hood.crt`, which the peer needs too.
    pub hood_cert: PathBuf,
}

/// What a peer needs to join a hood: its key, its certificate and the hood's certificate.
pub struct PeerIdentity {
    name: String,
    hood_cert: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    key_pem: String,
    cert_pem: String,
    hood_cert_pem: String,
}

impl Clone for PeerIdentity {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            hood_cert: self.hood_cert.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            key_pem: self.key_pem.clone(),
            cert_pem: self.cert_pem.clone(),
            hood_cert_pem: self.hood_cert_pem.clone(),
        }
    }
}

impl std::fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerIdentity")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PeerIdentity {
    /// From PEM text: the hood's certificate, the peer's certificate (chain) and key. The
    /// name is the certificate's common name. Nothing is verified against the hood here;
    /// peers do that at every connection.
    pub fn from_pem(hood_cert_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, QuicError> {
        let pem_error = |what: &str, reason: String| QuicError::Pem {
            path: PathBuf::from(format!("<{what}>")),
            reason,
        };
        let hood_cert = first_cert(Path::new("<hood certificate>"), hood_cert_pem)?;
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error("peer certificate", e.to_string()))?;
        let leaf = chain
            .first()
            .ok_or_else(|| pem_error("peer certificate", "no certificate in it".into()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| pem_error("peer key", format!("no usable private key: {e}")))?;
        let name = peer_name(leaf).map_err(|e| pem_error("peer certificate", e.to_string()))?;
        Ok(Self {
            name,
            hood_cert,
            chain,
            key,
            key_pem: key_pem.to_owned(),
            cert_pem: cert_pem.to_owned(),
            hood_cert_pem: hood_cert_pem.to_owned(),
        })
    }

    /// Reads `hood.crt`, `NAME.crt` and `NAME.key` from `dir`.
    pub fn load(dir: &Path, name: &str) -> Result<Self, QuicError> {
        validate_name(name)?;
        let files = PeerFiles::in_dir(dir, name);
        let hood = read(&files.hood_cert)?;
        let cert = read(&files.cert)?;
        let key = read(&files.key)?;
        let identity = Self::from_pem(&hood, &cert, &key).map_err(|e| match e {
            QuicError::Pem { path, reason } => QuicError::Pem {
                path: match path.to_str() {
                    Some("<hood certificate>") => files.hood_cert.clone(),
                    Some("<peer key>") => files.key.clone(),
                    _ => files.cert.clone(),
                },
                reason,
            },
            other => other,
        })?;
        if identity.name != name {
            return Err(QuicError::Pem {
                path: files.cert,
                reason: format!(
                    "the certificate names peer {:?}, not {name:?}",
                    identity.name
                ),
            });
        }
        Ok(identity)
    }

    /// Loads from explicit file paths.
    pub fn load_files(hood_cert: &Path, cert: &Path, key: &Path) -> Result<Self, QuicError> {
        Self::from_pem(&read(hood_cert)?, &read(cert)?, &read(key)?)
    }

    /// Writes `NAME.crt`, `NAME.key` (mode 0600) and, if missing, `hood.crt` into `dir`;
    /// refuses to overwrite the peer's files.
    pub fn save(&self, dir: &Path) -> Result<PeerFiles, QuicError> {
        create_dir(dir)?;
        let files = PeerFiles::in_dir(dir, &self.name);
        write_new(&files.cert, self.cert_pem.as_bytes(), false)?;
        write_new(&files.key, self.key_pem.as_bytes(), true)?;
        if !files.hood_cert.exists() {
            write_new(&files.hood_cert, self.hood_cert_pem.as_bytes(), false)?;
        }
        Ok(files)
    }

    /// The peer's name: its id on the bus.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hood's certificate (the trust anchor).
    pub fn hood_cert(&self) -> &CertificateDer<'static> {
        &self.hood_cert
    }

    /// A short fingerprint of the hood's certificate (16 hex digits of FNV-1a over its
    /// DER): the same for every peer of a hood, different between hoods. Discovery uses it
    /// to skip other hoods' nodes; it proves nothing (TLS does).
    pub fn hood_fingerprint(&self) -> String {
        let hash = self
            .hood_cert
            .iter()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        format!("{hash:016x}")
    }

    /// The SHA-256 of the hood's certificate (its DER): the same for every peer of a hood,
    /// and, unlike the [fingerprint](Self::hood_fingerprint), infeasible to match with
    /// another certificate. The DHT's rendezvous key is derived from it.
    pub fn hood_digest(&self) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.hood_cert);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }

    /// The peer's certificate chain, leaf first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The peer's private key.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

impl PeerFiles {
    fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            hood_cert: dir.join(HOOD_CERT_FILE),
        }
    }
}

/// Creates hood `name` in `dir`: writes `hood.crt` and `hood.key`.
pub fn create_hood(dir: &Path, name: &str) -> Result<HoodFiles, QuicError> {
    Hood::create(name)?.save(dir)
}

/// Creates peer `name` of the hood in `dir` (which holds `hood.crt` and `hood.key`): writes
/// `NAME.crt` and `NAME.key` there.
pub fn create_peer(dir: &Path, name: &str) -> Result<PeerFiles, QuicError> {
    Hood::load(dir)?.issue(name)?.save(dir)
}

/// Issues server `name` of the hood in `dir`, reached as `hosts` ([`Hood::issue_server`]),
/// and saves its `NAME.crt` and `NAME.key` there; refuses to overwrite.
pub fn create_server(dir: &Path, name: &str, hosts: &[&str]) -> Result<PeerFiles, QuicError> {
    Hood::load(dir)?.issue_server(name, hosts)?.save(dir)
}

/// The peer name a certificate carries: its subject common name, which must be a valid
/// peer name.
pub(crate) fn peer_name(cert: &CertificateDer<'_>) -> Result<String, QuicError> {
    let name = subject_field(cert, DnField::CommonName).ok_or(QuicError::NoPeerName(
        "the certificate has no readable common name",
    ))?;
    validate_name(&name)?;
    Ok(name)
}

#[derive(Clone, Copy)]
enum DnField {
    CommonName,
    Organization,
}

fn subject_field(cert: &CertificateDer<'_>, field: DnField) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let value = match field {
        DnField::CommonName => subject.iter_common_name().next(),
        DnField::Organization => subject.iter_organization().next(),
    };
    value?.as_str().ok().map(str::to_owned)
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    params.not_before = time::OffsetDateTime::from(validity.not_before);
    params.not_after = time::OffsetDateTime::from(validity.not_after);
}

fn cert_error(what: &'static str) -> impl FnOnce(rcgen::Error) -> QuicError {
    move |source| QuicError::Certificate { what, source }
}

fn first_cert(path: &Path, pem: &str) -> Result<CertificateDer<'static>, QuicError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| "no certificate in it".to_owned())
        .and_then(|c| c.map_err(|e| e.to_string()))
        .map_err(|reason| QuicError::Pem {
            path: path.to_owned(),
            reason,
        })
}

fn read(path: &Path) -> Result<String, QuicError> {
    fs::read_to_string(path).map_err(|source| QuicError::File {
        path: path.to_owned(),
        source,
    })
}

fn create_dir(dir: &Path) -> Result<(), QuicError> {
    fs::create_dir_all(dir).map_err(|source| QuicError::File {
        path: dir.to_owned(),
        source,
    })
}

fn write_new(path: &Path, contents: &[u8], private: bool) -> Result<(), QuicError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let file_error = |source| QuicError::File {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(file_error)?;
    file.write_all(contents).map_err(file_error)?;
    file.sync_all().map_err(file_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "demitter-pki-{tag}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn files_round_trip_and_keys_are_private() {
        let dir = temp_dir("files");
        let hood = create_hood(&dir, "lab").expect("hood");
        let peer = create_peer(&dir, "node-1").expect("peer");
        let loaded = PeerIdentity::load(&dir, "node-1").expect("loads");
        assert_eq!(loaded.name(), "node-1");
        assert_eq!(Hood::load(&dir).expect("loads").name(), "lab");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in [&hood.key, &peer.key] {
                let mode = fs::metadata(key).expect("exists").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", key.display());
            }
        }
        let again = create_peer(&dir, "node-1").expect_err("never overwrites");
        assert!(again.to_string().contains("node-1.crt"), "{again}");
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_names_and_missing_files_are_clear_errors() {
        for bad in ["", "a/b", "../x", ".hidden", "hood", "é", &"x".repeat(65)] {
            assert!(Hood::create(bad).is_err(), "{bad:?}");
        }
        let dir = temp_dir("missing");
        let e = create_peer(&dir, "x").expect_err("no hood there");
        assert!(e.to_string().contains("hood.crt"), "{e}");
        let e = PeerIdentity::from_pem("junk", "junk", "junk").expect_err("not PEM");
        assert!(e.to_string().contains("hood certificate"), "{e}");
    }

    #[test]
    fn a_loaded_identity_must_be_the_named_peer() {
        let dir = temp_dir("renamed");
        create_hood(&dir, "lab").expect("hood");
        create_peer(&dir, "alice").expect("peer");
        fs::copy(dir.join("alice.crt"), dir.join("bob.crt")).expect("copies");
        fs::copy(dir.join("alice.key"), dir.join("bob.key")).expect("copies");
        let e = PeerIdentity::load(&dir, "bob").expect_err("alice's certificate");
        assert!(e.to_string().contains("names peer \"alice\""), "{e}");
        fs::remove_dir_all(&dir).ok();
    }
}
