//! Core errors as plain JS objects — the [`ErrorReport`](crate::ErrorReport) with the core's
//! field names turned into this package's option names; `js/api.js` makes them
//! `AutopayAuthError`s.

use wasm_bindgen::{JsCast, JsValue};

use crate::Error;
use crate::js::set;
use crate::settings::option_name;

/// `{ code, message, status, error, description, retryAfter, field, host, reason, timeoutMs,
/// cause? }` — never the secret, never a raw response body. `cause` is the platform's error
/// behind a `network` or `timeout` failure.
pub(crate) fn to_js(err: &Error, cause: Option<JsValue>) -> JsValue {
    let report = err.clone().renamed(option_name).report();
    let json = serde_json::to_string(&report).unwrap_or_default();
    let obj = js_sys::JSON::parse(&json).unwrap_or_else(|_| js_sys::Object::new().into());
    if let Some(cause) = cause.filter(|_| matches!(err, Error::Network { .. } | Error::Timeout { .. })) {
        set(obj.unchecked_ref(), "cause", &cause);
    }
    obj
}
