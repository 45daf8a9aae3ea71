//! The Cloudflare Worker edge: a token service and Autopay proxy in front of Autopay, so that
//! callers never hold Autopay credentials and never mint tokens.
//!
//! Routes: `GET /healthz` (no key), `GET /token` (caller key), anything else proxied (caller
//! key). Hot path: this isolate's memory → `AUTOPAY_TOKENS` KV → the `TokenMinter` Durable
//! Object, the only code that calls the token endpoint. A cron refreshes ahead.

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

type Data = Rc<(Rc<Isolate>, Context)>;

#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'a str,
    scope: Option<&'a str>,
    /// Seconds the token has left (not its original lifetime).
    expires_in: u64,
}

async fn token(req: Request, rc: RouteContext<Data>) -> Result<Response> {
    let (iso, ctx) = &*rc.data;
    if !iso
        .settings
        .caller_keys
        .admits(req.headers().get("authorization")?.as_deref())
    {
        return reply::unauthorized();
    }
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
    let (iso, ctx) = &*rc.data;
    if !iso
        .settings
        .caller_keys
        .admits(req.headers().get("authorization")?.as_deref())
    {
        return reply::unauthorized();
    }
    proxy::proxy(req, iso, ctx).await
}

async fn healthz(_req: Request, rc: RouteContext<Data>) -> Result<Response> {
    let (iso, _) = &*rc.data;
    let peek = iso.tokens.peek().await;
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
        }),
    )
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let iso = match isolate::current(&env) {
        Ok(iso) => iso,
        Err(problems) => return reply::misconfigured(&problems),
    };
    Router::with_data(Rc::new((iso, ctx)))
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
            Err(e) => worker::console_error!("autopay-auth cron refresh failed: {e}"),
        },
        Err(problems) => {
            let names: Vec<_> = problems.iter().map(|p| p.setting).collect();
            worker::console_error!("autopay-auth cron: misconfigured settings {names:?}");
        }
    }
}
