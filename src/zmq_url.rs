//! `zmq://` URLs for [`connect`](crate::connect).

use std::path::Path;

use demitter_core::Error;
use demitter_zmq::ZmqConfig;
use demitter_zmq::conn::CurveClientKeys;
use demitter_zmq::curve_keys::{CurvePublicKey, CurveSecretKey};

/// `HOST:PORT?xpub=PORT&curve=SERVER_KEY&secret=FILE` -> the transport's settings.
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
    let (mut server, mut secret) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("xpub", value)) => {
                xpub_port = value
                    .parse()
                    .map_err(|_| bad(format!("xpub=`{value}` is not a port number")))?;
            }
            Some(("curve", value)) => {
                let key = CurvePublicKey::from_z85(value)
                    .map_err(|e| bad(format!("curve= is the server's public key: {e}")))?;
                server = Some(key);
            }
            Some(("secret", value)) => {
                let key = CurveSecretKey::read_file(Path::new(value))
                    .map_err(|e| bad(format!("secret=: {e}")))?;
                secret = Some(key);
            }
            _ => {
                return Err(bad(format!(
                    "unknown parameter `{pair}`; the parameters are xpub=PORT, and \
                     curve=SERVER_PUBLIC_KEY with secret=FILE"
                )));
            }
        }
    }
    let mut config = ZmqConfig::new(format!("{host}:{xsub_port}"), format!("{host}:{xpub_port}"));
    config.curve = match (server, secret) {
        (Some(server), Some(secret)) => Some(CurveClientKeys { secret, server }),
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
        assert_eq!(
            Some(keys.secret.public_key()),
            CurvePublicKey::read_file(&files.public).ok()
        );
        for (query, why) in [
            (format!("curve={server}"), "needs secret"),
            (format!("secret={secret}"), "needs curve"),
            ("curve=short&secret=x".to_owned(), "public key"),
            (format!("curve={server}&secret=/nowhere/k"), "secret="),
        ] {
            let url = format!("zmq://127.0.0.1:5555?{query}");
            let err = zmq_config(&url, url.trim_start_matches("zmq://")).expect_err("refused");
            assert!(err.to_string().contains(why), "{query}: {err}");
        }
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
