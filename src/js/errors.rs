//! Reading what a JS call threw.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// The `message` of whatever a JS call threw, for `Error::Network` (never includes a request).
pub(crate) fn js_message(e: &JsValue) -> String {
    let msg = Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into());
    let cause = Reflect::get(e, &JsValue::from_str("cause"))
        .ok()
        .and_then(|c| Reflect::get(&c, &JsValue::from_str("code")).ok())
        .and_then(|c| c.as_string());
    match cause {
        Some(code) => format!("{msg} ({code})"),
        None => msg,
    }
}

/// Whether a JS error is the platform's timeout abort.
pub(crate) fn is_timeout(e: &JsValue) -> bool {
    Reflect::get(e, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n == "TimeoutError")
}
