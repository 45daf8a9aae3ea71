//! The proxy route: any path, any method, forwarded to `AUTOPAY_API_BASE` + the same path and
//! query with the caller's credentials replaced by the Autopay bearer token, body and answer
//! streamed. After a 401 from Autopay the token is dropped (only if it is still the cached
//! one) and the call retried once, when its body can be replayed (see [`bodies`]).

use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use worker::{Context, Method, Request, Response, Result};

use super::isolate::Isolate;
use super::reply;
use crate::js::fetch::call_fetch;
use crate::js::normalize_url;
use crate::{
    API_UNAUTHORIZED, check_within_base, is_forwardable_request_header, join_api_path, should_retry_api_call,
};

/// Bodies up to this size (by `Content-Length`) are buffered so a 401 can be retried; larger or
/// unsized bodies stream through once.
pub const MAX_REPLAY_BYTES: u64 = 1024 * 1024;

fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

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
    let joined = join_api_path(&iso.settings.api_base, path)?;
    let href = normalize_url(&joined).ok_or_else(|| crate::Error::InvalidArgument {
        reason: "the path does not make a valid URL".into(),
    })?;
    check_within_base(&iso.settings.api_base, &href)?;
    Ok(href)
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

/// The body for the first attempt, and a copy for the one retry when it can be replayed: no
/// body; a body of known length up to [`MAX_REPLAY_BYTES`] (buffered); a body of unknown length
/// (`tee()`d: the spare branch is kept only until the first answer). A larger declared body
/// streams through once.
async fn bodies(req: &mut Request) -> Result<(JsValue, Option<JsValue>)> {
    if matches!(req.method(), Method::Get | Method::Head) {
        return Ok((JsValue::NULL, Some(JsValue::NULL)));
    }
    let Some(stream) = req.inner().body() else {
        return Ok((JsValue::NULL, Some(JsValue::NULL)));
    };
    match req
        .headers()
        .get("content-length")?
        .and_then(|l| l.parse::<u64>().ok())
    {
        Some(n) if n <= MAX_REPLAY_BYTES => {
            let bytes: JsValue = Uint8Array::from(req.bytes().await?.as_slice()).into();
            Ok((bytes.clone(), Some(bytes)))
        }
        Some(_) => Ok((stream.into(), None)),
        None => {
            let branches = stream.tee();
            Ok((branches.get(0), Some(branches.get(1))))
        }
    }
}

fn discard(spare: Option<JsValue>) {
    if let Some(stream) = spare.and_then(|s| s.dyn_into::<web_sys::ReadableStream>().ok()) {
        let _ = stream.cancel();
    }
}

/// Proxies `req` to the Autopay API.
pub async fn proxy(mut req: Request, iso: &Isolate, ctx: &Context) -> Result<Response> {
    let url = match target(iso, &req) {
        Ok(u) => u,
        Err(e) => return reply::error(400, "invalid_request", &e.to_string()),
    };
    let headers = forwarded_headers(&req)?;
    let method = req.method().to_string();
    let (mut body, mut spare) = bodies(&mut req).await?;
    let fetch: Function = Reflect::get(&js_sys::global(), &"fetch".into())?.dyn_into()?;
    let mut attempt = 0;
    loop {
        let lookup = match iso.tokens.get().await {
            Ok(l) => l,
            Err(e) => {
                discard(spare);
                return reply::token_failure(&e);
            }
        };
        if let Some(refresh) = lookup.refresh {
            ctx.wait_until(refresh);
        }
        let token = lookup.served.record.access_token.clone();
        headers.set("authorization", &format!("Bearer {token}"))?;
        let init = Object::new();
        set(&init, "method", &method.as_str().into());
        set(&init, "headers", &headers);
        set(&init, "body", &body);
        set(&init, "redirect", &"manual".into());
        let resp = match call_fetch(&fetch, &url, &init.into()).await {
            Ok(r) => r,
            Err(_) => {
                return reply::error(
                    502,
                    "upstream_unreachable",
                    "the Autopay API could not be reached",
                );
            }
        };
        let status = resp.status();
        if status == API_UNAUTHORIZED {
            iso.tokens.invalidate_token(&token).await;
            if let Err(e) = iso.minter.invalidate(&token).await {
                worker::console_warn!("autopay-auth: could not drop a refused token at the minter: {e}");
            }
        }
        if !should_retry_api_call(status, attempt, spare.is_some()) {
            discard(spare);
            return Ok(Response::from(resp.unchecked_into::<web_sys::Response>()));
        }
        body = spare.take().unwrap_or(JsValue::NULL);
        attempt += 1;
    }
}
