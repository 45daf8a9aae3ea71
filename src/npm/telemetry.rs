//! OpenTelemetry for the npm package, through the `Meter` and `Tracer` the service already has
//! (`telemetry: { meter, tracer }`, from `@opentelemetry/api`): the package depends on nothing.
//! This side sees each token request: a client span per request (its retries as span events)
//! and its duration, and the token errors by code. The counters kept in `stats()` and the
//! current token's remaining life are observable instruments, registered by `js/api.js`.
//! No attribute ever carries a token, the secret, a key or a stored value.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use super::options::has_methods;
use crate::js::set;
use crate::{Error, Event, EventKind, TokenRecord, TokenSource};

/// `SpanKind.CLIENT` and `SpanStatusCode.ERROR` of `@opentelemetry/api`.
const SPAN_KIND_CLIENT: u32 = 2;
const SPAN_STATUS_ERROR: u32 = 2;

/// The histogram of whole token requests (every attempt and wait included), in seconds.
pub(crate) const DURATION: &str = "autopay_auth.token_request.duration";
/// The counter of failed token requests, by `error.type` (the error code).
/// The attribute that names the client ([`crate::ConfigBuilder::label`]) where a process holds
/// many: on every span and measurement of a labelled client.
pub(crate) const CLIENT_LABEL: &str = "autopay_auth.client";
pub(crate) const ERRORS: &str = "autopay_auth.token_request.errors";

/// The instruments and the tracer, and the token request under way.
pub(crate) struct Telemetry {
    /// The `Meter`, for the observable instruments `js/api.js` registers.
    pub(crate) meter: Option<JsValue>,
    tracer: Option<JsValue>,
    duration: Option<JsValue>,
    errors: Option<JsValue>,
    host: String,
    port: Option<u16>,
    /// The client's label, when it has one.
    label: Option<String>,
    open: RefCell<Option<Request>>,
}

/// One token request: its span, when it started, its attempts so far.
struct Request {
    span: Option<JsValue>,
    started_ms: f64,
    attempts: u32,
    status: Option<u16>,
    /// The code of the attempt that failed and is being retried.
    last_error: Option<&'static str>,
}

fn call(target: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(target, &method.into())?.dyn_into()?;
    f.apply(target, &args.iter().copied().collect::<Array>())
}

fn attributes(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        set(&o, k, v);
    }
    o
}

/// `{ description, unit }` for an instrument.
fn instrument(description: &str, unit: &str) -> Object {
    attributes(&[("description", description.into()), ("unit", unit.into())])
}

impl Telemetry {
    /// From the `telemetry` option (`{ meter?, tracer? }`) and the token URL's authority
    /// (`host[:port]`); `None` without one. A meter or tracer without the methods used is an
    /// `invalid_config`.
    pub(crate) fn read(
        option: &JsValue,
        authority: &str,
        label: Option<&str>,
    ) -> Result<Option<Rc<Self>>, Error> {
        if option.is_undefined() || option.is_null() {
            return Ok(None);
        }
        if !option.is_object() {
            return Err(Error::config("telemetry", "must be an object: { meter, tracer }"));
        }
        let part = |name: &str| {
            Reflect::get(option, &name.into())
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_null())
        };
        let meter = part("meter");
        let tracer = part("tracer");
        if let Some(m) = &meter {
            let needed = [
                "createCounter",
                "createHistogram",
                "createObservableCounter",
                "createObservableGauge",
                "addBatchObservableCallback",
            ];
            if !has_methods(m, &needed) {
                return Err(Error::config(
                    "telemetry.meter",
                    "must be an OpenTelemetry Meter (metrics.getMeter(…))",
                ));
            }
        }
        if let Some(t) = &tracer
            && !has_methods(t, &["startSpan"])
        {
            return Err(Error::config(
                "telemetry.tracer",
                "must be an OpenTelemetry Tracer (trace.getTracer(…))",
            ));
        }
        // `[::1]:8788`, `host:443`, `host`
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()),
            _ => (authority, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Some(Rc::new(Self {
            duration: meter.as_ref().and_then(|m| {
                let options = instrument(
                    "Duration of token requests to the token endpoint, every attempt and wait included",
                    "s",
                );
                // the buckets OpenTelemetry advises for http.client.request.duration
                let bounds: Array = [
                    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                ]
                .iter()
                .map(|b| JsValue::from(*b))
                .collect();
                set(
                    &options,
                    "advice",
                    &attributes(&[("explicitBucketBoundaries", bounds.into())]),
                );
                call(m, "createHistogram", &[&DURATION.into(), &options]).ok()
            }),
            errors: meter.as_ref().and_then(|m| {
                let options = instrument(
                    "Token requests that failed for their callers, by error.type",
                    "{request}",
                );
                call(m, "createCounter", &[&ERRORS.into(), &options]).ok()
            }),
            meter,
            tracer,
            host: host.to_owned(),
            port,
            label: label.map(str::to_owned),
            open: RefCell::new(None),
        })))
    }

    fn server(&self) -> Vec<(&'static str, JsValue)> {
        let mut out = vec![("server.address", JsValue::from_str(&self.host))];
        if let Some(p) = self.port {
            out.push(("server.port", JsValue::from(p)));
        }
        if let Some(label) = &self.label {
            out.push((CLIENT_LABEL, JsValue::from_str(label)));
        }
        out
    }

    /// An attempt at the token endpoint starts: the first of a request opens its span; a later
    /// one is a retry, an event on that span.
    fn attempt(&self) {
        let mut open = self.open.borrow_mut();
        match open.as_mut() {
            Some(r) => {
                r.attempts += 1;
                if let Some(span) = &r.span {
                    let mut attrs = vec![("autopay_auth.attempt", JsValue::from(r.attempts))];
                    if let Some(s) = r.status {
                        attrs.push(("http.response.status_code", JsValue::from(s)));
                    }
                    if let Some(code) = r.last_error {
                        attrs.push(("error.type", JsValue::from_str(code)));
                    }
                    let _ = call(span, "addEvent", &[&"retry".into(), &attributes(&attrs)]);
                }
            }
            None => {
                let span = self.tracer.as_ref().and_then(|t| {
                    let mut attrs = vec![("http.request.method", JsValue::from_str("POST"))];
                    attrs.extend(self.server());
                    let options = attributes(&[
                        ("kind", JsValue::from(SPAN_KIND_CLIENT)),
                        ("attributes", attributes(&attrs).into()),
                    ]);
                    call(t, "startSpan", &[&"POST".into(), &options]).ok()
                });
                *open = Some(Request {
                    span,
                    started_ms: js_sys::Date::now(),
                    attempts: 1,
                    status: None,
                    last_error: None,
                });
            }
        }
    }

    /// An attempt answered (or failed): its status is kept for the span.
    fn answered(&self, result: &Result<TokenRecord, Error>) {
        if let Some(r) = self.open.borrow_mut().as_mut() {
            r.status = match result {
                Ok(_) => Some(200),
                Err(e) => e.server().map(|s| s.status),
            };
        }
    }

    /// The machine's events end a request: `mint` (it succeeded) or a final `token_error` (it
    /// failed for every waiter; one with `detail: "retrying"` is an attempt, and the next one
    /// follows). Other events leave it open.
    pub(crate) fn on_event(&self, event: &Event) {
        let failed = match event.kind {
            EventKind::Mint => None,
            EventKind::TokenError if event.detail.as_deref() == Some("retrying") => {
                if let Some(r) = self.open.borrow_mut().as_mut() {
                    r.last_error = event.code;
                }
                return;
            }
            EventKind::TokenError => Some(event.code.unwrap_or("error")),
            _ => return,
        };
        let Some(r) = self.open.borrow_mut().take() else {
            return;
        };
        let mut attrs = self.server();
        if let Some(s) = r.status {
            attrs.push(("http.response.status_code", JsValue::from(s)));
        }
        if let Some(code) = failed {
            attrs.push(("error.type", JsValue::from_str(code)));
            if let Some(errors) = &self.errors {
                let _ = call(errors, "add", &[&JsValue::from(1), &attributes(&attrs)]);
            }
        }
        let seconds = (js_sys::Date::now() - r.started_ms).max(0.0) / 1000.0;
        if let Some(h) = &self.duration {
            let _ = call(h, "record", &[&JsValue::from(seconds), &attributes(&attrs)]);
        }
        if let Some(span) = &r.span {
            for (k, v) in &attrs {
                let _ = call(span, "setAttribute", &[&JsValue::from_str(k), v]);
            }
            if let Some(code) = failed {
                let status = attributes(&[
                    ("code", JsValue::from(SPAN_STATUS_ERROR)),
                    ("message", code.into()),
                ]);
                let _ = call(span, "setStatus", &[&status]);
            }
            let _ = call(span, "end", &[]);
        }
    }
}

/// A token source whose attempts the telemetry sees.
pub(crate) struct Observed<S> {
    pub(crate) inner: S,
    pub(crate) telemetry: Option<Rc<Telemetry>>,
}

impl<S: TokenSource> TokenSource for Observed<S> {
    async fn mint(&self, replacing: Option<&str>, timeout_ms: u64) -> Result<TokenRecord, Error> {
        if let Some(t) = &self.telemetry {
            t.attempt();
        }
        let result = self.inner.mint(replacing, timeout_ms).await;
        if let Some(t) = &self.telemetry {
            t.answered(&result);
        }
        result
    }

    fn declared(&self) -> Vec<crate::Declared> {
        self.inner.declared()
    }
}
