//! Token requests through the platform's `fetch` (or the one given in the options).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::errors::{is_timeout, js_message};
use super::set;
use crate::{Error, TokenRequest, TokenResponse, Transport, url_host};

#[wasm_bindgen]
extern "C" {
    /// Any object shaped like a fetch `Response` (duck-typed, so another realm's fetch works).
    pub(crate) type FetchResponse;
    #[wasm_bindgen(method, getter)]
    pub(crate) fn status(this: &FetchResponse) -> u16;
    #[wasm_bindgen(method, getter)]
    fn headers(this: &FetchResponse) -> FetchHeaders;
    #[wasm_bindgen(method, catch)]
    fn text(this: &FetchResponse) -> Result<Promise, JsValue>;

    type FetchHeaders;
    #[wasm_bindgen(method, catch)]
    fn get(this: &FetchHeaders, name: &str) -> Result<Option<String>, JsValue>;

    #[wasm_bindgen(js_namespace = AbortSignal, js_name = timeout)]
    fn abort_after(ms: f64) -> JsValue;
}

/// Calls a fetch function with `(url, init)` and awaits the response.
pub(crate) async fn call_fetch(
    fetch: &Function,
    url: &str,
    init: &JsValue,
) -> Result<FetchResponse, JsValue> {
    let promise = fetch.call2(&JsValue::UNDEFINED, &JsValue::from_str(url), init)?;
    let resp = JsFuture::from(Promise::resolve(&promise)).await?;
    Ok(resp.unchecked_into())
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
    async fn send_once(&self, request: TokenRequest, timeout_ms: u64) -> Result<TokenResponse, JsValue> {
        let headers = Object::new();
        set(&headers, "content-type", &TokenRequest::CONTENT_TYPE.into());
        set(&headers, "accept", &"application/json".into());
        let init = Object::new();
        set(&init, "method", &TokenRequest::METHOD.into());
        set(&init, "headers", &headers);
        set(&init, "body", &JsValue::from_str(&request.body));
        // Never follow a redirect with the secret in the body; a 3xx is an invalid answer.
        set(&init, "redirect", &"manual".into());
        set(&init, "signal", &abort_after(timeout_ms as f64));
        let resp = call_fetch(&self.fetch, &request.url, &init.into()).await?;
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").ok().flatten();
        let body = JsFuture::from(resp.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        Ok(TokenResponse {
            status,
            retry_after,
            body,
        })
    }
}

impl Transport for FetchTransport {
    async fn send(&self, request: TokenRequest, timeout_ms: u64) -> Result<TokenResponse, Error> {
        let host = url_host(&request.url).to_owned();
        self.send_once(request, timeout_ms).await.map_err(|e| {
            let err = if is_timeout(&e) {
                Error::Timeout {
                    host,
                    after_ms: timeout_ms,
                }
            } else {
                Error::Network {
                    host,
                    message: js_message(&e),
                }
            };
            *self.cause.borrow_mut() = Some(e);
            err
        })
    }
}
