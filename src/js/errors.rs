//! Reading what a JS call threw — by its name only: an error's text may quote a value (a key, a
//! URL, a token), so it is never copied into a log line or an error message. The caller who
//! needs it gets the platform's error itself (as `cause`).

use js_sys::Reflect;
use wasm_bindgen::JsValue;

fn text_field(v: &JsValue, key: &str) -> Option<String> {
    Reflect::get(v, &JsValue::from_str(key)).ok()?.as_string()
}

/// `TypeError`, `AbortError`, `NotCapable`, … with a system code when the platform gives one
/// (`TypeError (ECONNREFUSED)`), never the error's message.
pub(crate) fn error_name(e: &JsValue) -> String {
    let name = text_field(e, "name")
        .filter(|n| n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "Error".into());
    let code = Reflect::get(e, &JsValue::from_str("cause"))
        .ok()
        .and_then(|c| text_field(&c, "code"))
        .filter(|c| {
            c.len() <= 32
                && c.chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
        });
    match code {
        Some(code) => format!("{name} ({code})"),
        None => name,
    }
}

/// Whether a JS error is the platform's timeout abort.
pub(crate) fn is_timeout(e: &JsValue) -> bool {
    text_field(e, "name").is_some_and(|n| n == "TimeoutError")
}
