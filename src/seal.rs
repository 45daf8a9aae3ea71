//! Sealed store records: what goes into a shared store is encrypted and authenticated, so
//! whoever can write the store cannot plant a token, and whoever can read it learns nothing.
//!
//! AES-256-GCM (RustCrypto's `aes-gcm`), with a key derived by HKDF-SHA256 (`hkdf`) from the
//! client secret, the cache key as context; a fresh random 96-bit nonce per write; the cache key
//! as associated data, so a value copied under another key does not open. The stored form is
//! `v2.` + base64url(nonce ‖ ciphertext ‖ tag). A value that does not open — forged, tampered,
//! truncated, oversized, sealed with another secret, or of another version — is a miss.

use crate::base64;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::record::TokenRecord;
use crate::seams::Seal;
use crate::secret::ClientSecret;

/// The prefix of a sealed value; another prefix is another version.
pub const SEALED_PREFIX: &str = "v2.";
/// The HKDF salt: names the purpose, so the same secret never keys anything else alike.
pub const SEAL_SALT: &[u8] = b"autopay-auth sealed token record v2";
/// A stored value longer than this is refused unopened.
pub const MAX_SEALED_LEN: usize = 16 * 1024;
/// Bytes of the random nonce that starts a sealed value.
pub const NONCE_LEN: usize = 12;
/// Bytes of the authentication tag that ends it.
pub const TAG_LEN: usize = 16;

/// Seals and opens the records of one cache key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    context: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([key redacted])")
    }
}

impl Sealer {
    /// The sealer for `cache_key`, keyed from `secret`.
    pub fn new(secret: &ClientSecret, cache_key: &str) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(SEAL_SALT), secret.expose().as_bytes())
            .expand(cache_key.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: Aes256Gcm::new(&key.into()),
            context: cache_key.as_bytes().to_vec(),
        }
    }

    /// The stored form of `record`, sealed with `nonce` (fresh and random for every write).
    pub fn seal(&self, record: &TokenRecord, nonce: [u8; NONCE_LEN]) -> String {
        self.seal_plain(&record.encode(), nonce)
    }

    /// The record in a stored value, if it opens with this key and context and is well formed.
    pub fn open(&self, value: &str) -> Option<TokenRecord> {
        TokenRecord::decode(&self.open_plain(value)?)
    }

    /// The stored form of any text (the fleet state, say), sealed with `nonce`.
    pub fn seal_plain(&self, plain: &str, nonce: [u8; NONCE_LEN]) -> String {
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: &self.context,
        };
        // Encrypting a few hundred bytes with a valid key and nonce cannot fail.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        encode_sealed(&nonce, &sealed)
    }

    /// The text in a stored value, if it opens with this key and context.
    pub fn open_plain(&self, value: &str) -> Option<String> {
        let (nonce, sealed) = split_sealed(value)?;
        let payload = Payload {
            msg: &sealed,
            aad: &self.context,
        };
        let plain = self.cipher.decrypt(Nonce::from_slice(&nonce), payload).ok()?;
        String::from_utf8(plain).ok()
    }
}

impl Seal for Sealer {
    fn new(secret: &ClientSecret, context: &str) -> Self {
        Sealer::new(secret, context)
    }

    async fn seal_text(&self, plain: &str) -> Option<String> {
        Some(self.seal_plain(plain, fresh_nonce()?))
    }

    async fn open_text(&self, value: &str) -> Option<String> {
        self.open_plain(value)
    }
}

/// `v2.` + base64url(nonce ‖ ciphertext ‖ tag) — shared by every implementation of [`Seal`].
pub fn encode_sealed(nonce: &[u8], sealed: &[u8]) -> String {
    let mut raw = nonce.to_vec();
    raw.extend_from_slice(sealed);
    format!("{SEALED_PREFIX}{}", base64::url_encode(&raw))
}

/// The nonce and the ciphertext with its tag in a stored value, if it has the shape of one:
/// the right prefix, base64url, not oversized, long enough.
pub fn split_sealed(value: &str) -> Option<([u8; NONCE_LEN], Vec<u8>)> {
    if value.len() > MAX_SEALED_LEN {
        return None;
    }
    let mut raw = base64::url_decode(value.strip_prefix(SEALED_PREFIX)?)?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let sealed = raw.split_off(NONCE_LEN);
    Some((raw.try_into().ok()?, sealed))
}

/// A fresh random nonce from the platform (the OS natively, `crypto.getRandomValues` in JS
/// hosts); `None` when the platform has no randomness — then nothing is stored.
pub fn fresh_nonce() -> Option<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).ok()?;
    Some(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TokenRecord {
        TokenRecord {
            access_token: "tok-abc".into(),
            token_type: "Bearer".into(),
            scope: Some("customer_club".into()),
            issued_at_ms: 1_000,
            expires_at_ms: 121_000,
        }
    }

    fn sealer(secret: &str, key: &str) -> Sealer {
        Sealer::new(&ClientSecret::new(secret), key)
    }

    #[test]
    fn a_sealed_record_opens_and_hides_everything() {
        let s = sealer("s3cret", "autopay-auth:v2:k");
        let value = s.seal(&record(), [7; 12]);
        assert!(value.starts_with("v2."));
        assert!(!value.contains("tok-abc") && !value.contains("s3cret") && !value.contains("customer"));
        assert_eq!(s.open(&value), Some(record()));
        assert_ne!(value, s.seal(&record(), [8; 12]), "a new nonce, a new value");
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn forged_tampered_truncated_oversized_foreign_or_old_values_do_not_open() {
        let s = sealer("s3cret", "autopay-auth:v2:k");
        let good = s.seal(&record(), [7; 12]);
        let mut tampered = good.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let cases = [
            ("plain JSON (the old format)", record().encode()),
            ("tampered", String::from_utf8(tampered).unwrap()),
            ("truncated", good[..good.len() - 4].to_owned()),
            ("too short", "v2.AAAA".to_owned()),
            ("other version", good.replacen("v2.", "v3.", 1)),
            ("not base64", "v2.!!!".to_owned()),
            ("oversized", format!("v2.{}", "A".repeat(MAX_SEALED_LEN))),
            (
                "other secret",
                sealer("other", "autopay-auth:v2:k").seal(&record(), [7; 12]),
            ),
            (
                "other cache key",
                sealer("s3cret", "autopay-auth:v2:other").seal(&record(), [7; 12]),
            ),
        ];
        for (what, value) in cases {
            assert_eq!(s.open(&value), None, "{what}");
        }
    }

    /// A fixed vector, also checked by the JS tests against WebCrypto and Node's crypto
    /// (`tests/sealed.mjs`), so every implementation of the format agrees.
    #[test]
    fn the_format_has_a_fixed_vector() {
        let s = sealer("vector-secret", "autopay-auth:v2:vector");
        let sealed = s.seal(&record(), [0; 12]);
        assert_eq!(sealed, VECTOR);
        assert_eq!(s.open(VECTOR), Some(record()));
    }

    const VECTOR: &str = include_str!("../tests/seal-vector.txt");

    #[test]
    fn nonces_are_random() {
        let (a, b) = (fresh_nonce().unwrap(), fresh_nonce().unwrap());
        assert_ne!(a, b);
    }
}
