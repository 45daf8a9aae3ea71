//! The Cloudflare Worker edge: a token service and Autopay proxy in front of Autopay, so that
//! callers never hold Autopay credentials and never mint tokens.
//!
//! Routes: `GET /livez` (liveness, no key; answered by the JS front, `front.js`), `GET /healthz` (readiness: ok or not without a key,
//! the token state and counters with one),
//! `GET /token` (caller key), `POST /token/refused` (caller key: the API refused this token),
//! `POST /token/invalidate` (operator key: drop the token everywhere), anything else proxied
//! (caller key). Hot path: this isolate's
//! memory → `AUTOPAY_TOKENS` KV → the `TokenMinter` Durable Object, the only code that calls the
//! token endpoint, which refreshes ahead by its own alarm (and the cron, for the single tenant).
//! With `AUTOPAY_TENANTS`, every tenant has its routes under `/t/<tenant>/`, its own object and
//! its own lease; caller keys are granted tenants and API paths (`settings.rs`).

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

use isolate::{Desk, Isolate};
use minter::phase_name;

/// This isolate's state, or the 500 that names what is misconfigured.
fn ready(env: &Env) -> std::result::Result<Rc<Isolate>, Result<Response>> {
    isolate::current(env).map_err(|problems| reply::misconfigured(&problems))
}

/// A route of one tenant: the isolate, the tenant's index, the path prefix its routes sit under
/// (`""` for the single tenant, `/t/<tenant>` for one of many) and the rest of the path.
struct Route<'p> {
    iso: Rc<Isolate>,
    tenant: usize,
    prefix: &'p str,
    rest: &'p str,
}

impl Route<'_> {
    fn desk(&self) -> &Desk {
        &self.iso.desks[self.tenant]
    }

    /// Whether the caller's key may use this tenant — and with `path`, call that API path.
    fn admits(&self, req: &Request, path: Option<&str>) -> std::result::Result<(), Result<Response>> {
        let header = req.headers().get("authorization").ok().flatten();
        let access = &self.iso.settings.access;
        match access.keys().matching(header.as_deref()) {
            None => Err(reply::unauthorized()),
            Some(key) if access.permits(key, self.tenant, path) => Ok(()),
            Some(_) => Err(reply::forbidden()),
        }
    }
}

/// `/t/<tenant>/rest` → (`/t/<tenant>`, `<tenant>`, `/rest`); `None` for any other path.
fn split_tenant(path: &str) -> Option<(&str, &str, &str)> {
    let after = path.strip_prefix("/t/")?;
    let end = after.find('/').unwrap_or(after.len());
    let (name, rest) = after.split_at(end);
    let prefix = &path[..3 + end];
    Some((prefix, name, if rest.is_empty() { "/" } else { rest }))
}

#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'a str,
    scope: Option<&'a str>,
    /// Seconds the token has left (not its original lifetime).
    expires_in: u64,
}

async fn token(req: Request, route: &Route<'_>, ctx: &Context) -> Result<Response> {
    if let Err(answer) = route.admits(&req, None) {
        return answer;
    }
    let desk = route.desk();
    match desk.token(ctx).await {
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
            let until = desk
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
async fn refused_route(mut req: Request, route: &Route<'_>) -> Result<Response> {
    if let Err(answer) = route.admits(&req, None) {
        return answer;
    }
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
    let result = route.desk().report_refused(&token).await.as_str();
    reply::json(200, &Reported { result })
}

/// `POST /token/invalidate` with an operator key (`OPERATOR_API_KEYS`): the emergency lever for
/// a token the vendor revoked — the minter drops the token it holds (memory, storage, KV), so
/// the next lookup mints (within the budget). Off (404) without operator keys.
async fn invalidate_route(req: Request, route: &Route<'_>) -> Result<Response> {
    let Some(keys) = route.iso.settings.operator_keys.as_ref() else {
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
    match route.desk().drop_token().await {
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

async fn proxied(req: Request, route: &Route<'_>, ctx: &Context) -> Result<Response> {
    match route.admits(&req, Some(route.rest)) {
        Ok(()) => proxy::proxy(req.inner(), route.desk(), route.prefix, ctx).await,
        Err(answer) => answer,
    }
}

/// `GET /healthz`: ok or not without a key; with a health key, every tenant's token state and
/// counters; with a caller key, those of the tenants it may use. The single tenant's answer
/// keeps its shape: its fields at the top; many tenants' are under `tenants`, by name.
async fn healthz(req: Request, iso: &Isolate, only: Option<usize>) -> Result<Response> {
    let keyed = req.headers().get("authorization").ok().flatten();
    let s = &iso.settings;
    let health = s.health_keys.as_ref().is_some_and(|k| k.admits(keyed.as_deref()));
    let caller = s.access.keys().matching(keyed.as_deref());
    let shown: Vec<usize> = (0..iso.desks.len())
        .filter(|t| only.is_none_or(|o| o == *t))
        .filter(|t| health || caller.is_some_and(|k| s.access.permits(k, *t, None)))
        .collect();
    if shown.is_empty() {
        return reply::json(
            200,
            &Health {
                ok: true,
                ..Health::default()
            },
        );
    }
    let mut parts = Vec::with_capacity(shown.len());
    for t in shown {
        let desk = &iso.desks[t];
        parts.push((desk.name.as_deref(), tenant_health(desk).await));
    }
    // the single tenant, or one tenant's own /t/<tenant>/healthz: its fields at the top
    if let [(name, one)] = parts.as_slice()
        && (name.is_none() || only.is_some())
    {
        return reply::raw_json(200, one.clone());
    }
    let tenants: Vec<String> = parts
        .iter()
        .map(|(name, body)| format!("{}:{body}", serde_json::to_string(name).unwrap_or_default()))
        .collect();
    reply::raw_json(
        200,
        format!(
            "{{\"ok\":true,\"config\":\"complete\",\"tenants\":{{{}}}}}",
            tenants.join(",")
        ),
    )
}

/// What the operator's page is made from (the JS front renders `GET /status` from it as HTML).
pub const STATUS_JSON: &str = "/status.json";

/// `GET /status.json`: every tenant's health — the token's state, counters, this isolate's I/O,
/// and the minter's report (ledger, budget, timeline, gate, quotas) — for a health key only: a
/// caller key alone is refused (403), no key is 401. `{"ok":true,"now":…,"tenants":[{"name":…,
/// …}]}`, the single tenant's name `null`; never a token, secret or stored value.
async fn status(req: Request, iso: &Isolate) -> Result<Response> {
    let keyed = req.headers().get("authorization").ok().flatten();
    let s = &iso.settings;
    if !s.health_keys.as_ref().is_some_and(|k| k.admits(keyed.as_deref())) {
        return if s.access.keys().matching(keyed.as_deref()).is_some() {
            reply::forbidden()
        } else {
            reply::unauthorized()
        };
    }
    let mut tenants = Vec::with_capacity(iso.desks.len());
    for desk in &iso.desks {
        let body = tenant_health(desk).await;
        let open = body.strip_prefix('{').unwrap_or(&body);
        let name = serde_json::to_string(&desk.name).unwrap_or_default();
        tenants.push(format!("{{\"name\":{name},{open}"));
    }
    let now = crate::Clock::now_ms(&crate::js::DateClock);
    let mut r = reply::raw_json(
        200,
        format!(
            "{{\"ok\":true,\"now\":{now},\"tenants\":[{}]}}",
            tenants.join(",")
        ),
    )?;
    r.headers_mut().set("cache-control", "no-store")?;
    Ok(r)
}

/// One tenant's health, as JSON: its token state, counters, this isolate's I/O and the
/// minter's ledger.
async fn tenant_health(desk: &Desk) -> String {
    let peek = desk.tokens.peek().await;
    // the JS front's answers from its lease count as this isolate's memory hits
    let mut stats = desk.tokens.stats();
    let (hits, joined) = desk.front_counts.get();
    stats.memory_hits += hits;
    stats.coalesced += joined;
    let isolate = IsolateIo {
        kv_reads: desk.kv_reads.get(),
        minter_calls: desk.minter.calls(),
    };
    // the minting authority's view: mints per hour for 48 hours, last mint, last failure — its
    // JSON passed through as it came
    let minter = desk.minter.ledger().await.ok();
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
    format!("{open},\"minter\":{}}}", minter.as_deref().unwrap_or("null"))
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
    let iso = match ready(&env) {
        Ok(iso) => iso,
        Err(answer) => return answer,
    };
    let path = req.path();
    let method = req.method();
    if method == Method::Get && path == "/healthz" {
        return healthz(req, &iso, None).await;
    }
    if method == Method::Get && path == STATUS_JSON {
        return status(req, &iso).await;
    }
    let route = if iso.desks.first().is_some_and(|d| d.name.is_none()) {
        Route {
            iso,
            tenant: 0,
            prefix: "",
            rest: &path,
        }
    } else {
        // many tenants: `/t/<tenant>/…` only; an unknown tenant is answered as one the key may
        // not use, so the answer does not tell which tenants exist
        let Some((prefix, name, rest)) = split_tenant(&path) else {
            return reply::error(404, "not_found", "a tenant's routes are under /t/<tenant>/");
        };
        let Some(tenant) = iso.settings.tenant_index(Some(name)) else {
            return match iso
                .settings
                .access
                .keys()
                .matching(req.headers().get("authorization").ok().flatten().as_deref())
            {
                None => reply::unauthorized(),
                Some(_) => reply::forbidden(),
            };
        };
        Route {
            iso,
            tenant,
            prefix,
            rest,
        }
    };
    // a plain match, not a router rebuilt for every request
    match (method, route.rest) {
        (Method::Get, "/healthz") if !route.prefix.is_empty() => {
            if let Err(answer) = route.admits(&req, None)
                && !route
                    .iso
                    .settings
                    .health_keys
                    .as_ref()
                    .is_some_and(|k| k.admits(req.headers().get("authorization").ok().flatten().as_deref()))
            {
                return answer;
            }
            healthz(req, &route.iso, Some(route.tenant)).await
        }
        (Method::Get, "/token") => token(req, &route, &ctx).await,
        (Method::Post, "/token/refused") => refused_route(req, &route).await,
        (Method::Post, "/token/invalidate") => invalidate_route(req, &route).await,
        _ => proxied(req, &route, &ctx).await,
    }
}

/// The cron: a refresh-ahead of the single tenant (its minter's own alarm does the same; the
/// cron stays for deployments that have it). Many tenants' minters refresh by their alarms.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match isolate::current(&env) {
        Ok(iso) => {
            for desk in iso.desks.iter().filter(|d| d.name.is_none()) {
                match desk.minter.refresh().await {
                    Ok(report) => worker::console_log!("autopay-auth cron refresh: {report}"),
                    Err(_) => {
                        worker::console_error!("autopay-auth cron refresh failed: the minter did not answer")
                    }
                }
            }
        }
        Err(problems) => {
            let names: Vec<_> = problems.iter().map(|p| p.setting.as_str()).collect();
            worker::console_error!("autopay-auth cron: misconfigured settings {names:?}");
        }
    }
}
