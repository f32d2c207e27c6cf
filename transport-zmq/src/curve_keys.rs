//! CURVE keys (CurveZMQ, RFC 26): Curve25519 key pairs written as Z85 text (RFC 32), the
//! files that hold them, and the forwarder's allow list of which key may emit under which
//! name.
//!
//! ```text
//! NAME.key    the secret key: 40 Z85 characters and a newline (mode 0600)
//! NAME.pub    the public key: 40 Z85 characters and a newline
//! allow file  one line per client:  NAME Z85_PUBLIC_KEY   ('#' starts a comment)
//! ```
//!
//! ```
//! use demitter_zmq::curve_keys::{AllowList, CurveSecretKey};
//! let secret = CurveSecretKey::generate();
//! let public = secret.public_key();
//! let allow = AllowList::parse(&format!("# clients\nalice {}\n", public.to_z85()))?;
//! assert_eq!(allow.name_of(&public), Some("alice"));
//! # Ok::<(), demitter_zmq::ZmqError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use demitter_core::NodeId;

use crate::error::ZmqError;

/// Bytes of a Curve25519 key.
pub const KEY_BYTES: usize = 32;
/// Characters of a key written in Z85.
pub const Z85_KEY_CHARS: usize = 40;

/// A Curve25519 public key: who a peer is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurvePublicKey([u8; KEY_BYTES]);

impl CurvePublicKey {
    /// The key of these bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// Reads a key written in Z85 (40 characters; surrounding whitespace is ignored).
    pub fn from_z85(text: &str) -> Result<Self, ZmqError> {
        decode_key(text).map(Self)
    }

    /// The key in Z85 (40 characters), as libzmq's `zmq_z85_encode` writes it.
    pub fn to_z85(&self) -> String {
        z85::encode(self.0)
    }
}

impl fmt::Debug for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurvePublicKey({})", self.to_z85())
    }
}

impl fmt::Display for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_z85())
    }
}

/// A Curve25519 secret key. Its bytes are wiped when it is dropped, and neither `Debug`
/// nor any error ever shows them.
#[derive(Clone)]
pub struct CurveSecretKey(demitter_curve_box::SecretKey);

impl CurveSecretKey {
    /// A new key from the operating system's random numbers.
    pub fn generate() -> Self {
        Self(demitter_curve_box::generate_secret_key())
    }

    /// The key of these bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(demitter_curve_box::SecretKey::from(bytes))
    }

    /// Reads a key written in Z85 (40 characters; surrounding whitespace is ignored).
    pub fn from_z85(text: &str) -> Result<Self, ZmqError> {
        decode_key(text).map(Self::from_bytes)
    }

    /// The key in Z85, for its file.
    pub fn to_z85(&self) -> String {
        z85::encode(self.0.to_bytes())
    }

    /// The public key that goes with it.
    pub fn public_key(&self) -> CurvePublicKey {
        CurvePublicKey(*self.0.public_key().as_bytes())
    }

    /// The primitive, for the handshake.
    pub(crate) fn box_key(&self) -> &demitter_curve_box::SecretKey {
        &self.0
    }

    /// The key in a file written by [`write_key_pair`] (or by hand: 40 Z85 characters).
    pub fn read_file(path: &Path) -> Result<Self, ZmqError> {
        let text = read_key_file(path)?;
        Self::from_z85(&text).map_err(|e| in_file(path, e))
    }
}

impl fmt::Debug for CurveSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurveSecretKey(public: {})", self.public_key())
    }
}

impl CurvePublicKey {
    /// The key in a file written by [`write_key_pair`] (or by hand: 40 Z85 characters).
    pub fn read_file(path: &Path) -> Result<Self, ZmqError> {
        let text = read_key_file(path)?;
        Self::from_z85(&text).map_err(|e| in_file(path, e))
    }
}

/// Which client key may connect, and under which name it emits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    names: HashMap<CurvePublicKey, NodeId>,
}

impl AllowList {
    /// Reads an allow file's text: a line `NAME Z85_PUBLIC_KEY` per client; blank lines
    /// and lines starting with `#` are skipped. A name may have several keys (while one
    /// replaces another); a key may appear once.
    pub fn parse(text: &str) -> Result<Self, ZmqError> {
        let mut names = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let refuse = |reason: String| ZmqError::AllowList {
                line: line_no,
                reason,
            };
            let mut fields = line.split_whitespace();
            let (Some(name), Some(key), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(refuse("expected `NAME Z85_PUBLIC_KEY`".to_owned()));
            };
            let name = NodeId::new(name).map_err(|e| refuse(format!("the name: {e}")))?;
            let key = CurvePublicKey::from_z85(key).map_err(|e| refuse(e.to_string()))?;
            if let Some(earlier) = names.insert(key, name) {
                return Err(refuse(format!(
                    "the key {key} is already allowed (for `{earlier}`)"
                )));
            }
        }
        Ok(Self { names })
    }

    /// Reads an allow file; the errors name the file and the line.
    pub fn read_file(path: &Path) -> Result<Self, ZmqError> {
        let text = std::fs::read_to_string(path).map_err(|source| ZmqError::KeyFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| in_file(path, e))
    }

    /// The name `key` may emit under, if it is allowed.
    pub fn name_of(&self, key: &CurvePublicKey) -> Option<&str> {
        self.names.get(key).map(NodeId::as_str)
    }

    /// How many keys are allowed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no key is allowed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What [`write_key_pair`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairFiles {
    /// `DIR/NAME.key`: the secret key (mode 0600).
    pub secret: PathBuf,
    /// `DIR/NAME.pub`: the public key.
    pub public: PathBuf,
    /// The allow-file line for the new key: `NAME Z85_PUBLIC_KEY`.
    pub allow_line: String,
}

/// Writes a new key pair for `name` into `dir` as `NAME.key` (the secret, readable by its
/// owner only) and `NAME.pub`, never overwriting either: an existing file is an error,
/// and nothing is written. `dir` is created if it is not there.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("curve-doc-{}", std::process::id()));
/// let files = demitter_zmq::curve_keys::write_key_pair(&dir, "alice")?;
/// assert!(files.allow_line.starts_with("alice "));
/// assert!(demitter_zmq::curve_keys::write_key_pair(&dir, "alice").is_err(), "never overwrites");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_key_pair(dir: &Path, name: &str) -> Result<KeyPairFiles, ZmqError> {
    let id = NodeId::new(name).map_err(ZmqError::KeyName)?;
    if name.contains(char::is_whitespace) || name.starts_with('#') {
        return Err(ZmqError::KeyNameUnfit(name.to_owned()));
    }
    let secret_path = dir.join(format!("{id}.key"));
    let public_path = dir.join(format!("{id}.pub"));
    for path in [&secret_path, &public_path] {
        if path.exists() {
            return Err(ZmqError::KeyFileExists { path: path.clone() });
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| ZmqError::KeyFile {
        path: dir.to_path_buf(),
        source,
    })?;
    let secret = CurveSecretKey::generate();
    let public = secret.public_key();
    write_new(&secret_path, &secret.to_z85(), true)?;
    if let Err(e) = write_new(&public_path, &public.to_z85(), false) {
        let _ = std::fs::remove_file(&secret_path);
        return Err(e);
    }
    Ok(KeyPairFiles {
        secret: secret_path,
        public: public_path,
        allow_line: format!("{id} {public}"),
    })
}

/// Creates `path` (never replacing a file) holding `key` and a newline; with `private`,
/// readable and writable by its owner only.
fn write_new(path: &Path, key: &str, private: bool) -> Result<(), ZmqError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let file_error = |source| ZmqError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => ZmqError::KeyFileExists {
            path: path.to_owned(),
        },
        _ => file_error(source),
    })?;
    writeln!(file, "{key}").map_err(file_error)
}

fn read_key_file(path: &Path) -> Result<String, ZmqError> {
    std::fs::read_to_string(path).map_err(|source| ZmqError::KeyFile {
        path: path.to_owned(),
        source,
    })
}

/// `error`, said of the file at `path`.
fn in_file(path: &Path, error: ZmqError) -> ZmqError {
    ZmqError::InFile {
        path: path.to_owned(),
        source: Box::new(error),
    }
}

fn decode_key(text: &str) -> Result<[u8; KEY_BYTES], ZmqError> {
    let text = text.trim();
    if text.len() != Z85_KEY_CHARS {
        return Err(ZmqError::CurveKey(format!(
            "a key is {Z85_KEY_CHARS} Z85 characters, not {}",
            text.chars().count()
        )));
    }
    let bytes = z85::decode(text).map_err(|e| ZmqError::CurveKey(format!("not Z85 ({e:?})")))?;
    bytes
        .try_into()
        .map_err(|_| ZmqError::CurveKey("not a 32-byte key".to_owned()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The key pairs of the CurveZMQ documentation (`zmq_curve(7)`), which libzmq's own
    /// tests use.
    const CLIENT_PUBLIC: &str = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
    const CLIENT_SECRET: &str = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
    const SERVER_PUBLIC: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    const SERVER_SECRET: &str = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

    #[test]
    fn the_documented_key_pairs_hold() {
        for (secret, public) in [
            (CLIENT_SECRET, CLIENT_PUBLIC),
            (SERVER_SECRET, SERVER_PUBLIC),
        ] {
            let secret = CurveSecretKey::from_z85(secret).expect("a key");
            assert_eq!(secret.public_key().to_z85(), public);
        }
    }

    #[test]
    fn z85_follows_rfc_32() {
        // RFC 32's test vector.
        let bytes = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(z85::encode(bytes), "HelloWorld");
    }

    #[test]
    fn bad_keys_are_refused_with_why() {
        let short = CurvePublicKey::from_z85("abc").expect_err("too short");
        assert!(short.to_string().contains("40 Z85 characters"), "{short}");
        let bad = CurvePublicKey::from_z85(&"\"".repeat(40)).expect_err("not Z85");
        assert!(bad.to_string().contains("not Z85"), "{bad}");
        let secret = CurveSecretKey::from_z85(CLIENT_SECRET).expect("a key");
        assert!(
            !format!("{secret:?}").contains(CLIENT_SECRET),
            "never shown"
        );
    }

    #[test]
    fn an_allow_list_says_which_name_each_key_emits_under() {
        let text =
            format!("# who may connect\n\nalice {CLIENT_PUBLIC}\n  bob   {SERVER_PUBLIC}  \n");
        let allow = AllowList::parse(&text).expect("parses");
        assert_eq!(allow.len(), 2);
        let alice = CurvePublicKey::from_z85(CLIENT_PUBLIC).expect("a key");
        assert_eq!(allow.name_of(&alice), Some("alice"));
        for (text, line, why) in [
            (format!("alice {CLIENT_PUBLIC} extra"), 1, "expected `NAME"),
            ("\nalice".to_owned(), 2, "expected `NAME"),
            (
                format!("alice {CLIENT_PUBLIC}\nbob {CLIENT_PUBLIC}"),
                2,
                "already allowed",
            ),
            ("alice short".to_owned(), 1, "40 Z85"),
        ] {
            let err = AllowList::parse(&text).expect_err("refused");
            assert!(
                matches!(&err, ZmqError::AllowList { line: l, reason } if *l == line && reason.contains(why)),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn key_pairs_are_written_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("demitter-curve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let files = write_key_pair(&dir, "alice").expect("written");
        let secret = CurveSecretKey::read_file(&files.secret).expect("read");
        let public = CurvePublicKey::read_file(&files.public).expect("read");
        assert_eq!(secret.public_key(), public);
        assert_eq!(files.allow_line, format!("alice {public}"));
        let allow = AllowList::parse(&files.allow_line).expect("an allow line");
        assert_eq!(allow.name_of(&public), Some("alice"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&files.secret)
                .expect("there")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the secret is its owner's alone");
        }
        let again = write_key_pair(&dir, "alice").expect_err("never overwrites");
        assert!(matches!(again, ZmqError::KeyFileExists { .. }), "{again}");
        assert_eq!(
            CurveSecretKey::read_file(&files.secret)
                .expect("read")
                .to_z85(),
            secret.to_z85(),
            "the first key stands"
        );
        for unfit in ["no good", "#alice", ""] {
            assert!(write_key_pair(&dir, unfit).is_err(), "{unfit:?}");
        }
        let missing = CurveSecretKey::read_file(&dir.join("nobody.key")).expect_err("missing");
        assert!(missing.to_string().contains("nobody.key"), "{missing}");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }

    proptest! {
        #[test]
        fn keys_round_trip_through_z85(bytes in any::<[u8; KEY_BYTES]>()) {
            let key = CurvePublicKey::from_bytes(bytes);
            prop_assert_eq!(CurvePublicKey::from_z85(&key.to_z85()).expect("decodes"), key);
        }

        #[test]
        fn any_text_is_a_key_or_an_error(text in ".{0,48}") {
            let _ = CurvePublicKey::from_z85(&text);
            let _ = AllowList::parse(&text);
        }
    }
}
