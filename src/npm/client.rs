//! `WasmClient`: the exported class behind `AutopayAuth` (see `js/api.js`). It publishes the
//! lease the JS wrapper answers from, and makes `fetch` calls through [`call_api`].

use std::cell::Cell;
use std::rc::Rc;

use futures_util::future::{Either, select};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use super::errors::to_js;
use super::observe::{Logger, Watch};
use super::options::{Options, optional_function};
use super::telemetry::{Observed, Telemetry};
use crate::js::errors::error_name;
use crate::js::fetch::{FetchResponse, FetchTransport, LastCause, call_fetch, header};
use crate::js::kv::KvStore;
use crate::js::sign::{WebProver, WebSigner, learn_nonce, nonce_challenged, web_prover};
use crate::js::token_object;
use crate::js::webcrypto::WebSealer;
use crate::js::{DateClock, Ticks, jitter, resolve_api_url, set};
use crate::{
    ApiCall, ApiToken, Clock, Endpoint, Error, Parts, Refusal, Served, TokenManager, TokenRecord, call_api,
    check_within_base, present, settings,
};

type Manager = TokenManager<
    Parts<
        Observed<Endpoint<FetchTransport, DateClock, WebSigner>>,
        KvStore,
        DateClock,
        Ticks,
        WebSealer,
        Watch,
    >,
>;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = Headers)]
    type JsHeaders;
    #[wasm_bindgen(constructor, catch, js_class = "Headers")]
    fn new(init: &JsValue) -> Result<JsHeaders, JsValue>;
    #[wasm_bindgen(method, catch, js_class = "Headers")]
    fn set(this: &JsHeaders, name: &str, value: &str) -> Result<(), JsValue>;

    /// `Object.assign`, which runs the source's getters: whatever they throw is returned.
    #[wasm_bindgen(js_namespace = Object, js_name = assign, catch)]
    fn object_assign(target: &Object, source: &JsValue) -> Result<Object, JsValue>;
}

/// Redirects `auth.fetch` follows at most, each re-checked to stay under `apiBaseUrl`.
const MAX_REDIRECTS: usize = 5;

struct Shared {
    manager: Manager,
    /// The DPoP key's prover, shared with the token requests.
    prover: Option<WebProver>,
    /// `None`: the token endpoint is not Autopay's and no base was set (`fetch` refuses).
    api_base_url: Option<String>,
    fetch: Function,
    /// The platform error behind the last failed token request.
    cause: LastCause,
    /// The `waitUntil` option.
    wait_until: Option<Function>,
    /// The `telemetry.meter` given, for the observable instruments `js/api.js` registers.
    meter: JsValue,
    /// Where a `waitUntil` that throws is reported (once: `wait_until_threw`).
    logger: Option<Logger>,
    wait_until_threw: Cell<bool>,
    /// `{ until, info }`, read by the JS wrapper: while `Date.now() < until` it may answer
    /// with `info` without calling in here. Only this edge writes it.
    lease: Object,
}

fn info(r: &TokenRecord, source: &str) -> Object {
    let obj = token_object(r);
    set(&obj, "source", &source.into());
    obj
}

impl Shared {
    /// A `waitUntil` threw: logged at warn the first time, with the error's name (its message
    /// may say anything), never again for this client.
    fn wait_until_threw(&self, error: &JsValue) {
        if self.wait_until_threw.replace(true) {
            return;
        }
        if let Some(logger) = &self.logger {
            let fields = Object::new();
            set(&fields, "type", &"wait_until_error".into());
            set(&fields, "at", &JsValue::from(js_sys::Date::now()));
            set(&fields, "detail", &error_name(error).into());
            let message = "waitUntil threw; background refreshes run on without it, and may be cut short when a request ends (logged once)";
            logger.log("warn", message, &fields);
        }
    }

    fn publish(&self) {
        match self.manager.lease() {
            Some(l) => {
                set(&self.lease, "info", &info(&l.record, "memory"));
                set(&self.lease, "until", &JsValue::from(l.until_ms as f64));
            }
            None => {
                set(&self.lease, "until", &JsValue::from(0));
                set(&self.lease, "info", &JsValue::NULL);
            }
        }
    }

    /// A core error as the JS object `js/api.js` turns into an `AutopayAuthError`.
    fn error(&self, e: &Error) -> JsValue {
        to_js(e, self.cause.borrow().clone())
    }

    /// A token; a refresh it starts runs in the background, handed to `wait_until` (this call's)
    /// or else the client's `waitUntil` option, so that a platform that ends a request's work
    /// with its answer keeps it alive.
    async fn token(self: &Rc<Self>, wait_until: Option<&Function>) -> Result<Served, JsValue> {
        let lookup = self.manager.get().await.map_err(|e| self.error(&e))?;
        if let Some(refresh) = lookup.refresh {
            let me = Rc::clone(self);
            let refreshing = future_to_promise(async move {
                refresh.run().await;
                me.publish();
                Ok(JsValue::UNDEFINED)
            });
            if let Some(hand_over) = wait_until.or(self.wait_until.as_ref()) {
                // the refresh runs on either way; a waitUntil that throws is said once
                if let Err(e) = hand_over.call1(&JsValue::UNDEFINED, &refreshing) {
                    self.wait_until_threw(&e);
                }
            }
        }
        self.publish();
        Ok(lookup.served)
    }
}

/// A body can be sent twice unless it is a stream.
fn body_replayable(init: &JsValue) -> bool {
    if !init.is_object() {
        return true;
    }
    let body = Reflect::get(init, &"body".into()).unwrap_or(JsValue::UNDEFINED);
    if !body.is_object() {
        return true;
    }
    let stream = Reflect::has(&body, &"getReader".into()).unwrap_or(false)
        || Reflect::has(&body, &js_sys::Symbol::async_iterator()).unwrap_or(false);
    !stream
}

/// One `auth.fetch` call: the token wait gives way to `abort` (a promise that rejects with the
/// caller's abort reason); the API call's own failures reach the caller as the platform made
/// them (an `AbortError`, fetch's `TypeError`).
struct NpmCall {
    shared: Rc<Shared>,
    url: String,
    init: JsValue,
    abort: Option<Promise>,
    replayable: bool,
}

impl ApiCall for NpmCall {
    type Response = FetchResponse;
    type Failure = JsValue;

    async fn token(&mut self) -> Result<ApiToken, JsValue> {
        let Some(abort) = &self.abort else {
            return Ok(ApiToken::from(&*self.shared.token(None).await?.record));
        };
        // Run the wait on its own, so that a caller who gives up never cancels the token
        // request other callers share: it goes on, and its token is cached as usual.
        let shared = Rc::clone(&self.shared);
        let token = future_to_promise(async move {
            let r = &shared.token(None).await?.record;
            Ok(js_sys::Array::of2(&r.token_type.as_str().into(), &r.access_token.as_str().into()).into())
        });
        match select(JsFuture::from(token), JsFuture::from(abort.clone())).await {
            Either::Left((token, _)) => {
                let pair: js_sys::Array = token?.unchecked_into();
                Ok(ApiToken {
                    token_type: pair.get(0).as_string().unwrap_or_default(),
                    access_token: pair.get(1).as_string().unwrap_or_default(),
                })
            }
            Either::Right((aborted, _)) => Err(aborted.err().unwrap_or(JsValue::UNDEFINED)),
        }
    }

    /// Sends the call with the bearer token. Redirects are followed here, not by the platform:
    /// only while the next URL stays under `apiBaseUrl` (re-checked at every hop, at most
    /// [`MAX_REDIRECTS`]); a redirect that would leave it is handed back as it is, so the token
    /// and the body never go anywhere else. A caller who asked for `redirect: "manual"` or
    /// `"error"` gets exactly that from the platform.
    async fn send(&mut self, token: &ApiToken) -> Result<(FetchResponse, u16), JsValue> {
        let shared = Rc::clone(&self.shared);
        let user_headers = if self.init.is_object() {
            Reflect::get(&self.init, &"headers".into())?
        } else {
            JsValue::UNDEFINED
        };
        let headers = JsHeaders::new(&user_headers)
            .map_err(|e| shared.error(&Error::argument(format!("init.headers: {}", error_name(&e)))))?;
        let method = if self.init.is_object() {
            Reflect::get(&self.init, &"method".into())?.as_string()
        } else {
            None
        };
        let method = method.unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
        let presented = present(
            shared.prover.as_deref(),
            &method,
            &self.url,
            token,
            DateClock.now_ms(),
        )
        .await
        .map_err(|e| shared.error(&e))?;
        for (name, value) in presented {
            headers.set(name, &value)?;
        }
        let request_init = Object::new();
        if self.init.is_object() {
            object_assign(&request_init, &self.init)?;
        }
        set(&request_init, "headers", &headers);
        let asked = Reflect::get(&request_init, &"redirect".into())?.as_string();
        let follow = !matches!(asked.as_deref(), Some("manual" | "error"));
        if follow {
            set(&request_init, "redirect", &"manual".into());
        }
        let mut url = self.url.clone();
        let mut hops = 0;
        loop {
            let (resp, status) = call_fetch(&shared.fetch, &url, &request_init.clone().into()).await?;
            learn_nonce(shared.prover.as_ref(), &url, &resp);
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
            if !follow || !redirect || hops == MAX_REDIRECTS {
                return Ok((resp, status));
            }
            let next = header(&resp, "location")
                .and_then(|to| web_sys::Url::new_with_base(&to, &url).ok())
                .map(|u| u.href())
                .filter(|next| {
                    let base = shared.api_base_url.as_deref();
                    base.is_some_and(|base| check_within_base(base, next).is_ok())
                });
            let Some(next) = next else {
                return Ok((resp, status));
            };
            let method = Reflect::get(&request_init, &"method".into())?
                .as_string()
                .unwrap_or_else(|| "GET".into())
                .to_ascii_uppercase();
            let has_body = !Reflect::get(&request_init, &"body".into())?.is_undefined();
            if status == 303 || (matches!(status, 301 | 302) && method == "POST") {
                set(&request_init, "method", &"GET".into());
                Reflect::delete_property(&request_init, &"body".into())?;
            } else if has_body && !self.replayable {
                return Ok((resp, status));
            }
            url = next;
            hops += 1;
        }
    }

    async fn refused(&mut self, token: &str) -> bool {
        let refusal = self.shared.manager.invalidate_token(token).await;
        self.shared.publish();
        refusal != Refusal::Kept
    }

    async fn replayable(&mut self) -> bool {
        self.replayable
    }

    fn nonce_challenged(&mut self, response: &FetchResponse) -> bool {
        nonce_challenged(self.shared.prover.as_ref(), response)
    }
}

/// The wasm side of `AutopayAuth`. Not meant to be used directly: import `AutopayAuth`.
#[wasm_bindgen]
pub struct WasmClient {
    shared: Rc<Shared>,
}

#[wasm_bindgen]
impl WasmClient {
    /// The identity of `options`' configuration (its cache key), checked as the constructor checks
    /// it but without building a client: what the registry keys its clients by.
    #[wasm_bindgen(js_name = keyOf)]
    pub fn key_of(options: JsValue) -> Result<String, JsValue> {
        let o = Options::read(&options).map_err(|e| to_js(&e, None))?;
        Ok(o.config.cache_key().to_owned())
    }

    /// Validates `options`; `lease` is the object the JS wrapper reads its fast path from.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue, lease: Object) -> Result<WasmClient, JsValue> {
        let o = Options::read(&options).map_err(|e| to_js(&e, None))?;
        let transport = FetchTransport::new(o.fetch.clone());
        let cause = Rc::clone(&transport.cause);
        let telemetry = Telemetry::read(
            &o.telemetry,
            crate::config::url_host(o.config.token_url()),
            o.config.label(),
        )
        .map_err(|e| to_js(&e, None))?;
        // the option is read once, by `Telemetry::read`: its meter comes from there
        let meter = telemetry
            .as_ref()
            .and_then(|t| t.meter.clone())
            .unwrap_or(JsValue::UNDEFINED);
        let prover = web_prover(&o.config);
        let mut endpoint =
            Endpoint::new(o.config.clone(), transport, DateClock).with_signer(WebSigner::default());
        if let Some(prover) = &prover {
            endpoint = endpoint.with_prover(prover.clone());
        }
        let source = Observed {
            inner: endpoint,
            telemetry: telemetry.clone(),
        };
        let (logger, wait_until) = (o.logger, o.wait_until);
        let watch = Watch {
            telemetry,
            logger: logger.clone(),
            on_event: o.on_event,
        };
        let host = Parts::new(source, o.kv, DateClock)
            .with_notify(Ticks)
            .with_seal::<WebSealer>()
            .with_observer(watch);
        let manager = TokenManager::new(&o.config, o.policy, jitter(), host).map_err(|e| to_js(&e, None))?;
        let shared = Rc::new(Shared {
            manager,
            prover,
            api_base_url: o.api_base_url,
            fetch: o.fetch,
            cause,
            wait_until,
            logger,
            meter,
            wait_until_threw: Cell::new(false),
            lease,
        });
        shared.publish();
        Ok(WasmClient { shared })
    }

    /// `{ accessToken, tokenType, scope, expiresAt, source }`, a new object for each call;
    /// `wait_until` (a function, or `undefined`) is given a refresh this call starts.
    #[wasm_bindgen(js_name = tokenInfo)]
    pub fn token_info(&self, wait_until: JsValue) -> Promise {
        let shared = Rc::clone(&self.shared);
        let wait_until = optional_function(wait_until, "waitUntil").map_err(|e| to_js(&e, None));
        future_to_promise(async move {
            let served = shared.token(wait_until?.as_ref()).await?;
            Ok(info(&served.record, served.source.as_str()).into())
        })
    }

    /// The API refused `token`: compare-and-delete (dropped here and in the store only if it is
    /// still the token held), unless a refusal hold keeps it. Resolves to `dropped`,
    /// `not_held` or `kept`.
    pub fn refused(&self, token: JsValue) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let token = token
                .as_string()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| shared.error(&Error::argument("token must be a non-empty string")))?;
            let refusal = shared.manager.invalidate_token(&token).await;
            shared.publish();
            Ok(refusal.as_str().into())
        })
    }

    /// Forgets the token in memory and in the KV store.
    pub fn invalidate(&self) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            shared.manager.invalidate().await;
            shared.publish();
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `fetch(apiBaseUrl + path, init)` with the bearer token; after a 401, drops that token
    /// (only if still cached), gets a new one and retries once when the body can be replayed.
    /// `abort`, when given, rejects when the caller's signal aborts: the token wait stops then.
    pub fn fetch(&self, path: JsValue, init: JsValue, abort: Option<Promise>) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let path = path
                .as_string()
                .ok_or_else(|| shared.error(&Error::argument("path must be a string")))?;
            let base = shared.api_base_url.as_deref();
            let url = base
                .ok_or_else(settings::api_base_required)
                .and_then(|base| resolve_api_url(base, &path))
                .map_err(|e| shared.error(&e))?;
            let replayable = body_replayable(&init);
            let mut call = NpmCall {
                shared,
                url,
                init,
                abort,
                replayable,
            };
            Ok(call_api(&mut call).await?.into())
        })
    }

    /// The headers that authorize a `method` call to `url` with the current token, as an object
    /// (`{ authorization }`, and `{ dpop }` with a fresh proof for exactly this call when the
    /// token is DPoP-bound): for callers with an HTTP client of their own.
    pub fn authorize(&self, method: JsValue, url: JsValue) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let (Some(method), Some(url)) = (method.as_string(), url.as_string()) else {
                return Err(shared.error(&Error::argument("method and url must be strings")));
            };
            let url = web_sys::Url::new(&url)
                .map(|u| u.href())
                .map_err(|_| shared.error(&Error::argument("url must be an absolute URL")))?;
            let record = &shared.token(None).await?.record;
            let headers = present(
                shared.prover.as_deref(),
                &method.to_ascii_uppercase(),
                &url,
                &ApiToken::from(&**record),
                DateClock.now_ms(),
            )
            .await
            .map_err(|e| shared.error(&e))?;
            let out = Object::new();
            for (name, value) in headers {
                set(&out, name, &value.into());
            }
            Ok(out.into())
        })
    }

    /// Keeps the `DPoP-Nonce` a server sent with its answer to a call to `url`, for the next
    /// proofs: `true` when it is new. Without a DPoP key, `false`.
    #[wasm_bindgen(js_name = learnNonce)]
    pub fn learn_nonce(&self, url: String, nonce: Option<String>) -> bool {
        self.shared
            .prover
            .as_ref()
            .is_some_and(|p| p.learn(&url, nonce.as_deref()))
    }

    /// The client's label, or `undefined`.
    #[wasm_bindgen(getter)]
    pub fn label(&self) -> Option<String> {
        self.shared.manager.label().map(str::to_owned)
    }

    /// The store key of this client's token: its configuration's identity (never a secret).
    #[wasm_bindgen(getter, js_name = cacheKey)]
    pub fn cache_key(&self) -> String {
        self.shared.manager.cache_key().to_owned()
    }

    /// Whether `fetch` has an API base (without one it refuses before any token is got).
    #[wasm_bindgen(getter, js_name = hasApiBase)]
    pub fn has_api_base(&self) -> bool {
        self.shared.api_base_url.is_some()
    }

    /// The OpenTelemetry `Meter` of the `telemetry` option, or `undefined`.
    #[wasm_bindgen(getter)]
    pub fn meter(&self) -> JsValue {
        self.shared.meter.clone()
    }

    /// The quotas the token endpoint declared, with what each has left less what the fleet
    /// sent since: `[{ name, limit, remaining, resetAt }]` (`limit` `null` when undeclared).
    pub fn quotas(&self) -> JsValue {
        let list: Vec<serde_json::Value> = self
            .shared
            .manager
            .quotas()
            .into_iter()
            .map(|(name, limit, remaining, reset_at)| {
                serde_json::json!({ "name": name, "limit": limit, "remaining": remaining, "resetAt": reset_at })
            })
            .collect();
        let json = serde_json::to_string(&list).unwrap_or_default();
        js_sys::JSON::parse(&json).unwrap_or(JsValue::NULL)
    }

    /// The counters (see `Stats`).
    pub fn stats(&self) -> JsValue {
        let json = serde_json::to_string(&self.shared.manager.stats()).unwrap_or_default();
        js_sys::JSON::parse(&json).unwrap_or(JsValue::NULL)
    }
}
