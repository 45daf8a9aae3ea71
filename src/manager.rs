//! The token manager: memory → store → mint, with one token request at a time per instance.
//!
//! It reaches the world only through the small traits in [`crate::seams`] — a [`TokenSource`],
//! a [`Store`], a [`Clock`] — whose real implementations live in the edges. Futures carry no
//! `Send` bound: wasm is single-threaded, and the manager shares its state through `Rc`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};

use crate::error::Error;
use crate::lifecycle::{Phase, Policy, refresh_backoff_ms};
use crate::record::TokenRecord;
use crate::seams::{Clock, Store, TokenSource};
use crate::stats::Stats;

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This instance's memory.
    Memory,
    /// The shared store.
    Store,
    /// A token request (made by this call, or by the one it joined).
    Network,
}

impl Source {
    /// `memory`, `kv` or `network`, as the JS API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Memory => "memory",
            Source::Store => "kv",
            Source::Network => "network",
        }
    }
}

/// A token handed to a caller.
#[derive(Clone, Debug)]
pub struct Served {
    /// The token.
    pub record: Rc<TokenRecord>,
    /// Where it came from.
    pub source: Source,
}

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
    pub record: Rc<TokenRecord>,
    /// The end of the lease (the token's refresh point).
    pub until_ms: u64,
}

type FlightResult = Result<(Rc<TokenRecord>, Source), Error>;

/// Appended to the cache key for the minting lock in stores that support `put_if_absent`.
pub const MINT_LOCK_SUFFIX: &str = ":minting";
/// The lock outlives the token request's timeout by this much, then frees itself.
const MINT_LOCK_GRACE_MS: u64 = 2_000;
/// A process that lost the lock looks for the winner's token after 50 ms, doubling to 500 ms.
const MINT_POLL_MIN_MS: u64 = 50;
const MINT_POLL_MAX_MS: u64 = 500;
type Flight = Shared<LocalBoxFuture<'static, FlightResult>>;

#[derive(Default)]
struct State {
    memory: Option<Rc<TokenRecord>>,
    /// The token request under way (at most one is recorded), with its number and start.
    flight: Option<(u64, u64, Flight)>,
    flights_started: u64,
    /// The last token the API refused: never taken back from a (possibly lagging) store.
    rejected: Option<String>,
    refresh_failures: u32,
    next_refresh_ms: u64,
}

struct Inner<T, S, C> {
    key: String,
    policy: Policy,
    jitter: f64,
    source: T,
    store: Option<S>,
    clock: C,
    state: RefCell<State>,
    stats: Cell<Stats>,
    share_flights: Cell<bool>,
}

/// Gets, caches and refreshes the tokens of one [`TokenSource`], stored under one key.
/// Cheap to clone (shared state).
pub struct TokenManager<T, S, C> {
    inner: Rc<Inner<T, S, C>>,
}

impl<T, S, C> Clone for TokenManager<T, S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T: TokenSource + 'static, S: Store + 'static, C: Clock + 'static> TokenManager<T, S, C> {
    /// A manager for tokens from `source`, kept in `store` (if any) under `key` (use
    /// [`Config::cache_key`]). `jitter` in [-1, 1] is this instance's shift of the refresh point
    /// (pick it at random). Fails when the policy is invalid.
    pub fn new(
        key: impl Into<String>,
        policy: Policy,
        jitter: f64,
        source: T,
        store: Option<S>,
        clock: C,
    ) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            inner: Rc::new(Inner {
                key: key.into(),
                policy,
                jitter,
                source,
                store,
                clock,
                state: RefCell::default(),
                stats: Cell::default(),
                share_flights: Cell::new(true),
            }),
        })
    }

    /// Whether callers join a token request already under way (the default). Turn it off where
    /// callers live in separate I/O contexts that must not wait on each other's I/O — requests
    /// in one workerd isolate: each then makes its own request (to a minting authority that
    /// single-flights), and a background refresh still starts only once.
    pub fn set_share_flights(&self, share: bool) {
        self.inner.share_flights.set(share);
    }

    /// The store key.
    pub fn cache_key(&self) -> &str {
        &self.inner.key
    }

    /// The lifecycle policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.stats.get()
    }

    /// The phase of the token in memory now, if there is one.
    pub fn phase(&self) -> Option<(Phase, Rc<TokenRecord>)> {
        let rec = self.inner.state.borrow().memory.clone()?;
        Some((self.inner.phase(&rec, self.inner.clock.now_ms()), rec))
    }

    /// The token this manager would serve next, with its phase, without minting: memory, else
    /// the store (read, not adopted). For health reports.
    pub async fn peek(&self) -> Option<(Phase, Rc<TokenRecord>)> {
        if let Some(found) = self.phase() {
            return Some(found);
        }
        let store = self.inner.store.as_ref()?;
        let rec = TokenRecord::decode(&store.get(&self.inner.key).await.ok()??)?;
        Some((self.inner.phase(&rec, self.inner.clock.now_ms()), Rc::new(rec)))
    }

    /// A token that may be served without asking again until the lease ends (while fresh).
    pub fn lease(&self) -> Option<Lease> {
        let rec = self.inner.state.borrow().memory.clone()?;
        let until_ms = self.inner.policy.timeline(&rec, self.inner.jitter).refresh_at_ms;
        (self.inner.clock.now_ms() < until_ms).then_some(Lease {
            record: rec,
            until_ms,
        })
    }

    /// A usable token: from memory, else the store, else one token request shared by every
    /// caller that arrives while it runs.
    pub async fn get(&self) -> Result<Lookup, Error> {
        let inner = &self.inner;
        let now = inner.clock.now_ms();
        let cached = inner.state.borrow().memory.clone();
        if let Some(rec) = cached {
            match inner.phase(&rec, now) {
                Phase::Fresh => {
                    inner.bump(|s| s.memory_hits += 1);
                    return Ok(self.lookup(rec, Source::Memory, Phase::Fresh));
                }
                Phase::Stale => {
                    inner.bump(|s| s.memory_hits += 1);
                    return Ok(self.lookup(rec, Source::Memory, Phase::Stale));
                }
                // kept until replaced: it tells the source which token to replace
                Phase::Expired => {}
            }
        }
        let (rec, source) = self.flight(false).await?;
        let phase = inner.phase(&rec, inner.clock.now_ms());
        if phase == Phase::Expired {
            return Err(Error::InvalidResponse {
                status: 200,
                reason: "the token was already past its usable life on arrival".into(),
            });
        }
        Ok(self.lookup(rec, source, phase))
    }

    /// For a minting authority answering a caller that holds `held` and finds it stale: a newer
    /// token if there is one, else one refresh now (shared with every other caller, honouring
    /// the backoff after failures). If that refresh fails while `held` is still usable, `held`
    /// is served again (stale-if-error).
    pub async fn get_replacing(&self, held: &str) -> Result<Lookup, Error> {
        let lookup = self.get().await?;
        if lookup.served.record.access_token != held {
            return Ok(lookup);
        }
        let inner = &self.inner;
        let current = lookup.served;
        let backing_off = inner.clock.now_ms() < inner.state.borrow().next_refresh_ms;
        if backing_off {
            return Ok(Lookup {
                served: current,
                refresh: None,
            });
        }
        match self.flight(true).await {
            Ok((record, source)) => Ok(Lookup {
                served: Served { record, source },
                refresh: None,
            }),
            Err(_) if inner.phase(&current.record, inner.clock.now_ms()).usable() => Ok(Lookup {
                served: current,
                refresh: None,
            }),
            Err(e) => Err(e),
        }
    }

    /// Forgets the token everywhere (memory and store).
    pub async fn invalidate(&self) {
        let taken = self.inner.state.borrow_mut().memory.take();
        if let Some(rec) = taken {
            self.inner.state.borrow_mut().rejected = Some(rec.access_token.clone());
        }
        if let Some(store) = &self.inner.store {
            if store.delete(&self.inner.key).await.is_err() {
                self.inner.bump(|s| s.kv_errors += 1);
            }
        }
    }

    /// Forgets `access_token` (one the API refused) only where it is still the cached token:
    /// compare-and-delete, so a token another caller already replaced survives. Returns
    /// whether anything was dropped.
    pub async fn invalidate_token(&self, access_token: &str) -> bool {
        let inner = &self.inner;
        let mut dropped = false;
        {
            let mut st = inner.state.borrow_mut();
            st.rejected = Some(access_token.to_owned());
            if st.memory.as_ref().is_some_and(|r| r.access_token == access_token) {
                st.memory = None;
                dropped = true;
            }
        }
        if let Some(store) = &inner.store {
            let key = &inner.key;
            match store.get(key).await {
                Ok(Some(v)) if TokenRecord::decode(&v).is_some_and(|r| r.access_token == access_token) => {
                    dropped = true;
                    if store.delete(key).await.is_err() {
                        inner.bump(|s| s.kv_errors += 1);
                    }
                }
                Ok(_) => {}
                Err(_) => inner.bump(|s| s.kv_errors += 1),
            }
        }
        dropped
    }

    fn lookup(&self, rec: Rc<TokenRecord>, source: Source, phase: Phase) -> Lookup {
        let refresh = if phase == Phase::Stale {
            self.start_refresh()
        } else {
            None
        };
        Lookup {
            served: Served { record: rec, source },
            refresh,
        }
    }

    /// Starts a background refresh unless one is running or the last one failed too recently.
    fn start_refresh(&self) -> Option<LocalBoxFuture<'static, ()>> {
        self.inner.forget_dead_flight();
        {
            let st = self.inner.state.borrow();
            if st.flight.is_some() || self.inner.clock.now_ms() < st.next_refresh_ms {
                return None;
            }
        }
        self.inner.bump(|s| s.refreshes += 1);
        let flight = self.flight(true);
        Some(flight.map(|_| ()).boxed_local())
    }

    /// Joins the token request under way (when sharing), or starts one.
    fn flight(&self, refresh: bool) -> Flight {
        self.inner.forget_dead_flight();
        if self.inner.share_flights.get() {
            if let Some((_, _, f)) = self.inner.state.borrow().flight.clone() {
                self.inner.bump(|s| s.coalesced += 1);
                return f;
            }
        }
        let inner = Rc::clone(&self.inner);
        let (id, replacing) = {
            let mut st = inner.state.borrow_mut();
            st.flights_started += 1;
            // the token to replace: the one held, or else the one the API refused
            let held = st.memory.as_ref().map(|r| r.access_token.clone());
            (st.flights_started, held.or_else(|| st.rejected.clone()))
        };
        let fut = async move {
            let result = inner.load_or_mint(refresh, replacing.as_deref()).await;
            let mut st = inner.state.borrow_mut();
            if st.flight.as_ref().is_some_and(|(running, _, _)| *running == id) {
                st.flight = None;
            }
            // A refresh that brings back the token it was to replace did not refresh anything.
            let unchanged = |rec: &TokenRecord| replacing.as_deref() == Some(rec.access_token.as_str());
            match &result {
                Ok((rec, _)) if !(refresh && unchanged(rec)) => {
                    st.refresh_failures = 0;
                    st.next_refresh_ms = 0;
                }
                Ok(_) => {
                    st.refresh_failures += 1;
                    st.next_refresh_ms = inner.clock.now_ms() + refresh_backoff_ms(st.refresh_failures, None);
                }
                Err(e) if refresh => {
                    st.refresh_failures += 1;
                    st.next_refresh_ms =
                        inner.clock.now_ms() + refresh_backoff_ms(st.refresh_failures, e.retry_after());
                }
                Err(_) => {}
            }
            result
        }
        .boxed_local()
        .shared();
        let started = self.inner.clock.now_ms();
        let mut st = self.inner.state.borrow_mut();
        if st.flight.is_none() {
            st.flight = Some((id, started, fut.clone()));
        }
        fut
    }
}

impl<T: TokenSource, S: Store, C: Clock> Inner<T, S, C> {
    fn bump(&self, f: impl FnOnce(&mut Stats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    fn phase(&self, rec: &TokenRecord, now: u64) -> Phase {
        self.policy.phase(rec, self.jitter, now)
    }

    /// A flight running longer than a token request may take (plus the minting lock's wait)
    /// will never finish — its I/O was cancelled, for example with the request that started it.
    /// Forget it, so later callers start a new one instead of joining it forever.
    fn forget_dead_flight(&self) {
        let limit = 2 * (self.policy.request_timeout_ms + MINT_LOCK_GRACE_MS);
        let now = self.clock.now_ms();
        let mut st = self.state.borrow_mut();
        if st
            .flight
            .as_ref()
            .is_some_and(|(_, started, _)| now.saturating_sub(*started) > limit)
        {
            st.flight = None;
        }
    }

    fn remember(&self, rec: TokenRecord) -> Rc<TokenRecord> {
        let rec = Rc::new(rec);
        self.state.borrow_mut().memory = Some(Rc::clone(&rec));
        rec
    }

    /// A usable token from the store (for a refresh: only a *fresh* one that differs from the
    /// token in memory, i.e. one another instance already refreshed).
    async fn read_store(&self, refresh: bool) -> Option<TokenRecord> {
        let store = self.store.as_ref()?;
        let value = match store.get(&self.key).await {
            Ok(v) => v?,
            Err(_) => {
                self.bump(|s| s.kv_errors += 1);
                return None;
            }
        };
        let rec = TokenRecord::decode(&value)?;
        let st = self.state.borrow();
        if st.rejected.as_deref() == Some(rec.access_token.as_str()) {
            return None;
        }
        let phase = self.phase(&rec, self.clock.now_ms());
        let wanted = if refresh {
            phase == Phase::Fresh
                && st
                    .memory
                    .as_ref()
                    .is_none_or(|m| m.access_token != rec.access_token)
        } else {
            phase.usable()
        };
        wanted.then_some(rec)
    }

    async fn load_or_mint(&self, refresh: bool, replacing: Option<&str>) -> FlightResult {
        if let Some(rec) = self.read_store(refresh).await {
            self.bump(|s| s.kv_hits += 1);
            return Ok((self.remember(rec), Source::Store));
        }
        let lock = format!("{}{MINT_LOCK_SUFFIX}", self.key);
        let claim = self.claim_mint(&lock).await;
        if claim == Some(false) {
            // Another process sharing the store is minting: wait for its token, no longer than
            // a token request may take; if none comes, mint after all.
            if let Some(rec) = self.await_other_mint(refresh).await {
                self.bump(|s| s.kv_hits += 1);
                return Ok((self.remember(rec), Source::Store));
            }
        }
        let minted = self.mint(replacing).await.map(|rec| (rec, Source::Network));
        if claim == Some(true) {
            if let Some(store) = &self.store {
                if store.delete(&lock).await.is_err() {
                    self.bump(|s| s.kv_errors += 1);
                }
            }
        }
        minted
    }

    /// Takes the minting lock: `Some(true)` taken, `Some(false)` held by another process,
    /// `None` when the store cannot lock. A failing store gets a second try after a short
    /// pause (contention is often transient), then minting goes ahead without the lock.
    async fn claim_mint(&self, lock: &str) -> Option<bool> {
        let store = self.store.as_ref()?;
        let ttl = self.policy.request_timeout_ms + MINT_LOCK_GRACE_MS;
        for attempt in 0..2 {
            match store.put_if_absent(lock, "minting", ttl).await {
                Ok(claim) => return claim,
                Err(_) => {
                    self.bump(|s| s.kv_errors += 1);
                    if attempt == 0 {
                        self.clock.sleep(MINT_POLL_MIN_MS).await;
                    }
                }
            }
        }
        None
    }

    async fn await_other_mint(&self, refresh: bool) -> Option<TokenRecord> {
        let deadline = self.clock.now_ms() + self.policy.request_timeout_ms + MINT_LOCK_GRACE_MS;
        let mut wait = MINT_POLL_MIN_MS;
        while self.clock.now_ms() < deadline {
            self.clock.sleep(wait).await;
            if let Some(rec) = self.read_store(refresh).await {
                return Some(rec);
            }
            wait = (wait * 2).min(MINT_POLL_MAX_MS);
        }
        None
    }

    async fn mint(&self, replacing: Option<&str>) -> Result<Rc<TokenRecord>, Error> {
        let rec = match self.source.mint(replacing, self.policy.request_timeout_ms).await {
            Ok(rec) => rec,
            Err(e) => {
                self.bump(|s| s.failures += 1);
                return Err(e);
            }
        };
        self.bump(|s| s.mints += 1);
        let now = self.clock.now_ms();
        let rec = self.remember(rec);
        if let (Some(store), Some(ttl)) = (&self.store, rec.store_ttl_secs(now)) {
            if store.put(&self.key, &rec.encode(), ttl).await.is_err() {
                self.bump(|s| s.kv_errors += 1);
            }
        }
        Ok(rec)
    }
}
