//! Where the npm package's events go: the `onEvent` callback (each event as a plain object) and
//! the `logger` (`console` unless given, `null` for silence), one line per event at a level
//! that fits it. Neither ever sees a token, a secret or a store's value; a callback or logger
//! that throws is ignored, never the caller's problem.

use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};

use crate::{Event, EventKind};

/// The log level of an event: routine work is `debug`/`info`, what an operator should look at
/// is `warn`/`error`.
fn level(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Refresh => "debug",
        EventKind::Mint => "info",
        EventKind::StoreError | EventKind::TokenError | EventKind::Cooldown => "warn",
        EventKind::BudgetExhausted => "error",
    }
}

/// Hands `event` to `on_event` and `logger`.
pub(crate) fn observe(event: &Event, logger: Option<&JsValue>, on_event: Option<&Function>) {
    let json = serde_json::to_string(event).unwrap_or_default();
    let Ok(fields) = js_sys::JSON::parse(&json) else {
        return;
    };
    if let Some(callback) = on_event {
        let _ = callback.call1(&JsValue::UNDEFINED, &fields);
    }
    if let Some(logger) = logger {
        let method = js_sys::Reflect::get(logger, &level(event.kind).into())
            .ok()
            .and_then(|m| m.dyn_into::<Function>().ok());
        if let Some(method) = method {
            let message = JsValue::from_str(&format!("autopay-auth: {}", event.message()));
            let _ = method.call2(logger, &message, &fields);
        }
    }
}
