//! `WasmClient`: the exported class behind `AutopayAuth` (see `js/api.js`).

use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use super::errors::to_js;
use super::options::Options;
use crate::js::DateClock;
use crate::js::errors::js_message;
use crate::js::fetch::{FetchResponse, FetchTransport, call_fetch};
use crate::js::kv::KvStore;
use crate::js::normalize_url;
use crate::{
    Endpoint, Error, Served, TokenManager, TokenRecord, check_within_base, join_api_path,
    should_retry_api_call,
};

type Manager = TokenManager<Endpoint<FetchTransport, DateClock>, KvStore, DateClock>;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = Headers)]
    type JsHeaders;
    #[wasm_bindgen(constructor, catch, js_class = "Headers")]
    fn new(init: &JsValue) -> Result<JsHeaders, JsValue>;
    #[wasm_bindgen(method, js_class = "Headers")]
    fn set(this: &JsHeaders, name: &str, value: &str);
    #[wasm_bindgen(method, js_class = "Headers", js_name = delete)]
    fn remove(this: &JsHeaders, name: &str);
}

struct Shared {
    manager: Manager,
    api_base_url: String,
    fetch: Function,
    /// `{ until, info }`, read by the JS wrapper: while `Date.now() < until` it may answer
    /// with `info` without calling in here. Only this edge writes it.
    lease: Object,
}

fn set(obj: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

fn info(r: &TokenRecord, source: &str) -> Object {
    let obj = Object::new();
    set(&obj, "accessToken", &r.access_token.as_str().into());
    set(&obj, "tokenType", &r.token_type.as_str().into());
    set(
        &obj,
        "scope",
        &r.scope.as_deref().map_or(JsValue::NULL, JsValue::from_str),
    );
    set(&obj, "expiresAt", &JsValue::from(r.expires_at_ms as f64));
    set(&obj, "source", &source.into());
    obj
}

impl Shared {
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

    async fn token(self: &Rc<Self>) -> Result<Served, Error> {
        let lookup = self.manager.get().await?;
        if let Some(refresh) = lookup.refresh {
            let me = Rc::clone(self);
            spawn_local(async move {
                refresh.await;
                me.publish();
            });
        }
        self.publish();
        Ok(lookup.served)
    }

    fn resolve(&self, path: &str) -> Result<String, Error> {
        let joined = join_api_path(&self.api_base_url, path)?;
        let href = normalize_url(&joined).ok_or_else(|| Error::InvalidArgument {
            reason: "path does not make a valid URL".into(),
        })?;
        check_within_base(&self.api_base_url, &href)?;
        Ok(href)
    }

    async fn call_api(&self, url: &str, init: &JsValue, token: &str) -> Result<FetchResponse, Error> {
        let network = |e: JsValue| Error::Network {
            message: js_message(&e),
        };
        let user_headers = if init.is_object() {
            Reflect::get(init, &"headers".into()).unwrap_or(JsValue::UNDEFINED)
        } else {
            JsValue::UNDEFINED
        };
        let headers = JsHeaders::new(&user_headers).map_err(|e| Error::InvalidArgument {
            reason: format!("init.headers: {}", js_message(&e)),
        })?;
        headers.set("authorization", &format!("Bearer {token}"));
        let request_init = Object::new();
        if init.is_object() {
            Object::assign(&request_init, init.unchecked_ref());
        }
        set(&request_init, "headers", &headers);
        call_fetch(&self.fetch, url, &request_init.into())
            .await
            .map_err(network)
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

/// The wasm side of `AutopayAuth`. Not meant to be used directly: import `AutopayAuth`.
#[wasm_bindgen]
pub struct WasmClient {
    shared: Rc<Shared>,
}

#[wasm_bindgen]
impl WasmClient {
    /// Validates `options`; `lease` is the object the JS wrapper reads its fast path from.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue, lease: Object) -> Result<WasmClient, JsValue> {
        let o = Options::read(&options).map_err(|e| to_js(&e))?;
        let transport = FetchTransport {
            fetch: o.fetch.clone(),
        };
        let jitter = js_sys::Math::random() * 2.0 - 1.0;
        let key = o.config.cache_key().to_owned();
        let source = Endpoint::new(o.config, transport, DateClock);
        let manager = TokenManager::new(key, o.policy, jitter, source, o.kv.map(KvStore), DateClock)
            .map_err(|e| to_js(&e))?;
        let shared = Rc::new(Shared {
            manager,
            api_base_url: o.api_base_url,
            fetch: o.fetch,
            lease,
        });
        shared.publish();
        Ok(WasmClient { shared })
    }

    /// `{ accessToken, tokenType, scope, expiresAt, source }`.
    #[wasm_bindgen(js_name = tokenInfo)]
    pub fn token_info(&self) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let served = shared.token().await.map_err(|e| to_js(&e))?;
            Ok(info(&served.record, served.source.as_str()).into())
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
    pub fn fetch(&self, path: JsValue, init: JsValue) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let path = path.as_string().ok_or_else(|| {
                to_js(&Error::InvalidArgument {
                    reason: "path must be a string".into(),
                })
            })?;
            let url = shared.resolve(&path).map_err(|e| to_js(&e))?;
            let replayable = body_replayable(&init);
            let mut attempt = 0;
            loop {
                let served = shared.token().await.map_err(|e| to_js(&e))?;
                let token = &served.record.access_token;
                let resp = shared.call_api(&url, &init, token).await.map_err(|e| to_js(&e))?;
                let status = resp.status();
                if status == crate::API_UNAUTHORIZED {
                    shared.manager.invalidate_token(token).await;
                    shared.publish();
                }
                if !should_retry_api_call(status, attempt, replayable) {
                    return Ok(resp.into());
                }
                attempt += 1;
            }
        })
    }

    /// The counters (see `Stats`).
    pub fn stats(&self) -> JsValue {
        let json = serde_json::to_string(&self.shared.manager.stats()).unwrap_or_default();
        js_sys::JSON::parse(&json).unwrap_or(JsValue::NULL)
    }
}
