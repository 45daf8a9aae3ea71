//! What the Worker's JS front (`front.js`, the module workerd runs) asks of the Rust half.
//!
//! The front keeps two things only: the caller-key check (constant-time, against the key
//! digests published here) and the *lease* — a token this module lets it hand out for
//! `GET /token` without calling in here, until the lease's end (the token's refresh point).
//! Cold requests of one isolate wait on one JS promise of the front, so a burst costs one call
//! into here, one KV read and one Durable Object call. Every decision is made here: what may be
//! served and until when, refreshes, refusals, errors, and for proxied calls the URL, the
//! headers (`frontRequest`: synchronous, the front then `fetch`es what it is handed) and the
//! one retry after a 401 (`frontRetry`), over the platform's own request and response, without
//! workers-rs' conversions. A refusal takes the lease back from the front.
//! Everything else (other routes, bodies, misconfiguration) goes to the Rust `fetch`.

use std::cell::{Cell, RefCell};

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use worker::{Context, Env};

use super::proxy::{Answer, prepare, retry_refused};
use super::{isolate, reply};
use crate::js::{set, token_object};

thread_local! {
    /// Answers the front gave from its lease, and its callers that joined a pending call:
    /// added to the `/healthz` counters.
    static FRONT_COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// The front's `{ lease }` holder, given with `frontSettings`: a refusal clears its lease.
    static HOLDER: RefCell<Option<Object>> = const { RefCell::new(None) };
}

/// The API refused `token`: the front may not hand it out again (its lease is dropped when it
/// Forgets the front's lease, whatever token it holds (the operator dropped the token).
pub fn forget_any_lease() {
    HOLDER.with(|h| {
        if let Some(holder) = h.borrow().as_ref() {
            set(holder, "lease", &JsValue::NULL);
        }
    });
}

/// is that token).
pub fn forget_lease(token: &str) {
    HOLDER.with(|h| {
        if let Some(holder) = h.borrow().as_ref() {
            let lease = Reflect::get(holder, &"lease".into()).unwrap_or(JsValue::NULL);
            let held = Reflect::get(&lease, &"accessToken".into())
                .ok()
                .and_then(|t| t.as_string());
            if held.as_deref() == Some(token) {
                set(holder, "lease", &JsValue::NULL);
            }
        }
    });
}

/// The front's answers since the isolate started: (lease hits, joined callers).
pub fn front_counts() -> (u64, u64) {
    FRONT_COUNTS.get()
}

/// `{ keys, unauthorized }` for this isolate's settings — the caller keys as SHA-256 digests
/// and the body of the 401 — or `null` when the settings are not usable (the Rust `fetch`
/// then names the problem). `holder` is the front's `{ lease }`, which a refusal clears.
#[wasm_bindgen(js_name = frontSettings)]
pub fn front_settings(env: Env, holder: Object) -> JsValue {
    let Ok(iso) = isolate::current(&env) else {
        return JsValue::NULL;
    };
    HOLDER.with(|h| *h.borrow_mut() = Some(holder));
    let keys: js_sys::Array = iso
        .settings
        .caller_keys
        .digests()
        .iter()
        .map(|d| JsValue::from(Uint8Array::from(&d[..]).buffer()))
        .collect();
    let out = Object::new();
    set(&out, "keys", &keys);
    let (code, description) = reply::UNAUTHORIZED;
    set(&out, "unauthorized", &reply::error_body(code, description).into());
    out.into()
}

/// A bodiless call the front admitted, as the proxy forwards it: `{ url, init }` for the
/// front's own `fetch` — the path joined under the API base and checked, the headers filtered,
/// `token` presented as its type says — or `null` when the path is refused or the settings are not usable
/// (the Rust `fetch` then answers). Synchronous: the hot path never waits on wasm.
#[wasm_bindgen(js_name = frontRequest)]
pub fn front_request(request: web_sys::Request, token_type: String, token: String) -> JsValue {
    let Some(iso) = isolate::cached() else {
        return JsValue::NULL;
    };
    let token = crate::ApiToken {
        token_type,
        access_token: token,
    };
    let Some((url, init)) = prepare(&request, &iso, &token) else {
        return JsValue::NULL;
    };
    let out = Object::new();
    set(&out, "url", &url.into());
    set(&out, "init", &init);
    out.into()
}

/// The API answered the front's call with a 401 for `token`: the core decides. Resolves to the
/// answer of the one retry with a new token, or `null` when the 401 stands (the token is kept,
/// or another would not help). The front's lease is cleared when the token is dropped.
#[wasm_bindgen(js_name = frontRetry)]
pub fn front_retry(
    env: Env,
    ctx: worker::worker_sys::Context,
    request: web_sys::Request,
    token: String,
) -> Promise {
    let iso = isolate::current(&env);
    future_to_promise(async move {
        let Ok(iso) = iso else {
            return Ok(JsValue::NULL);
        };
        Ok(
            match retry_refused(&request, &iso, &Context::new(ctx), &token).await? {
                None => JsValue::NULL,
                Some(Answer::Upstream(resp)) => resp.into(),
                Some(Answer::Reply(reply)) => web_sys::Response::from(reply).into(),
            },
        )
    })
}

/// A token for the front: `{ accessToken, tokenType, scope, expiresAt, until }` (serve it until
/// `until`, 0 when it may be served only to the calls waiting now), or `{ status, body,
/// retryAfter }` when none could be had, or `null` when the settings are not usable. A refresh
/// the lookup started runs under `ctx.waitUntil`.
#[wasm_bindgen(js_name = frontLease)]
pub fn front_lease(env: Env, ctx: worker::worker_sys::Context) -> Promise {
    let iso = isolate::current(&env);
    future_to_promise(async move {
        let Ok(iso) = iso else {
            return Ok(JsValue::NULL);
        };
        match iso.token(&Context::new(ctx)).await {
            Ok(served) => {
                let r = &served.record;
                let until = iso
                    .tokens
                    .lease()
                    .filter(|l| l.record.access_token == r.access_token);
                let lease = token_object(r);
                set(&lease, "until", &until.map_or(0.0, |l| l.until_ms as f64).into());
                Ok(lease.into())
            }
            Err(e) => {
                let out = Object::new();
                let (status, body, retry_after) = reply::token_failure_parts(&e);
                set(&out, "status", &status.into());
                set(&out, "body", &body.into());
                let retry_after = retry_after.map_or(JsValue::NULL, |s| (s as f64).into());
                set(&out, "retryAfter", &retry_after);
                Ok(out.into())
            }
        }
    })
}

/// The front's answers since it last reported (lease hits, joined callers), for `/healthz`.
#[wasm_bindgen(js_name = frontCount)]
pub fn front_count(hits: f64, joined: f64) {
    let (h, j) = FRONT_COUNTS.get();
    FRONT_COUNTS.set((h + hits as u64, j + joined as u64));
}
