//! `demitter::connect`: the URL grammar and its errors.

use std::time::Duration;

use demitter::Error;

#[tokio::test]
async fn mem_urls_join_the_named_hub() {
    let a = demitter::connect("mem://facade-test")
        .await
        .expect("connects");
    let b = demitter::connect("mem://facade-test")
        .await
        .expect("connects");
    let once = b.once::<u8>("ping").expect("valid");
    tokio::time::timeout(Duration::from_secs(10), a.wait_for_listeners("ping", 1))
        .await
        .expect("b's listener is seen")
        .expect("open");
    a.emit("ping", &7u8).await.expect("emits");
    let event = tokio::time::timeout(Duration::from_secs(10), once)
        .await
        .expect("arrives")
        .expect("decodes");
    assert_eq!(event.data, 7);
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    for (url, needle) in [
        ("no-scheme", "SCHEME://"),
        ("mem://", "hub name"),
        ("carrier-pigeon://x", "unknown scheme"),
    ] {
        let err = demitter::connect(url).await.expect_err(url);
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{url}: {err}");
    }
}
