//! The Cloudflare Worker edge: a token service and Autopay proxy in front of Autopay, so that
//! callers never hold Autopay credentials and never mint tokens.
//!
//! Routes: `GET /livez` (liveness, no key; answered by the JS front, `front.js`), `GET /healthz` (readiness: ok or not without a key,
//! the token state and counters with one),
//! `GET /token` (caller key), anything else proxied (caller key). Hot path: this isolate's
//! memory → `AUTOPAY_TOKENS` KV → the `TokenMinter` Durable Object, the only code that calls the
//! token endpoint. A cron refreshes ahead.

mod caller;
mod front;
mod isolate;
mod minter;
mod proxy;
mod reply;
mod settings;

use std::rc::Rc;

use serde::Serialize;
use worker::{Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent, event};

use isolate::Isolate;
use minter::phase_name;

/// This isolate's state, or the 500 that names what is misconfigured.
fn ready(env: &Env) -> std::result::Result<Rc<Isolate>, Result<Response>> {
    isolate::current(env).map_err(|problems| reply::misconfigured(&problems))
}

/// [`ready`], and only for a caller with a key.
fn admitted(req: &Request, env: &Env) -> std::result::Result<Rc<Isolate>, Result<Response>> {
    let iso = ready(env)?;
    match req.headers().get("authorization") {
        Ok(h) if iso.settings.caller_keys.admits(h.as_deref()) => Ok(iso),
        _ => Err(reply::unauthorized()),
    }
}

#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'a str,
    scope: Option<&'a str>,
    /// Seconds the token has left (not its original lifetime).
    expires_in: u64,
}

async fn token(req: Request, env: &Env, ctx: &Context) -> Result<Response> {
    let iso = match admitted(&req, env) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    match iso.token(ctx).await {
        Ok(served) => {
            let r = &served.record;
            reply::json(
                200,
                &TokenBody {
                    access_token: &r.access_token,
                    token_type: &r.token_type,
                    scope: r.scope.as_deref(),
                    expires_in: r.remaining_secs(js_sys::Date::now() as u64),
                },
            )
        }
        Err(e) => reply::token_failure(&e),
    }
}

async fn proxied(req: Request, env: &Env, ctx: &Context) -> Result<Response> {
    match admitted(&req, env) {
        Ok(iso) => proxy::proxy(req.inner(), &iso, ctx).await,
        Err(answer) => answer,
    }
}

async fn healthz(req: Request, env: &Env) -> Result<Response> {
    let iso = match ready(env) {
        Ok(iso) => iso,
        Err(answer) => return answer,
    };
    // without a caller key or a health key: ok or not, nothing more
    let keyed = req.headers().get("authorization").ok().flatten();
    let s = &iso.settings;
    let health = s.health_keys.as_ref().is_some_and(|k| k.admits(keyed.as_deref()));
    if !(health || s.caller_keys.admits(keyed.as_deref())) {
        return reply::json(
            200,
            &Health {
                ok: true,
                ..Health::default()
            },
        );
    }
    let peek = iso.tokens.peek().await;
    // the JS front's answers from its lease count as this isolate's memory hits
    let mut stats = iso.tokens.stats();
    let (hits, joined) = front::front_counts();
    stats.memory_hits += hits;
    stats.coalesced += joined;
    // this isolate's I/O for its token cache, before asking the minter for its ledger
    let isolate = IsolateIo {
        kv_reads: iso.kv_reads.get(),
        minter_calls: iso.minter.calls(),
    };
    // the minting authority's view: mints per hour for 48 hours, last mint, last failure — its
    // JSON passed through as it came
    let minter = iso.minter.ledger().await.ok();
    let health = Health {
        ok: true,
        config: Some("complete"),
        token: Some(TokenState {
            state: peek.as_ref().map_or("none", |(p, _)| phase_name(*p)),
            expires_at: peek.as_ref().map(|(_, r)| r.expires_at_ms),
        }),
        stats: Some(stats),
        isolate: Some(isolate),
    };
    // the object's JSON spliced in as the last member: `null` when it did not answer
    let body = serde_json::to_string(&health).unwrap_or_default();
    let open = body.strip_suffix('}').unwrap_or(&body);
    reply::raw_json(
        200,
        format!("{open},\"minter\":{}}}", minter.as_deref().unwrap_or("null")),
    )
}

/// The `/healthz` answer: `{"ok":true}` alone without a key. Typed, not a `json!` value, whose
/// serialiser brings a float formatter into the wasm.
#[derive(Serialize, Default)]
struct Health {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<TokenState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<crate::Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    isolate: Option<IsolateIo>,
}

#[derive(Serialize)]
struct TokenState {
    state: &'static str,
    expires_at: Option<u64>,
}

/// This isolate's I/O for its token cache.
#[derive(Serialize)]
struct IsolateIo {
    kv_reads: u64,
    minter_calls: u64,
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    // the runtime would turn any other method into GET: refuse it instead
    if !proxy::ALLOWED_METHODS.contains(&req.inner().method().to_ascii_uppercase().as_str()) {
        let mut r = reply::error(405, "method_not_allowed", "this method is not forwarded")?;
        r.headers_mut().set("allow", &proxy::ALLOWED_METHODS.join(", "))?;
        return Ok(r);
    }
    // a plain match, not a router rebuilt for every request
    let get = req.method() == Method::Get;
    match (get, req.path().as_str()) {
        (true, "/healthz") => healthz(req, &env).await,
        (true, "/token") => token(req, &env, &ctx).await,
        _ => proxied(req, &env, &ctx).await,
    }
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match isolate::current(&env) {
        Ok(iso) => match iso.minter.refresh().await {
            Ok(report) => worker::console_log!("autopay-auth cron refresh: {report}"),
            Err(_) => worker::console_error!("autopay-auth cron refresh failed: the minter did not answer"),
        },
        Err(problems) => {
            let names: Vec<_> = problems.iter().map(|p| p.setting).collect();
            worker::console_error!("autopay-auth cron: misconfigured settings {names:?}");
        }
    }
}
