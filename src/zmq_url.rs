//! `zmq://` URLs for [`connect`](crate::connect).

use std::path::Path;

use demitter_core::{Error, NodeId};
use demitter_zmq::ZmqConfig;
use demitter_zmq::conn::CurveClientKeys;
use demitter_zmq::curve_keys::{CurvePublicKey, CurveSecretKey};

/// `HOST:PORT?xpub=PORT&curve=SERVER_KEY&secret=FILE[&name=NAME][&names=unchecked]` -> the
/// transport's settings. The name defaults to the secret file's stem (`alice` for
/// `keys/alice.key`); `names=unchecked` accepts a CURVE server that checks no names
/// (libzmq's `zmq_proxy`).
pub(crate) fn zmq_config(url: &str, rest: &str) -> Result<ZmqConfig, Error> {
    let bad = |reason: String| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, port) = authority.rsplit_once(':').ok_or_else(|| {
        bad("expected zmq://HOST:XSUB_PORT, for example zmq://127.0.0.1:5555".into())
    })?;
    if host.is_empty() {
        return Err(bad("the host is missing".into()));
    }
    let xsub_port: u16 = port
        .parse()
        .map_err(|_| bad(format!("`{port}` is not a port number")))?;
    let mut xpub_port = xsub_port
        .checked_add(1)
        .ok_or_else(|| bad("no port follows 65535; give xpub=PORT".into()))?;
    let (mut server, mut secret, mut name) = (None, None, None);
    let mut unchecked_names = false;
    // A Z85 key may hold `&`, `=` and `?`: `curve=` takes the 40 characters after it.
    let (key, query) = take_curve_key(query);
    if let Some(key) = key {
        let key = CurvePublicKey::from_z85(&key)
            .map_err(|e| bad(format!("curve= is the server's public key: {e}")))?;
        server = Some(key);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("xpub", value)) => {
                xpub_port = value
                    .parse()
                    .map_err(|_| bad(format!("xpub=`{value}` is not a port number")))?;
            }
            Some(("secret", value)) => {
                let key = CurveSecretKey::read_file(Path::new(value))
                    .map_err(|e| bad(format!("secret=: {e}")))?;
                let stem = Path::new(value)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned());
                secret = Some((key, stem));
            }
            Some(("names", "unchecked")) => unchecked_names = true,
            Some(("name", value)) => {
                let id = NodeId::new(value).map_err(|e| bad(format!("name=: {e}")))?;
                name = Some(id);
            }
            _ => {
                return Err(bad(format!(
                    "unknown parameter `{pair}`; the parameters are xpub=PORT, and \
                     curve=SERVER_PUBLIC_KEY with secret=FILE (and name=NAME, \
                     names=unchecked)"
                )));
            }
        }
    }
    let mut config = ZmqConfig::new(format!("{host}:{xsub_port}"), format!("{host}:{xpub_port}"));
    config.curve = match (server, secret) {
        (Some(server), Some((secret, stem))) => {
            let name = match (name, stem) {
                (Some(name), _) => name,
                (None, Some(stem)) => NodeId::new(&stem).map_err(|e| {
                    bad(format!(
                        "the secret file's name is not an id ({e}); give name=NAME"
                    ))
                })?,
                (None, None) => return Err(bad("give name=NAME, the key's name".into())),
            };
            Some(CurveClientKeys {
                unchecked_names,
                ..CurveClientKeys::new(name, secret, server)
            })
        }
        (None, None) if unchecked_names => {
            return Err(bad(
                "names=unchecked is for CURVE: give curve=KEY and secret=FILE".into(),
            ));
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(bad(
                "curve= needs secret=FILE, the client's secret key (`demitter pki curve NAME`)"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err(bad(
                "secret= needs curve=KEY, the forwarder's public key".into()
            ));
        }
    };
    Ok(config)
}

/// Cuts `curve=KEY` out of a query: the key is the 40 characters after `curve=` (a Z85
/// key's own characters include `&` and `=`), or, percent-encoded, up to the next `&`.
fn take_curve_key(query: &str) -> (Option<String>, String) {
    let start = if query.starts_with("curve=") {
        Some(0)
    } else {
        query.find("&curve=").map(|at| at + 1)
    };
    let Some(start) = start else {
        return (None, query.to_owned());
    };
    let value = &query[start + "curve=".len()..];
    let raw: String = value.chars().take(40).collect();
    let after = &value[raw.len()..];
    let (key, rest) = if raw.chars().count() == 40 && (after.is_empty() || after.starts_with('&')) {
        (raw, after)
    } else {
        let end = value.find('&').unwrap_or(value.len());
        (percent_decode(&value[..end]), &value[end..])
    };
    (Some(key), format!("{}{rest}", &query[..start]))
}

/// `%XX` as the byte it stands for; anything else as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_parameters_come_together_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("demitter-zmq-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let files = demitter_zmq::curve_keys::write_key_pair(&dir, "alice").expect("written");
        let server = CurveSecretKey::generate().public_key();
        let secret = files.secret.display().to_string();
        let url = format!("zmq://127.0.0.1:5555?curve={server}&secret={secret}");
        let config = zmq_config(&url, url.trim_start_matches("zmq://")).expect("parses");
        let keys = config.curve.expect("CURVE");
        assert_eq!(keys.server, server);
        assert_eq!(keys.name.as_str(), "alice", "the key file's name");
        // Keys with the query's own characters, as they are and percent-encoded.
        let awkward =
            CurvePublicKey::from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7").expect("a key");
        for spelled in [
            "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7".to_owned(),
            "rq:rM%3E%7DU%3F%40Lns47E1%25kR.o%40n%25FcmmsL%2F%40%7BH8%5Dyf7".to_owned(),
        ] {
            let url = format!("zmq://h:1?secret={secret}&curve={spelled}&xpub=9");
            let config = zmq_config(&url, url.trim_start_matches("zmq://")).expect("parses");
            assert_eq!(config.xpub, "h:9");
            assert_eq!(config.curve.expect("CURVE").server, awkward, "{spelled}");
        }
        // 66 * 85 + 72 in the last group: its Z85 ends in `=&`.
        let mut bytes = [0u8; 32];
        bytes[30..].copy_from_slice(&[0x16, 0x32]);
        let ampersand = CurvePublicKey::from_bytes(bytes);
        assert!(ampersand.to_z85().ends_with("=&"), "{ampersand}");
        let url = format!("zmq://h:1?curve={ampersand}&secret={secret}");
        let config = zmq_config(&url, url.trim_start_matches("zmq://")).expect("parses");
        assert_eq!(config.curve.expect("CURVE").server, ampersand);
        let renamed = format!("{url}&name=carol");
        let config = zmq_config(&renamed, renamed.trim_start_matches("zmq://")).expect("parses");
        let renamed = config.curve.expect("CURVE");
        assert_eq!(renamed.name.as_str(), "carol");
        assert!(!renamed.unchecked_names, "names are checked unless told");
        let proxied = format!("{url}&names=unchecked");
        let config = zmq_config(&proxied, proxied.trim_start_matches("zmq://")).expect("parses");
        assert!(config.curve.expect("CURVE").unchecked_names);
        assert_eq!(
            Some(keys.secret.public_key()),
            CurvePublicKey::read_file(&files.public).ok()
        );
        for (query, why) in [
            (format!("curve={server}"), "needs secret"),
            (format!("secret={secret}"), "needs curve"),
            ("curve=short&secret=x".to_owned(), "public key"),
            (format!("curve={server}&secret=/nowhere/k"), "secret="),
            ("names=unchecked".to_owned(), "is for CURVE"),
            (
                format!("curve={server}&secret={secret}&names=any"),
                "unknown parameter",
            ),
        ] {
            let url = format!("zmq://127.0.0.1:5555?{query}");
            let err = zmq_config(&url, url.trim_start_matches("zmq://")).expect_err("refused");
            assert!(err.to_string().contains(why), "{query}: {err}");
        }
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
