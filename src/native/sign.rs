//! `private_key_jwt` signed natively, with RustCrypto's crates: RSA (`rsa`: RS256/384/512 with
//! PKCS#1 v1.5, PS256/384/512 with PSS and a salt as long as the hash, as JWS asks), ECDSA on
//! P-256, P-384 and P-521 (`p256`, `p384`, `p521`; `r ‖ s` as JWS asks)
//! and Ed25519 (`ed25519-dalek`). (P-521's crate signs with a random nonce rather than RFC 6979's:
//! either is a valid ES512 signature.) The key is imported from the JWK's members or the PKCS#8 DER
//! for each signature and dropped after it; a key the crates refuse is `invalid_config` naming
//! the private key, before anything is sent.

use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer as _};
use rsa::{BigUint, RsaPrivateKey};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

use crate::assertion::{KeyFormat, PrivateKey, SigningAlg};
use crate::{Error, Signer, base64, field};

/// The native [`Signer`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NativeSigner;

fn refused(why: &str) -> Error {
    Error::config(field::PRIVATE_KEY, why.to_owned())
}

/// The key as the crates take it: the JWK's members, or the PKCS#8 DER.
enum Material {
    Jwk(Value),
    Der(Vec<u8>),
}

fn material(key: &PrivateKey) -> Result<Material, Error> {
    match key.format() {
        KeyFormat::Jwk => {
            let text = key.jwk().ok_or_else(|| refused("could not be read"))?;
            serde_json::from_str(text)
                .map(Material::Jwk)
                .map_err(|_| refused("could not be read"))
        }
        KeyFormat::Pkcs8 => key
            .pkcs8_der()
            .map(Material::Der)
            .ok_or_else(|| refused("could not be read")),
    }
}

/// A JWK member's bytes (base64url).
fn member(jwk: &Value, name: &str) -> Result<Vec<u8>, Error> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(base64::url_decode)
        .ok_or_else(|| refused(&format!("has no usable `{name}`")))
}

fn rsa_key(m: &Material) -> Result<RsaPrivateKey, Error> {
    let key = match m {
        Material::Der(der) => RsaPrivateKey::from_pkcs8_der(der).map_err(|_| refused("is not an RSA key"))?,
        Material::Jwk(jwk) => {
            let n = |name| member(jwk, name).map(|b| BigUint::from_bytes_be(&b));
            RsaPrivateKey::from_components(n("n")?, n("e")?, n("d")?, vec![n("p")?, n("q")?])
                .map_err(|_| refused("is not a valid RSA key"))?
        }
    };
    key.validate().map_err(|_| refused("is not a valid RSA key"))?;
    Ok(key)
}

/// The JWK's `d` (the private scalar), or the key from its PKCS#8 DER.
macro_rules! ec_key {
    ($curve:ident, $m:expr) => {
        match $m {
            Material::Der(der) => $curve::SecretKey::from_pkcs8_der(der),
            Material::Jwk(jwk) => $curve::SecretKey::from_slice(&member(jwk, "d")?)
                .map_err(|_| $curve::pkcs8::Error::KeyMalformed),
        }
        .map_err(|_| refused(concat!("is not an ", stringify!($curve), " key")))
    };
}

fn ed25519_key(m: &Material) -> Result<ed25519_dalek::SigningKey, Error> {
    match m {
        Material::Der(der) => {
            ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|_| refused("is not an Ed25519 key"))
        }
        Material::Jwk(jwk) => {
            let d: [u8; 32] = member(jwk, "d")?
                .try_into()
                .map_err(|_| refused("is not an Ed25519 key"))?;
            Ok(ed25519_dalek::SigningKey::from_bytes(&d))
        }
    }
}

fn sign_rsa(alg: SigningAlg, key: RsaPrivateKey, input: &[u8]) -> Result<Vec<u8>, Error> {
    use rsa::{pkcs1v15, pss};
    let mut rng = rand_core::OsRng;
    let pss_failed = |_| refused("could not sign (no randomness)");
    Ok(match alg {
        SigningAlg::Rs256 => pkcs1v15::SigningKey::<Sha256>::new(key).sign(input).to_vec(),
        SigningAlg::Rs384 => pkcs1v15::SigningKey::<Sha384>::new(key).sign(input).to_vec(),
        SigningAlg::Rs512 => pkcs1v15::SigningKey::<Sha512>::new(key).sign(input).to_vec(),
        SigningAlg::Ps256 => pss::SigningKey::<Sha256>::new(key)
            .try_sign_with_rng(&mut rng, input)
            .map_err(pss_failed)?
            .to_vec(),
        SigningAlg::Ps384 => pss::SigningKey::<Sha384>::new(key)
            .try_sign_with_rng(&mut rng, input)
            .map_err(pss_failed)?
            .to_vec(),
        SigningAlg::Ps512 => pss::SigningKey::<Sha512>::new(key)
            .try_sign_with_rng(&mut rng, input)
            .map_err(pss_failed)?
            .to_vec(),
        _ => return Err(refused("does not fit its algorithm")),
    })
}

impl Signer for NativeSigner {
    async fn sign(&self, key: &PrivateKey, input: &[u8]) -> Result<Vec<u8>, Error> {
        Self::sign_now(key, input)
    }

    async fn public_jwk(&self, key: &PrivateKey) -> Result<String, Error> {
        Self::public_jwk_now(key)
    }
}

/// The public members of an EC key, as a JWK.
macro_rules! ec_public {
    ($curve:ident, $crv:expr, $m:expr) => {{
        use $curve::elliptic_curve::sec1::ToEncodedPoint;
        let point = ec_key!($curve, $m)?.public_key().to_encoded_point(false);
        let coord = |c: Option<&[u8]>| base64::url_encode(c.unwrap_or_default());
        serde_json::json!({ "kty": "EC", "crv": $crv, "x": coord(point.x().map(|x| &x[..])), "y": coord(point.y().map(|y| &y[..])) })
    }};
}

impl NativeSigner {
    /// The public JWK of `key` (a DPoP proof's `jwk`), as [`crate::dpop::public_jwk`] writes it.
    pub fn public_jwk_now(key: &PrivateKey) -> Result<String, Error> {
        use rsa::traits::PublicKeyParts;
        let m = material(key)?;
        let jwk = match key.alg() {
            SigningAlg::Es256 => ec_public!(p256, "P-256", &m),
            SigningAlg::Es384 => ec_public!(p384, "P-384", &m),
            SigningAlg::Es512 => ec_public!(p521, "P-521", &m),
            SigningAlg::EdDsa => {
                let key = ed25519_key(&m)?;
                let x = base64::url_encode(key.verifying_key().as_bytes());
                serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x })
            }
            _ => {
                let key = rsa_key(&m)?;
                let n = base64::url_encode(&key.n().to_bytes_be());
                let e = base64::url_encode(&key.e().to_bytes_be());
                serde_json::json!({ "kty": "RSA", "n": n, "e": e })
            }
        };
        crate::dpop::public_jwk(&jwk).ok_or_else(|| refused("has no public key"))
    }

    /// The signature of `input` with `key`, at once (nothing here waits).
    pub fn sign_now(key: &PrivateKey, input: &[u8]) -> Result<Vec<u8>, Error> {
        let m = material(key)?;
        let alg = key.alg();
        match alg {
            SigningAlg::Rs256
            | SigningAlg::Rs384
            | SigningAlg::Rs512
            | SigningAlg::Ps256
            | SigningAlg::Ps384
            | SigningAlg::Ps512 => sign_rsa(alg, rsa_key(&m)?, input),
            SigningAlg::Es256 => {
                let key = p256::ecdsa::SigningKey::from(ec_key!(p256, &m)?);
                let sig: p256::ecdsa::Signature = key.sign(input);
                Ok(sig.to_bytes().to_vec())
            }
            SigningAlg::Es384 => {
                let key = p384::ecdsa::SigningKey::from(ec_key!(p384, &m)?);
                let sig: p384::ecdsa::Signature = key.sign(input);
                Ok(sig.to_bytes().to_vec())
            }
            SigningAlg::Es512 => {
                let secret = ec_key!(p521, &m)?;
                let key = p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes())
                    .map_err(|_| refused("is not a p521 key"))?;
                let sig: p521::ecdsa::Signature = key
                    .try_sign_with_rng(&mut rand_core::OsRng, input)
                    .map_err(|_| refused("could not sign (no randomness)"))?;
                Ok(sig.to_bytes().to_vec())
            }
            SigningAlg::EdDsa => {
                let key = ed25519_key(&m)?;
                Ok(key.sign(input).to_bytes().to_vec())
            }
        }
    }
}
