//! The proxy route: any path, any method, forwarded to `AUTOPAY_API_BASE` + the same path and
//! query with the caller's credentials replaced by the Autopay bearer token, body and answer
//! streamed. After a 401 from Autopay the token is dropped (only if it is still the cached
//! one) and the call retried once, when its body can be replayed (see [`bodies`]) — the
//! core's [`call_api`] loop.

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::spawn_local;
use worker::{Context, Method, Request, Response, Result};

use super::isolate::Isolate;
use super::reply;
use crate::js::fetch::{FetchResponse, call_fetch, read_stream_capped};
use crate::js::{resolve_api_url, set};
use crate::{ApiCall, call_api, is_forwardable_request_header};

/// Bodies up to this size are kept so a 401 can be retried; larger ones stream through once.
pub const MAX_REPLAY_BYTES: u64 = 1024 * 1024;

/// Where the call goes: base + path + query, still under the base after normalisation.
fn target(iso: &Isolate, req: &Request) -> std::result::Result<String, crate::Error> {
    // The runtime hands us a serialised WHATWG URL: the path starts at the first `/` after
    // the host, and ends at an (unsent) fragment.
    let href = req.inner().url();
    let after_scheme = href.find("://").map_or(0, |i| i + 3);
    let path = href[after_scheme..]
        .find('/')
        .map_or("/", |i| &href[after_scheme + i..]);
    let path = path.split('#').next().unwrap_or("/");
    if crate::api::smuggles_separator(path.split('?').next().unwrap_or("")) {
        return Err(crate::Error::argument(
            "the path holds an encoded dot, slash or backslash, or a `;` parameter: refused before anything is sent",
        ));
    }
    resolve_api_url(&iso.settings.api_base, path)
}

fn forwarded_headers(req: &Request) -> Result<web_sys::Headers> {
    let out = web_sys::Headers::new()?;
    for (name, value) in req.headers().entries() {
        if is_forwardable_request_header(&name) {
            out.append(&name, &value)?;
        }
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
async fn bodies(req: &mut Request) -> Result<(JsValue, Spare)> {
    if matches!(req.method(), Method::Get | Method::Head) {
        return Ok((JsValue::NULL, Spare::Ready(JsValue::NULL)));
    }
    let Some(stream) = req.inner().body() else {
        return Ok((JsValue::NULL, Spare::Ready(JsValue::NULL)));
    };
    match req
        .headers()
        .get("content-length")?
        .and_then(|l| l.parse::<u64>().ok())
    {
        Some(n) if n <= MAX_REPLAY_BYTES => {
            let bytes: JsValue = Uint8Array::from(req.bytes().await?.as_slice()).into();
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
    iso: &'a Isolate,
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

    async fn token(&mut self) -> std::result::Result<String, Failed> {
        let served = self.iso.token(self.ctx).await.map_err(Failed::Token)?;
        Ok(served.record.access_token.clone())
    }

    async fn send(&mut self, token: &str) -> std::result::Result<(FetchResponse, u16), Failed> {
        if self.sent {
            self.body = match std::mem::replace(&mut self.spare, Spare::Gone) {
                Spare::Ready(body) => body,
                _ => JsValue::NULL,
            };
        }
        self.sent = true;
        self.headers
            .set("authorization", &format!("Bearer {token}"))
            .map_err(|e| Failed::Worker(e.into()))?;
        let init = Object::new();
        set(&init, "method", &self.method.as_str().into());
        set(&init, "headers", &self.headers);
        set(&init, "body", &self.body);
        set(&init, "redirect", &"manual".into());
        call_fetch(&self.fetch, &self.url, &init.into())
            .await
            .map_err(|_| Failed::Unreachable)
    }

    async fn refused(&mut self, token: &str) -> bool {
        self.iso.refused(token).await
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

/// Proxies `req` to the Autopay API.
pub async fn proxy(mut req: Request, iso: &Isolate, ctx: &Context) -> Result<Response> {
    let url = match target(iso, &req) {
        Ok(u) => u,
        Err(e) => return reply::error(400, "invalid_request", &e.to_string()),
    };
    let headers = forwarded_headers(&req)?;
    let method = req.inner().method().to_ascii_uppercase();
    let (body, spare) = bodies(&mut req).await?;
    let fetch: Function = Reflect::get(&js_sys::global(), &"fetch".into())?.dyn_into()?;
    let mut call = Proxied {
        iso,
        ctx,
        fetch,
        url,
        method,
        headers,
        body,
        spare,
        sent: false,
    };
    let outcome = call_api(&mut call).await;
    match outcome {
        Ok(resp) => Ok(Response::from(resp.unchecked_into::<web_sys::Response>())),
        Err(Failed::Token(e)) => reply::token_failure(&e),
        Err(Failed::Unreachable) => reply::error(502, reply::UNREACHABLE.0, reply::UNREACHABLE.1),
        Err(Failed::Worker(e)) => Err(e),
    }
}
