//! What one isolate keeps between requests: the validated settings and a token cache —
//! memory → KV (read only) → the `TokenMinter` — rebuilt only when the settings change.
//!
//! Concurrent requests that find no usable token share one KV read and one call to the Durable
//! Object (the machine lets one flight run); the others wait with [`Ticks`], each resuming from
//! a timer of its own, since requests in one isolate have separate I/O contexts.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::JsCast;
use worker::Env;

use super::minter::{MinterClient, log_event};
use super::settings::{Fingerprint, Problem, Settings, TOKEN_MINTER, TOKENS_KV, fingerprint};
use crate::js::kv::{JsKv, KvStore};
use crate::js::webcrypto::WebSealer;
use crate::js::{DateClock, Ticks, jitter};
use crate::{
    Error, Event, EventKind, Parts, Policy, ReadOnlyStore, Refusal, Served, Store, StoreError, TokenManager,
};

/// The per-isolate token cache.
pub type Tokens =
    TokenManager<Parts<MinterClient, ReadOnlyStore<CountedKv>, DateClock, Ticks, WebSealer, fn(&Event)>>;

/// `AUTOPAY_TOKENS` with its reads counted (the isolate reads it; the minter writes it).
pub struct CountedKv {
    kv: KvStore,
    reads: Rc<Cell<u64>>,
}

impl Store for CountedKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.reads.set(self.reads.get() + 1);
        self.kv.get(key).await
    }
    fn put(&self, key: &str, value: &str, ttl_secs: u64) -> impl Future<Output = Result<(), StoreError>> {
        self.kv.put(key, value, ttl_secs)
    }
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> {
        self.kv.delete(key)
    }
}

/// Settings and token cache of this isolate.
pub struct Isolate {
    pub settings: Settings,
    pub tokens: Tokens,
    pub minter: MinterClient,
    /// KV reads of this isolate's token cache.
    pub kv_reads: Rc<Cell<u64>>,
}

impl Isolate {
    /// A token; a background refresh it starts is handed to `ctx.waitUntil` (the one hand-off
    /// of the Worker's routes), so it outlives the request.
    pub async fn token(&self, ctx: &worker::Context) -> Result<Served, Error> {
        let lookup = self.tokens.get().await?;
        if let Some(refresh) = lookup.refresh {
            ctx.wait_until(refresh.run());
        }
        Ok(lookup.served)
    }

    /// The API refused `token`: drops it here and at the minter, unless the machine keeps it
    /// (see [`Refusal`]). Whether the call may be retried with another token.
    pub async fn refused(&self, token: &str) -> bool {
        self.report_refused(token).await != Refusal::Kept
    }

    /// The API refused `token` (a proxied call's 401, or a `/token` caller's report): dropped
    /// here and, by compare-and-delete, at the minter — unless a refusal hold keeps it. What
    /// the minter did (this isolate's own answer when the minter cannot be asked).
    pub async fn report_refused(&self, token: &str) -> Refusal {
        let here = self.tokens.invalidate_token(token).await;
        if here == Refusal::Kept {
            return here;
        }
        super::front::forget_lease(token);
        match self.minter.invalidate(token).await {
            Ok(there) => there,
            Err(_) => {
                worker::console_warn!("autopay-auth: could not drop a refused token at the minter");
                here
            }
        }
    }

    /// The operator's lever: the minter drops the token it holds (so every isolate's next
    /// lookup past its lease gets a new one), and this isolate forgets its own.
    pub async fn drop_token(&self) -> Result<bool, ()> {
        let held = self.minter.drop_token().await.map_err(drop)?;
        super::front::forget_any_lease();
        self.tokens.invalidate().await;
        Ok(held)
    }
}

/// The object logs mints and its own failures; an isolate, what only it sees.
fn isolate_log(event: &Event) {
    if !matches!(
        event.kind,
        EventKind::Mint | EventKind::Refresh | EventKind::TokenError
    ) {
        log_event(event);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<(Fingerprint, Rc<Isolate>)>> = const { RefCell::new(None) };
}

/// This isolate's state as last built, without reading `env` again: for the front's hot path,
/// which reads its settings once per isolate too.
pub fn cached() -> Option<Rc<Isolate>> {
    CURRENT.with(|c| c.borrow().as_ref().map(|(_, i)| Rc::clone(i)))
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
    let kv_reads = Rc::default();
    let store = ReadOnlyStore(CountedKv {
        kv: KvStore::workers(kv),
        reads: Rc::clone(&kv_reads),
    });
    let host = Parts::new(minter.clone(), Some(store), DateClock)
        .with_notify(Ticks)
        .with_seal::<WebSealer>()
        .with_observer(isolate_log as fn(&Event));
    let tokens = TokenManager::new(&settings.config, Policy::default(), jitter(), host).map_err(|e| {
        vec![Problem {
            setting: TOKEN_MINTER,
            problem: e.to_string(),
        }]
    })?;
    let isolate = Rc::new(Isolate {
        settings,
        tokens,
        minter,
        kv_reads,
    });
    CURRENT.with(|c| *c.borrow_mut() = Some((fp, Rc::clone(&isolate))));
    Ok(isolate)
}
