//! What one isolate keeps between requests: the validated settings and a token cache —
//! memory → KV (read only) → the `TokenMinter` — rebuilt only when the settings change.
//!
//! Requests in one isolate have separate I/O contexts and must not wait on each other's I/O,
//! so the cache does not share in-flight calls between them; single-flight happens in the
//! Durable Object, and a background refresh still starts only once per isolate.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::JsCast;
use worker::Env;

use super::minter::MinterClient;
use super::settings::{Problem, Settings, TOKEN_MINTER, TOKENS_KV, fingerprint};
use crate::js::DateClock;
use crate::js::kv::{JsKv, KvStore};
use crate::{Policy, ReadOnlyStore, TokenManager};

/// The per-isolate token cache.
pub type Tokens = TokenManager<MinterClient, ReadOnlyStore<KvStore>, DateClock>;

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
    let jitter = js_sys::Math::random() * 2.0 - 1.0;
    let tokens = TokenManager::new(
        key,
        Policy::default(),
        jitter,
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
    tokens.set_share_flights(false);
    let isolate = Rc::new(Isolate {
        settings,
        tokens,
        minter,
    });
    CURRENT.with(|c| *c.borrow_mut() = Some((fp, Rc::clone(&isolate))));
    Ok(isolate)
}
