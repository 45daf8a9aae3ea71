//! What both JavaScript-hosted edges share (the npm package and the Worker): the platform
//! clock, how callers wait for a flight, the fetch transport, the `KVNamespace` adapter,
//! sealing and signing with WebCrypto, resolving API URLs, setting JS properties, and reading JS errors.

pub(crate) mod errors;
pub(crate) mod fetch;
pub(crate) mod kv;
pub(crate) mod sign;
pub(crate) mod webcrypto;

use std::future::Future;

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::{Error, Notify, check_within_base, join_api_path};

/// The platform's WHATWG URL parser: the normalised `href`, or `None` when `url` is not absolute.
pub(crate) fn normalize_url(url: &str) -> Option<String> {
    web_sys::Url::new(url).ok().map(|u| u.href())
}

/// `base` + `path` as a normalised URL that stays under `base` — the only kind of URL a bearer
/// token is sent to by the npm client's `fetch` (the Worker's proxy joins the runtime's own
/// normalised URL, and checks it the same way).
#[cfg_attr(not(feature = "npm"), allow(dead_code))]
pub(crate) fn resolve_api_url(base: &str, path: &str) -> Result<String, Error> {
    let joined = join_api_path(base, path)?;
    let href = normalize_url(&joined).ok_or_else(|| Error::argument("the path does not make a valid URL"))?;
    check_within_base(base, &href)?;
    Ok(href)
}

/// Sets `obj[key] = value` (on a plain object this cannot fail).
pub(crate) fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// `{ accessToken, tokenType, scope, expiresAt }` of a record, as both JS edges hand it out.
pub(crate) fn token_object(r: &crate::TokenRecord) -> Object {
    let obj = Object::new();
    set(&obj, "accessToken", &r.access_token.as_str().into());
    set(&obj, "tokenType", &r.token_type.as_str().into());
    let scope = r.scope.as_deref().map_or(JsValue::NULL, JsValue::from_str);
    set(&obj, "scope", &scope);
    set(&obj, "expiresAt", &JsValue::from(r.expires_at_ms as f64));
    obj
}

/// This instance's shift of the refresh point, in [-1, 1], picked at random once per instance
/// so that many instances do not refresh in the same second.
pub(crate) fn jitter() -> f64 {
    js_sys::Math::random() * 2.0 - 1.0
}

/// The platform clock: `Date.now()` and `setTimeout`.
#[derive(Clone, Copy, Default)]
pub(crate) struct DateClock;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// Clears its timer when dropped, so an abandoned sleep keeps no process alive.
struct ClearOnDrop(JsValue);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        clear_timeout(&self.0);
    }
}

impl crate::Clock for DateClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        let mut id = JsValue::UNDEFINED;
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            id = set_timeout(&resolve, ms as f64);
        });
        let timer = ClearOnDrop(id);
        async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            drop(timer);
        }
    }
}

/// How often a caller waiting for another's flight asks the machine again.
pub(crate) const TICK_MS: u64 = 10;

/// [`Notify`] for JS hosts: a waiting caller asks the machine again every [`TICK_MS`] from a
/// timer of its own. wasm-bindgen-futures polls every task woken in one microtask together, so
/// a wake-up sent from one request would resume the others inside that request's I/O context,
/// which workerd forbids; a timer of its own resumes each request in its own context. (The npm
/// package's concurrent callers mostly wait on one JS promise in `js/api.js` and never get here.)
#[derive(Default)]
pub(crate) struct Ticks;

impl Notify for Ticks {
    fn wait(&self, _epoch: u64) -> impl Future<Output = ()> {
        crate::Clock::sleep(&DateClock, TICK_MS)
    }

    fn notify_all(&self) {}
}
