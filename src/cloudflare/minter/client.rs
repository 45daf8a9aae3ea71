//! The isolates' side of the minter: a [`TokenSource`] that asks the tenant's object.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{Env, ObjectNamespace, Result};

use super::super::settings::TOKEN_MINTER;
use super::wire::{Envelope, MinterRequest, ORIGIN};
use crate::{Error, ErrorReport, TokenRecord, TokenSource};

/// The host named in errors about reaching the object.
const MINTER_HOST: &str = "TokenMinter (Durable Object)";

/// The isolates' way to the minting authority of one tenant and cache key.
#[derive(Clone)]
pub struct MinterClient {
    namespace: Rc<ObjectNamespace>,
    tenant: Option<Rc<str>>,
    name: String,
    /// Calls made to the object.
    calls: Rc<Cell<u64>>,
}

impl MinterClient {
    /// The client for the object that owns `cache_key`, serving `tenant`.
    pub fn new(env: &Env, tenant: Option<&str>, cache_key: &str) -> Result<Self> {
        Ok(Self {
            namespace: Rc::new(env.durable_object(TOKEN_MINTER)?),
            tenant: tenant.map(Rc::from),
            name: cache_key.to_owned(),
            calls: Rc::default(),
        })
    }

    /// Calls made to the object through this client (and its clones).
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// One call to the object: its status and body. Through the platform's own stub (`idFromName`,
    /// `get`, `fetch`), not workers-rs' request and response types, whose conversions weighed
    /// 13 KB of wasm for this one call.
    async fn call(&self, ask: &MinterRequest) -> Result<(u16, String)> {
        self.calls.set(self.calls.get() + 1);
        let namespace: &JsValue = (*self.namespace).as_ref();
        let method = |obj: &JsValue, name: &str| -> Result<Function> {
            Ok(Reflect::get(obj, &name.into())?.dyn_into::<Function>()?)
        };
        let id = method(namespace, "idFromName")?.call1(namespace, &JsValue::from_str(&self.name))?;
        let stub = method(namespace, "get")?.call1(namespace, &id)?;
        let body = serde_json::to_string(&Envelope {
            tenant: self.tenant.as_deref(),
            key: &self.name,
            ask,
        })?;
        let init = js_sys::Object::new();
        crate::js::set(&init, "method", &"POST".into());
        crate::js::set(&init, "body", &JsValue::from_str(&body));
        let url = JsValue::from_str(ORIGIN);
        let answer = method(&stub, "fetch")?.call2(&stub, &url, &init)?;
        let response: web_sys::Response = JsFuture::from(js_sys::Promise::resolve(&answer))
            .await?
            .dyn_into()?;
        let text = JsFuture::from(response.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        Ok((response.status(), text))
    }

    /// Drops `token` at the authority if it is still its token (compare-and-delete, KV too):
    /// what the authority did with it.
    pub async fn invalidate(&self, token: &str) -> Result<crate::Refusal> {
        let token = token.to_owned();
        let (_, text) = self.call(&MinterRequest::Invalidate { token }).await?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        Ok(match v.get("result").and_then(serde_json::Value::as_str) {
            Some("dropped") => crate::Refusal::Dropped,
            Some("kept") => crate::Refusal::Kept,
            Some("not_held") => crate::Refusal::NotHeld,
            _ => {
                return Err(worker::Error::RustError(
                    "the minter's answer has no result".into(),
                ));
            }
        })
    }

    /// The operator's lever: the authority drops whatever token it holds. Whether it held one.
    pub async fn drop_token(&self) -> Result<bool> {
        let (_, text) = self.call(&MinterRequest::Drop).await?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        Ok(v.get("dropped").and_then(serde_json::Value::as_bool) == Some(true))
    }

    /// The object's mint ledger and counters: its JSON, as it came.
    pub async fn ledger(&self) -> Result<String> {
        match self.call(&MinterRequest::Ledger).await? {
            (200, text) => Ok(text),
            (status, _) => Err(worker::Error::RustError(format!("the minter answered {status}"))),
        }
    }

    /// The cron's refresh-ahead; returns the object's report.
    pub async fn refresh(&self) -> Result<String> {
        Ok(self.call(&MinterRequest::Refresh).await?.1)
    }
}

impl TokenSource for MinterClient {
    async fn mint(
        &self,
        replacing: Option<&str>,
        _timeout_ms: u64,
    ) -> std::result::Result<TokenRecord, Error> {
        let network = |_: worker::Error| Error::Network {
            host: MINTER_HOST.into(),
            message: "the Durable Object did not answer".into(),
        };
        let ask = MinterRequest::Token {
            replacing: replacing.map(str::to_owned),
        };
        let (status, text) = self.call(&ask).await.map_err(network)?;
        let unreadable = |what: &str| Error::InvalidResponse {
            status,
            reason: format!("the token minter answered with {what}"),
        };
        if status == 200 {
            return TokenRecord::decode(&text).ok_or_else(|| unreadable("an unreadable record"));
        }
        let report = ErrorReport::decode(&text).ok_or_else(|| unreadable("no error report"))?;
        Err(Error::try_from(report).unwrap_or_else(|_| unreadable("an unknown error")))
    }
}
