//! What the Worker's JS front (`front.js`, the module workerd runs) asks of the Rust half.
//!
//! The front answers `GET /token` and bodiless proxy calls from a *lease* — a token this module
//! lets it hand out, without calling in here, until the lease's end (the token's refresh point)
//! — after its own constant-time caller-key check against the key digests published here. Cold
//! requests of one isolate wait on one JS promise of the front, so a burst costs one call into
//! here, one KV read and one Durable Object call. All token policy stays in the Rust core:
//! what may be served and until when, refreshes, refusals, errors. Everything else (other
//! routes, bodies, misconfiguration) goes to the Rust `fetch`.

use std::cell::Cell;

use js_sys::{Array, Object, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use worker::{Context, Env};

use super::{isolate, reply};
use crate::js::{set, token_object};
use crate::{UNFORWARDED_HEADERS, UNFORWARDED_PREFIXES};

thread_local! {
    /// Answers the front gave from its lease, and its callers that joined a pending call:
    /// added to the `/healthz` counters.
    static FRONT_COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The front's answers since the isolate started: (lease hits, joined callers).
pub fn front_counts() -> (u64, u64) {
    FRONT_COUNTS.get()
}

fn strings(list: &[&str]) -> Array {
    list.iter().map(|s| JsValue::from_str(s)).collect()
}

/// `{ keys, apiBase, unforwarded, unforwardedPrefixes, encodedSeparators, unauthorized, unreachable }` for this
/// isolate's settings — the caller keys as SHA-256 digests, the API base without a trailing
/// `/`, the request headers never forwarded, and two error bodies — or `null` when the settings
/// are not usable (the Rust `fetch` then names the problem).
#[wasm_bindgen(js_name = frontSettings)]
pub fn front_settings(env: Env) -> JsValue {
    let Ok(iso) = isolate::current(&env) else {
        return JsValue::NULL;
    };
    let s = &iso.settings;
    let keys: Array = s
        .caller_keys
        .digests()
        .iter()
        .map(|d| JsValue::from(Uint8Array::from(&d[..]).buffer()))
        .collect();
    let out = Object::new();
    set(&out, "keys", &keys);
    set(&out, "apiBase", &s.api_base.trim_end_matches('/').into());
    set(&out, "unforwarded", &strings(UNFORWARDED_HEADERS));
    set(&out, "unforwardedPrefixes", &strings(UNFORWARDED_PREFIXES));
    set(
        &out,
        "encodedSeparators",
        &strings(&crate::api::ENCODED_SEPARATORS),
    );
    let (code, description) = reply::UNAUTHORIZED;
    set(&out, "unauthorized", &reply::error_body(code, description).into());
    let (code, description) = reply::UNREACHABLE;
    set(&out, "unreachable", &reply::error_body(code, description).into());
    out.into()
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

/// The API answered 401 to `token`: the core drops it (here and at the minter) unless it keeps
/// it. Resolves to whether the call may be retried with a new lease.
#[wasm_bindgen(js_name = frontRefused)]
pub fn front_refused(env: Env, token: String) -> Promise {
    let iso = isolate::current(&env);
    future_to_promise(async move {
        Ok(match iso {
            Ok(iso) => iso.refused(&token).await.into(),
            Err(_) => false.into(),
        })
    })
}

/// The front's answers since it last reported (lease hits, joined callers), for `/healthz`.
#[wasm_bindgen(js_name = frontCount)]
pub fn front_count(hits: f64, joined: f64) {
    let (h, j) = FRONT_COUNTS.get();
    FRONT_COUNTS.set((h + hits as u64, j + joined as u64));
}
