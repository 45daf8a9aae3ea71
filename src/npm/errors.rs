//! Core errors as plain JS objects — the [`ErrorReport`](crate::ErrorReport) with the core's
//! field names turned into this package's option names; `js/api.js` makes them
//! `AutopayAuthError`s.

use wasm_bindgen::{JsCast, JsValue};

use crate::js::set;
use crate::{Error, field};

/// The npm option that sets a core [`field`].
pub(crate) fn option_name(core: &str) -> Option<&'static str> {
    Some(match core {
        field::TOKEN_URL => "tokenUrl",
        field::CLIENT_ID => "clientId",
        field::CLIENT_SECRET => "clientSecret",
        field::AUDIENCE => "audience",
        field::API_BASE_URL => "apiBaseUrl",
        field::TOKEN_REQUEST => "tokenRequest",
        field::CLIENT_AUTH => "clientAuth",
        field::PRIVATE_KEY => "privateKey",
        field::PRIVATE_KEY_ALG => "privateKeyAlg",
        field::PRIVATE_KEY_ID => "privateKeyId",
        field::SCOPE => "scope",
        field::RESOURCE => "resource",
        field::DEFAULT_EXPIRES_IN => "defaultExpiresInSec",
        field::REFRESH_RATIO => "refreshRatio",
        field::EXPIRY_MARGIN => "expiryMarginSec",
        field::EXPIRY_MARGIN_RATIO => "expiryMarginRatio",
        field::REFRESH_JITTER => "refreshJitterSec",
        field::REQUEST_TIMEOUT => "timeoutMs",
        field::STORE_TIMEOUT => "storeTimeoutMs",
        field::STORE_OUTAGE => "storeOutage",
        field::STORE_WAIT => "storeWaitMs",
        _ => return None,
    })
}

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
