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
//! When the store cannot be reached, [`StoreOutage`] decides: mint alone, at most once per
//! rotation spacing, or fail after [`Policy::store_wait_ms`].

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::{Error, ServerError};
use crate::events::{Event, EventKind};
use crate::fleet::{FleetState, Gate, GateKind, merge_sent, merge_sorted};
use crate::lifecycle::{LOCK_GRACE_MS, Phase, Policy, StoreOutage, refresh_backoff_ms};
use crate::record::MIN_STORE_TTL_SECS;
use crate::record::TokenRecord;
use crate::seams::StoreError;
use crate::stats::Stats;

/// Slack added to the bounds of I/O steps (a flight step's deadline, the minting lock's life).
pub const MINT_LOCK_GRACE_MS: u64 = LOCK_GRACE_MS;
/// A process that lost the minting lock looks for the winner's token after this long…
pub const MINT_POLL_MIN_MS: u64 = 50;
/// …doubling up to this.
pub const MINT_POLL_MAX_MS: u64 = 500;

/// What the store behind a machine can do, which decides the actions it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// No shared store: memory only.
    None,
    /// Read, never written: a cache in front of a minting authority that writes it.
    ReadOnly,
    /// Read and written: records and the fleet state are saved; the minting lock is tried.
    Writable,
}

impl From<bool> for Shared {
    /// `true`: a writable store; `false`: none.
    fn from(has_store: bool) -> Self {
        if has_store { Shared::Writable } else { Shared::None }
    }
}

/// What a store read found: the record, and (for writable stores) the fleet state.
#[derive(Clone, Debug, Default)]
pub struct StoreRead {
    /// The token record, if one opened.
    pub record: Option<TokenRecord>,
    /// The fleet's gate and budget window, if stored.
    pub fleet: Option<FleetState>,
}

impl From<Option<TokenRecord>> for StoreRead {
    fn from(record: Option<TokenRecord>) -> Self {
        Self { record, fleet: None }
    }
}

/// How far ahead of this clock another instance's clock may be: a stored record issued later
/// than that is refused.
pub const CLOCK_SKEW_MS: u64 = 60_000;

/// Where a served token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This instance's memory.
    Memory,
    /// The shared store.
    Store,
    /// A token request (made by this call, or by the flight it waited on).
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
    pub record: Arc<TokenRecord>,
    /// Where it came from.
    pub source: Source,
}

/// The mint budget's window as plain data, for a host that keeps it across restarts (the
/// Worker's Durable Object stores it, so a restart storm cannot reset the budget).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BudgetWindow {
    /// When each token request in the window was sent (ms since the epoch), oldest first.
    pub sent: Vec<u64>,
    /// The lifetime of the last token granted, which sizes the budget.
    pub lifetime_ms: Option<u64>,
}

impl BudgetWindow {
    /// Reads a kept window (its JSON), field by field; anything malformed is `None`.
    pub fn decode(json: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let o = v.as_object()?;
        let sent = o
            .get("sent")?
            .as_array()?
            .iter()
            .map(serde_json::Value::as_u64)
            .collect::<Option<Vec<u64>>>()?;
        let lifetime_ms = match o.get("lifetime_ms") {
            None | Some(serde_json::Value::Null) => None,
            Some(l) => Some(l.as_u64()?),
        };
        Some(Self { sent, lifetime_ms })
    }
}

/// What [`Machine::refused`] did with a refused token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It was the token held: dropped, and never served again. Retry with a new one.
    Dropped,
    /// It was not the token held (already replaced, or unknown): remembered as refused.
    NotHeld,
    /// A refusal hold is on: the token is kept and nothing is minted; do not retry.
    Kept,
}

impl Refusal {
    /// `dropped`, `not_held` or `kept`, as the JS API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Dropped => "dropped",
            Refusal::NotHeld => "not_held",
            Refusal::Kept => "kept",
        }
    }
}

/// What a caller wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// Any usable token.
    Usable,
    /// A token other than this one, which the caller holds and considers stale or refused (a
    /// minting authority's callers ask this way). Unless a newer token exists, one renewal is
    /// tried; if it fails while the held token is usable, the held token is served again.
    Replacing(String),
}

/// What a caller is doing with respect to the flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Not tied to a flight.
    Free,
    /// Runs flight `id`'s I/O.
    Owns(u64),
    /// Waits for flight `id` to end.
    Joined(u64),
    /// Its flight ended (`None`: it was declared dead before its answer came): serve what it
    /// left (or its error), never start another.
    Landed(Option<u64>),
}

/// Whether a call holds the shared store's minting lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lock {
    /// Not held.
    No,
    /// Held: released once the token (or the failure) is written.
    Held,
    /// Its release is under way.
    Releasing,
}

/// One caller's request, threaded through the events of the machine.
#[derive(Clone, Debug)]
pub struct Call {
    want: Want,
    role: Role,
    /// A `Replacing` call tries one renewal at most.
    renewed: bool,
    lock: Lock,
}

impl Call {
    /// A call for `want`.
    pub fn new(want: Want) -> Self {
        Self {
            want,
            role: Role::Free,
            renewed: false,
            lock: Lock::No,
        }
    }
}

/// What the machine asks of its driver.
#[derive(Debug)]
pub enum Action {
    /// Hand this token to the caller; done.
    Serve(Served),
    /// Hand this token to the caller, and run `refresh` in the background (a new [`Call`] that
    /// owns the refresh flight: drive it with [`Machine::want`]).
    ServeAndRefresh(Served, Call),
    /// Read the store (the record; with `fleet`, the fleet state too, at once), then report
    /// with [`Machine::stored`].
    ReadStore {
        /// Read the fleet state as well.
        fleet: bool,
    },
    /// Try to take the minting lock (`put_if_absent`), then report with [`Machine::claimed`].
    ClaimLock {
        /// How long the lock lives.
        ttl_ms: u64,
    },
    /// Ask the token source for a token, then report with [`Machine::minted`].
    Mint {
        /// The token being replaced, if any.
        replacing: Option<String>,
    },
    /// Write `record` (sealed, with its TTL in seconds) and `fleet` (sealed, with its TTL),
    /// then report with [`Machine::saved`] (one result per write).
    Save {
        /// The record and its TTL, when it is worth storing.
        record: Option<(Arc<TokenRecord>, u64)>,
        /// The fleet state and its TTL.
        fleet: Option<(FleetState, u64)>,
    },
    /// Delete the minting lock, then report with [`Machine::saved`].
    Unlock,
    /// Nothing to do before `t` (or before the flight this call waits on ends): then call
    /// [`Machine::want`] again with the same call.
    WaitUntil(u64),
    /// The call failed.
    Fail(Error),
}

/// Why a flight runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// There is no usable token.
    Obtain,
    /// There is one, but it is stale or a caller asked to replace it.
    Renew,
}

/// What a pause leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    /// Read the store (looking for the lock holder's token, or trying a failing store again).
    Read,
    /// Claim the minting lock again (after a failing claim).
    Claim,
    /// The next attempt of a failed mint.
    Mint,
}

/// Where the flight is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Not begun: the owner's next `want` begins it.
    Start,
    /// Waiting for a store read made without the lock.
    Reading,
    /// Waiting for a lock claim (`retried` after a failing first claim).
    Claiming { retried: bool },
    /// Waiting for the read made under the lock (the double check).
    Rechecking,
    /// Waiting for the token source.
    Minting,
    /// Nothing to do before `at`.
    Pause { at: u64, then: Then },
}

#[derive(Clone, Debug)]
struct Flight {
    id: u64,
    purpose: Purpose,
    step: Step,
    /// The token this flight replaces (held, expired or refused), for the token source…
    replacing: Option<String>,
    /// …and when it was issued, if it is the one held (a refresh takes a newer one).
    replacing_issued: Option<u64>,
    /// Past this, the flight is dead: its I/O will never report.
    deadline: u64,
    /// While the lock is someone else's: the next wait, and when to stop waiting.
    lock_wait: Option<(u64, u64)>,
    /// [`StoreOutage::Fail`]: when to stop trying an unreachable store.
    outage_until: Option<u64>,
    /// Token requests this flight has made, and when the first was sent.
    attempts: u32,
    mint_started: u64,
}

/// The lifecycle machine of one cache key. Plain data: `Send`, no futures, no clock.
#[derive(Clone, Debug)]
pub struct Machine {
    policy: Policy,
    jitter: f64,
    shared: Shared,
    /// The store's shortest TTL, in seconds.
    min_ttl_secs: u64,
    record: Option<(Arc<TokenRecord>, Source)>,
    /// The last token the API refused: never taken back from a (possibly lagging) store.
    refused: Option<String>,
    flight: Option<Flight>,
    flights: u64,
    /// The last flight that ended, and its error if it failed.
    landed: Option<(u64, Option<Error>)>,
    /// Failed renewals in a row, and the instant before which none is tried again.
    failures: u32,
    retry_at: u64,
    /// A flight ended since the driver last asked ([`Machine::take_landed`]).
    just_landed: bool,
    /// The error of the last failed flight, for callers during its backoff.
    last_error: Option<Error>,
    /// No token request before this instant: a rate limit's cooldown, and its error.
    cooldown: Option<(u64, Error)>,
    /// No token request before this instant: a refusal's hold, and its error…
    hold: Option<(u64, Error)>,
    /// …and how many holds in a row (each doubles).
    holds: u32,
    /// The last refusal by the API was of a token minted moments before.
    fresh_refused: bool,
    /// Until then a refused token is kept and nothing is minted for that reason…
    refusal_hold_until: u64,
    /// …and how many such holds in a row.
    refusal_holds: u32,
    /// When each token request in the budget window was sent, oldest first.
    sent: VecDeque<u64>,
    /// The lifetime of the last token granted (sizes the mint budget).
    lifetime: Option<u64>,
    /// When this instance last minted alone because the store could not be reached.
    outage_minted_at: Option<u64>,
    /// State of the generator behind retry jitter (deterministic per instance).
    rng: u64,
    /// What happened since the driver last asked ([`Machine::take_events`]).
    events: Vec<Event>,
    stats: Stats,
}

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Machine>();
    assert_send::<Call>();
    assert_send::<Action>();
};

impl Machine {
    /// A machine with `policy`; `jitter` in [-1, 1] shifts this instance's refresh point;
    /// `shared` says what store backs memory (`true`: a writable one). Fails when the policy is
    /// invalid.
    pub fn new(policy: Policy, jitter: f64, shared: impl Into<Shared>) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            policy,
            jitter,
            shared: shared.into(),
            min_ttl_secs: MIN_STORE_TTL_SECS,
            record: None,
            refused: None,
            flight: None,
            flights: 0,
            landed: None,
            failures: 0,
            retry_at: 0,
            just_landed: false,
            last_error: None,
            cooldown: None,
            hold: None,
            holds: 0,
            fresh_refused: false,
            refusal_hold_until: 0,
            refusal_holds: 0,
            sent: VecDeque::new(),
            lifetime: None,
            outage_minted_at: None,
            rng: (jitter.to_bits() ^ 0x9E37_79B9_7F4A_7C15) | 1,
            events: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// The same machine over a store whose shortest TTL is `secs` (60 s, Workers KV's, unless
    /// told): a token with less life left is kept in memory only.
    #[must_use]
    pub fn with_min_ttl(mut self, secs: u64) -> Self {
        self.min_ttl_secs = secs.max(1);
        self
    }

    /// The lifecycle policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// A store operation failed outside a flight (a delete, say): counted, and an event.
    pub fn store_failed(&mut self, now: u64, error: &StoreError) {
        self.stats.kv_errors += 1;
        let mut e = Event::new(EventKind::StoreError, now);
        e.detail = Some(error.0.clone());
        self.events.push(e);
    }

    /// What happened since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The phase of `record` for this instance at `now`.
    pub fn phase_of(&self, record: &TokenRecord, now: u64) -> Phase {
        self.policy.phase(record, self.jitter, now)
    }

    /// The token in memory and its phase, if there is one.
    pub fn current(&self, now: u64) -> Option<(Phase, Arc<TokenRecord>)> {
        let (rec, _) = self.record.as_ref()?;
        Some((self.phase_of(rec, now), Arc::clone(rec)))
    }

    /// A token that may be served without asking the machine again until the returned instant:
    /// the refresh point of a fresh token.
    pub fn lease(&self, now: u64) -> Option<(Arc<TokenRecord>, u64)> {
        let (rec, _) = self.record.as_ref()?;
        let until = self.policy.timeline(rec, self.jitter).refresh_at_ms;
        (now < until).then(|| (Arc::clone(rec), until))
    }

    /// The next instant at which the machine's answers change by themselves: the flight's
    /// deadline, the end of a backoff, the token's refresh point or end of usable life.
    pub fn next_deadline(&self, now: u64) -> Option<u64> {
        let flight = self.flight.as_ref().map(|f| f.deadline);
        let backoff = (self.retry_at > now).then_some(self.retry_at);
        let token = self.record.as_ref().and_then(|(rec, _)| {
            let t = self.policy.timeline(rec, self.jitter);
            [t.refresh_at_ms, t.usable_until_ms]
                .into_iter()
                .find(|&at| at > now)
        });
        [flight, backoff, token].into_iter().flatten().min()
    }

    /// Whether a flight ended since the last call: the driver then wakes the callers waiting.
    pub fn take_landed(&mut self) -> bool {
        std::mem::take(&mut self.just_landed)
    }

    /// A deadline passed: a flight past its deadline is forgotten as dead, so that its waiters
    /// and later callers start anew. Called by every event; hosts may also call it alone.
    pub fn timeout(&mut self, now: u64) {
        if self.flight.as_ref().is_some_and(|f| now >= f.deadline) {
            self.land(None);
        }
    }

    /// The API refused `token`.
    ///
    /// Usually the token is dropped (compare-and-delete: only if it is the one held) and never
    /// served or taken back from the store again. But when the API refuses a token minted
    /// moments ago ([`Policy::fresh_refusal_ms`]) after a replacement for the same reason,
    /// minting again will not help: a hold begins ([`Policy::hold_after`]) during which the
    /// token is kept, its 401 goes back as it is, and nothing is minted for that reason; when
    /// the hold ends, one replacement is tried again.
    pub fn refused(&mut self, now: u64, token: &str) -> Refusal {
        if now < self.refusal_hold_until {
            return Refusal::Kept;
        }
        let Some((rec, _)) = self.record.clone().filter(|(r, _)| r.access_token == token) else {
            // not the token held: already replaced, or unknown
            self.refused = Some(token.to_owned());
            return Refusal::NotHeld;
        };
        let fresh = now.saturating_sub(rec.issued_at_ms) < self.policy.fresh_refusal_ms;
        if fresh && self.fresh_refused {
            self.refusal_holds += 1;
            self.refusal_hold_until = now + self.policy.hold_after(self.refusal_holds);
            self.fresh_refused = false;
            return Refusal::Kept;
        }
        if !fresh {
            self.refusal_holds = 0;
        }
        self.fresh_refused = fresh;
        self.refused = Some(token.to_owned());
        self.record = None;
        Refusal::Dropped
    }

    /// Whether a refused token is being kept (see [`Machine::refused`]).
    pub fn refusals_held(&self, now: u64) -> bool {
        now < self.refusal_hold_until
    }

    /// Forgets the token in memory (it is never taken back from the store), and this instance's
    /// holds: the user says something changed. The fleet's gate and budget (in the store) stay.
    pub fn invalidate(&mut self, _now: u64) {
        if let Some((rec, _)) = self.record.take() {
            self.refused = Some(rec.access_token.clone());
        }
        self.hold = None;
        self.last_error = None;
        self.retry_at = 0;
        self.holds = 0;
        self.refusal_hold_until = 0;
        self.refusal_holds = 0;
        self.fresh_refused = false;
        // the user asks for a new token: one more may be minted alone while the store is down
        // (the mint budget still caps it)
        self.outage_minted_at = None;
    }

    /// The mint budget's window now, to keep across restarts.
    pub fn budget_window(&self) -> BudgetWindow {
        BudgetWindow {
            sent: self.sent.iter().copied().collect(),
            lifetime_ms: self.lifetime,
        }
    }

    /// Takes back a window kept from before a restart: its requests count against the budget as
    /// if this instance had made them (later and duplicate entries are kept in order).
    pub fn restore_budget_window(&mut self, kept: &BudgetWindow) {
        // a kept window out of order is not one of ours: only this instance's requests count
        let kept_sent = if kept.sent.is_sorted() {
            &kept.sent[..]
        } else {
            &[]
        };
        self.sent = merge_sorted(kept_sent.iter().copied(), self.sent.iter().copied()).into();
        self.lifetime = self.lifetime.or(kept.lifetime_ms);
    }

    /// Token requests in the window and the budget, at `now`.
    pub fn budget_use(&self, now: u64) -> (u64, u64) {
        let window = self.policy.budget_window_ms;
        let used = self.sent.iter().filter(|t| now < **t + window).count() as u64;
        (used, self.policy.mint_budget(self.lifetime))
    }

    /// Counts a stored value that did not open (forged, tampered, foreign): a miss.
    pub fn store_rejected(&mut self) {
        self.stats.kv_rejected += 1;
    }

    /// A caller wants a token — or, for a call already in the machine, has waited as told.
    pub fn want(&mut self, now: u64, call: &mut Call) -> Action {
        self.timeout(now);
        match call.role {
            Role::Owns(id) => match &self.flight {
                Some(f) if f.id == id => return self.advance(now, call),
                // the flight landed (or was declared dead)
                _ => call.role = Role::Landed(Some(id)),
            },
            Role::Joined(id) => match &self.flight {
                Some(f) if f.id == id => return Action::WaitUntil(f.deadline),
                _ => call.role = Role::Landed(Some(id)),
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
        let under_lock = flight.step == Step::Rechecking;
        // the next step after a miss: under the lock, or for a read-only view in front of a
        // minting authority, mint (`mint` checks the gate); else claim the lock
        let mints = under_lock || self.shared == Shared::ReadOnly;
        let read = match read {
            Ok(read) => read.into(),
            Err(e) => {
                self.store_failed(now, &e);
                if !mints {
                    return self.outage(now, call);
                }
                StoreRead::default()
            }
        };
        if let Some(fleet) = &read.fleet {
            self.adopt_fleet(now, fleet);
        }
        if let Some(rec) = read.record.filter(|rec| self.takes(now, &flight, rec)) {
            self.stats.kv_hits += 1;
            self.record = Some((Arc::new(rec), Source::Store));
            self.renewed();
            self.land(None);
            return self.release_or_serve(now, call);
        }
        if mints {
            return self.mint(now, call);
        }
        // nothing to take: a gate the fleet keeps (or this instance does) answers for it
        if let Some(e) = self.blocked(now) {
            return self.fail_flight(now, call, e, None);
        }
        self.claim(now, false)
    }

    /// Whether a flight takes a record read from the store: not refused, not from the future,
    /// usable; a refresh takes only one other than the token it replaces, and fresh or issued
    /// after it.
    fn takes(&self, now: u64, flight: &Flight, rec: &TokenRecord) -> bool {
        let not_refused = self.refused.as_deref() != Some(rec.access_token.as_str());
        // a record "issued" in the future claims more life than its `expires_in` allows
        let not_from_the_future = rec.issued_at_ms <= now + CLOCK_SKEW_MS;
        let phase = self.phase_of(rec, now);
        let wanted = match flight.purpose {
            Purpose::Obtain => phase.usable(),
            Purpose::Renew => {
                let other = flight.replacing.as_deref() != Some(rec.access_token.as_str());
                let newer = flight.replacing_issued.is_some_and(|t| rec.issued_at_ms > t);
                phase.usable() && other && (phase == Phase::Fresh || newer)
            }
        };
        not_refused && not_from_the_future && wanted
    }

    /// The fleet state read from the store: its budget window is merged into this instance's,
    /// and a gate still closed is kept here too.
    fn adopt_fleet(&mut self, now: u64, fleet: &FleetState) {
        let window = self.policy.budget_window_ms;
        let live = |t: &u64| now < t + window;
        let merged = merge_sent(
            self.sent.iter().copied().filter(live),
            fleet.sent.iter().copied().filter(live),
        );
        self.sent = merged.into();
        if fleet.lifetime_ms.is_some() {
            self.lifetime = fleet.lifetime_ms;
        }
        let Some(g) = fleet.gate.as_ref().filter(|g| g.until_ms > now) else {
            return;
        };
        match g.kind {
            GateKind::Cooldown => {
                if self
                    .cooldown
                    .as_ref()
                    .is_none_or(|(until, _)| *until < g.until_ms)
                {
                    self.start_cooldown(now, g.until_ms - now, &g.error);
                }
            }
            GateKind::Hold => {
                if self.hold.as_ref().is_none_or(|(until, _)| *until < g.until_ms) {
                    self.hold = Some((g.until_ms, g.error.clone()));
                }
                self.holds = self.holds.max(g.repeats);
            }
            GateKind::Backoff => {
                if self.retry_at < g.until_ms {
                    self.retry_at = g.until_ms;
                    self.last_error = Some(g.error.clone());
                }
                self.failures = self.failures.max(g.repeats);
            }
        }
    }

    /// The fleet state to write beside the record: this instance's budget window and its
    /// closed gate, if any; with the TTL that keeps it while either matters.
    fn fleet_state(&self, now: u64) -> Option<(FleetState, u64)> {
        if self.shared != Shared::Writable {
            return None;
        }
        let window = self.policy.budget_window_ms;
        let sent: Vec<u64> = self.sent.iter().copied().filter(|t| now < t + window).collect();
        let gate = if let Some((until, e)) = self.cooldown.as_ref().filter(|(u, _)| *u > now) {
            Some((GateKind::Cooldown, *until, 1, e))
        } else if let Some((until, e)) = self.hold.as_ref().filter(|(u, _)| *u > now) {
            Some((GateKind::Hold, *until, self.holds, e))
        } else {
            self.last_error
                .as_ref()
                .filter(|_| self.retry_at > now)
                .map(|e| (GateKind::Backoff, self.retry_at, self.failures, e))
        };
        let gate = gate.map(|(kind, until_ms, repeats, e)| Gate {
            kind,
            until_ms,
            repeats,
            error: e.clone(),
        });
        let keep_until = sent
            .last()
            .map(|t| t + window)
            .into_iter()
            .chain(gate.as_ref().map(|g| g.until_ms))
            .max()?;
        let ttl = keep_until
            .saturating_sub(now)
            .div_ceil(1000)
            .max(self.min_ttl_secs);
        let state = FleetState {
            sent,
            lifetime_ms: self.lifetime,
            gate,
        };
        Some((state, ttl))
    }

    /// The owner's claim of the minting lock came back: `Some(true)` taken, `Some(false)` held
    /// by another process, `None` when the store cannot lock.
    pub fn claimed(&mut self, now: u64, call: &mut Call, claim: Result<Option<bool>, StoreError>) -> Action {
        let Some(flight) = self.owned(call, now) else {
            // a late claim for a flight declared dead: a lock taken is released at once
            if claim == Ok(Some(true)) {
                call.lock = Lock::Releasing;
                return Action::Unlock;
            }
            return self.want(now, call);
        };
        match claim {
            Ok(Some(true)) => {
                call.lock = Lock::Held;
                // double-checked locking: the holder before may have saved and released since
                // this flight's read
                self.set_step(now, Step::Rechecking);
                Action::ReadStore { fleet: true }
            }
            Ok(Some(false)) => {
                let (wait, give_up_at) = flight.lock_wait.unwrap_or((
                    MINT_POLL_MIN_MS,
                    now + self.policy.lock_ttl_ms() + MINT_LOCK_GRACE_MS,
                ));
                if now >= give_up_at {
                    let reason = "the minting lock stayed taken for longer than its lifetime";
                    return self.fail_flight(
                        now,
                        call,
                        Error::StoreUnavailable {
                            reason: reason.into(),
                        },
                        None,
                    );
                }
                self.flight_mut().lock_wait = Some(((wait * 2).min(MINT_POLL_MAX_MS), give_up_at));
                let at = (now + wait).min(give_up_at);
                self.set_step(now, Step::Pause { at, then: Then::Read });
                self.advance(now, call)
            }
            Ok(None) => self.mint(now, call),
            Err(e) => {
                self.store_failed(now, &e);
                match flight.step {
                    // contention is often transient: one more try after a short pause
                    Step::Claiming { retried: false } => {
                        let at = now + MINT_POLL_MIN_MS;
                        self.set_step(
                            now,
                            Step::Pause {
                                at,
                                then: Then::Claim,
                            },
                        );
                        self.advance(now, call)
                    }
                    _ => self.outage(now, call),
                }
            }
        }
    }

    /// The store cannot be reached, so the fleet cannot agree on who mints: [`StoreOutage`]
    /// decides what this instance does.
    fn outage(&mut self, now: u64, call: &mut Call) -> Action {
        match self.policy.store_outage {
            StoreOutage::Mint => {
                let spacing = self.lifetime.map_or(0, |l| self.policy.rotation_spacing_ms(l));
                if self.outage_minted_at.is_some_and(|t| now < t + spacing) {
                    let reason = "the store cannot be reached, and this instance already minted \
                                  without it this token lifetime";
                    return self.outage_failed(now, call, reason);
                }
                self.outage_minted_at = Some(now);
                let mut e = Event::new(EventKind::StoreOutage, now);
                e.detail = Some("mint".into());
                self.events.push(e);
                self.mint(now, call)
            }
            StoreOutage::Fail => {
                let wait_ms = self.policy.store_wait_ms;
                let f = self.flight_mut();
                let until = *f.outage_until.get_or_insert(now + wait_ms);
                if now >= until || f.purpose == Purpose::Renew {
                    return self.outage_failed(now, call, "the store did not answer within storeWaitMs");
                }
                let at = (now + MINT_POLL_MAX_MS).min(until);
                self.set_step(now, Step::Pause { at, then: Then::Read });
                self.advance(now, call)
            }
        }
    }

    fn outage_failed(&mut self, now: u64, call: &mut Call, reason: &str) -> Action {
        let mut e = Event::new(EventKind::StoreOutage, now);
        e.detail = Some("fail".into());
        e.code = Some(crate::code::STORE_UNAVAILABLE);
        self.events.push(e);
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
        if self.flight.as_ref().is_some_and(|f| f.purpose == Purpose::Renew) {
            self.renew_failed(now, error.retry_after());
        }
        self.land(Some(error));
        self.save_or_serve(now, call, None, fleet)
    }

    /// The owner's token request came back.
    pub fn minted(&mut self, now: u64, call: &mut Call, result: Result<TokenRecord, Error>) -> Action {
        let flight = self.owned(call, now);
        let result = result.and_then(|rec| {
            self.stats.mints += 1;
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
            // a late answer to a flight declared dead: keep a good token (and store it, if this
            // call still holds the lock), report to its caller
            call.role = Role::Landed(None);
            return match result {
                Ok(rec) => {
                    let newer = self
                        .record
                        .as_ref()
                        .is_none_or(|(r, _)| r.issued_at_ms < rec.issued_at_ms);
                    self.minted_event(now, &rec);
                    if !newer {
                        return self.release_or_serve(now, call);
                    }
                    let rec = Arc::new(rec);
                    let store = self.storable(now, &rec);
                    Self::keep_lock_unless_stored(call, &store);
                    self.record = Some((rec, Source::Network));
                    self.save_or_serve(now, call, store, self.fleet_state(now))
                }
                Err(e) => {
                    self.stats.failures += 1;
                    self.token_error_event(now, &e, false);
                    Action::Fail(e)
                }
            };
        };
        match result {
            Ok(rec) => {
                let unchanged = flight.replacing.as_deref() == Some(rec.access_token.as_str());
                if flight.purpose == Purpose::Renew && unchanged {
                    // the source handed back the token to replace: nothing was renewed
                    self.renew_failed(now, None);
                } else {
                    self.renewed();
                }
                self.lifetime = Some(rec.lifetime_ms());
                self.minted_event(now, &rec);
                let rec = Arc::new(rec);
                let store = self.storable(now, &rec);
                Self::keep_lock_unless_stored(call, &store);
                self.record = Some((rec, Source::Network));
                self.land(None);
                self.save_or_serve(now, call, store, self.fleet_state(now))
            }
            Err(e) => {
                self.stats.failures += 1;
                let retry = self.retry_at_for(now, &flight, &e);
                self.token_error_event(now, &e, retry.is_some());
                if let Some(at) = retry {
                    self.set_step(now, Step::Pause { at, then: Then::Mint });
                    return self.advance(now, call);
                }
                self.remember_failure(now, &flight, &e);
                self.land(Some(e));
                // the failure is the fleet's: written beside the record before the lock is freed
                self.save_or_serve(now, call, None, self.fleet_state(now))
            }
        }
    }

    /// When to try a failed mint again: only a flight that callers wait on (`Obtain`; a
    /// renewal has its own backoff while the held token is served), only for faults that may
    /// pass (5xx without `Retry-After`, network, timeout), only while attempts are left and the
    /// next attempt can end within the mint's deadline.
    fn retry_at_for(&mut self, now: u64, flight: &Flight, e: &Error) -> Option<u64> {
        let passing = matches!(e, Error::Network { .. } | Error::Timeout { .. })
            || matches!(e, Error::Server(s) if s.retry_after.is_none());
        if flight.purpose != Purpose::Obtain || !passing || flight.attempts >= self.policy.mint_attempts {
            return None;
        }
        let unit = self.unit();
        let at = now + self.policy.retry_wait(flight.attempts, unit);
        let ends = at + self.policy.request_timeout_ms;
        (ends <= flight.mint_started + self.policy.mint_deadline_ms).then_some(at)
    }

    /// What a failed flight leaves behind: a cooldown (rate limited), a hold (refused), or a
    /// backoff (anything else), so that the next callers get an error, not a token request.
    fn remember_failure(&mut self, now: u64, flight: &Flight, e: &Error) {
        match e {
            Error::RateLimited(s) | Error::Server(s)
                if e.code() == crate::code::RATE_LIMITED || s.retry_after.is_some() =>
            {
                self.start_cooldown(now, self.policy.cooldown(s.retry_after), e);
            }
            Error::MintBudgetExhausted { retry_after } => {
                self.start_cooldown(now, self.policy.cooldown(Some(*retry_after)), e);
            }
            Error::AccessDenied(_)
            | Error::InvalidRequest(_)
            | Error::InvalidResponse { .. }
            | Error::InvalidConfig { .. } => {
                self.holds += 1;
                self.hold = Some((now + self.policy.hold_after(self.holds), e.clone()));
            }
            _ => {}
        }
        if flight.purpose == Purpose::Renew {
            self.renew_failed(now, e.retry_after());
        } else {
            self.failures += 1;
            self.retry_at = now + refresh_backoff_ms(self.failures, None);
        }
        self.last_error = Some(e.clone());
    }

    /// Why no token request may be made now, if one may not: a cooldown (with the seconds
    /// left), a hold, or the backoff after a failed flight.
    pub fn blocked(&self, now: u64) -> Option<Error> {
        if let Some((until, e)) = self.cooldown.as_ref().filter(|(until, _)| now < *until) {
            let left = (until - now).div_ceil(1000);
            return Some(match e {
                Error::RateLimited(s) | Error::Server(s) => Error::RateLimited(ServerError {
                    retry_after: Some(left),
                    ..s.clone()
                }),
                _ => Error::MintBudgetExhausted { retry_after: left },
            });
        }
        if let Some((_, e)) = self.hold.as_ref().filter(|(until, _)| now < *until) {
            return Some(e.clone());
        }
        if now < self.retry_at {
            return self.last_error.clone();
        }
        None
    }

    /// The mint budget: `Some(error)` when this window's token requests are spent, else the
    /// request is counted.
    fn spend_budget(&mut self, now: u64) -> Option<Error> {
        let window = self.policy.budget_window_ms;
        while self.sent.front().is_some_and(|t| now >= t + window) {
            self.sent.pop_front();
        }
        if self.sent.len() as u64 >= self.policy.mint_budget(self.lifetime) {
            let oldest = self.sent.front().copied().unwrap_or(now);
            let until = oldest + window;
            let e = Error::MintBudgetExhausted {
                retry_after: (until - now).div_ceil(1000),
            };
            // nobody asks again before the window allows it: one refusal, not one per caller
            self.cooldown = Some((until, e.clone()));
            self.stats.budget_refusals += 1;
            let mut event = Event::new(EventKind::BudgetExhausted, now);
            event.code = Some(e.code());
            event.retry_after = e.retry_after();
            self.events.push(event);
            return Some(e);
        }
        self.sent.push_back(now);
        None
    }

    fn minted_event(&mut self, now: u64, rec: &TokenRecord) {
        let mut e = Event::new(EventKind::Mint, now);
        e.mints = Some(self.stats.mints);
        e.lifetime_secs = Some(rec.lifetime_ms() / 1000);
        self.events.push(e);
    }

    /// A token request attempt failed; `retrying`: another attempt of the same request follows
    /// (`detail: "retrying"`), else the request has failed for its callers.
    fn token_error_event(&mut self, now: u64, error: &Error, retrying: bool) {
        let mut e = Event::new(EventKind::TokenError, now);
        e.code = Some(error.code());
        e.status = error.status();
        e.detail = retrying.then(|| "retrying".to_owned());
        self.events.push(e);
    }

    fn start_cooldown(&mut self, now: u64, ms: u64, error: &Error) {
        self.cooldown = Some((now + ms, error.clone()));
        let mut e = Event::new(EventKind::Cooldown, now);
        e.code = Some(error.code());
        e.status = error.status();
        e.retry_after = Some(ms.div_ceil(1000));
        self.events.push(e);
    }

    /// A number in [0, 1) for retry jitter (xorshift64*).
    fn unit(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
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
        match call.lock {
            Lock::Held if written => {
                call.lock = Lock::Releasing;
                return Action::Unlock;
            }
            Lock::Held | Lock::Releasing => call.lock = Lock::No,
            Lock::No => {}
        }
        self.want(now, call)
    }

    /// The record to write for `rec`, with its TTL: only to a writable store, and only when
    /// its remaining life fits the store's shortest TTL.
    fn storable(&self, now: u64, rec: &Arc<TokenRecord>) -> Option<(Arc<TokenRecord>, u64)> {
        if self.shared != Shared::Writable {
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

    /// A token minted under the lock that the store cannot take (too short-lived for its
    /// shortest TTL): the lock is kept until it expires, so the waiters do not mint another.
    fn keep_lock_unless_stored(call: &mut Call, store: &Option<(Arc<TokenRecord>, u64)>) {
        if store.is_none() && call.lock == Lock::Held {
            call.lock = Lock::No;
        }
    }

    /// Frees the lock this call holds (nothing was written), or serves.
    fn release_or_serve(&mut self, now: u64, call: &mut Call) -> Action {
        if call.lock == Lock::Held {
            call.lock = Lock::Releasing;
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
        let landed_id = landed.flatten();
        let usable = self
            .record
            .clone()
            .filter(|(rec, _)| self.phase_of(rec, now).usable());
        let Some((rec, source)) = usable else {
            // no usable token: the flight this call waited on failed, or start/join one
            if let Some(id) = landed_id {
                if let Some((_, Some(e))) = self.landed.as_ref().filter(|(l, _)| *l == id) {
                    return Action::Fail(e.clone());
                }
            }
            let replacing = self.held_or_refused(&call.want);
            return self.fly(now, call, Purpose::Obtain, replacing);
        };
        if let Want::Replacing(held) = &call.want {
            let renew =
                rec.access_token == *held && !call.renewed && landed.is_none() && now >= self.retry_at;
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
            self.stats.memory_hits += 1;
        }
        call.role = Role::Free;
        let stale = self.phase_of(&rec, now) == Phase::Stale;
        if stale && self.flight.is_none() && now >= self.retry_at && self.blocked(now).is_none() {
            self.stats.refreshes += 1;
            self.events.push(Event::new(EventKind::Refresh, now));
            let mut refresh = Call::new(Want::Usable);
            let id = self.open(now, Purpose::Renew, Some(rec.access_token.clone()));
            refresh.role = Role::Owns(id);
            return Action::ServeAndRefresh(served, refresh);
        }
        Action::Serve(served)
    }

    /// Joins the flight under way, or opens one that `call` owns.
    fn fly(&mut self, now: u64, call: &mut Call, purpose: Purpose, replacing: Option<String>) -> Action {
        if let Some(f) = &self.flight {
            self.stats.coalesced += 1;
            call.role = Role::Joined(f.id);
            return Action::WaitUntil(f.deadline);
        }
        let id = self.open(now, purpose, replacing);
        call.role = Role::Owns(id);
        self.advance(now, call)
    }

    fn open(&mut self, now: u64, purpose: Purpose, replacing: Option<String>) -> u64 {
        let replacing_issued = self
            .record
            .as_ref()
            .filter(|(r, _)| replacing.as_deref() == Some(r.access_token.as_str()))
            .map(|(r, _)| r.issued_at_ms);
        self.flights += 1;
        self.flight = Some(Flight {
            id: self.flights,
            purpose,
            step: Step::Start,
            replacing,
            replacing_issued,
            deadline: now + self.step_bound(),
            lock_wait: None,
            outage_until: None,
            attempts: 0,
            mint_started: now,
        });
        self.flights
    }

    /// The owner's next move in its flight.
    fn advance(&mut self, now: u64, call: &mut Call) -> Action {
        let step = self.flight_mut().step;
        match step {
            Step::Start if self.shared != Shared::None => self.read(now),
            Step::Start => self.mint(now, call),
            Step::Pause { at, then } if now >= at => match then {
                Then::Read => self.read(now),
                Then::Claim => self.claim(now, true),
                Then::Mint => self.mint(now, call),
            },
            Step::Pause { at, .. } => Action::WaitUntil(at),
            // an owner that re-asks while its I/O is under way (it should not): wait it out
            Step::Reading | Step::Claiming { .. } | Step::Rechecking | Step::Minting => {
                Action::WaitUntil(self.flight_mut().deadline)
            }
        }
    }

    fn read(&mut self, now: u64) -> Action {
        self.set_step(now, Step::Reading);
        Action::ReadStore {
            fleet: self.shared == Shared::Writable,
        }
    }

    fn claim(&mut self, now: u64, retried: bool) -> Action {
        self.set_step(now, Step::Claiming { retried });
        Action::ClaimLock {
            ttl_ms: self.policy.lock_ttl_ms(),
        }
    }

    /// The one place a token request is asked for: not during a cooldown, a hold or a backoff,
    /// and never past the mint budget. Refused, the flight ends with that error (a budget
    /// refusal under the lock is written for the fleet before the lock is freed).
    fn mint(&mut self, now: u64, call: &mut Call) -> Action {
        if let Some(e) = self.blocked(now) {
            return self.fail_flight(now, call, e, None);
        }
        if let Some(e) = self.spend_budget(now) {
            let fleet = self.fleet_state(now);
            return self.fail_flight(now, call, e, fleet);
        }
        self.set_step(now, Step::Minting);
        let f = self.flight_mut();
        if f.attempts == 0 {
            f.mint_started = now;
        }
        f.attempts += 1;
        Action::Mint {
            replacing: f.replacing.clone(),
        }
    }

    /// Moves the flight to `step`, with the deadline that step allows.
    fn set_step(&mut self, now: u64, step: Step) {
        let wait = match step {
            Step::Pause { at, .. } => at.saturating_sub(now),
            _ => 0,
        };
        let bound = self.step_bound();
        let f = self.flight_mut();
        f.step = step;
        f.deadline = now + wait + bound;
    }

    /// How long one step's I/O may take before the flight counts as dead.
    fn step_bound(&self) -> u64 {
        self.policy.request_timeout_ms + MINT_LOCK_GRACE_MS
    }

    fn flight_mut(&mut self) -> &mut Flight {
        self.flight.as_mut().expect("a flight is under way")
    }

    /// The running flight, if `call` owns it.
    fn owned(&mut self, call: &Call, now: u64) -> Option<Flight> {
        self.timeout(now);
        match (call.role, &self.flight) {
            (Role::Owns(id), Some(f)) if f.id == id => Some(f.clone()),
            _ => None,
        }
    }

    fn land(&mut self, error: Option<Error>) {
        if let Some(f) = self.flight.take() {
            self.landed = Some((f.id, error));
            self.just_landed = true;
        }
    }

    fn renewed(&mut self) {
        self.failures = 0;
        self.retry_at = 0;
        self.holds = 0;
        self.last_error = None;
    }

    fn renew_failed(&mut self, now: u64, retry_after_secs: Option<u64>) {
        self.failures += 1;
        self.retry_at = now + refresh_backoff_ms(self.failures, retry_after_secs);
    }

    /// The token a new flight replaces: the one held (even expired), else the one refused.
    fn held_or_refused(&self, want: &Want) -> Option<String> {
        let held = self.record.as_ref().map(|(r, _)| r.access_token.clone());
        let asked = match want {
            Want::Replacing(t) => Some(t.clone()),
            Want::Usable => None,
        };
        held.or(asked).or_else(|| self.refused.clone())
    }
}
