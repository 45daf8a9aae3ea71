//! What one isolate keeps between requests: the validated settings and, for each tenant, a token
//! cache — memory → KV (read only) → the tenant's `TokenMinter` — and the JS front's lease for
//! it, rebuilt only when the settings change.
//!
//! Concurrent requests that find no usable token share one KV read and one call to the Durable
//! Object (the machine lets one flight run); the others wait with [`Ticks`], each resuming from
//! a timer of its own, since requests in one isolate have separate I/O contexts.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use worker::Env;

use super::minter::{MinterClient, log_event};
use super::settings::{Fingerprint, MTLS, Problem, Settings, TOKEN_MINTER, TOKENS_KV, fetch_of, fingerprint};
use crate::js::kv::{JsKv, KvStore};
use crate::js::sign::{WebProver, web_prover};
use crate::js::webcrypto::WebSealer;
use crate::js::{DateClock, Ticks, jitter, set};
use crate::{
    Error, Event, EventKind, Parts, Policy, ReadOnlyStore, Refusal, Served, Store, StoreError, TokenManager,
};

/// The per-isolate token cache of one tenant.
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

/// One tenant's tokens in this isolate, and the front's lease of them.
pub struct Desk {
    /// The `fetch` its proxied calls go through: the mTLS certificate binding's when the
    /// tenant's tokens are bound to its certificate, else the platform's.
    pub fetch: js_sys::Function,
    /// The DPoP key's prover, when its tokens are DPoP-bound.
    pub prover: Option<WebProver>,
    /// Whether its tokens are bound to the client certificate of its mTLS binding.
    pub config_bound_by_certificate: bool,
    /// The tenant's name (`None`: the single tenant).
    pub name: Option<String>,
    /// Where its proxied calls go.
    pub api_base: String,
    pub tokens: Tokens,
    pub minter: MinterClient,
    /// KV reads of this tenant's token cache.
    pub kv_reads: Rc<Cell<u64>>,
    /// The front's `{ lease }` for this tenant, made here and handed to the front: a refusal or
    /// the operator's lever clears it.
    pub holder: Object,
    /// Answers the front gave from the lease, and its callers that joined a pending call.
    pub front_counts: Cell<(u64, u64)>,
}

/// Settings and the tenants' token caches of this isolate.
pub struct Isolate {
    pub settings: Settings,
    /// One per tenant, in the settings' order.
    pub desks: Vec<Desk>,
}

impl Desk {
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
        self.forget_lease(Some(token));
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
        self.forget_lease(None);
        self.tokens.invalidate().await;
        Ok(held)
    }

    /// Takes the lease back from the front: when it is `token`, or whatever it is (`None`).
    pub fn forget_lease(&self, token: Option<&str>) {
        let lease = Reflect::get(&self.holder, &"lease".into()).unwrap_or(JsValue::NULL);
        let held = Reflect::get(&lease, &"accessToken".into())
            .ok()
            .and_then(|t| t.as_string());
        if token.is_none() || held.as_deref() == token {
            set(&self.holder, "lease", &JsValue::NULL);
        }
    }

    /// The front's counts, added to this tenant's `/healthz` counters.
    pub fn count_front(&self, hits: u64, joined: u64) {
        let (h, j) = self.front_counts.get();
        self.front_counts.set((h + hits, j + joined));
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
    let found = CURRENT.with(|c| {
        let c = c.borrow();
        let (fp, iso) = c.as_ref()?;
        let names: Vec<&str> = iso.desks.iter().filter_map(|d| d.name.as_deref()).collect();
        (*fp == fingerprint(env, &names)).then(|| Rc::clone(iso))
    });
    if let Some(isolate) = found {
        return Ok(isolate);
    }
    let settings = Settings::read(env)?;
    let kv: JsKv = Reflect::get(env, &TOKENS_KV.into())
        .map_err(|_| vec![])?
        .unchecked_into();
    let problem = |problem: String| {
        vec![Problem {
            setting: TOKEN_MINTER.into(),
            problem,
        }]
    };
    let mut desks = Vec::with_capacity(settings.tenants.len());
    for tenant in &settings.tenants {
        let minter = MinterClient::new(env, tenant.name.as_deref(), tenant.config.cache_key())
            .map_err(|_| problem("is not a Durable Object namespace".into()))?;
        let kv_reads = Rc::default();
        let store = ReadOnlyStore(CountedKv {
            kv: KvStore::workers(kv.clone().unchecked_into()),
            reads: Rc::clone(&kv_reads),
        });
        let host = Parts::new(minter.clone(), Some(store), DateClock)
            .with_notify(Ticks)
            .with_seal::<WebSealer>()
            .with_observer(isolate_log as fn(&Event));
        // the tenant's refresh point and margins; the budget is the minter's (an isolate's calls
        // to it are not token requests)
        let policy = Policy {
            limits: Vec::new(),
            ..tenant.policy.clone()
        };
        let tokens =
            TokenManager::new(&tenant.config, policy, jitter(), host).map_err(|e| problem(e.to_string()))?;
        let holder = Object::new();
        set(&holder, "lease", &JsValue::NULL);
        let fetch = fetch_of(env, tenant).map_err(|_| {
            vec![Problem {
                setting: MTLS.into(),
                problem: "is not a binding with fetch (an mTLS certificate binding)".into(),
            }]
        })?;
        let prover = web_prover(&tenant.config);
        desks.push(Desk {
            fetch,
            prover,
            config_bound_by_certificate: tenant.mtls.is_some(),
            name: tenant.name.clone(),
            api_base: tenant.api_base.clone(),
            tokens,
            minter,
            kv_reads,
            holder,
            front_counts: Cell::new((0, 0)),
        });
    }
    let names: Vec<&str> = desks.iter().filter_map(|d| d.name.as_deref()).collect();
    let fp = fingerprint(env, &names);
    let isolate = Rc::new(Isolate { settings, desks });
    CURRENT.with(|c| *c.borrow_mut() = Some((fp, Rc::clone(&isolate))));
    Ok(isolate)
}
