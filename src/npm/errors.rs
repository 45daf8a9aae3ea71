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
