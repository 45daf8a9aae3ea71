//! What both JavaScript-hosted edges share (the npm package and the Worker): the platform
//! clock, the fetch transport, the `KVNamespace` adapter, and reading JS errors.

pub(crate) mod errors;
pub(crate) mod fetch;
pub(crate) mod kv;

/// The platform's WHATWG URL parser: the normalised `href`, or `None` when `url` is not absolute.
pub(crate) fn normalize_url(url: &str) -> Option<String> {
    web_sys::Url::new(url).ok().map(|u| u.href())
}

/// The platform clock: `Date.now()` and `setTimeout`.
#[derive(Clone, Copy)]
pub(crate) struct DateClock;

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> wasm_bindgen::JsValue;
}

impl crate::Clock for DateClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    async fn sleep(&self, ms: u64) {
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            set_timeout(&resolve, ms as f64);
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}
