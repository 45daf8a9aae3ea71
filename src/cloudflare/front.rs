//! What the Worker's JS front (`front.js`, the module workerd runs) asks of the Rust half.
//!
//! The front keeps two things only: the caller-key check (constant-time, against the key
//! digests published here) and the *lease* — a token this module lets it hand out for
//! `GET /token` without calling in here, until the lease's end (the token's refresh point).
//! Cold requests of one isolate wait on one JS promise of the front, so a burst costs one call
//! into here, one KV read and one Durable Object call. Every decision is made here: what may be
//! served and until when, refreshes, refusals, errors, and for proxied calls the URL, the
//! headers (`frontRequest`: synchronous, a plan in one string that the front carries out) and the
//! one retry after a 401 (`frontRetry`), over the platform's own request and response, without
//! workers-rs' conversions. A refusal takes the lease back from the front.
//! Everything else (other routes, bodies, misconfiguration) goes to the Rust `fetch`.

use js_sys::{Array, Object, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use worker::{Context, Env};

use super::proxy::{Answer, plan, retry_refused};
use super::settings::Access;
use super::{isolate, reply};
use crate::js::{set, token_object};

/// `{ keys, unauthorized, tenants, grants }` for this isolate's settings — the caller keys as
/// SHA-256 digests, the body of the 401, each tenant's `{ name, holder }` (`name` `null` for the
/// single tenant; `holder` is the `{ lease }` the front serves that tenant's `/token` from,
/// which a refusal clears), and for many tenants, for each key, the indexes of the tenants it
/// may use (`null` for the single tenant) — or `null` when the settings are not usable (the
/// Rust `fetch` then names the problem).
#[wasm_bindgen(js_name = frontSettings)]
pub fn front_settings(env: Env) -> JsValue {
    let Ok(iso) = isolate::current(&env) else {
        return JsValue::NULL;
    };
    let keys: Array = iso
        .settings
        .access
        .keys()
        .digests()
        .iter()
        .map(|d| JsValue::from(Uint8Array::from(&d[..]).buffer()))
        .collect();
    let tenants: Array = iso
        .desks
        .iter()
        .map(|d| {
            let t = Object::new();
            let name = d.name.as_deref().map_or(JsValue::NULL, JsValue::from_str);
            set(&t, "name", &name);
            set(&t, "holder", &d.holder);
            JsValue::from(t)
        })
        .collect();
    let grants = match &iso.settings.access {
        Access::Single(_) => JsValue::NULL,
        Access::Tenants(_, grants) => grants
            .iter()
            .map(|g| -> JsValue {
                g.iter()
                    .map(|(t, _)| JsValue::from(*t as u32))
                    .collect::<Array>()
                    .into()
            })
            .collect::<Array>()
            .into(),
    };
    let out = Object::new();
    set(&out, "keys", &keys);
    set(&out, "tenants", &tenants);
    set(&out, "grants", &grants);
    let (code, description) = reply::UNAUTHORIZED;
    set(&out, "unauthorized", &reply::error_body(code, description).into());
    out.into()
}

/// A bodiless call the front admitted, as the proxy forwards it ([`plan`]: the URL, the header
/// names not to forward, the headers that present the token) — or `null` when the path is refused
/// or the settings are not usable (the Rust `fetch` then answers). `call` is one string, so that
/// one string crosses in: the request's method, the lease's token type and token, the request's
/// URL and its header names (space-separated), a line each (none of them can hold a line break).
/// Synchronous: the hot path never waits on wasm.
#[wasm_bindgen(js_name = frontRequest)]
pub fn front_request(call: &str) -> Option<String> {
    let iso = isolate::cached()?;
    let mut lines = call.splitn(5, '\n');
    let (method, token_type, token, url) = (lines.next()?, lines.next()?, lines.next()?, lines.next()?);
    let names = lines.next().unwrap_or("");
    // the single tenant's calls only: many tenants' calls go to the Rust `fetch`
    let desk = iso.desks.first().filter(|d| d.name.is_none())?;
    plan(desk, url, method, names, token_type, token)
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
        let Some(desk) = iso
            .as_ref()
            .ok()
            .and_then(|i| i.desks.first())
            .filter(|d| d.name.is_none())
        else {
            return Ok(JsValue::NULL);
        };
        Ok(
            match retry_refused(&request, desk, "", &Context::new(ctx), &token).await? {
                None => JsValue::NULL,
                Some(Answer::Upstream(resp)) => resp.into(),
                Some(Answer::Reply(reply)) => web_sys::Response::from(reply).into(),
            },
        )
    })
}

/// A token of tenant `tenant` (its index in `frontSettings`' `tenants`) for the front:
/// `{ accessToken, tokenType, scope, expiresAt, until }` (serve it until `until`, 0 when it may
/// be served only to the calls waiting now), or `{ status, body, retryAfter }` when none could
/// be had, or `null` when the settings are not usable. A refresh the lookup started runs under
/// `ctx.waitUntil`.
#[wasm_bindgen(js_name = frontLease)]
pub fn front_lease(env: Env, ctx: worker::worker_sys::Context, tenant: u32) -> Promise {
    let iso = isolate::current(&env);
    future_to_promise(async move {
        let Ok(iso) = iso else {
            return Ok(JsValue::NULL);
        };
        let Some(desk) = iso.desks.get(tenant as usize) else {
            return Ok(JsValue::NULL);
        };
        match desk.token(&Context::new(ctx)).await {
            Ok(served) => {
                let r = &served.record;
                let until = desk
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

/// The front's answers for tenant `tenant` since it last reported (lease hits, joined callers),
/// for `/healthz`.
#[wasm_bindgen(js_name = frontCount)]
pub fn front_count(tenant: u32, hits: f64, joined: f64) {
    if let Some(desk) = isolate::cached()
        .as_ref()
        .and_then(|i| i.desks.get(tenant as usize))
    {
        desk.count_front(hits as u64, joined as u64);
    }
}
