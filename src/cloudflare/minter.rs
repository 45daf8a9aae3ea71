//! `TokenMinter`, the Durable Object that is the **only** code calling the token endpoint, and
//! the isolates' client for it (a [`TokenSource`]). Both sides of its small wire live here.
//!
//! One object per cache key. Its manager runs memory → the object's own storage → token
//! endpoint with single-flight: a Durable Object has one I/O context for all its requests, so
//! every waiter shares one request. The record lives in the object's storage (strongly
//! consistent, beside the ledger) and is copied to KV for the isolates, which only read KV; the
//! copy is written after the answer, so no caller waits for it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use js_sys::{Function, Reflect};
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{JsFuture, spawn_local};
use worker::{
    DurableObject, Env, ObjectNamespace, Request, Response, Result, State, Storage, durable_object,
};

use super::reply;
use super::settings::{Problem, Settings, TOKEN_MINTER, TOKENS_KV, Tenant};
use crate::js::fetch::FetchTransport;
use crate::js::kv::{JsKv, KvStore};
use crate::js::sign::WebSigner;
use crate::js::webcrypto::WebSealer;
use crate::js::{DateClock, jitter};
use crate::{
    BudgetWindow, Endpoint, Error, ErrorReport, Event, EventKind, Ledger, Lookup, Observe, Parts, Phase,
    Store, StoreError, TokenManager, TokenRecord, TokenSource,
};

/// How the object answers when it could not get a token: the error's report as JSON.
const FAILED: u16 = 502;

/// The host named in errors about reaching the object.
const MINTER_HOST: &str = "TokenMinter (Durable Object)";

const ORIGIN: &str = "https://token-minter.internal/";

/// What an isolate asks of the minter: the object's whole wire, one JSON body to one URL.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(tag = "ask", rename_all = "snake_case")]
enum MinterRequest {
    /// A token; one other than `replacing` when the isolate holds that one and finds it stale
    /// or refused.
    Token { replacing: Option<String> },
    /// Drop `token` if it is still the object's (compare-and-delete, KV too).
    Invalidate { token: String },
    /// The operator's lever: drop whatever token the object holds (memory, storage, KV) and
    /// its holds; the budget and the vendor's cooldowns stay.
    Drop,
    /// The cron: make sure a token exists, and refresh it now if it is stale.
    Refresh,
    /// The mint ledger, the counters and the budget, for `/healthz`.
    Ledger,
}

/// One ask on the wire, with whom it is for: the tenant (`None`: the single tenant) and the
/// cache key the isolate derived the object's id from. An object serves the one tenant its first
/// ask named, and refuses any other — a token never crosses to another tenant's caller, even
/// through a bug in the naming of objects.
#[derive(Serialize)]
struct Envelope<'a> {
    tenant: Option<&'a str>,
    key: &'a str,
    #[serde(flatten)]
    ask: &'a MinterRequest,
}

impl MinterRequest {
    /// Read field by field (typed deserialisation would bring a float formatter into the wasm):
    /// the ask, its tenant and its key.
    fn decode(json: &str) -> Option<(Self, Option<String>, String)> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let text = |name: &str| v.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
        let (tenant, key) = (text("tenant"), text("key")?);
        let ask = match v.get("ask")?.as_str()? {
            "token" => Self::Token {
                replacing: text("replacing"),
            },
            "invalidate" => Self::Invalidate {
                token: text("token")?,
            },
            "refresh" => Self::Refresh,
            "drop" => Self::Drop,
            "ledger" => Self::Ledger,
            _ => return None,
        };
        Some((ask, tenant, key))
    }
}

/// A value of the object's storage, as the platform gives it (`None` when absent): read raw,
/// never through typed deserialisation.
async fn stored(storage: &Storage, key: &str) -> Result<Option<JsValue>> {
    let found = storage
        .get_multiple(vec![key])
        .await?
        .get(&JsValue::from_str(key));
    Ok((!found.is_undefined()).then_some(found))
}

type ManagerHost = Parts<
    Endpoint<FetchTransport, DateClock, WebSigner>,
    MinterStore,
    DateClock,
    crate::Wakers,
    WebSealer,
    Ledgered,
>;
type Manager = TokenManager<ManagerHost>;

/// The object's observer: every event is logged, and those the ledger keeps mark it for
/// storing.
struct Ledgered {
    ledger: Rc<RefCell<Ledger>>,
    dirty: Rc<Cell<bool>>,
}

impl Observe for Ledgered {
    fn observe(&self, event: &Event) {
        log_event(event);
        if self.ledger.borrow_mut().record(event) {
            self.dirty.set(true);
        }
    }
}

/// The minter's store: the sealed record in the object's storage, copied to KV for isolates.
pub struct MinterStore {
    storage: Storage,
    kv: Rc<KvStore>,
    /// The last of the KV writes under way: each write (copy or delete) starts after the one
    /// before, so an older record or a dropped token never lands in KV last.
    kv_writes: RefCell<KvWrite>,
}

/// A record as the object keeps it: `{ value, expires_at_ms }`, the sealed value and when KV
/// should let it expire.
struct Kept {
    value: String,
    expires_at_ms: u64,
}

impl Kept {
    fn from_js(v: &JsValue) -> Option<Self> {
        Some(Self {
            value: Reflect::get(v, &"value".into()).ok()?.as_string()?,
            expires_at_ms: Reflect::get(v, &"expires_at_ms".into()).ok()?.as_f64()? as u64,
        })
    }

    fn to_js(&self) -> JsValue {
        let o = js_sys::Object::new();
        crate::js::set(&o, "value", &self.value.as_str().into());
        crate::js::set(&o, "expires_at_ms", &(self.expires_at_ms as f64).into());
        o.into()
    }
}

fn store_error(op: &str, e: &worker::Error) -> StoreError {
    StoreError(format!("Durable Object storage {op} failed: {e}"))
}

type KvWrite = Shared<LocalBoxFuture<'static, std::result::Result<(), StoreError>>>;

impl MinterStore {
    fn new(storage: Storage, kv: KvStore) -> Self {
        Self {
            storage,
            kv: Rc::new(kv),
            kv_writes: RefCell::new(std::future::ready(Ok(())).boxed_local().shared()),
        }
    }

    /// Queues `write` behind the KV writes under way; the returned future is its outcome.
    fn queue_kv_write(
        &self,
        write: impl std::future::Future<Output = std::result::Result<(), StoreError>> + 'static,
    ) -> KvWrite {
        let before = self.kv_writes.borrow().clone();
        let next = async move {
            let _ = before.await;
            write.await
        }
        .boxed_local()
        .shared();
        *self.kv_writes.borrow_mut() = next.clone();
        next
    }

    /// Copies `value` to KV after the answer, behind the KV writes already under way: no caller
    /// waits for it, and a failed copy is logged (isolates then ask the object, which has the
    /// record).
    fn copy_to_kv(&self, key: &str, value: &str, ttl_secs: u64) {
        let (kv, key, value) = (Rc::clone(&self.kv), key.to_owned(), value.to_owned());
        let copy = self.queue_kv_write(async move { kv.put(&key, &value, ttl_secs).await });
        spawn_local(async move {
            if let Err(e) = copy.await {
                worker::console_warn!("autopay-auth: could not copy the token record to KV: {}", e.0);
            }
        });
    }
}

impl Store for MinterStore {
    /// Read when the object starts without the token in memory: the record is copied to KV
    /// again, in case the last copy was lost.
    async fn get(&self, key: &str) -> std::result::Result<Option<String>, StoreError> {
        let kept = stored(&self.storage, key)
            .await
            .map_err(|e| store_error("get", &e))?
            .and_then(|v| Kept::from_js(&v));
        Ok(kept.map(|k| {
            let ttl_secs = k.expires_at_ms.saturating_sub(js_sys::Date::now() as u64) / 1000;
            // the fleet state stays in the object's storage: isolates never read it
            if ttl_secs >= crate::MIN_STORE_TTL_SECS && !key.ends_with(crate::FLEET_SUFFIX) {
                self.copy_to_kv(key, &k.value, ttl_secs);
            }
            k.value
        }))
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> std::result::Result<(), StoreError> {
        let kept = Kept {
            value: value.to_owned(),
            expires_at_ms: js_sys::Date::now() as u64 + ttl_secs * 1000,
        };
        self.storage
            .put_raw(key, kept.to_js())
            .await
            .map_err(|e| store_error("put", &e))?;
        if ttl_secs >= crate::MIN_STORE_TTL_SECS && !key.ends_with(crate::FLEET_SUFFIX) {
            self.copy_to_kv(key, value, ttl_secs);
        }
        Ok(())
    }

    /// The object's storage takes any TTL; only what lives 60 s or more is copied to KV.
    fn min_ttl_secs(&self) -> u64 {
        1
    }

    /// Removes the record here and from KV, before answering (a dropped token must not be
    /// read back by an isolate).
    async fn delete(&self, key: &str) -> std::result::Result<(), StoreError> {
        let (kv, owned_key) = (Rc::clone(&self.kv), key.to_owned());
        // behind any copy under way, which lands first, then goes
        let from_kv = self.queue_kv_write(async move { kv.delete(&owned_key).await });
        let (here, kv) = futures_util::join!(self.storage.delete(key), from_kv);
        here.map_err(|e| store_error("delete", &e))?;
        kv
    }

    /// Compare-and-delete in one step: the object's input gate delivers no other event (no
    /// request, no fetch answer) while its storage is read, so nothing runs between the read
    /// and the delete.
    async fn delete_if(&self, key: &str, expected: &str) -> std::result::Result<bool, StoreError> {
        let kept = stored(&self.storage, key)
            .await
            .map_err(|e| store_error("get", &e))?
            .and_then(|v| Kept::from_js(&v));
        if kept.is_none_or(|k| k.value != expected) {
            return Ok(false);
        }
        self.delete(key).await.map(|()| true)
    }
}

/// The tenant an object serves, and its settings (or what is wrong with them).
type Pinned = (Option<String>, std::result::Result<Tenant, Vec<Problem>>);

/// The minting authority of one tenant: it refreshes its token itself, by an alarm at the
/// token's refresh point.
#[durable_object(alarm)]
pub struct TokenMinter {
    state: State,
    env: Env,
    /// The tenant this object serves and its settings, read on its first ask (or alarm) once
    /// per object instance: a new deployment's settings come with new instances.
    tenant: std::cell::OnceCell<Pinned>,
    /// When the alarm is set for (ms since the epoch), as this instance last set it.
    alarm_at: Cell<Option<u64>>,
    manager: RefCell<Option<Manager>>,
    /// Mints per hour and the last outcomes, fed by the manager's events.
    ledger: Rc<RefCell<Ledger>>,
    /// The ledger changed since it was last stored.
    ledger_dirty: Rc<Cell<bool>>,
    /// The ledger was read from storage (once per object instance).
    ledger_loaded: Cell<bool>,
}

/// Key of the ledger in the object's storage.
const LEDGER_KEY: &str = "ledger";
/// Key of the mint budget's window: kept so that no restart of the object resets the budget.
const BUDGET_KEY: &str = "budget";
/// Key of the tenant the object serves (`""`: the single tenant), for its alarm.
const TENANT_KEY: &str = "tenant";
/// How soon an alarm tries again after a refresh that failed.
const ALARM_RETRY_MS: u64 = 60_000;

/// One JSON log line per event that an operator counts or alerts on (Workers Logs reads JSON).
pub fn log_event(event: &Event) {
    // routine refreshes stay out of the Worker's logs
    if event.kind == EventKind::Refresh {
        return;
    }
    #[derive(Serialize)]
    struct Line<'a> {
        level: &'static str,
        message: String,
        event: &'a Event,
    }
    let line = Line {
        level: event.kind.level(),
        message: format!("autopay-auth: {}", event.message()),
        event,
    };
    worker::console_log!("{}", serde_json::to_string(&line).unwrap_or_default());
}

impl TokenMinter {
    fn manager(&self, settings: &Tenant) -> Result<Manager> {
        if let Some(m) = self.manager.borrow().as_ref() {
            return Ok(m.clone());
        }
        let fetch: Function = Reflect::get(&js_sys::global(), &"fetch".into())?.dyn_into()?;
        let kv: JsKv = Reflect::get(&self.env, &TOKENS_KV.into())?.unchecked_into();
        let store = MinterStore::new(self.state.storage(), KvStore::workers(kv));
        let source = Endpoint::new(settings.config.clone(), FetchTransport::new(fetch), DateClock)
            .with_signer(WebSigner::default());
        let ledgered = Ledgered {
            ledger: Rc::clone(&self.ledger),
            dirty: Rc::clone(&self.ledger_dirty),
        };
        let host = Parts::new(source, Some(store), DateClock)
            .with_seal::<WebSealer>()
            .with_observer(ledgered);
        let m = TokenManager::new(&settings.config, settings.policy.clone(), jitter(), host)
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        *self.manager.borrow_mut() = Some(m.clone());
        Ok(m)
    }

    /// Reads the ledger and the mint budget's window from storage the first time (they are
    /// JSON; a bad one starts afresh), and hands the window back to the manager.
    async fn load_ledger(&self, m: &Manager) {
        if self.ledger_loaded.replace(true) {
            return;
        }
        let storage = self.state.storage();
        let text = |v: Result<Option<JsValue>>| v.ok().flatten().and_then(|v| v.as_string());
        if let Some(kept) = text(stored(&storage, LEDGER_KEY).await).and_then(|j| Ledger::decode(&j)) {
            *self.ledger.borrow_mut() = kept;
        }
        if let Some(kept) = text(stored(&storage, BUDGET_KEY).await).and_then(|j| BudgetWindow::decode(&j)) {
            m.restore_budget_window(&kept);
        }
    }

    /// Stores the ledger and the budget's window when a token request was made.
    async fn store_ledger(&self, m: &Manager) {
        if self.ledger_dirty.replace(false) {
            let storage = self.state.storage();
            let ledger = serde_json::to_string(&*self.ledger.borrow()).unwrap_or_default();
            let budget = serde_json::to_string(&m.budget_window()).unwrap_or_default();
            if storage.put_raw(LEDGER_KEY, ledger).await.is_err()
                || storage.put_raw(BUDGET_KEY, budget).await.is_err()
            {
                worker::console_warn!("autopay-auth: could not store the mint ledger");
            }
        }
    }

    fn answer(&self, lookup: std::result::Result<Lookup<ManagerHost>, Error>) -> Result<Response> {
        match lookup {
            Ok(l) => {
                if let Some(refresh) = l.refresh {
                    self.state.wait_until(refresh.run());
                }
                let mut r = Response::ok(l.served.record.encode())?;
                r.headers_mut().set("content-type", "application/json")?;
                Ok(r)
            }
            Err(e) => reply::json(FAILED, &e.report()),
        }
    }
}

impl DurableObject for TokenMinter {
    fn new(state: State, env: Env) -> Self {
        Self {
            tenant: std::cell::OnceCell::new(),
            alarm_at: Cell::new(None),
            state,
            env,
            manager: RefCell::new(None),
            ledger: Rc::default(),
            ledger_dirty: Rc::default(),
            ledger_loaded: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let Some((ask, tenant, key)) = MinterRequest::decode(&req.text().await.unwrap_or_default()) else {
            return reply::error(400, "invalid_request", "not a minter request");
        };
        let settings = match self.settings_for(tenant).await {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        if settings.config.cache_key() != key {
            return reply::error(400, "invalid_request", "this object serves another configuration");
        }
        let m = self.manager(settings)?;
        self.load_ledger(&m).await;
        let answer = self.answer_to(ask, &m).await;
        self.store_ledger(&m).await;
        self.schedule(&m).await;
        answer
    }

    /// The refresh-ahead: the object's own alarm at its token's refresh point (set after every
    /// answer), so a tenant's callers normally never wait for a mint — one alarm per tenant,
    /// no cron walking every tenant. A failed refresh tries again in a minute.
    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let kept = stored(&self.state.storage(), TENANT_KEY)
            .await
            .ok()
            .flatten()
            .and_then(|v| v.as_string());
        let Some(kept) = kept else {
            return Response::ok("no tenant yet");
        };
        let tenant = (!kept.is_empty()).then_some(kept);
        let Ok(settings) = self.settings_for(tenant).await else {
            worker::console_error!("autopay-auth: the minter's alarm found its tenant misconfigured");
            return Response::ok("misconfigured");
        };
        let m = self.manager(settings)?;
        self.load_ledger(&m).await;
        let outcome = m.get().await;
        let refreshed = match outcome {
            Ok(l) => {
                if let Some(refresh) = l.refresh {
                    refresh.run().await;
                }
                true
            }
            Err(_) => false,
        };
        self.store_ledger(&m).await;
        if refreshed {
            self.schedule(&m).await;
        } else {
            self.set_alarm(js_sys::Date::now() as u64 + ALARM_RETRY_MS).await;
        }
        Response::ok(if refreshed { "refreshed" } else { "failed" })
    }
}

impl TokenMinter {
    /// The settings of the tenant this object serves: pinned by its first ask (and stored for
    /// its alarm); an ask for another tenant is refused.
    async fn settings_for(&self, tenant: Option<String>) -> std::result::Result<&Tenant, Result<Response>> {
        let fresh = self.tenant.get().is_none();
        let (pinned, settings) = self.tenant.get_or_init(|| {
            let settings = Settings::read_tenant(&self.env, tenant.as_deref());
            (tenant.clone(), settings)
        });
        if *pinned != tenant {
            return Err(reply::error(
                400,
                "invalid_request",
                "this object serves another tenant",
            ));
        }
        let settings = settings
            .as_ref()
            .map_err(|problems| reply::misconfigured(problems))?;
        if fresh {
            let name = JsValue::from_str(pinned.as_deref().unwrap_or_default());
            if self.state.storage().put_raw(TENANT_KEY, name).await.is_err() {
                worker::console_warn!("autopay-auth: could not store the minter's tenant");
            }
        }
        Ok(settings)
    }

    /// Sets the alarm at the held token's refresh point, unless it is set for then already.
    async fn schedule(&self, m: &Manager) {
        if let Some(lease) = m.lease() {
            self.set_alarm(lease.until_ms).await;
        }
    }

    async fn set_alarm(&self, at_ms: u64) {
        if self.alarm_at.get() == Some(at_ms) {
            return;
        }
        let offset = at_ms.saturating_sub(js_sys::Date::now() as u64) as i64;
        match self.state.storage().set_alarm(offset).await {
            Ok(()) => self.alarm_at.set(Some(at_ms)),
            Err(_) => worker::console_warn!("autopay-auth: could not set the minter's alarm"),
        }
    }

    async fn answer_to(&self, ask: MinterRequest, m: &Manager) -> Result<Response> {
        match ask {
            MinterRequest::Token { replacing } => {
                let lookup = match replacing.as_deref() {
                    Some(held) => m.get_replacing(held).await,
                    None => m.get().await,
                };
                self.answer(lookup)
            }
            MinterRequest::Invalidate { token } => {
                let result = m.invalidate_token(&token).await.as_str();
                #[derive(Serialize)]
                struct Refused {
                    result: &'static str,
                }
                reply::json(200, &Refused { result })
            }
            MinterRequest::Drop => {
                let held = m.phase().is_some();
                m.invalidate().await;
                worker::console_warn!("autopay-auth: the operator dropped the token (held: {held})");
                #[derive(Serialize)]
                struct Dropped {
                    dropped: bool,
                }
                reply::json(200, &Dropped { dropped: held })
            }
            MinterRequest::Refresh => {
                // the cron: make sure a token exists, and refresh it now if it is stale
                let before = m.phase().map(|(p, _)| p);
                match m.get().await {
                    Ok(l) => {
                        let refreshed =
                            l.refresh.is_some() || before.is_none() || before == Some(Phase::Expired);
                        if let Some(refresh) = l.refresh {
                            refresh.run().await;
                        }
                        let (phase, rec) = m.phase().map_or((None, None), |(p, r)| (Some(p), Some(r)));
                        #[derive(Serialize)]
                        struct Refreshed {
                            refreshed: bool,
                            state: Option<&'static str>,
                            expires_at: Option<u64>,
                            stats: crate::Stats,
                        }
                        reply::json(
                            200,
                            &Refreshed {
                                refreshed,
                                state: phase.map(phase_name),
                                expires_at: rec.map(|r| r.expires_at_ms),
                                stats: m.stats(),
                            },
                        )
                    }
                    Err(e) => reply::json(FAILED, &e.report()),
                }
            }
            MinterRequest::Ledger => {
                let (used, allowed) = m.budget_use();
                #[derive(Serialize)]
                struct Budget {
                    used: u64,
                    allowed: u64,
                }
                #[derive(Serialize)]
                struct Report<'a> {
                    ledger: &'a Ledger,
                    stats: crate::Stats,
                    budget: Budget,
                }
                reply::json(
                    200,
                    &Report {
                        ledger: &self.ledger.borrow(),
                        stats: m.stats(),
                        budget: Budget { used, allowed },
                    },
                )
            }
        }
    }
}

/// `fresh`, `stale` or `expired`.
pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Fresh => "fresh",
        Phase::Stale => "stale",
        Phase::Expired => "expired",
    }
}

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
