//! Token requests through the platform's `fetch` (or the one given in the options).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::errors::{error_name, is_timeout};
use super::set;
use crate::{
    Error, MAX_RESPONSE_HEADERS, MAX_TOKEN_RESPONSE_BYTES, QUOTA_HEADERS, TokenRequest, TokenResponse,
    Transport, url_host,
};

#[wasm_bindgen]
extern "C" {
    /// Whatever a fetch function resolved to, checked to look like a `Response` by
    /// [`call_fetch`] (duck-typed, so another realm's fetch works). Every access is guarded:
    /// a getter that throws becomes an error, never an exception through the wasm.
    pub(crate) type FetchResponse;

    #[wasm_bindgen(js_namespace = AbortSignal, js_name = timeout)]
    fn abort_after(ms: f64) -> JsValue;
}

/// Calls `obj[name]()`; anything thrown (or a missing method) is the error.
fn call_method(obj: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    let method: Function = Reflect::get(obj, &JsValue::from_str(name))?.dyn_into()?;
    method.call0(obj)
}

/// Calls a fetch function with `(url, init)` and awaits the response and its status. A fetch
/// that throws, rejects, or resolves to something without a numeric `status` is an error.
pub(crate) async fn call_fetch(
    fetch: &Function,
    url: &str,
    init: &JsValue,
) -> Result<(FetchResponse, u16), JsValue> {
    let promise = fetch.call2(&JsValue::UNDEFINED, &JsValue::from_str(url), init)?;
    let resp = JsFuture::from(Promise::resolve(&promise)).await?;
    let status = if resp.is_object() {
        Reflect::get(&resp, &"status".into())?.as_f64()
    } else {
        None
    };
    match status {
        Some(s) if (0.0..1000.0).contains(&s) && s.fract() == 0.0 => Ok((resp.unchecked_into(), s as u16)),
        _ => Err(js_sys::TypeError::new("fetch resolved to something that is not a Response").into()),
    }
}

/// A response header, if the response has a `headers.get`.
pub(crate) fn header(resp: &FetchResponse, name: &str) -> Option<String> {
    let headers = Reflect::get(resp, &"headers".into()).ok()?;
    let get: Function = Reflect::get(&headers, &"get".into()).ok()?.dyn_into().ok()?;
    get.call1(&headers, &JsValue::from_str(name)).ok()?.as_string()
}

/// Every header of the answer, names lowercase (at most [`MAX_RESPONSE_HEADERS`]): by the
/// `Headers` iterator, or — for a fetch whose answer has only `headers.get` — the quota headers
/// by name.
pub(crate) fn all_headers(resp: &FetchResponse) -> Vec<(String, String)> {
    let iterated = (|| -> Option<Vec<(String, String)>> {
        let headers = Reflect::get(resp, &"headers".into()).ok()?;
        let entries: Function = Reflect::get(&headers, &"entries".into()).ok()?.dyn_into().ok()?;
        let iter = js_sys::try_iter(&entries.call0(&headers).ok()?).ok()??;
        let mut out = Vec::new();
        for pair in iter.take(MAX_RESPONSE_HEADERS) {
            let pair: js_sys::Array = pair.ok()?.dyn_into().ok()?;
            let (name, value) = (pair.get(0).as_string()?, pair.get(1).as_string()?);
            out.push((name.to_ascii_lowercase(), value));
        }
        Some(out)
    })();
    iterated.unwrap_or_else(|| {
        QUOTA_HEADERS
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), header(resp, name)?)))
            .collect()
    })
}

/// The body as text, read from its stream and never buffered past `cap` bytes: `Ok(None)` when
/// it is larger (the stream is cancelled there).
async fn read_capped(resp: &FetchResponse, cap: usize) -> Result<Option<String>, JsValue> {
    let body = Reflect::get(resp, &"body".into())?;
    if body.is_null() || body.is_undefined() {
        // no stream (an empty body, or a fetch without streams): its text, checked after
        let text = JsFuture::from(Promise::resolve(&call_method(resp, "text")?)).await?;
        let text = text.as_string().unwrap_or_default();
        return Ok((text.len() <= cap).then_some(text));
    }
    let bytes = read_stream_capped(&body, cap).await?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// A `ReadableStream`'s bytes, never buffered past `cap`: `Ok(None)` when it is longer (the
/// stream is cancelled there).
pub(crate) async fn read_stream_capped(stream: &JsValue, cap: usize) -> Result<Option<Vec<u8>>, JsValue> {
    let reader = call_method(stream, "getReader")?;
    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(Promise::resolve(&call_method(&reader, "read")?)).await?;
        if Reflect::get(&chunk, &"done".into())?.is_truthy() {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into())?;
        let Some(array) = value.dyn_ref::<Uint8Array>() else {
            return Err(js_sys::TypeError::new("the body stream gave something other than bytes").into());
        };
        if bytes.len() + array.length() as usize > cap {
            let _ = call_method(&reader, "cancel");
            return Ok(None);
        }
        bytes.extend(array.to_vec());
    }
    Ok(Some(bytes))
}

/// The platform error behind the last failed token request, for the `cause` of the
/// `network` / `timeout` error the caller gets.
pub(crate) type LastCause = Rc<RefCell<Option<JsValue>>>;

/// Sends token requests with a fetch function.
pub(crate) struct FetchTransport {
    pub(crate) fetch: Function,
    pub(crate) cause: LastCause,
}

impl FetchTransport {
    /// A transport over `fetch`, keeping its failures' causes in a fresh slot.
    pub(crate) fn new(fetch: Function) -> Self {
        Self {
            fetch,
            cause: LastCause::default(),
        }
    }
}

impl FetchTransport {
    /// One request; `Ok(None)` when the answer is larger than the cap.
    async fn send_once(
        &self,
        request: TokenRequest,
        timeout_ms: u64,
    ) -> Result<Option<TokenResponse>, JsValue> {
        let headers = Object::new();
        set(&headers, "content-type", &request.content_type.into());
        for (name, value) in &request.headers {
            set(&headers, name, &JsValue::from_str(value));
        }
        set(&headers, "accept", &"application/json".into());
        let init = Object::new();
        set(&init, "method", &TokenRequest::METHOD.into());
        set(&init, "headers", &headers);
        set(&init, "body", &JsValue::from_str(&request.body));
        // Never follow a redirect with the secret in the body; a 3xx is an invalid answer.
        set(&init, "redirect", &"manual".into());
        set(&init, "signal", &abort_after(timeout_ms as f64));
        let (resp, status) = call_fetch(&self.fetch, &request.url, &init.into()).await?;
        let retry_after = header(&resp, "retry-after");
        let headers = all_headers(&resp);
        Ok(read_capped(&resp, MAX_TOKEN_RESPONSE_BYTES)
            .await?
            .map(|body| TokenResponse {
                status,
                retry_after,
                body,
                headers,
            }))
    }
}

impl Transport for FetchTransport {
    async fn send(&self, request: TokenRequest, timeout_ms: u64) -> Result<TokenResponse, Error> {
        let host = url_host(&request.url).to_owned();
        match self.send_once(request, timeout_ms).await {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err(Error::InvalidResponse {
                status: 200,
                reason: "the answer is larger than 64 KiB".into(),
            }),
            Err(e) => {
                let err = if is_timeout(&e) {
                    Error::Timeout {
                        host,
                        after_ms: timeout_ms,
                    }
                } else {
                    Error::Network {
                        host,
                        message: error_name(&e),
                    }
                };
                *self.cause.borrow_mut() = Some(e);
                Err(err)
            }
        }
    }
}
