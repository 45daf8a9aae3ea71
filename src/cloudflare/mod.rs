//! The Cloudflare Worker edge: a token service and Autopay proxy in front of Autopay, so that
//! callers never hold Autopay credentials and never mint tokens.
//!
//! Routes: `GET /livez` (liveness, no key; answered by the JS front, `front.js`), `GET /healthz` (readiness: ok or not without a key,
//! the token state and counters with one),
//! `GET /token` (caller key), `POST /token/refused` (caller key: the API refused this token),
//! `POST /token/invalidate` (operator key: drop the token everywhere), anything else proxied
//! (caller key). Hot path: this isolate's
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
            let now = js_sys::Date::now() as u64;
            let mut answer = reply::json(
                200,
                &TokenBody {
                    access_token: &r.access_token,
                    token_type: &r.token_type,
                    scope: r.scope.as_deref(),
                    expires_in: r.remaining_secs(now),
                },
            )?;
            // how long a caller may keep it: until this Worker's own refresh point
            let until = iso
                .tokens
                .lease()
                .filter(|l| l.record.access_token == r.access_token)
                .map_or(0, |l| l.until_ms);
            answer
                .headers_mut()
                .set("cache-control", &cache_control(until.saturating_sub(now) / 1000))?;
            Ok(answer)
        }
        Err(e) => reply::token_failure(&e),
    }
}

/// `Cache-Control` of a `/token` answer: callers may keep it for `secs` (until the Worker's
/// refresh point, `0` when it is past), and no shared cache may keep it at all. The front
/// writes the same.
fn cache_control(secs: u64) -> String {
    format!("private, max-age={secs}")
}

/// The largest body `POST /token/refused` reads.
const MAX_REPORT_BYTES: usize = 16 * 1024;

/// `POST /token/refused` `{"access_token": …}`: a caller's API refused the token it got from
/// `/token`. Dropped here and at the minter by compare-and-delete — only while it is still the
/// token held, so many callers reporting one token drop it once — unless a refusal hold keeps
/// it; what replaces it is minted within the mint budget. Answers `{"result": "dropped" |
/// "not_held" | "kept"}`: ask `/token` again after `dropped` or `not_held`; after `kept`, the
/// API refuses fresh tokens too, do not retry.
async fn refused_route(mut req: Request, env: &Env) -> Result<Response> {
    let iso = match admitted(&req, env) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let bad = || {
        reply::error(
            400,
            "invalid_request",
            "expected a JSON body {\"access_token\": \"…\"}",
        )
    };
    let Ok(bytes) = req.bytes().await else {
        return bad();
    };
    if bytes.len() > MAX_REPORT_BYTES {
        return bad();
    }
    let token = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned))
        .filter(|t| crate::is_bearer_token(t));
    let Some(token) = token else {
        return bad();
    };
    #[derive(Serialize)]
    struct Reported {
        result: &'static str,
    }
    let result = iso.report_refused(&token).await.as_str();
    reply::json(200, &Reported { result })
}

/// `POST /token/invalidate` with an operator key (`OPERATOR_API_KEYS`): the emergency lever for
/// a token the vendor revoked — the minter drops the token it holds (memory, storage, KV), so
/// the next lookup mints (within the budget). Off (404) without operator keys.
async fn invalidate_route(req: Request, env: &Env) -> Result<Response> {
    let iso = match ready(env) {
        Ok(iso) => iso,
        Err(answer) => return answer,
    };
    let Some(keys) = iso.settings.operator_keys.as_ref() else {
        return reply::error(
            404,
            "not_found",
            "the operator's lever is off: set OPERATOR_API_KEYS",
        );
    };
    let key = req.headers().get("authorization").ok().flatten();
    if !keys.admits(key.as_deref()) {
        return reply::unauthorized();
    }
    match iso.drop_token().await {
        Ok(dropped) => {
            #[derive(Serialize)]
            struct Dropped {
                dropped: bool,
            }
            reply::json(200, &Dropped { dropped })
        }
        Err(()) => reply::error(503, "minter_unavailable", "the minting authority did not answer"),
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
    let method = req.method();
    match (method, req.path().as_str()) {
        (Method::Get, "/healthz") => healthz(req, &env).await,
        (Method::Get, "/token") => token(req, &env, &ctx).await,
        (Method::Post, "/token/refused") => refused_route(req, &env).await,
        (Method::Post, "/token/invalidate") => invalidate_route(req, &env).await,
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
