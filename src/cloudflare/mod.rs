//! The Cloudflare Worker edge: a token service and Autopay proxy in front of Autopay, so that
//! callers never hold Autopay credentials and never mint tokens.
//!
//! Routes: `GET /livez` (liveness, no key), `GET /healthz` (readiness: ok or not without a key,
//! the token state and counters with one),
//! `GET /token` (caller key), anything else proxied (caller key). Hot path: this isolate's
//! memory → `AUTOPAY_TOKENS` KV → the `TokenMinter` Durable Object, the only code that calls the
//! token endpoint. A cron refreshes ahead.

mod caller;
mod isolate;
mod minter;
mod proxy;
mod reply;
mod settings;

use std::rc::Rc;

use serde::Serialize;
use worker::{
    Context, Env, Request, Response, Result, RouteContext, Router, ScheduleContext, ScheduledEvent, event,
};

use isolate::Isolate;
use minter::phase_name;
use settings::Problem;

type Data = Rc<(std::result::Result<Rc<Isolate>, Vec<Problem>>, Context)>;
type Ready<'a> = std::result::Result<(&'a Isolate, &'a Context), Result<Response>>;

/// This isolate's state, or the 500 that names what is misconfigured.
fn ready(rc: &RouteContext<Data>) -> Ready<'_> {
    match &rc.data.0 {
        Ok(iso) => Ok((iso, &rc.data.1)),
        Err(problems) => Err(reply::misconfigured(problems)),
    }
}

/// [`ready`], and only for a caller with a key.
fn admitted<'a>(req: &Request, rc: &'a RouteContext<Data>) -> Ready<'a> {
    let (iso, ctx) = ready(rc)?;
    match req.headers().get("authorization") {
        Ok(h) if iso.settings.caller_keys.admits(h.as_deref()) => Ok((iso, ctx)),
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

async fn token(req: Request, rc: RouteContext<Data>) -> Result<Response> {
    let (iso, ctx) = match admitted(&req, &rc) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    match iso.tokens.get().await {
        Ok(lookup) => {
            if let Some(refresh) = lookup.refresh {
                ctx.wait_until(refresh);
            }
            let r = &lookup.served.record;
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

async fn proxied(req: Request, rc: RouteContext<Data>) -> Result<Response> {
    match admitted(&req, &rc) {
        Ok((iso, ctx)) => proxy::proxy(req, iso, ctx).await,
        Err(answer) => answer,
    }
}

async fn healthz(req: Request, rc: RouteContext<Data>) -> Result<Response> {
    let iso = match ready(&rc) {
        Ok((iso, _)) => iso,
        Err(answer) => return answer,
    };
    // without a caller key: ok or not, nothing more
    let keyed = req.headers().get("authorization").ok().flatten();
    if !iso.settings.caller_keys.admits(keyed.as_deref()) {
        return reply::json(200, &serde_json::json!({ "ok": true }));
    }
    let peek = iso.tokens.peek().await;
    // the minting authority's view: mints per hour for 48 hours, last mint, last failure
    let minter = iso.minter.ledger().await.ok();
    reply::json(
        200,
        &serde_json::json!({
            "ok": true,
            "config": "complete",
            "token": {
                "state": peek.as_ref().map_or("none", |(p, _)| phase_name(*p)),
                "expires_at": peek.as_ref().map(|(_, r)| r.expires_at_ms),
            },
            "stats": iso.tokens.stats(),
            "minter": minter,
        }),
    )
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    // the runtime would turn any other method into GET: refuse it instead
    if !proxy::ALLOWED_METHODS.contains(&req.inner().method().to_ascii_uppercase().as_str()) {
        let mut r = reply::error(405, "method_not_allowed", "this method is not forwarded")?;
        r.headers_mut().set("allow", &proxy::ALLOWED_METHODS.join(", "))?;
        return Ok(r);
    }
    Router::with_data(Rc::new((isolate::current(&env), ctx)))
        .get("/livez", |_, _| Response::ok("ok"))
        .get_async("/healthz", healthz)
        .get_async("/token", token)
        .or_else_any_method_async("/", proxied)
        .or_else_any_method_async("/*path", proxied)
        .run(req, env)
        .await
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
