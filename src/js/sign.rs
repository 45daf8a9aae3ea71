//! [`Signer`](crate::Signer) with the platform's WebCrypto: the private key is imported once,
//! not extractable and for signing only; each assertion is one `crypto.subtle.sign`. Keeping
//! the signature code in the platform keeps it out of the wasm. A key the platform refuses is
//! `invalid_config` naming the key (with the platform's error name, never the key).

use std::cell::RefCell;

use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::JsValue;

use super::errors::error_name;
use super::set;
use super::webcrypto::{bytes, subtle, try_call};
use crate::{Error, KeyFormat, PrivateKey, Signer, SigningAlg, field};

/// Signs with WebCrypto, keeping the imported `CryptoKey`.
#[derive(Default)]
pub(crate) struct WebSigner {
    key: RefCell<Option<JsValue>>,
}

fn refused(why: &str) -> Error {
    Error::config(field::PRIVATE_KEY, why)
}

/// WebCrypto's name for the algorithm, with what importing and signing take.
fn params(alg: SigningAlg, for_sign: bool) -> Object {
    let p = Object::new();
    let name = match alg {
        SigningAlg::Rs256 | SigningAlg::Rs384 | SigningAlg::Rs512 => "RSASSA-PKCS1-v1_5",
        SigningAlg::Ps256 | SigningAlg::Ps384 | SigningAlg::Ps512 => "RSA-PSS",
        SigningAlg::Es256 | SigningAlg::Es384 | SigningAlg::Es512 => "ECDSA",
        SigningAlg::EdDsa => "Ed25519",
    };
    set(&p, "name", &name.into());
    let hash = alg.hash().map(JsValue::from_str).unwrap_or(JsValue::UNDEFINED);
    match (name, for_sign) {
        ("ECDSA", false) => set(&p, "namedCurve", &alg.curve().unwrap_or_default().into()),
        ("ECDSA", true) => set(&p, "hash", &hash),
        ("RSA-PSS", true) => {
            // the salt is as long as the digest (RFC 7518 §3.5)
            let len = match alg {
                SigningAlg::Ps384 => 48,
                SigningAlg::Ps512 => 64,
                _ => 32,
            };
            set(&p, "saltLength", &len.into());
        }
        (_, false) if !hash.is_undefined() => set(&p, "hash", &hash),
        _ => {}
    }
    p
}

impl WebSigner {
    async fn imported(&self, key: &PrivateKey) -> Result<JsValue, Error> {
        if let Some(k) = self.key.borrow().clone() {
            return Ok(k);
        }
        let subtle = subtle().ok_or_else(|| refused("cannot be used: this platform has no WebCrypto"))?;
        let material = match key.format() {
            KeyFormat::Jwk => js_sys::JSON::parse(key.jwk().unwrap_or_default())
                .map_err(|_| refused("is not a JSON Web Key"))?,
            KeyFormat::Pkcs8 => bytes(&key.pkcs8_der().unwrap_or_default()),
        };
        let format = match key.format() {
            KeyFormat::Jwk => "jwk",
            KeyFormat::Pkcs8 => "pkcs8",
        };
        let args = Array::of5(
            &format.into(),
            &material,
            &params(key.alg(), false),
            &false.into(),
            &Array::of1(&"sign".into()),
        );
        let imported = try_call(&subtle, "importKey", &args).await.map_err(|e| {
            refused(&format!(
                "could not be imported for {} by this platform's WebCrypto ({})",
                key.alg().name(),
                error_name(&e)
            ))
        })?;
        *self.key.borrow_mut() = Some(imported.clone());
        Ok(imported)
    }
}

impl Signer for WebSigner {
    /// Imports the PKCS#8 key once more, extractable this time, and exports it as a JWK to
    /// read its public members; the exported object is dropped at once (the key that signs
    /// stays the non-extractable one).
    async fn public_jwk(&self, key: &PrivateKey) -> Result<String, Error> {
        let subtle = subtle().ok_or_else(|| refused("cannot be used: this platform has no WebCrypto"))?;
        let args = Array::of5(
            &"pkcs8".into(),
            &bytes(&key.pkcs8_der().unwrap_or_default()),
            &params(key.alg(), false),
            &true.into(),
            &Array::of1(&"sign".into()),
        );
        let failed = |e: JsValue| {
            refused(&format!(
                "could not be read by this platform's WebCrypto ({})",
                error_name(&e)
            ))
        };
        let extractable = try_call(&subtle, "importKey", &args).await.map_err(failed)?;
        let jwk = try_call(&subtle, "exportKey", &Array::of2(&"jwk".into(), &extractable))
            .await
            .map_err(failed)?;
        let text = js_sys::JSON::stringify(&jwk)
            .ok()
            .and_then(|t| t.as_string())
            .unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| crate::dpop::public_jwk(&v))
            .ok_or_else(|| refused("has no public key"))
    }

    async fn sign(&self, key: &PrivateKey, input: &[u8]) -> Result<Vec<u8>, Error> {
        let crypto_key = self.imported(key).await?;
        let subtle = subtle().ok_or_else(|| refused("cannot be used: this platform has no WebCrypto"))?;
        let args = Array::of3(&params(key.alg(), true), &crypto_key, &bytes(input));
        let signature = try_call(&subtle, "sign", &args)
            .await
            .map_err(|e| refused(&format!("could not sign ({})", error_name(&e))))?;
        Ok(Uint8Array::new(&signature).to_vec())
    }
}

/// A DPoP prover signing with WebCrypto, shared by a client's token requests and API calls.
pub(crate) type WebProver = std::sync::Arc<crate::dpop::Prover<WebSigner>>;

/// The prover of `config`'s DPoP key, if it has one. (An `Arc` because the endpoint's seam is
/// the native host's too; wasm has one thread.)
#[allow(clippy::arc_with_non_send_sync)]
pub(crate) fn web_prover(config: &crate::Config) -> Option<WebProver> {
    let key = config.dpop_key()?.clone();
    Some(std::sync::Arc::new(crate::dpop::Prover::new(
        key,
        WebSigner::default(),
    )))
}

/// Keeps the `DPoP-Nonce` an API answered a call to `url` with (no prover: nothing).
pub(crate) fn learn_nonce(prover: Option<&WebProver>, url: &str, resp: &super::fetch::FetchResponse) {
    if let Some(prover) = prover {
        prover.learn(
            url,
            super::fetch::header(resp, crate::dpop::NONCE_HEADER).as_deref(),
        );
    }
}

/// Whether an API's 401 asks for a proof with its nonce ([`crate::ApiCall::nonce_challenged`]):
/// never for a client without a DPoP key.
pub(crate) fn nonce_challenged(prover: Option<&WebProver>, resp: &super::fetch::FetchResponse) -> bool {
    use super::fetch::header;
    prover.is_some()
        && crate::dpop::api_wants_nonce(
            401,
            header(resp, "www-authenticate").as_deref(),
            header(resp, crate::dpop::NONCE_HEADER).as_deref(),
        )
}
