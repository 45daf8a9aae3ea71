//! The token lifecycle as a synchronous, deterministic state machine (in the style of
//! quinn-proto): it owns the cached record, the one flight under way, failures and backoff, and
//! the policy. It never awaits, sleeps or reads a clock, and does no I/O: callers feed it events
//! with `now` and carry out the [`Action`]s it answers with (the async driver in
//! [`crate::TokenManager`] does that over the seams).
//!
//! ```text
//!  event (with now)                         action
//!  want(call)            ───────────────▶  Serve | ServeAndRefresh | ReadStore | Mint | WaitUntil | Fail
//!  stored(call, read)    ───────────────▶  Serve | ClaimLock | ReadStore | Mint | Unlock | WaitUntil | Fail
//!  claimed(call, claim)  ───────────────▶  ReadStore | Mint | WaitUntil | Fail
//!  minted(call, result)  ───────────────▶  Save | Unlock | Serve | Fail
//!  saved(call, results)  ───────────────▶  Unlock | Serve | Fail
//!  refused(token), invalidate(), timeout()  (state only)
//! ```
//!
//! One [`Call`] is one caller's request; the machine keeps in it which flight the caller owns or
//! waits on. At most one flight runs per machine (per cache key), so two mints are never in
//! flight at once; a flight has a deadline, after which it is forgotten as dead (its I/O was
//! cancelled) and the next caller starts a new one.
//!
//! ## Across a fleet (instances sharing a store)
//! A flight reads the store (the record, and the [`FleetState`]: the gate and budget every
//! instance keeps) before it asks for a token. With a store that can lock (`put_if_absent`):
//! - **double-checked locking**: whoever takes the minting lock reads the store *again* before
//!   minting — the holder before it may have saved and released in between — and takes a
//!   record it finds there (a refresh takes one newer than the token it set out to replace);
//! - **a waiter never mints on a timer**: one that finds the lock taken looks for the holder's
//!   token, then tries the lock again, until the lock's whole life has passed
//!   ([`Policy::lock_ttl_ms`], longer than the longest mint); then it fails with
//!   `store_unavailable`, never mints without the lock;
//! - **a failed write keeps the lock** until it expires, so the waiters do not come in to mint
//!   a token that exists but could not be stored;
//! - **the gate is the fleet's**: the holder writes a cooldown (429, `Retry-After`, the budget),
//!   a hold (a refusal) or a backoff (5xx) beside the record, and every instance that reads it
//!   answers with that error instead of asking; the budget's window is merged the same way.
//!
//! When the store cannot be reached, [`crate::StoreOutage`] decides: mint alone, at most once per
//! rotation spacing, or fail after [`Policy::store_wait_ms`].

//! ## Parts
//! Each concern is a type of its own, with its own tests; [`Machine`] only routes events
//! between them:
//! - the **slot** (`slot.rs`): the token held, the token refused, which stored records to take;
//! - the **flight** (`flight.rs`): steps, deadlines, roles, lock polling, in-mint retries;
//! - the **gate** (`gate.rs`): cooldown, hold and backoff — the one answer to "may I mint now";
//! - the **budget** (`budget.rs`): token requests per window, across restarts and the fleet;
//! - the **refusal hold** (`refusal.rs`): when a fresh token is refused again, stop minting;
//! - the **outbox** (`outbox.rs`): events, and the [`crate::Stats`] counted from them;
//! - the **lock** (`lock.rs`), the **outage** policy (`outage.rs`), the fleet's **pool**
//!   (`pool.rs`); what the machine is told outside a flight (`inputs.rs`) and its queries
//!   (`view.rs`);
//! - and what goes in and out: a [`Call`] (`call.rs`), the [`Action`]s and [`StoreOp`]s
//!   (`action.rs`), what a store can do and how it fails ([`Shared`], [`StoreError`]:
//!   `store.rs` — the store seams depend on these, never the machine on the seams).

mod action;
mod budget;
mod call;
mod flight;
mod gate;
mod inputs;
mod lock;
mod outage;
mod outbox;
mod pool;
mod refusal;
mod slot;
mod store;
mod view;

use std::sync::Arc;

use crate::error::Error;
use crate::fleet::FleetState;
use crate::lifecycle::{LOCK_GRACE_MS, Phase, Policy};
use crate::record::TokenRecord;

pub use action::{Action, Refusal, StoreOp, StoreRead};
pub use budget::BudgetWindow;
pub use call::{Call, Want};
pub use flight::{MINT_POLL_MAX_MS, MINT_POLL_MIN_MS};
pub use slot::{CLOCK_SKEW_MS, Served, Source};
pub use store::{Shared, StoreError};

use budget::Budget;
use call::Role;
use flight::{Flight, Flights, Purpose, Recheck, Rng, Step, Then};
use gate::Gate;
use lock::Lock;
use outage::{Outage, Without};
use outbox::{Note, Outbox};
use refusal::RefusalHold;
use slot::Slot;

/// Slack added to the bounds of I/O steps (a flight step's deadline, the minting lock's life).
pub const MINT_LOCK_GRACE_MS: u64 = LOCK_GRACE_MS;

/// The lifecycle machine of one cache key. Plain data: `Send`, no futures, no clock.
#[derive(Clone, Debug)]
pub struct Machine {
    policy: Policy,
    shared: Shared,
    /// The store's shortest TTL, in seconds.
    min_ttl_secs: u64,
    slot: Slot,
    flights: Flights,
    gate: Gate,
    budget: Budget,
    refusals: RefusalHold,
    /// What to do when the store cannot be reached.
    outage: Outage,
    rng: Rng,
    outbox: Outbox,
    store_ops: Vec<StoreOp>,
}

const _: () = {
    const fn assert_send<T: Send + Sync>() {}
    assert_send::<Machine>();
    assert_send::<Call>();
    assert_send::<Action>();
};

impl Machine {
    /// A caller wants a token — or, for a call already in the machine, has waited as told.
    pub fn want(&mut self, now: u64, call: &mut Call) -> Action {
        self.timeout(now);
        match call.role {
            Role::Owns(id) => match self.flights.running(id) {
                Some(_) => return self.advance(now, call),
                // the flight landed (or was declared dead)
                None => call.role = Role::Landed(Some(id)),
            },
            Role::Joined(id) => match self.flights.running(id) {
                Some(f) => return Action::WaitUntil(f.deadline),
                None => call.role = Role::Landed(Some(id)),
            },
            Role::Free | Role::Landed(_) => {}
        }
        self.decide(now, call)
    }

    /// The store read of the owner's flight came back: the record the driver could open, and
    /// the fleet state (for writable stores).
    pub fn stored<R: Into<StoreRead>>(
        &mut self,
        now: u64,
        call: &mut Call,
        read: Result<R, StoreError>,
    ) -> Action {
        let Some(flight) = self.owned(call, now) else {
            return self.want(now, call);
        };
        // a store that fails is an outage, unless this read is the double check under the lock
        // or a read-only view's (a minting authority behind it agrees who mints)
        let under_lock = flight.step == Step::Rechecking;
        let read = match read {
            Ok(read) => read.into(),
            Err(e) => {
                self.store_failed(now, &e);
                if !under_lock && self.shared != Shared::ReadOnly {
                    return self.outage(now, call);
                }
                // a double check that failed is not "nothing stored" (see `Flight::recheck_failed`)
                if under_lock {
                    match self.flights.current_mut().recheck_failed(now, &self.policy) {
                        Recheck::Again(at) => return self.pause(now, call, at, Then::Recheck),
                        Recheck::GiveUp(e) => return self.fail_flight(now, call, e, None),
                        Recheck::MintWithout => {}
                    }
                }
                StoreRead::default()
            }
        };
        if let Some(e) = &read.fleet_error {
            self.store_failed(now, e);
        }
        if let Some(fleet) = &read.fleet {
            self.adopt_fleet(now, fleet);
        }
        let fleet_unknown = read.fleet_error.is_some();
        let taken = read.record.filter(|rec| {
            let replacing = flight.replacing.as_deref();
            let (policy, purpose) = (&self.policy, flight.purpose);
            self.slot
                .takes(policy, now, purpose, replacing, flight.replacing_issued, rec)
        });
        if let Some(rec) = taken {
            self.outbox.note(now, Note::StoreHit);
            self.slot.keep(Arc::new(rec), Source::Store);
            self.gate.on_success();
            self.flights.land(None);
            return self.release_or_serve(now, call);
        }
        // a fleet state that could not be read is not "none": without the lock this instance
        // knows neither the fleet's gate nor its budget, so it is an outage (under the lock,
        // the state this flight's first read adopted stands)
        if fleet_unknown && !under_lock {
            return self.outage(now, call);
        }
        // a miss: under the lock, or without a lock to take, mint (`mint` asks the gate)
        if under_lock || self.shared != Shared::Locking {
            return self.mint(now, call);
        }
        // nothing to take: a gate the fleet keeps (or this instance does) answers for it
        if let Err(e) = self.gate.admit(now) {
            return self.fail_flight(now, call, e, None);
        }
        self.claim(now, false)
    }

    /// The owner's claim of the minting lock came back: `true` taken, `false` held by another
    /// process.
    pub fn claimed(&mut self, now: u64, call: &mut Call, claim: Result<bool, StoreError>) -> Action {
        let Some(flight) = self.owned(call, now) else {
            // a late claim for a flight declared dead: a lock taken is released at once
            if claim == Ok(true) {
                call.lock = Lock::Releasing;
                return Action::Unlock;
            }
            return self.want(now, call);
        };
        match claim {
            Ok(true) => {
                call.lock = Lock::taken(flight.claim_sent, &self.policy);
                self.flights.current_mut().locked();
                // double-checked locking: the holder before may have saved and released since
                // this flight's read
                self.recheck(now)
            }
            Ok(false) => {
                let Some(at) = self.flights.current_mut().poll_lock(now, &self.policy) else {
                    let reason = "the minting lock stayed taken for longer than its lifetime";
                    let e = Error::StoreUnavailable {
                        reason: reason.into(),
                    };
                    return self.fail_flight(now, call, e, None);
                };
                self.pause(now, call, at, Then::Read)
            }
            Err(e) => {
                self.store_failed(now, &e);
                match flight.step {
                    // contention is often transient: one more try after a short pause
                    Step::Claiming { retried: false } => {
                        self.pause(now, call, now + MINT_POLL_MIN_MS, Then::Claim)
                    }
                    _ => self.outage(now, call),
                }
            }
        }
    }

    /// The store cannot be reached, so the fleet cannot agree on who mints: after
    /// `store_wait_ms` of trying, the outage policy decides what this instance does.
    fn outage(&mut self, now: u64, call: &mut Call) -> Action {
        // a blip is not an outage: the store is tried again for `store_wait_ms` (a renewal
        // does not wait: the held token is served, and the renewal backs off)
        let flight = self.flights.current_mut();
        if let Some(at) = flight.poll_outage(now, &self.policy) {
            return self.pause(now, call, at, Then::Read);
        }
        let purpose = flight.purpose;
        match self
            .outage
            .decide(now, &self.policy, purpose, self.budget.lifetime())
        {
            Without::MintAlone => {
                self.outbox.note(now, Note::StoreOutage { minted: true });
                self.flights.current_mut().alone = true;
                self.mint(now, call)
            }
            Without::Fail(reason) => self.outage_failed(now, call, reason),
        }
    }

    fn outage_failed(&mut self, now: u64, call: &mut Call, reason: &str) -> Action {
        self.outbox.note(now, Note::StoreOutage { minted: false });
        let error = Error::StoreUnavailable {
            reason: reason.into(),
        };
        self.fail_flight(now, call, error, None)
    }

    /// Ends the flight with `error` without a token request: a renewal backs off (the held
    /// token is still served); a lock held is released after `fleet` (the failure, for the
    /// fleet) is written.
    fn fail_flight(
        &mut self,
        now: u64,
        call: &mut Call,
        error: Error,
        fleet: Option<(FleetState, u64)>,
    ) -> Action {
        if self
            .flights
            .current()
            .is_some_and(|f| f.purpose == Purpose::Renew)
        {
            self.gate.renewal_failed(now, error.retry_after());
        }
        self.flights.land(Some(error));
        self.save_or_serve(now, call, None, fleet)
    }

    /// The owner's token request came back.
    pub fn minted(&mut self, now: u64, call: &mut Call, result: Result<TokenRecord, Error>) -> Action {
        let flight = self.owned(call, now);
        let result = result.and_then(|rec| {
            self.outbox.note(now, Note::Answered);
            if self.phase_of(&rec, now).usable() {
                Ok(rec)
            } else {
                Err(Error::InvalidResponse {
                    status: 200,
                    reason: "the token was already past its usable life on arrival".into(),
                })
            }
        });
        let Some(flight) = flight else {
            // a late answer to a flight declared dead (its process was paused, say): keep a good
            // token (and store it, if this call still holds the lock); after an error, free a
            // lock still held (fenced: only if still its own) and ask again — the fleet may have
            // a token by now — rather than fail the caller
            call.role = Role::Landed(None);
            return match result {
                Ok(rec) => {
                    self.outbox.note(
                        now,
                        Note::Minted {
                            lifetime_ms: rec.lifetime_ms(),
                        },
                    );
                    if !self.slot.newer(&rec) {
                        return self.release_or_serve(now, call);
                    }
                    self.keep_minted(now, call, rec)
                }
                Err(e) => {
                    self.outbox.note(
                        now,
                        Note::TokenError {
                            error: &e,
                            retrying: false,
                        },
                    );
                    self.release_or_serve(now, call)
                }
            };
        };
        match result {
            Ok(rec) => {
                let unchanged = flight.replacing.as_deref() == Some(rec.access_token.as_str());
                if flight.purpose == Purpose::Renew && unchanged {
                    // the source handed back the token to replace: nothing was renewed
                    self.gate.renewal_failed(now, None);
                } else {
                    self.gate.on_success();
                }
                self.budget.granted(rec.lifetime_ms());
                self.outbox.note(
                    now,
                    Note::Minted {
                        lifetime_ms: rec.lifetime_ms(),
                    },
                );
                self.flights.land(None);
                self.keep_minted(now, call, rec)
            }
            Err(e) => {
                let retry = flight.retry_at(now, &self.policy, &e, &mut self.rng);
                let retrying = retry.is_some();
                self.outbox.note(now, Note::TokenError { error: &e, retrying });
                if let Some(at) = retry {
                    return self.pause(now, call, at, Then::Mint);
                }
                // nothing was minted — the endpoint did not take the request (a 429: the
                // cooldown paces the fleet), or it was never sent (a local failure) — so the
                // budget gets its request back
                if e.is_local() || matches!(e, Error::RateLimited(_)) {
                    self.budget.refund(flight.last_attempt);
                }
                if e.is_local() {
                    // no signer, a key the platform refuses: the failure stays with this
                    // instance, never in the fleet's gate
                    self.gate.on_local_failure(now, &self.policy, &e);
                    self.flights.land(Some(e));
                    return self.release_or_serve(now, call);
                }
                if let Some(ms) = self.gate.on_failure(now, &self.policy, flight.purpose, &e) {
                    self.outbox.note(now, Note::Cooldown { error: &e, ms });
                }
                self.flights.land(Some(e));
                // the failure is the fleet's: written beside the record before the lock is freed
                self.save_or_serve(now, call, None, self.fleet_state(now))
            }
        }
    }

    /// Holds a token just minted, and writes it (with the fleet state) where it is worth it.
    fn keep_minted(&mut self, now: u64, call: &mut Call, rec: TokenRecord) -> Action {
        let rec = Arc::new(rec);
        let store = self.storable(now, &rec);
        if store.is_none() {
            call.lock.keep_to_expiry();
        }
        self.slot.keep(rec, Source::Network);
        self.save_or_serve(now, call, store, self.fleet_state(now))
    }

    /// The owner's [`Action::Save`] or [`Action::Unlock`] came back (one result per write or
    /// delete it made). The minting lock is released only after every write succeeded: a token
    /// (or a failure) the fleet cannot read must not invite the waiters in; the lock then
    /// expires by itself.
    pub fn saved(&mut self, now: u64, call: &mut Call, results: &[Result<(), StoreError>]) -> Action {
        let mut written = true;
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            written = false;
            self.store_failed(now, e);
        }
        if call.lock.saved(written) {
            return Action::Unlock;
        }
        self.want(now, call)
    }

    /// The record to write for `rec`, with its TTL: only to a writable store, and only when
    /// its remaining life fits the store's shortest TTL.
    fn storable(&self, now: u64, rec: &Arc<TokenRecord>) -> Option<(Arc<TokenRecord>, u64)> {
        if !self.shared.writes() {
            return None;
        }
        rec.store_ttl_secs(now, self.min_ttl_secs)
            .map(|ttl| (Arc::clone(rec), ttl))
    }

    /// After a flight landed: write what is worth writing, then free the lock (if held) — or
    /// serve at once.
    fn save_or_serve(
        &mut self,
        now: u64,
        call: &mut Call,
        record: Option<(Arc<TokenRecord>, u64)>,
        fleet: Option<(FleetState, u64)>,
    ) -> Action {
        if record.is_some() || fleet.is_some() {
            return Action::Save { record, fleet };
        }
        self.release_or_serve(now, call)
    }

    /// Frees the lock this call holds (nothing was written), or serves.
    fn release_or_serve(&mut self, now: u64, call: &mut Call) -> Action {
        if call.lock.release() {
            return Action::Unlock;
        }
        self.want(now, call)
    }

    /// What to do for a call that owns no running flight.
    fn decide(&mut self, now: u64, call: &mut Call) -> Action {
        let landed = match call.role {
            Role::Landed(id) => Some(id),
            _ => None,
        };
        let Some((rec, source)) = self.slot.usable(&self.policy, now) else {
            // no usable token: the flight this call waited on failed, or start/join one
            if let Some(e) = landed.flatten().and_then(|id| self.flights.failed(id)) {
                return Action::Fail(e.clone());
            }
            let asked = match &call.want {
                Want::Replacing(t) => Some(t.as_str()),
                Want::Usable => None,
            };
            let replacing = self.slot.replacing(asked);
            return self.fly(now, call, Purpose::Obtain, replacing);
        };
        if let Want::Replacing(held) = &call.want {
            let renew =
                rec.access_token == *held && !call.renewed && landed.is_none() && !self.gate.backing_off(now);
            if renew {
                call.renewed = true;
                let held = Some(held.clone());
                return self.fly(now, call, Purpose::Renew, held);
            }
        }
        let served = Served {
            record: Arc::clone(&rec),
            source: if landed.is_some() { source } else { Source::Memory },
        };
        if landed.is_none() {
            self.outbox.note(now, Note::MemoryHit);
        }
        call.role = Role::Free;
        let stale = self.phase_of(&rec, now) == Phase::Stale;
        if stale && self.flights.current().is_none() && self.gate.admits_renewal(now) {
            self.outbox.note(now, Note::Refresh);
            let mut refresh = Call::new(Want::Usable);
            refresh.role = Role::Owns(self.open(now, Purpose::Renew, Some(rec.access_token.clone())));
            return Action::ServeAndRefresh(served, refresh);
        }
        Action::Serve(served)
    }

    /// Joins the flight under way, or opens one that `call` owns.
    fn fly(&mut self, now: u64, call: &mut Call, purpose: Purpose, replacing: Option<String>) -> Action {
        if let Some(f) = self.flights.current() {
            call.role = Role::Joined(f.id);
            let deadline = f.deadline;
            self.outbox.note(now, Note::Coalesced);
            return Action::WaitUntil(deadline);
        }
        call.role = Role::Owns(self.open(now, purpose, replacing));
        self.advance(now, call)
    }

    fn open(&mut self, now: u64, purpose: Purpose, replacing: Option<String>) -> u64 {
        let issued = replacing.as_deref().and_then(|t| self.slot.issued_if_held(t));
        self.flights.open(now, &self.policy, purpose, replacing, issued)
    }

    /// The owner's next move in its flight.
    fn advance(&mut self, now: u64, call: &mut Call) -> Action {
        let f = self.flights.current_mut();
        match f.step {
            Step::Start if self.shared != Shared::Memory => self.read(now),
            Step::Start => self.mint(now, call),
            Step::Pause { at, then } if now >= at => match then {
                Then::Read => self.read(now),
                Then::Claim => self.claim(now, true),
                Then::Mint => self.mint(now, call),
                Then::Recheck => self.recheck(now),
            },
            Step::Pause { at, .. } => Action::WaitUntil(at),
            // an owner that re-asks while its I/O is under way (it should not): wait it out
            Step::Reading | Step::Claiming { .. } | Step::Rechecking | Step::Minting => {
                Action::WaitUntil(f.deadline)
            }
        }
    }

    /// Nothing to do before `at`; then `then`.
    fn pause(&mut self, now: u64, call: &mut Call, at: u64, then: Then) -> Action {
        self.flights.step(now, &self.policy, Step::Pause { at, then });
        self.advance(now, call)
    }

    fn read(&mut self, now: u64) -> Action {
        self.flights.step(now, &self.policy, Step::Reading);
        Action::ReadStore {
            fleet: self.shared.writes(),
        }
    }

    /// The double check under the lock.
    fn recheck(&mut self, now: u64) -> Action {
        self.flights.step(now, &self.policy, Step::Rechecking);
        Action::ReadStore { fleet: true }
    }

    fn claim(&mut self, now: u64, retried: bool) -> Action {
        self.flights.step(now, &self.policy, Step::Claiming { retried });
        self.flights.current_mut().claim_sent = now;
        Action::ClaimLock {
            ttl_ms: self.policy.lock_ttl_ms(),
        }
    }

    /// The one place a token request is asked for: only when the gate admits it, and never
    /// past the mint budget. Refused, the flight ends with that error (a budget refusal under
    /// the lock is written for the fleet before the lock is freed).
    fn mint(&mut self, now: u64, call: &mut Call) -> Action {
        // a lock whose life has passed may be another's by now: claimed again (and the claim
        // is followed by the double check, which takes the token another holder stored meanwhile)
        if call.lock.fences(now, &self.policy) {
            return self.claim(now, false);
        }
        if let Err(e) = self.gate.admit(now) {
            return self.fail_flight(now, call, e, None);
        }
        let alone = self.flights.current().is_some_and(|f| f.alone);
        if let Err((until, e, limit)) = self.budget.spend(now, &self.policy, alone) {
            // nobody asks again before the window allows it: one refusal, not one per caller
            self.gate.spent(until, e.clone());
            self.outbox.note(
                now,
                Note::BudgetExhausted {
                    error: &e,
                    limit: &limit,
                },
            );
            let fleet = self.fleet_state(now);
            return self.fail_flight(now, call, e, fleet);
        }
        self.flights.step(now, &self.policy, Step::Minting);
        let f = self.flights.current_mut();
        f.attempt(now);
        Action::Mint {
            replacing: f.replacing.clone(),
        }
    }

    /// The running flight, if `call` owns it.
    fn owned(&mut self, call: &Call, now: u64) -> Option<Flight> {
        self.timeout(now);
        match call.role {
            Role::Owns(id) => self.flights.running(id).cloned(),
            _ => None,
        }
    }
}
