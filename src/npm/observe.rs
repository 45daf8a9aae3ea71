//! Where the npm package's events go: the `onEvent` callback (each event as a plain object) and
//! the `logger` (`console` unless given, `null` for silence), one line per event at a level
//! that fits it, called `(message, fields)` (console, winston) or `(fields, message)` (pino,
//! bunyan) as `loggerArgs` says. Neither ever sees a token, a secret or a store's value; a
//! callback or logger that throws is ignored, never the caller's problem.

use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};

use super::telemetry::Telemetry;
use crate::js::set;
use crate::{Event, Observe};

/// The event as a plain object: `{ type, at, … }` with only the fields its kind uses.
fn fields(event: &Event) -> js_sys::Object {
    let o = js_sys::Object::new();
    let number = |v: u64| JsValue::from(v as f64);
    set(&o, "type", &event.kind.as_str().into());
    set(&o, "at", &number(event.at));
    let numbers = [
        ("mints", event.mints),
        ("lifetimeSecs", event.lifetime_secs),
        ("status", event.status.map(u64::from)),
        ("remaining", event.remaining),
        ("limit", event.limit),
        ("retryAfter", event.retry_after),
    ];
    for (key, value) in numbers {
        if let Some(v) = value {
            set(&o, key, &number(v));
        }
    }
    if let Some(code) = event.code {
        set(&o, "code", &code.into());
    }
    if let Some(detail) = &event.detail {
        set(&o, "detail", &detail.as_str().into());
    }
    if let Some(label) = &event.label {
        set(&o, "label", &JsValue::from_str(label));
    }
    o
}

/// The user's logger, and the order its methods take their arguments in.
#[derive(Clone)]
pub(crate) struct Logger {
    target: JsValue,
    fields_first: bool,
}

impl Logger {
    /// `fields_first`: `(fields, message)`, as pino and bunyan take them.
    pub(crate) fn new(target: JsValue, fields_first: bool) -> Self {
        Self { target, fields_first }
    }

    /// One line at `level` (`debug`, `info`, `warn`, `error`); what the logger throws is ignored.
    pub(crate) fn log(&self, level: &str, message: &str, fields: &JsValue) {
        let method = js_sys::Reflect::get(&self.target, &level.into())
            .ok()
            .and_then(|m| m.dyn_into::<Function>().ok());
        if let Some(method) = method {
            let message = JsValue::from_str(&format!("autopay-auth: {message}"));
            let _ = if self.fields_first {
                method.call2(&self.target, fields, &message)
            } else {
                method.call2(&self.target, &message, fields)
            };
        }
    }
}

/// The npm client's observer: telemetry, the `onEvent` callback and the logger.
pub(crate) struct Watch {
    pub(crate) telemetry: Option<std::rc::Rc<Telemetry>>,
    pub(crate) logger: Option<Logger>,
    pub(crate) on_event: Option<Function>,
}

impl Observe for Watch {
    fn observe(&self, event: &Event) {
        if let Some(t) = &self.telemetry {
            t.on_event(event);
        }
        let fields: JsValue = fields(event).into();
        if let Some(callback) = &self.on_event {
            let _ = callback.call1(&JsValue::UNDEFINED, &fields);
        }
        if let Some(logger) = &self.logger {
            logger.log(event.kind.level(), event.message(), &fields);
        }
    }
}
