//! [`Seal`](crate::Seal) with the platform's WebCrypto (`crypto.subtle`), in the format of
//! [`crate::Sealer`]: HKDF-SHA256 from the client secret (salt [`crate::seal::SEAL_SALT`], the cache key as
//! `info`) derives a non-extractable AES-256-GCM key once per client; each write takes a fresh
//! nonce from `crypto.getRandomValues`; the cache key is the associated data. Using the
//! platform's cipher keeps it out of the wasm. A platform without WebCrypto (a page served
//! over plain http, say) seals nothing and opens nothing: the store is then never written, and
//! never trusted.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::set;
use crate::seal::{NONCE_LEN, SEAL_SALT, encode_sealed, split_sealed};
use crate::{ClientSecret, Seal};

/// Seals records with WebCrypto.
pub(crate) struct WebSealer {
    secret: ClientSecret,
    context: Vec<u8>,
    /// The derived `CryptoKey`, once there is one.
    key: RefCell<Option<JsValue>>,
}

fn crypto() -> Option<JsValue> {
    Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .filter(JsValue::is_object)
}

pub(super) fn subtle() -> Option<JsValue> {
    Reflect::get(&crypto()?, &"subtle".into())
        .ok()
        .filter(JsValue::is_object)
}

/// `obj[name](...args)`, awaited; anything thrown or rejected is `None`.
async fn call(obj: &JsValue, name: &str, args: &Array) -> Option<JsValue> {
    try_call(obj, name, args).await.ok()
}

/// `obj[name](...args)`, awaited, with what was thrown or rejected (`undefined` when there is
/// no such method).
pub(super) async fn try_call(obj: &JsValue, name: &str, args: &Array) -> Result<JsValue, JsValue> {
    let method: Function = Reflect::get(obj, &JsValue::from_str(name))?
        .dyn_into()
        .map_err(|_| JsValue::UNDEFINED)?;
    let promise = Reflect::apply(&method, obj, args)?;
    JsFuture::from(Promise::resolve(&promise)).await
}

pub(super) fn bytes(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

impl WebSealer {
    async fn key(&self) -> Option<JsValue> {
        if let Some(key) = self.key.borrow().clone() {
            return Some(key);
        }
        let subtle = subtle()?;
        let usage = Array::of1(&"deriveKey".into());
        let import = Array::of5(
            &"raw".into(),
            &bytes(self.secret.expose().as_bytes()),
            &"HKDF".into(),
            &false.into(),
            &usage,
        );
        let base = call(&subtle, "importKey", &import).await?;
        let hkdf = Object::new();
        set(&hkdf, "name", &"HKDF".into());
        set(&hkdf, "hash", &"SHA-256".into());
        set(&hkdf, "salt", &bytes(SEAL_SALT));
        set(&hkdf, "info", &bytes(&self.context));
        let aes = Object::new();
        set(&aes, "name", &"AES-GCM".into());
        set(&aes, "length", &256.into());
        let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
        let derive = Array::of5(&hkdf, &base, &aes, &false.into(), &usages);
        let key = call(&subtle, "deriveKey", &derive).await?;
        *self.key.borrow_mut() = Some(key.clone());
        Some(key)
    }

    fn params(&self, nonce: &JsValue) -> Object {
        let gcm = Object::new();
        set(&gcm, "name", &"AES-GCM".into());
        set(&gcm, "iv", nonce);
        set(&gcm, "additionalData", &bytes(&self.context));
        gcm
    }
}

impl Seal for WebSealer {
    fn new(secret: &ClientSecret, context: &str) -> Self {
        Self {
            secret: secret.clone(),
            context: context.as_bytes().to_vec(),
            key: RefCell::new(None),
        }
    }

    async fn seal_text(&self, plain: &str) -> Option<String> {
        let key = self.key().await?;
        let nonce = Uint8Array::new_with_length(NONCE_LEN as u32);
        let random: Function = Reflect::get(&crypto()?, &"getRandomValues".into())
            .ok()?
            .dyn_into()
            .ok()?;
        random.call1(&crypto()?, &nonce).ok()?;
        let args = Array::of3(&self.params(&nonce), &key, &bytes(plain.as_bytes()));
        let sealed = call(&subtle()?, "encrypt", &args).await?;
        Some(encode_sealed(&nonce.to_vec(), &Uint8Array::new(&sealed).to_vec()))
    }

    async fn open_text(&self, value: &str) -> Option<String> {
        let (nonce, sealed) = split_sealed(value)?;
        let key = self.key().await?;
        let args = Array::of3(&self.params(&bytes(&nonce)), &key, &bytes(&sealed));
        let plain = call(&subtle()?, "decrypt", &args).await?;
        String::from_utf8(Uint8Array::new(&plain).to_vec()).ok()
    }
}
