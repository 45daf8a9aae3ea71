//! What one isolate keeps between requests: the validated settings and a token cache —
//! memory → KV (read only) → the `TokenMinter` — rebuilt only when the settings change.
//!
//! Concurrent requests that find no usable token share one KV read and one call to the Durable
//! Object (the machine lets one flight run); the others wait with [`Ticks`], each resuming from
//! a timer of its own, since requests in one isolate have separate I/O contexts.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::JsCast;
use worker::Env;

use super::minter::{MinterClient, log_event};
use super::settings::{Problem, Settings, TOKEN_MINTER, TOKENS_KV, fingerprint};
use crate::js::kv::{JsKv, KvStore};
use crate::js::webcrypto::WebSealer;
use crate::js::{DateClock, Ticks, jitter};
use crate::{EventKind, Policy, ReadOnlyStore, TokenManager};

/// The per-isolate token cache.
pub type Tokens = TokenManager<MinterClient, ReadOnlyStore<KvStore>, DateClock, Ticks, WebSealer>;

/// Settings and token cache of this isolate.
pub struct Isolate {
    pub settings: Settings,
    pub tokens: Tokens,
    pub minter: MinterClient,
}

type Fingerprint = [Option<String>; 6];

thread_local! {
    static CURRENT: RefCell<Option<(Fingerprint, Rc<Isolate>)>> = const { RefCell::new(None) };
}

/// This isolate's state for `env`, built on first use and whenever the settings change.
pub fn current(env: &Env) -> Result<Rc<Isolate>, Vec<Problem>> {
    let fp = fingerprint(env);
    let cached = CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(f, _)| *f == fp)
            .map(|(_, i)| Rc::clone(i))
    });
    if let Some(isolate) = cached {
        return Ok(isolate);
    }
    let settings = Settings::read(env)?;
    let key = settings.config.cache_key().to_owned();
    let minter = MinterClient::new(env, &key).map_err(|_| {
        vec![Problem {
            setting: TOKEN_MINTER,
            problem: "is not a Durable Object namespace".into(),
        }]
    })?;
    let kv: JsKv = Reflect::get(env, &TOKENS_KV.into())
        .map_err(|_| vec![])?
        .unchecked_into();
    let tokens = TokenManager::new(
        &settings.config,
        Policy::default(),
        jitter(),
        minter.clone(),
        Some(ReadOnlyStore(KvStore(kv))),
        DateClock,
    )
    .map_err(|e| {
        vec![Problem {
            setting: TOKEN_MINTER,
            problem: e.to_string(),
        }]
    })?;
    // the object logs mints and its own failures; an isolate, what only it sees
    tokens.set_observer(|event| {
        if !matches!(
            event.kind,
            EventKind::Mint | EventKind::Refresh | EventKind::TokenError
        ) {
            log_event(event);
        }
    });
    let isolate = Rc::new(Isolate {
        settings,
        tokens,
        minter,
    });
    CURRENT.with(|c| *c.borrow_mut() = Some((fp, Rc::clone(&isolate))));
    Ok(isolate)
}
