//! Core errors as plain JS objects; `js/api.js` turns them into `AutopayAuthError`s.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

use crate::Error;

fn set(obj: &Object, key: &str, value: JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value);
}

fn opt_str(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, JsValue::from_str)
}

/// `{ code, message, status, error, description, retryAfter, option }` — never the secret,
/// never a raw response body.
pub(crate) fn to_js(err: &Error) -> JsValue {
    let obj = Object::new();
    let server = err.server();
    set(&obj, "code", JsValue::from_str(err.code()));
    set(&obj, "message", JsValue::from_str(&err.to_string()));
    set(&obj, "status", err.status().map_or(JsValue::NULL, JsValue::from));
    set(&obj, "error", opt_str(server.and_then(|s| s.error.as_deref())));
    set(
        &obj,
        "description",
        opt_str(server.and_then(|s| s.description.as_deref())),
    );
    set(
        &obj,
        "retryAfter",
        err.retry_after()
            .map_or(JsValue::NULL, |s| JsValue::from(s as f64)),
    );
    set(&obj, "option", opt_str(err.option()));
    obj.into()
}

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
