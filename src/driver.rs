//! The async driver: carries out the lifecycle [`Machine`]'s actions as I/O over the seams — a
//! [`TokenSource`], a [`Store`], a [`Clock`] and a [`Notify`] — and nothing else. Every decision
//! (serve, refresh, read, lock, mint, wait, fail) is the machine's. Futures carry no `Send`
//! bound: wasm is single-threaded, and the driver shares its state through `Rc`.

use std::cell::RefCell;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;

use std::future::Future;

use futures_util::future::{Either, FutureExt, LocalBoxFuture, join, select};

use crate::config::{Config, url_host};
use crate::error::Error;
use crate::events::Event;
use crate::fleet::{FLEET_SUFFIX, FleetState};
use crate::lifecycle::{Phase, Policy};
use crate::machine::{Action, Call, MINT_LOCK_GRACE_MS, Machine, Refusal, Served, Shared, StoreRead, Want};
use crate::record::{MIN_STORE_TTL_SECS, TokenRecord};
use crate::seal::Sealer;
use crate::seams::{Clock, Notify, Seal, Store, StoreError, TokenSource, Wakers};
use crate::stats::Stats;

/// Whoever is told what happened (see [`TokenManager::set_observer`]).
type Observer = Box<dyn Fn(&Event)>;

/// Appended to the cache key for the minting lock in stores that support `put_if_absent`.
pub const MINT_LOCK_SUFFIX: &str = ":minting";

/// The answer to [`TokenManager::get`]: the token, and a background refresh that the edge
/// must run (spawn it, or hand it to `waitUntil`) when the token is stale.
#[must_use]
pub struct Lookup {
    /// The token to use now.
    pub served: Served,
    /// Run this in the background; it is `Some` at most once per refresh.
    pub refresh: Option<LocalBoxFuture<'static, ()>>,
}

/// A token the edge may hand out without asking the manager again, until `until_ms`.
#[derive(Clone, Debug)]
pub struct Lease {
    /// The token.
    pub record: Arc<TokenRecord>,
    /// The end of the lease (the token's refresh point).
    pub until_ms: u64,
}

struct Inner<T, S, C, N, K> {
    key: String,
    /// The token endpoint's host, for errors.
    host: String,
    lock_key: String,
    fleet_key: String,
    sealer: K,
    /// Seals the fleet state (its own key as context, so a record never opens as one).
    fleet_sealer: K,
    machine: RefCell<Machine>,
    observer: RefCell<Option<Observer>>,
    source: T,
    store: Option<S>,
    clock: C,
    notify: N,
}

/// Gets, caches and refreshes the tokens of one [`TokenSource`] for one [`Config`], in memory
/// and in an optional shared [`Store`] (records sealed by `K`). Cheap to clone (shared state).
/// `N` is how concurrent callers of this host wait for the flight under way.
pub struct TokenManager<T, S, C, N = Wakers, K = Sealer> {
    inner: Rc<Inner<T, S, C, N, K>>,
}

impl<T, S, C, N, K> Clone for TokenManager<T, S, C, N, K> {
    fn clone(&self) -> Self {
        Self {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T, S, C, N, K> TokenManager<T, S, C, N, K>
where
    T: TokenSource + 'static,
    S: Store + 'static,
    C: Clock + 'static,
    N: Notify + 'static,
    K: Seal + 'static,
{
    /// A manager for `config`'s tokens from `source`, kept in `store` (if any) under
    /// `config`'s cache key. `jitter` in [-1, 1] is this instance's shift of the refresh point
    /// (pick it at random). Fails when the policy is invalid.
    pub fn new(
        config: &Config,
        policy: Policy,
        jitter: f64,
        source: T,
        store: Option<S>,
        clock: C,
    ) -> Result<Self, Error> {
        let key = config.cache_key().to_owned();
        let fleet_key = format!("{key}{FLEET_SUFFIX}");
        let shared = match &store {
            None => Shared::None,
            Some(s) if s.writes() => Shared::Writable,
            Some(_) => Shared::ReadOnly,
        };
        let min_ttl = store.as_ref().map_or(MIN_STORE_TTL_SECS, Store::min_ttl_secs);
        Ok(Self {
            inner: Rc::new(Inner {
                host: url_host(config.token_url()).to_owned(),
                lock_key: format!("{key}{MINT_LOCK_SUFFIX}"),
                sealer: K::new(config.sealing_secret(), &key),
                fleet_sealer: K::new(config.sealing_secret(), &fleet_key),
                fleet_key,
                observer: RefCell::new(None),
                key,
                machine: RefCell::new(Machine::new(policy, jitter, shared)?.with_min_ttl(min_ttl)),
                source,
                store,
                clock,
                notify: N::default(),
            }),
        })
    }

    /// The store key.
    pub fn cache_key(&self) -> &str {
        &self.inner.key
    }

    /// The lifecycle policy.
    pub fn policy(&self) -> Policy {
        self.inner.machine.borrow().policy().clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.machine.borrow().stats()
    }

    /// The phase of the token in memory now, if there is one.
    pub fn phase(&self) -> Option<(Phase, Arc<TokenRecord>)> {
        self.inner.machine.borrow().current(self.inner.clock.now_ms())
    }

    /// The mint budget's window, to keep across restarts (see [`Machine::budget_window`]).
    pub fn budget_window(&self) -> crate::BudgetWindow {
        self.inner.machine.borrow().budget_window()
    }

    /// Takes back a window kept from before a restart.
    pub fn restore_budget_window(&self, kept: &crate::BudgetWindow) {
        self.inner.machine.borrow_mut().restore_budget_window(kept);
    }

    /// Token requests in the budget's window, and the budget.
    pub fn budget_use(&self) -> (u64, u64) {
        self.inner.machine.borrow().budget_use(self.inner.clock.now_ms())
    }

    /// When the machine's answers next change by themselves (see [`Machine::next_deadline`]).
    pub fn next_deadline(&self) -> Option<u64> {
        self.inner
            .machine
            .borrow()
            .next_deadline(self.inner.clock.now_ms())
    }

    /// The token this manager would serve next, with its phase, without minting: memory, else
    /// the store (read, not adopted). For health reports.
    pub async fn peek(&self) -> Option<(Phase, Arc<TokenRecord>)> {
        if let Some(found) = self.phase() {
            return Some(found);
        }
        let inner = &self.inner;
        let value = inner
            .bounded("get", inner.store.as_ref()?.get(&inner.key))
            .await
            .ok()??;
        let rec = inner.sealer.open(&value).await?;
        let phase = inner.machine.borrow().phase_of(&rec, inner.clock.now_ms());
        Some((phase, Arc::new(rec)))
    }

    /// A token that may be served without asking again until the lease ends (while fresh).
    pub fn lease(&self) -> Option<Lease> {
        let (record, until_ms) = self.inner.machine.borrow().lease(self.inner.clock.now_ms())?;
        Some(Lease { record, until_ms })
    }

    /// A usable token: from memory, else the store, else one token request shared by every
    /// caller that arrives while it runs.
    pub async fn get(&self) -> Result<Lookup, Error> {
        self.run(Call::new(Want::Usable)).await
    }

    /// For a minting authority answering a caller that holds `held` and finds it stale or
    /// refused: a newer token if there is one, else one renewal (shared, honouring the backoff
    /// after failures); if that fails while `held` is still usable, `held` again.
    pub async fn get_replacing(&self, held: &str) -> Result<Lookup, Error> {
        self.run(Call::new(Want::Replacing(held.to_owned()))).await
    }

    /// Forgets the token everywhere (memory and store), and every hold.
    pub async fn invalidate(&self) {
        let inner = &self.inner;
        inner.touch(|m, now| m.invalidate(now));
        if let Some(store) = &inner.store {
            if let Err(e) = inner.bounded("delete", store.delete(&inner.key)).await {
                inner.touch(|m, now| m.store_failed(now, &e));
            }
        }
    }

    /// Hands every [`Event`] from now on to `observer` (logs, metrics, alerts). It is called
    /// synchronously; it must not call back into this manager.
    pub fn set_observer(&self, observer: impl Fn(&Event) + 'static) {
        *self.inner.observer.borrow_mut() = Some(Box::new(observer));
    }

    /// The API refused `access_token`: dropped only where it is still the cached token
    /// (compare-and-delete, so a token another caller already replaced survives) — unless a
    /// refusal hold keeps it (see [`Machine::refused`]). Returns what the machine did.
    pub async fn invalidate_token(&self, access_token: &str) -> Refusal {
        let inner = &self.inner;
        let refusal = inner.touch(|m, now| m.refused(now, access_token));
        if refusal == Refusal::Kept {
            return refusal;
        }
        if let Some(store) = &inner.store {
            let failed = match inner.bounded("get", store.get(&inner.key)).await {
                Ok(Some(v)) => {
                    let held = inner.sealer.open(&v).await;
                    let still_cached = held.is_some_and(|r| r.access_token == access_token);
                    match still_cached {
                        true => inner.bounded("delete", store.delete(&inner.key)).await.err(),
                        false => None,
                    }
                }
                Ok(None) => None,
                Err(e) => Some(e),
            };
            if let Some(e) = failed {
                inner.touch(|m, now| m.store_failed(now, &e));
            }
        }
        refusal
    }

    /// Drives one call through the machine until it is served or fails.
    async fn run(&self, mut call: Call) -> Result<Lookup, Error> {
        let inner = &self.inner;
        let mut action = inner.event(|m, now| m.want(now, &mut call));
        loop {
            action = match action {
                Action::Serve(served) => {
                    return Ok(Lookup {
                        served,
                        refresh: None,
                    });
                }
                Action::ServeAndRefresh(served, refresh) => {
                    return Ok(Lookup {
                        served,
                        refresh: Some(self.background(refresh)),
                    });
                }
                Action::Fail(e) => return Err(e),
                Action::ReadStore { fleet } => {
                    let read = inner.read(fleet).await;
                    inner.event(|m, now| m.stored(now, &mut call, read))
                }
                Action::ClaimLock { ttl_ms } => {
                    let claim = match &inner.store {
                        Some(store) => {
                            inner
                                .bounded("lock", store.put_if_absent(&inner.lock_key, "minting", ttl_ms))
                                .await
                        }
                        None => Ok(None),
                    };
                    inner.event(|m, now| m.claimed(now, &mut call, claim))
                }
                Action::Mint { replacing } => {
                    let minted = inner.mint(replacing.as_deref()).await;
                    inner.event(|m, now| m.minted(now, &mut call, minted))
                }
                Action::Save { record, fleet } => {
                    let results = inner.save(record, fleet).await;
                    inner.event(|m, now| m.saved(now, &mut call, &results))
                }
                Action::Unlock => {
                    let results = match &inner.store {
                        Some(store) => vec![inner.bounded("unlock", store.delete(&inner.lock_key)).await],
                        None => Vec::new(),
                    };
                    inner.event(|m, now| m.saved(now, &mut call, &results))
                }
                Action::WaitUntil(at) => {
                    let now = inner.clock.now_ms();
                    if at > now {
                        let woken = pin!(inner.notify.wait());
                        let slept = pin!(inner.clock.sleep(at - now));
                        select(woken, slept).await;
                    }
                    inner.event(|m, now| m.want(now, &mut call))
                }
            };
        }
    }

    fn background(&self, call: Call) -> LocalBoxFuture<'static, ()> {
        let me = self.clone();
        async move {
            if let Ok(Lookup {
                refresh: Some(next), ..
            }) = me.run(call).await
            {
                next.await;
            }
        }
        .boxed_local()
    }
}

impl<T: TokenSource, S, C: Clock, N: Notify, K> Inner<T, S, C, N, K> {
    /// A store call, bounded by the policy's store timeout: one that takes longer is a store
    /// error (counted and survived), so no caller waits forever on a store.
    async fn bounded<V>(
        &self,
        name: &str,
        op: impl Future<Output = Result<V, StoreError>>,
    ) -> Result<V, StoreError> {
        let limit = self.machine.borrow().policy().store_timeout_ms;
        match select(pin!(op), pin!(self.clock.sleep(limit))).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(StoreError(format!("KV {name} timed out after {limit} ms"))),
        }
    }

    /// One token request, bounded by its timeout plus half the grace even if the transport
    /// ignores its own timeout — so it ends inside the flight's deadline (timeout plus the
    /// whole grace) and the machine still counts it as this flight's answer.
    async fn mint(&self, replacing: Option<&str>) -> Result<TokenRecord, Error> {
        let timeout_ms = self.machine.borrow().policy().request_timeout_ms;
        let request = pin!(self.source.mint(replacing, timeout_ms));
        match select(
            request,
            pin!(self.clock.sleep(timeout_ms + MINT_LOCK_GRACE_MS / 2)),
        )
        .await
        {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(Error::Timeout {
                host: self.host.clone(),
                after_ms: timeout_ms,
            }),
        }
    }
}

impl<T: TokenSource, S: Store, C: Clock, N: Notify, K: Seal> Inner<T, S, C, N, K> {
    /// The record (and, with `fleet`, the fleet state, read at the same time) from the store.
    /// A failing record read is the read's failure; a fleet state that cannot be read or opened
    /// is only absent.
    async fn read(&self, fleet: bool) -> Result<StoreRead, StoreError> {
        let Some(store) = &self.store else {
            return Ok(StoreRead::default());
        };
        let record = self.bounded("get", store.get(&self.key));
        let state = async {
            if !fleet {
                return None;
            }
            let value = self.bounded("get", store.get(&self.fleet_key)).await.ok()??;
            FleetState::decode(&self.fleet_sealer.open_text(&value).await?)
        };
        let (record, fleet) = join(record, state).await;
        Ok(StoreRead {
            record: self.open(record?).await,
            fleet,
        })
    }

    /// Writes the record and the fleet state (sealed, at the same time): one result per write.
    /// A platform that cannot seal stores nothing: never a plain value.
    async fn save(
        &self,
        record: Option<(Arc<TokenRecord>, u64)>,
        fleet: Option<(FleetState, u64)>,
    ) -> Vec<Result<(), StoreError>> {
        let Some(store) = self.store.as_ref().filter(|s| s.writes()) else {
            return Vec::new();
        };
        let put_record = async {
            let (rec, ttl_secs) = record?;
            let value = self.sealer.seal(&rec).await?;
            Some(self.bounded("put", store.put(&self.key, &value, ttl_secs)).await)
        };
        let put_fleet = async {
            let (state, ttl_secs) = fleet?;
            let value = self.fleet_sealer.seal_text(&state.encode()).await?;
            Some(
                self.bounded("put", store.put(&self.fleet_key, &value, ttl_secs))
                    .await,
            )
        };
        let (a, b) = join(put_record, put_fleet).await;
        a.into_iter().chain(b).collect()
    }
}

impl<T, S, C: Clock, N: Notify, K: Seal> Inner<T, S, C, N, K> {
    /// The record in a stored value; one that does not open is counted and missed.
    async fn open(&self, value: Option<String>) -> Option<TokenRecord> {
        let value = value?;
        let opened = self.sealer.open(&value).await;
        if opened.is_none() {
            self.machine.borrow_mut().store_rejected();
        }
        opened
    }

    /// Feeds one event to the machine; wakes the waiters when a flight has landed.
    fn event(&self, f: impl FnOnce(&mut Machine, u64) -> Action) -> Action {
        let (action, landed) = self.touch(|m, now| {
            let action = f(m, now);
            (action, m.take_landed())
        });
        if landed {
            self.notify.notify_all();
        }
        action
    }

    /// Runs `f` on the machine at the current time, then hands what happened to the observer.
    fn touch<R>(&self, f: impl FnOnce(&mut Machine, u64) -> R) -> R {
        let now = self.clock.now_ms();
        let (result, events) = {
            let mut m = self.machine.borrow_mut();
            let result = f(&mut m, now);
            (result, m.take_events())
        };
        if let Some(observer) = self.observer.borrow().as_ref() {
            events.iter().for_each(observer);
        }
        result
    }
}
