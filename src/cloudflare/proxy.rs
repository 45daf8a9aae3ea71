//! The proxy route: any path, any method, forwarded to `AUTOPAY_API_BASE` + the same path and
//! query with the caller's credentials replaced by the Autopay bearer token, body and answer
//! streamed. After a 401 from Autopay the token is dropped (only if it is still the cached
//! one) and the call retried once, when its body can be replayed (see [`bodies`]) — the
//! core's [`call_api`] loop.

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{JsFuture, spawn_local};
use worker::{Context, Response, Result};

use super::isolate::Desk;
use super::reply;
use crate::js::DateClock;
use crate::js::fetch::{FetchResponse, call_fetch, read_stream_capped};
use crate::js::set;
use crate::js::sign::{learn_nonce, nonce_challenged};
use crate::{
    API_UNAUTHORIZED, ApiCall, ApiToken, Clock, authorize, call_api, check_within_base,
    is_forwardable_request_header, join_api_path, present, should_retry_api_call,
};

/// Bodies up to this size are kept so a 401 can be retried; larger ones stream through once.
pub const MAX_REPLAY_BYTES: u64 = 1024 * 1024;

/// Where the call goes: base + path + query, still under the base. The runtime hands us a
/// serialised WHATWG URL, already normalised (no dot segments; `%2e` and friends are refused
/// here), so the join needs no second parse: the path starts at the first `/` after the host
/// and ends at an (unsent) fragment.
fn target(desk: &Desk, req: &web_sys::Request, prefix: &str) -> std::result::Result<String, crate::Error> {
    target_of(desk, &req.url(), prefix)
}

/// [`target`] of the request's serialised URL, `href`.
fn target_of(desk: &Desk, href: &str, prefix: &str) -> std::result::Result<String, crate::Error> {
    let after_scheme = href.find("://").map_or(0, |i| i + 3);
    let path = href[after_scheme..]
        .find('/')
        .map_or("/", |i| &href[after_scheme + i..]);
    let path = path.split('#').next().unwrap_or("/");
    // a tenant's calls come as `/t/<tenant>/…`: what follows goes under its base
    let path = path
        .strip_prefix(prefix)
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| crate::Error::argument("the path is not under this tenant"))?;
    if crate::api::smuggles_separator(path.split('?').next().unwrap_or("")) {
        return Err(crate::Error::argument(
            "the path holds an encoded dot, slash or backslash, or a `;` parameter: refused before anything is sent",
        ));
    }
    let base = &desk.api_base;
    let joined = join_api_path(base, path)?;
    check_within_base(base, &joined)?;
    Ok(joined)
}

/// The request's headers without those a proxy must not pass on: copied by the platform, then
/// the unforwarded ones deleted — only the names cross into Rust, never the values.
fn forwarded_headers(req: &web_sys::Request) -> Result<web_sys::Headers> {
    let out = web_sys::Headers::new_with_headers(&req.headers())?;
    let keys: js_sys::Function = Reflect::get(&out, &"keys".into())?.dyn_into()?;
    let names = js_sys::try_iter(&keys.call0(&out)?)?.into_iter().flatten();
    // collected first: deleting while iterating would skip names
    let refused: Vec<String> = names
        .filter_map(|name| name.ok()?.as_string())
        .filter(|name| !is_forwardable_request_header(name))
        .collect();
    for name in refused {
        out.delete(&name)?;
    }
    Ok(out)
}

/// The copy of the body for the one retry after a 401.
enum Spare {
    /// The body cannot be sent again: streamed once, no retry.
    Gone,
    /// Ready to send again (bytes, or nothing for a bodiless request).
    Ready(JsValue),
    /// A body of unknown length: its `tee()`d spare branch is being read, up to
    /// [`MAX_REPLAY_BYTES`]; past that it is cancelled and the call is not retried.
    Reading(Shared<LocalBoxFuture<'static, Option<JsValue>>>),
}

/// The body for the first attempt, and its spare for the one retry: no body; a body of known
/// length up to [`MAX_REPLAY_BYTES`] (buffered); a body of unknown length (`tee()`d, the spare
/// branch read alongside into at most [`MAX_REPLAY_BYTES`] — never buffered whole). A larger
/// declared body streams through once.
async fn bodies(req: &web_sys::Request, method: &str) -> Result<(JsValue, Spare)> {
    if matches!(method, "GET" | "HEAD") {
        return Ok((JsValue::NULL, Spare::Ready(JsValue::NULL)));
    }
    let Some(stream) = req.body() else {
        return Ok((JsValue::NULL, Spare::Ready(JsValue::NULL)));
    };
    match req
        .headers()
        .get("content-length")?
        .and_then(|l| l.parse::<u64>().ok())
    {
        Some(n) if n <= MAX_REPLAY_BYTES => {
            let buffer = JsFuture::from(req.array_buffer()?).await?;
            let bytes: JsValue = Uint8Array::new(&buffer).into();
            Ok((bytes.clone(), Spare::Ready(bytes)))
        }
        Some(_) => Ok((stream.into(), Spare::Gone)),
        None => {
            let branches = stream.tee();
            let spare_branch = branches.get(1);
            let spare = async move {
                let bytes = read_stream_capped(&spare_branch, MAX_REPLAY_BYTES as usize).await;
                bytes
                    .ok()
                    .flatten()
                    .map(|b| Uint8Array::from(b.as_slice()).into())
            }
            .boxed_local()
            .shared();
            spawn_local(spare.clone().map(drop));
            Ok((branches.get(0), Spare::Reading(spare)))
        }
    }
}

/// Methods the proxy forwards. The runtime maps any other to GET, so they are refused (405)
/// before that can happen.
pub const ALLOWED_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Why a proxied call ended without the API's answer.
enum Failed {
    /// No token could be had.
    Token(crate::Error),
    /// The Autopay API could not be reached.
    Unreachable,
    /// The platform failed.
    Worker(worker::Error),
}

/// One proxied call: the first attempt sends `body`, a retry sends `spare`.
struct Proxied<'a> {
    desk: &'a Desk,
    ctx: &'a Context,
    fetch: Function,
    url: String,
    method: String,
    headers: web_sys::Headers,
    body: JsValue,
    spare: Spare,
    sent: bool,
}

impl ApiCall for Proxied<'_> {
    type Response = FetchResponse;
    type Failure = Failed;

    async fn token(&mut self) -> std::result::Result<ApiToken, Failed> {
        let served = self.desk.token(self.ctx).await.map_err(Failed::Token)?;
        Ok(ApiToken::from(&*served.record))
    }

    async fn send(&mut self, token: &ApiToken) -> std::result::Result<(FetchResponse, u16), Failed> {
        if self.sent {
            self.body = match std::mem::replace(&mut self.spare, Spare::Gone) {
                Spare::Ready(body) => body,
                _ => JsValue::NULL,
            };
        }
        self.sent = true;
        let presented = present(
            self.desk.prover.as_deref(),
            &self.method,
            &self.url,
            token,
            DateClock.now_ms(),
        )
        .await
        .map_err(Failed::Token)?;
        for (name, value) in presented {
            self.headers
                .set(name, &value)
                .map_err(|e| Failed::Worker(e.into()))?;
        }
        let init = Object::new();
        set(&init, "method", &self.method.as_str().into());
        set(&init, "headers", &self.headers);
        set(&init, "body", &self.body);
        set(&init, "redirect", &"manual".into());
        let (resp, status) = call_fetch(&self.fetch, &self.url, &init.into())
            .await
            .map_err(|_| Failed::Unreachable)?;
        learn_nonce(self.desk.prover.as_ref(), &self.url, &resp);
        Ok((resp, status))
    }

    fn nonce_challenged(&mut self, response: &FetchResponse) -> bool {
        nonce_challenged(self.desk.prover.as_ref(), response)
    }

    async fn refused(&mut self, token: &str) -> bool {
        self.desk.refused(token).await
    }

    async fn replayable(&mut self) -> bool {
        if let Spare::Reading(reading) = &self.spare {
            self.spare = match reading.clone().await {
                Some(bytes) => Spare::Ready(bytes),
                None => Spare::Gone,
            };
        }
        matches!(self.spare, Spare::Ready(_))
    }
}

/// What a proxied call answers: the API's own response as it came, or the Worker's reply.
pub enum Answer {
    /// The API's response, untouched.
    Upstream(web_sys::Response),
    /// The Worker's answer (a refused path, no token, the API unreachable).
    Reply(Response),
}

/// Proxies `req` (the platform's request, for the Rust route) to the Autopay API: the path
/// joined under the base (or refused), the headers filtered, the token injected, and after a
/// 401 the one retry.
pub async fn proxy(req: &web_sys::Request, desk: &Desk, prefix: &str, ctx: &Context) -> Result<Response> {
    let answer = match Proxied::new(req, desk, prefix, ctx).await? {
        Ok(mut call) => finish(call_api(&mut call).await)?,
        Err(refused) => refused,
    };
    Ok(match answer {
        Answer::Upstream(resp) => Response::from(resp),
        Answer::Reply(reply) => reply,
    })
}

/// The front's call got a 401 with `token`: the core drops the token (unless it keeps it),
/// and — when another token may help — the call is made once more, with a new token. `None`:
/// no retry, the API's 401 stands.
pub async fn retry_refused(
    req: &web_sys::Request,
    desk: &Desk,
    prefix: &str,
    ctx: &Context,
    token: &str,
) -> Result<Option<Answer>> {
    let mut call = match Proxied::new(req, desk, prefix, ctx).await? {
        Ok(call) => call,
        Err(refused) => return Ok(Some(refused)),
    };
    let retry =
        call.refused(token).await && should_retry_api_call(API_UNAUTHORIZED, 0, call.replayable().await);
    if !retry {
        return Ok(None);
    }
    let once = async {
        let token = call.token().await?;
        Ok(call.send(&token).await?.0)
    };
    finish(once.await).map(Some)
}

/// A bodiless call the front admitted, planned for its own `fetch` (so the hot path never waits
/// on wasm), as one string — one crossing out, one string decoded, where building the request's
/// objects from here cost a crossing and a string each (about 40 µs of CPU per call in
/// workerd): the URL (the path of `href` joined under the base and checked), a line with the
/// names among `names` (the request's header names, space-separated) that must not be
/// forwarded, space-separated, then a `name:value` line per header that presents `token` (of
/// `token_type`). Header names hold no space, colon or line break, and the URL and values no
/// line break.
/// `None` when the path is refused or the token cannot be presented (the Rust `fetch` then
/// answers).
pub fn plan(
    desk: &Desk,
    href: &str,
    method: &str,
    names: &str,
    token_type: &str,
    token: &str,
) -> Option<String> {
    // a bound token goes through the Rust route: a DPoP proof is signed there, and a
    // certificate-bound token only ever travels through the tenant's certificate binding
    if desk.prover.is_some() || desk.config_bound_by_certificate {
        return None;
    }
    let url = target_of(desk, href, "").ok()?;
    let present = authorize(method, &url, token_type, token, None).ok()?;
    let refused: Vec<&str> = names
        .split(' ')
        .filter(|n| !n.is_empty() && !is_forwardable_request_header(n))
        .collect();
    let mut plan = url;
    plan.push('\n');
    plan.push_str(&refused.join(" "));
    for (name, value) in present {
        plan.push('\n');
        plan.push_str(name);
        plan.push(':');
        plan.push_str(&value);
    }
    Some(plan)
}

impl<'a> Proxied<'a> {
    /// The call for `req`, or the answer that refuses its path.
    async fn new(
        req: &web_sys::Request,
        desk: &'a Desk,
        prefix: &str,
        ctx: &'a Context,
    ) -> Result<std::result::Result<Self, Answer>> {
        let url = match target(desk, req, prefix) {
            Ok(u) => u,
            Err(e) => {
                return reply::error(400, "invalid_request", &e.to_string()).map(|r| Err(Answer::Reply(r)));
            }
        };
        let headers = forwarded_headers(req)?;
        let method = req.method().to_ascii_uppercase();
        let (body, spare) = bodies(req, &method).await?;
        let fetch = desk.fetch.clone();
        Ok(Ok(Self {
            desk,
            ctx,
            fetch,
            url,
            method,
            headers,
            body,
            spare,
            sent: false,
        }))
    }
}

/// The answer for a call's outcome.
fn finish(outcome: std::result::Result<FetchResponse, Failed>) -> Result<Answer> {
    match outcome {
        Ok(resp) => Ok(Answer::Upstream(resp.unchecked_into())),
        Err(Failed::Token(e)) => reply::token_failure(&e).map(Answer::Reply),
        Err(Failed::Unreachable) => {
            reply::error(502, reply::UNREACHABLE.0, reply::UNREACHABLE.1).map(Answer::Reply)
        }
        Err(Failed::Worker(e)) => Err(e),
    }
}
