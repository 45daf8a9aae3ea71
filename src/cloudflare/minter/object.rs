//! The object itself (feature `worker`; the front of a split deployment, feature `worker-front`,
//! binds the object of another Worker and carries none of this).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Reflect;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

use super::store::{MinterStore, stored};
use super::wire::MinterRequest;

use super::super::reply;
use super::super::settings::{Problem, Settings, TOKENS_KV, Tenant, fetch_of};
use super::{log_event, phase_name};
use crate::Clock;
use crate::js::fetch::FetchTransport;
use crate::js::kv::{JsKv, KvStore};
use crate::js::sign::{WebSigner, web_prover};
use crate::js::webcrypto::WebSealer;
use crate::js::{DateClock, jitter};
use crate::{Endpoint, Error, Event, Ledger, Lookup, Observe, Parts, Phase, TokenManager};

/// How the object answers when it could not get a token: the error's report as JSON.
const FAILED: u16 = 502;

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
/// Key of the tenant the object serves (`""`: the single tenant), for its alarm.
const TENANT_KEY: &str = "tenant";
/// How soon an alarm tries again after a refresh that failed.
const ALARM_RETRY_MS: u64 = 60_000;

impl TokenMinter {
    fn manager(&self, settings: &Tenant) -> Result<Manager> {
        if let Some(m) = self.manager.borrow().as_ref() {
            return Ok(m.clone());
        }
        let fetch = fetch_of(&self.env, settings)?;
        let kv: JsKv = Reflect::get(&self.env, &TOKENS_KV.into())?.unchecked_into();
        let store = MinterStore::new(self.state.storage(), KvStore::workers(kv));
        let mut source = Endpoint::new(settings.config.clone(), FetchTransport::new(fetch), DateClock)
            .with_signer(WebSigner::default());
        if let Some(prover) = web_prover(&settings.config) {
            source = source.with_prover(prover);
        }
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

    /// Reads the ledger from storage the first time (JSON; a bad one starts afresh), and takes
    /// back what the fleet state in storage keeps (the mint budget's window, a gate still
    /// closed, the quotas declared), so a restart of the object resets none of them.
    async fn load_ledger(&self, m: &Manager) {
        if self.ledger_loaded.replace(true) {
            return;
        }
        let text = stored(&self.state.storage(), LEDGER_KEY)
            .await
            .ok()
            .flatten()
            .and_then(|v| v.as_string());
        if let Some(kept) = text.and_then(|j| Ledger::decode(&j)) {
            *self.ledger.borrow_mut() = kept;
        }
        m.recall().await;
    }

    /// Stores the ledger when a token request was made.
    async fn store_ledger(&self) {
        if self.ledger_dirty.replace(false) {
            let ledger = serde_json::to_string(&*self.ledger.borrow()).unwrap_or_default();
            if self.state.storage().put_raw(LEDGER_KEY, ledger).await.is_err() {
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
        let settings = match self.settings_for(tenant, false).await {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        if settings.config.cache_key() != key {
            return reply::error(400, "invalid_request", "this object serves another configuration");
        }
        let m = self.manager(settings)?;
        self.load_ledger(&m).await;
        let answer = self.answer_to(ask, &m).await;
        self.store_ledger().await;
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
        let Ok(settings) = self.settings_for(tenant, true).await else {
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
        self.store_ledger().await;
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
    /// `stored`: the tenant came from the object's storage (its alarm), so it is not written back.
    async fn settings_for(
        &self,
        tenant: Option<String>,
        stored: bool,
    ) -> std::result::Result<&Tenant, Result<Response>> {
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
        if fresh && !stored {
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
                let now = DateClock.now_ms();
                // the token's timeline: never the token itself
                let token = m.timeline().map(|(rec, t)| Timeline {
                    state: phase_name(t.phase_at(now)),
                    issued_at: rec.issued_at_ms,
                    refresh_at: t.refresh_at_ms,
                    usable_until: t.usable_until_ms,
                    expires_at: rec.expires_at_ms,
                });
                // the gate and why: the error's code, status and the server's `error` only
                let gate = m.gate().map(|g| {
                    let r = g.error.report();
                    Closed {
                        kind: g.kind.as_str(),
                        until: g.until_ms,
                        repeats: g.repeats,
                        code: r.code,
                        status: r.status,
                        error: r.error,
                    }
                });
                let quotas = m
                    .quotas()
                    .into_iter()
                    .map(|(name, limit, remaining, reset_at)| Quota {
                        name,
                        limit,
                        remaining,
                        reset_at,
                    })
                    .collect();
                reply::json(
                    200,
                    &Report {
                        now,
                        ledger: &self.ledger.borrow(),
                        stats: m.stats(),
                        budget: Budget { used, allowed },
                        token,
                        gate,
                        quotas,
                    },
                )
            }
        }
    }
}

/// The minter's report for `/healthz` and the operator's page: its ledger and counters, the
/// budget, the token's timeline, the gate closed and the quotas declared — never a token, a
/// secret or a stored value.
#[derive(Serialize)]
struct Report<'a> {
    now: u64,
    ledger: &'a Ledger,
    stats: crate::Stats,
    budget: Budget,
    token: Option<Timeline>,
    gate: Option<Closed>,
    quotas: Vec<Quota>,
}

#[derive(Serialize)]
struct Budget {
    used: u64,
    allowed: u64,
}

#[derive(Serialize)]
struct Timeline {
    state: &'static str,
    issued_at: u64,
    refresh_at: u64,
    usable_until: u64,
    expires_at: u64,
}

#[derive(Serialize)]
struct Closed {
    kind: &'static str,
    until: u64,
    repeats: u32,
    code: String,
    status: Option<u16>,
    error: Option<String>,
}

#[derive(Serialize)]
struct Quota {
    name: String,
    limit: Option<u64>,
    remaining: u64,
    reset_at: u64,
}
