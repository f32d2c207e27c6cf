//! The boxes of ZeroMQ's CURVE mechanism (CurveZMQ, RFC 26), as concrete functions over
//! RustCrypto's audited `crypto_box` and `crypto_secretbox`: a public-key box
//! ([`KeyPairBox`], X25519 then XSalsa20-Poly1305) and a secret-key box ([`SecretKeyBox`],
//! XSalsa20-Poly1305), with 24-byte nonces. Nothing here is cryptography of its own.
//!
//! It is a crate of its own for one reason: RustCrypto's ciphers are generic, so they are
//! compiled in the crate that calls them. Calling them only from here lets the workspace
//! optimise this small crate in test builds, where unoptimised boxes seal a few MB/s,
//! and leave `demitter-zmq` unoptimised there, which builds several times faster.
//!
//! ```
//! use demitter_curve_box::{KeyPairBox, generate_secret_key};
//!
//! let (alice, bob) = (generate_secret_key(), generate_secret_key());
//! let nonce = [7u8; 24];
//! let sealed = KeyPairBox::new(&bob.public_key(), &alice).seal(&nonce, b"hello")?;
//! let opened = KeyPairBox::new(&alice.public_key(), &bob).open(&nonce, &sealed)?;
//! assert_eq!(opened, b"hello");
//! # Ok::<(), demitter_curve_box::BoxError>(())
//! ```

use crypto_box::aead::rand_core::RngCore as _;
use crypto_box::aead::{Aead as _, AeadInPlace as _, KeyInit as _, OsRng};
use crypto_box::{Nonce as BoxNonce, SalsaBox};
use crypto_secretbox::XSalsa20Poly1305;

pub use crypto_box::{PublicKey, SecretKey};

/// A box's nonce: 24 bytes, never used twice with the same key.
pub type Nonce = [u8; 24];

/// What a box adds to what it holds: its Poly1305 tag, which comes first.
pub const TAG_LEN: usize = 16;

/// Everything that can go wrong with a box.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoxError {
    /// The box does not open: another key or nonce sealed it, or a byte of it changed.
    #[error("the box does not open: sealed with another key or nonce, or altered")]
    DoesNotOpen,
    /// Too much to seal in one box.
    #[error("too long to seal in one box")]
    TooLong,
}

/// A new secret key (X25519), from the operating system's random numbers.
pub fn generate_secret_key() -> SecretKey {
    SecretKey::generate(&mut OsRng)
}

/// `N` bytes from the operating system's random numbers (for long nonces).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// The public-key box between our secret key and a peer's public key: what one seals, the
/// other (holding the other two halves) opens.
pub struct KeyPairBox(SalsaBox);

impl std::fmt::Debug for KeyPairBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPairBox").finish_non_exhaustive()
    }
}

impl KeyPairBox {
    /// The box between `theirs` and `ours` (their X25519 agreement, made once here).
    pub fn new(theirs: &PublicKey, ours: &SecretKey) -> Self {
        Self(SalsaBox::new(theirs, ours))
    }

    /// `plain` sealed with `nonce`: its tag, then the sealed bytes.
    pub fn seal(&self, nonce: &Nonce, plain: &[u8]) -> Result<Vec<u8>, BoxError> {
        self.0
            .encrypt(BoxNonce::from_slice(nonce), plain)
            .map_err(|_| BoxError::TooLong)
    }

    /// Seals `buffer` where it lies with `nonce`, and returns the tag, which goes before it.
    pub fn seal_in_place(
        &self,
        nonce: &Nonce,
        buffer: &mut [u8],
    ) -> Result<[u8; TAG_LEN], BoxError> {
        self.0
            .encrypt_in_place_detached(BoxNonce::from_slice(nonce), b"", buffer)
            .map(Into::into)
            .map_err(|_| BoxError::TooLong)
    }

    /// Opens `sealed` (a tag, then the sealed bytes) with `nonce`.
    pub fn open(&self, nonce: &Nonce, sealed: &[u8]) -> Result<Vec<u8>, BoxError> {
        self.0
            .decrypt(BoxNonce::from_slice(nonce), sealed)
            .map_err(|_| BoxError::DoesNotOpen)
    }
}

/// The secret-key box of one random key, which only this box knows (CURVE's cookie key).
pub struct SecretKeyBox(XSalsa20Poly1305);

impl std::fmt::Debug for SecretKeyBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeyBox").finish_non_exhaustive()
    }
}

impl SecretKeyBox {
    /// A box of a new random key.
    pub fn generate() -> Self {
        Self(XSalsa20Poly1305::new(&XSalsa20Poly1305::generate_key(
            &mut OsRng,
        )))
    }

    /// `plain` sealed with `nonce`: its tag, then the sealed bytes.
    pub fn seal(&self, nonce: &Nonce, plain: &[u8]) -> Result<Vec<u8>, BoxError> {
        self.0
            .encrypt(crypto_secretbox::Nonce::from_slice(nonce), plain)
            .map_err(|_| BoxError::TooLong)
    }

    /// Opens `sealed` (a tag, then the sealed bytes) with `nonce`.
    pub fn open(&self, nonce: &Nonce, sealed: &[u8]) -> Result<Vec<u8>, BoxError> {
        self.0
            .decrypt(crypto_secretbox::Nonce::from_slice(nonce), sealed)
            .map_err(|_| BoxError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_pair_box_opens_what_its_mirror_sealed_and_nothing_else() {
        let (alice, bob, eve) = (
            generate_secret_key(),
            generate_secret_key(),
            generate_secret_key(),
        );
        let ours = KeyPairBox::new(&bob.public_key(), &alice);
        let theirs = KeyPairBox::new(&alice.public_key(), &bob);
        let nonce = random_bytes::<24>();
        let sealed = ours.seal(&nonce, b"a message").expect("sealed");
        assert_eq!(sealed.len(), TAG_LEN + 9);
        assert_eq!(theirs.open(&nonce, &sealed).expect("opens"), b"a message");

        let mut in_place = *b"a message";
        let tag = ours.seal_in_place(&nonce, &mut in_place).expect("sealed");
        assert_eq!([&tag[..], &in_place[..]].concat(), sealed);

        let mut altered = sealed.clone();
        altered[TAG_LEN] ^= 1;
        assert!(matches!(
            theirs.open(&nonce, &altered),
            Err(BoxError::DoesNotOpen)
        ));
        assert!(theirs.open(&[0u8; 24], &sealed).is_err(), "another nonce");
        let stranger = KeyPairBox::new(&alice.public_key(), &eve);
        assert!(stranger.open(&nonce, &sealed).is_err(), "another key");
        assert!(
            theirs.open(&nonce, &sealed[..TAG_LEN - 1]).is_err(),
            "shorter than a tag"
        );
    }

    #[test]
    fn a_secret_key_box_opens_only_its_own() {
        let (one, another) = (SecretKeyBox::generate(), SecretKeyBox::generate());
        let nonce = random_bytes::<24>();
        let sealed = one.seal(&nonce, b"cookie").expect("sealed");
        assert_eq!(one.open(&nonce, &sealed).expect("opens"), b"cookie");
        assert!(another.open(&nonce, &sealed).is_err());
    }

    /// The test vector of the `crypto_box` of `NaCl` (`tests/box.c`), which CurveZMQ's boxes are.
    #[test]
    fn seals_nacls_box_test_vector() {
        let alice = SecretKey::from([
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2,
            0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5,
            0x1d, 0xb9, 0x2c, 0x2a,
        ]);
        let bob = SecretKey::from([
            0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b, 0x79, 0xe1, 0x7f, 0x8b, 0x83, 0x80,
            0x0e, 0xe6, 0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18, 0xb6, 0xfd, 0x1c, 0x2f, 0x8b, 0x27,
            0xff, 0x88, 0xe0, 0xeb,
        ]);
        let nonce = [
            0x69, 0x69, 0x6e, 0xe9, 0x55, 0xb6, 0x2b, 0x73, 0xcd, 0x62, 0xbd, 0xa8, 0x75, 0xfc,
            0x73, 0xd6, 0x82, 0x19, 0xe0, 0x03, 0x6b, 0x7a, 0x0b, 0x37,
        ];
        let sealed = KeyPairBox::new(&bob.public_key(), &alice)
            .seal(&nonce, &[0xbe, 0x07, 0x5f, 0xc5, 0x3c, 0x81, 0xf2, 0xd5])
            .expect("sealed");
        // The first 8 bytes of NaCl's message seal, after the tag, to the first 8 of its
        // ciphertext (the tag, over the whole message, differs).
        assert_eq!(
            &sealed[TAG_LEN..],
            &[0x8e, 0x99, 0x3b, 0x9f, 0x48, 0x68, 0x12, 0x73]
        );
    }
}
