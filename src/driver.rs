//! The async driver: carries out the lifecycle [`Machine`]'s actions as I/O over a [`Host`]'s
//! parts — a [`TokenSource`], a [`Store`], a [`Clock`], a [`Notify`] and an observer — and
//! nothing else. Every decision (serve, refresh, read, lock, mint, wait, fail, delete) is the
//! machine's; how long each I/O may take is its policy's.
//!
//! One driver for every host: the manager shares its state through `Arc` and a `Mutex` that is
//! never held across an await, so over `Send + Sync` parts (the native client) it is
//! `Send + Sync` and its futures are `Send`; over the JS hosts' parts it is local to their one
//! thread, at no cost.

use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::future::Future;

use futures_util::future::{Either, join, select};

use crate::assertion::fresh_jti;
use crate::config::{Config, url_host};
use crate::error::Error;
use crate::fleet::{FLEET_SUFFIX, FleetState};
use crate::host::{Host, Observe};
use crate::lifecycle::{Phase, Policy};
use crate::machine::StoreError;
use crate::machine::{Action, Call, Machine, Refusal, Served, Shared, StoreOp, StoreRead, Want};
use crate::record::{MIN_STORE_TTL_SECS, TokenRecord};
use crate::seams::{Clock, Notify, Seal, Store, TokenSource};
use crate::stats::Stats;

/// Appended to the cache key for the minting lock in stores that support `put_if_absent`.
pub const MINT_LOCK_SUFFIX: &str = ":minting";

/// The answer to [`TokenManager::get`]: the token, and a background refresh that the edge
/// must run (spawn it, or hand it to `waitUntil`) when the token is stale.
#[must_use]
pub struct Lookup<H: Host> {
    /// The token to use now.
    pub served: Served,
    /// Run this in the background ([`Refresh::run`]); it is `Some` at most once per refresh.
    pub refresh: Option<Refresh<H>>,
}

/// A background refresh the machine started: [`Refresh::run`] drives it to its end.
#[must_use]
pub struct Refresh<H: Host> {
    manager: TokenManager<H>,
    call: Call,
}

impl<H: Host> Refresh<H> {
    /// Drives the refresh (and any that follows it) to the end.
    pub async fn run(self) {
        let (manager, mut call) = (self.manager, self.call);
        while let Ok(Lookup {
            refresh: Some(next), ..
        }) = manager.run(call).await
        {
            call = next.call;
        }
    }
}

/// A token the edge may hand out without asking the manager again, until `until_ms`.
#[derive(Clone, Debug)]
pub struct Lease {
    /// The token.
    pub record: Arc<TokenRecord>,
    /// The end of the lease (the token's refresh point).
    pub until_ms: u64,
}

struct Inner<H: Host> {
    key: String,
    /// The token endpoint's host, for errors.
    host_name: String,
    /// The client's label, stamped on its events.
    label: Option<std::sync::Arc<str>>,
    lock_key: String,
    fleet_key: String,
    sealer: H::Seal,
    /// Seals the fleet state (its own key as context, so a record never opens as one).
    fleet_sealer: H::Seal,
    machine: Mutex<Machine>,
    host: H,
}

/// Gets, caches and refreshes the tokens of one [`Config`] over a [`Host`]'s parts: memory,
/// then the host's shared store (records sealed), then one token request shared by every
/// caller. Cheap to clone (shared state).
pub struct TokenManager<H: Host> {
    inner: Arc<Inner<H>>,
}

impl<H: Host> Clone for TokenManager<H> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<H: Host> TokenManager<H> {
    /// A manager for `config`'s tokens over `host`, kept under `config`'s cache key. `jitter`
    /// in [-1, 1] is this instance's shift of the refresh point (pick it at random). The
    /// machine is told what the host's store can do. Fails when the policy is invalid.
    pub fn new(config: &Config, policy: Policy, jitter: f64, host: H) -> Result<Self, Error> {
        let key = config.cache_key().to_owned();
        let fleet_key = format!("{key}{FLEET_SUFFIX}");
        let store = host.store();
        let shared = store.map_or(Shared::Memory, Store::shared);
        let min_ttl = store.map_or(MIN_STORE_TTL_SECS, Store::min_ttl_secs);
        Ok(Self {
            inner: Arc::new(Inner {
                host_name: url_host(config.token_url()).to_owned(),
                label: config.label_shared(),
                lock_key: format!("{key}{MINT_LOCK_SUFFIX}"),
                sealer: H::Seal::new(config.sealing_secret(), &key),
                fleet_sealer: H::Seal::new(config.sealing_secret(), &fleet_key),
                fleet_key,
                key,
                machine: Mutex::new(Machine::new(policy, jitter, shared)?.with_min_ttl(min_ttl)),
                host,
            }),
        })
    }

    /// The client's label ([`crate::ConfigBuilder::label`]), stamped on its events.
    pub fn label(&self) -> Option<&str> {
        self.inner.label.as_deref()
    }

    /// The store key.
    pub fn cache_key(&self) -> &str {
        &self.inner.key
    }

    /// The host's parts.
    pub fn host(&self) -> &H {
        &self.inner.host
    }

    /// The lifecycle policy.
    pub fn policy(&self) -> Policy {
        self.inner.machine().policy().clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.machine().stats()
    }

    /// The phase of the token in memory now, if there is one.
    pub fn phase(&self) -> Option<(Phase, Arc<TokenRecord>)> {
        self.inner.machine().current(self.inner.now())
    }

    /// The mint budget's window, to keep across restarts (see [`Machine::budget_window`]).
    pub fn budget_window(&self) -> crate::BudgetWindow {
        self.inner.machine().budget_window()
    }

    /// Takes back a window kept from before a restart.
    pub fn restore_budget_window(&self, kept: &crate::BudgetWindow) {
        self.inner.machine().restore_budget_window(kept);
    }

    /// Token requests in the budget's window, and the budget.
    pub fn budget_use(&self) -> (u64, u64) {
        self.inner.machine().budget_use(self.inner.now())
    }

    /// What each quota the token endpoint declared has left, less what was sent since it said:
    /// `(name, size, left, reset instant)` (see [`Machine::quotas`]).
    pub fn quotas(&self) -> Vec<(String, Option<u64>, u64, u64)> {
        self.inner.machine().quotas(self.inner.now())
    }

    /// The token held and its timeline (see [`Machine::timeline`]).
    pub fn timeline(&self) -> Option<(Arc<TokenRecord>, crate::Timeline)> {
        self.inner.machine().timeline()
    }

    /// The gate closed now, if any (see [`Machine::gate`]).
    pub fn gate(&self) -> Option<crate::Gate> {
        self.inner.machine().gate(self.inner.now())
    }

    /// When the machine's answers next change by themselves (see [`Machine::next_deadline`]).
    pub fn next_deadline(&self) -> Option<u64> {
        self.inner.machine().next_deadline(self.inner.now())
    }

    /// Takes back what the fleet keeps in the store beside the record (the mint budget's
    /// window, a gate still closed, the quotas declared) without minting: for an instance that
    /// starts where a budget or a cooldown must hold at once (a restarted minting authority).
    /// A store that cannot be read is left for the next flight to find.
    pub async fn recall(&self) {
        let inner = &self.inner;
        let Some(store) = inner.host.store() else {
            return;
        };
        let Ok(Some(value)) = inner.bounded("get", store.get(&inner.fleet_key)).await else {
            return;
        };
        let text = inner.fleet_sealer.open_text(&value).await;
        if let Some(fleet) = text.as_deref().and_then(FleetState::decode) {
            inner.touch(|m, now| m.recall(now, &fleet));
        }
    }

    /// The token this manager would serve next, with its phase, without minting: memory, else
    /// the store (read, not adopted). For health reports.
    pub async fn peek(&self) -> Option<(Phase, Arc<TokenRecord>)> {
        let inner = &self.inner;
        match inner.machine().peek(inner.now()) {
            Ok(held) => return Some(held),
            Err(false) => return None,
            Err(true) => {}
        }
        let value = inner
            .bounded("get", inner.host.store()?.get(&inner.key))
            .await
            .ok()??;
        let rec = inner.sealer.open(&value).await?;
        let phase = inner.machine().phase_of(&rec, inner.now());
        Some((phase, Arc::new(rec)))
    }

    /// A token that may be served without asking again until the lease ends (while fresh).
    pub fn lease(&self) -> Option<Lease> {
        let (record, until_ms) = self.inner.machine().lease(self.inner.now())?;
        Some(Lease { record, until_ms })
    }

    /// A usable token: from memory, else the store, else one token request shared by every
    /// caller that arrives while it runs.
    pub async fn get(&self) -> Result<Lookup<H>, Error> {
        self.run(Call::new(Want::Usable)).await
    }

    /// For a minting authority answering a caller that holds `held` and finds it stale or
    /// refused: a newer token if there is one, else one renewal (shared, honouring the backoff
    /// after failures); if that fails while `held` is still usable, `held` again.
    pub async fn get_replacing(&self, held: &str) -> Result<Lookup<H>, Error> {
        self.run(Call::new(Want::Replacing(held.to_owned()))).await
    }

    /// Forgets the token everywhere (memory and a writable store), and every hold.
    pub async fn invalidate(&self) {
        self.inner.touch(|m, now| m.invalidate(now));
        self.inner.store_ops().await;
    }

    /// The API refused `access_token`: dropped only where it is still the cached token
    /// (compare-and-delete, so a token another caller already replaced survives) — unless a
    /// refusal hold keeps it (see [`Machine::refused`]). Returns what the machine did.
    pub async fn invalidate_token(&self, access_token: &str) -> Refusal {
        let refusal = self.inner.touch(|m, now| m.refused(now, access_token));
        self.inner.store_ops().await;
        refusal
    }

    /// Drives one call through the machine until it is served or fails.
    async fn run(&self, mut call: Call) -> Result<Lookup<H>, Error> {
        let inner = &self.inner;
        // the owner id of the lock this call claimed last: only that value is ever released
        let mut owner: Option<String> = None;
        let (mut action, mut epoch) = inner.event(|m, now| m.want(now, &mut call));
        loop {
            (action, epoch) = match action {
                Action::Serve(served) => {
                    return Ok(Lookup {
                        served,
                        refresh: None,
                    });
                }
                Action::ServeAndRefresh(served, call) => {
                    let manager = self.clone();
                    return Ok(Lookup {
                        served,
                        refresh: Some(Refresh { manager, call }),
                    });
                }
                Action::Fail(e) => return Err(e),
                Action::ReadStore { fleet } => {
                    let read = inner.read(fleet).await;
                    inner.event(|m, now| m.stored(now, &mut call, read))
                }
                Action::ClaimLock { ttl_ms } => {
                    owner = fresh_jti();
                    let claim = match (inner.host.store(), &owner) {
                        (Some(store), Some(owner)) => {
                            let lock = store.put_if_absent(&inner.lock_key, owner, ttl_ms);
                            inner.bounded("lock", lock).await
                        }
                        (None, _) => Err(StoreError("no store to lock".into())),
                        (_, None) => Err(StoreError("no randomness for the lock's owner".into())),
                    };
                    inner.event(|m, now| m.claimed(now, &mut call, claim))
                }
                Action::Mint { replacing } => {
                    let minted = inner.mint(replacing.as_deref()).await;
                    let declared = inner.host.source().declared();
                    inner.event(|m, now| {
                        m.learn(now, &declared);
                        m.minted(now, &mut call, minted)
                    })
                }
                Action::Save { record, fleet } => {
                    let results = inner.save(record, fleet).await;
                    inner.event(|m, now| m.saved(now, &mut call, &results))
                }
                Action::Unlock => {
                    // fenced: deletes the lock only while it is still this claim's
                    let results = match (inner.host.store(), owner.take()) {
                        (Some(store), Some(owner)) => {
                            let unlock = store.delete_if(&inner.lock_key, &owner);
                            vec![inner.bounded("unlock", unlock).await.map(drop)]
                        }
                        _ => Vec::new(),
                    };
                    inner.event(|m, now| m.saved(now, &mut call, &results))
                }
                Action::WaitUntil(at) => {
                    let now = inner.now();
                    if at > now {
                        let woken = pin!(inner.host.notify().wait(epoch));
                        let slept = pin!(inner.host.clock().sleep(at - now));
                        select(woken, slept).await;
                    }
                    inner.event(|m, now| m.want(now, &mut call))
                }
            };
        }
    }
}

impl<H: Host> Inner<H> {
    fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        self.host.clock().now_ms()
    }

    /// A store call, bounded by the policy's store timeout: one that takes longer is a store
    /// error (counted and survived), so no caller waits forever on a store.
    async fn bounded<V>(
        &self,
        name: &str,
        op: impl Future<Output = Result<V, StoreError>>,
    ) -> Result<V, StoreError> {
        let limit = self.machine().policy().store_timeout_ms;
        match select(pin!(op), pin!(self.host.clock().sleep(limit))).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(StoreError(format!("KV {name} timed out after {limit} ms"))),
        }
    }

    /// One token request, bounded by the policy even if the transport ignores its own timeout
    /// (so it ends inside the flight's deadline, and the machine still counts it as this
    /// flight's answer).
    async fn mint(&self, replacing: Option<&str>) -> Result<TokenRecord, Error> {
        let (timeout_ms, bound_ms) = {
            let m = self.machine();
            (m.policy().request_timeout_ms, m.policy().mint_bound_ms())
        };
        let request = pin!(self.host.source().mint(replacing, timeout_ms));
        match select(request, pin!(self.host.clock().sleep(bound_ms))).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(Error::Timeout {
                host: self.host_name.clone(),
                after_ms: timeout_ms,
            }),
        }
    }

    /// The record (and, with `fleet`, the fleet state, read at the same time) from the store.
    /// A failing record read is the read's failure; a fleet state that cannot be *read* is
    /// reported as such (never as "none": the machine decides), one that does not open or
    /// decode is absent.
    async fn read(&self, fleet: bool) -> Result<StoreRead, StoreError> {
        let Some(store) = self.host.store() else {
            return Ok(StoreRead::default());
        };
        let record = self.bounded("get", store.get(&self.key));
        let state = async {
            if !fleet {
                return Ok(None);
            }
            let Some(value) = self.bounded("get", store.get(&self.fleet_key)).await? else {
                return Ok(None);
            };
            let text = self.fleet_sealer.open_text(&value).await;
            Ok(text.as_deref().and_then(FleetState::decode))
        };
        let (record, fleet) = join(record, state).await;
        let (fleet, fleet_error) = match fleet {
            Ok(fleet) => (fleet, None),
            Err(e) => (None, Some(e)),
        };
        Ok(StoreRead {
            record: self.open(record?).await,
            fleet,
            fleet_error,
        })
    }

    /// Writes the record and the fleet state (sealed, at the same time): one result per write.
    /// A platform that cannot seal stores nothing (never a plain value), and that is a failed
    /// write: the lock is kept.
    async fn save(
        &self,
        record: Option<(Arc<TokenRecord>, u64)>,
        fleet: Option<(FleetState, u64)>,
    ) -> Vec<Result<(), StoreError>> {
        let Some(store) = self.host.store() else {
            return Vec::new();
        };
        let put_record = async {
            let (rec, ttl_secs) = record?;
            let Some(value) = self.sealer.seal(&rec).await else {
                return Some(Err(StoreError::unsealed()));
            };
            Some(self.bounded("put", store.put(&self.key, &value, ttl_secs)).await)
        };
        let put_fleet = async {
            let (state, ttl_secs) = fleet?;
            let Some(value) = self.fleet_sealer.seal_text(&state.encode()).await else {
                return Some(Err(StoreError::unsealed()));
            };
            Some(
                self.bounded("put", store.put(&self.fleet_key, &value, ttl_secs))
                    .await,
            )
        };
        let (a, b) = join(put_record, put_fleet).await;
        a.into_iter().chain(b).collect()
    }

    /// Carries out the store operations the machine asked for outside a flight.
    async fn store_ops(&self) {
        let ops = self.machine().take_store_ops();
        let Some(store) = self.host.store() else {
            return;
        };
        for op in ops {
            let done = match op {
                StoreOp::Delete => self.bounded("delete", store.delete(&self.key)).await,
                // the stored value that holds the refused token is deleted only while it is
                // still there, in one store operation: a token saved since the read survives
                StoreOp::DeleteIf { token } => match self.bounded("get", store.get(&self.key)).await {
                    Ok(Some(v)) => match self.sealer.open(&v).await {
                        Some(held) if held.access_token == token => self
                            .bounded("delete", store.delete_if(&self.key, &v))
                            .await
                            .map(drop),
                        _ => Ok(()),
                    },
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = done {
                self.touch(|m, now| m.store_failed(now, &e));
            }
        }
    }

    /// The record in a stored value; one that does not open is counted and missed.
    async fn open(&self, value: Option<String>) -> Option<TokenRecord> {
        let value = value?;
        let opened = self.sealer.open(&value).await;
        if opened.is_none() {
            self.machine().store_rejected();
        }
        opened
    }

    /// Feeds one event to the machine; wakes the waiters when a flight has landed. With the
    /// action comes the waker's epoch taken *before* the machine was asked, for a wait the
    /// action may ask for: a flight that lands after the answer still wakes it.
    fn event(&self, f: impl FnOnce(&mut Machine, u64) -> Action) -> (Action, u64) {
        let epoch = self.host.notify().epoch();
        let (action, landed) = self.touch(|m, now| {
            let action = f(m, now);
            (action, m.take_landed())
        });
        if landed {
            self.host.notify().notify_all();
        }
        (action, epoch)
    }

    /// Runs `f` on the machine at the current time, then hands what happened to the observer
    /// (outside the lock).
    fn touch<R>(&self, f: impl FnOnce(&mut Machine, u64) -> R) -> R {
        let now = self.now();
        let (result, events) = {
            let mut m = self.machine();
            let result = f(&mut m, now);
            (result, m.take_events())
        };
        let observer = self.host.observer();
        for mut e in events {
            e.label.clone_from(&self.label);
            observer.observe(&e);
        }
        result
    }
}
