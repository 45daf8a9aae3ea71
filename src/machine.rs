//! The token lifecycle as a synchronous, deterministic state machine (in the style of
//! quinn-proto): it owns the cached record, the one flight under way, failures and backoff, and
//! the policy. It never awaits, sleeps or reads a clock, and does no I/O: callers feed it events
//! with `now` and carry out the [`Action`]s it answers with (the async driver in
//! [`crate::TokenManager`] does that over the seams).
//!
//! ```text
//!  event (with now)                         action
//!  want(call)            ───────────────▶  Serve | ServeAndRefresh | ReadStore | Mint | WaitUntil | Fail
//!  stored(call, read)    ───────────────▶  Serve | ClaimLock | Mint | Fail
//!  claimed(call, claim)  ───────────────▶  Mint | WaitUntil
//!  minted(call, result)  ───────────────▶  Save | Serve | Fail
//!  saved(call, result)   ───────────────▶  Serve | Fail
//!  refused(token), invalidate(), timeout()  (state only)
//! ```
//!
//! One [`Call`] is one caller's request; the machine keeps in it which flight the caller owns or
//! waits on. At most one flight runs per machine (per cache key), so two mints are never in
//! flight at once; a flight has a deadline, after which it is forgotten as dead (its I/O was
//! cancelled) and the next caller starts a new one.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::{Error, ServerError};
use crate::events::{Event, EventKind};
use crate::lifecycle::{Phase, Policy, refresh_backoff_ms};
use crate::record::TokenRecord;
use crate::seams::StoreError;
use crate::stats::Stats;

/// The minting lock (for stores with `put_if_absent`) outlives a token request by this much.
pub const MINT_LOCK_GRACE_MS: u64 = 2_000;
/// A process that lost the minting lock looks for the winner's token after this long…
pub const MINT_POLL_MIN_MS: u64 = 50;
/// …doubling up to this.
pub const MINT_POLL_MAX_MS: u64 = 500;

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
    /// Its flight ended: serve what it left (or its error), never start another.
    Landed(u64),
}

/// One caller's request, threaded through the events of the machine.
#[derive(Clone, Debug)]
pub struct Call {
    want: Want,
    role: Role,
    /// A `Replacing` call tries one renewal at most.
    renewed: bool,
}

impl Call {
    /// A call for `want`.
    pub fn new(want: Want) -> Self {
        Self {
            want,
            role: Role::Free,
            renewed: false,
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
    /// Read the store, then report with [`Machine::stored`].
    ReadStore,
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
    /// Write `record` (sealed, with its TTL in seconds) and/or release the minting lock, then
    /// report with [`Machine::saved`].
    Save {
        /// The record and its TTL, when it is worth storing.
        record: Option<(Arc<TokenRecord>, u64)>,
        /// Whether to delete the minting lock.
        unlock: bool,
    },
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

/// Where the flight is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Not begun: the owner's next `want` begins it.
    Start,
    /// Waiting for a store read.
    Reading,
    /// Waiting for a lock claim (`retried` after a failing first claim).
    Claiming { retried: bool },
    /// Pausing before claiming again.
    PauseClaim { at: u64 },
    /// Another process holds the lock: look for its token at `at`, mint after `give_up_at`.
    Polling { at: u64, wait: u64, give_up_at: u64 },
    /// Waiting for the token source.
    Minting,
    /// Pausing before the next attempt of a failed mint.
    PauseRetry { at: u64 },
}

#[derive(Clone, Debug)]
struct Flight {
    id: u64,
    purpose: Purpose,
    step: Step,
    /// The token this flight replaces (held, expired or refused), for the token source.
    replacing: Option<String>,
    /// Past this, the flight is dead: its I/O will never report.
    deadline: u64,
    /// This flight holds the shared store's minting lock.
    locked: bool,
    /// Token requests this flight has made, and when the first was sent.
    attempts: u32,
    mint_started: u64,
}

/// The lifecycle machine of one cache key. Plain data: `Send`, no futures, no clock.
#[derive(Clone, Debug)]
pub struct Machine {
    policy: Policy,
    jitter: f64,
    has_store: bool,
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
    /// `has_store` says whether a shared store backs memory. Fails when the policy is invalid.
    pub fn new(policy: Policy, jitter: f64, has_store: bool) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            policy,
            jitter,
            has_store,
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
            rng: (jitter.to_bits() ^ 0x9E37_79B9_7F4A_7C15) | 1,
            events: Vec::new(),
            stats: Stats::default(),
        })
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

    /// Forgets the token in memory (it is never taken back from the store), and every hold:
    /// the user says something changed.
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
        let mut sent: Vec<u64> = kept
            .sent
            .iter()
            .copied()
            .chain(self.sent.iter().copied())
            .collect();
        sent.sort_unstable();
        self.sent = sent.into();
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
                _ => call.role = Role::Landed(id),
            },
            Role::Joined(id) => match &self.flight {
                Some(f) if f.id == id => return Action::WaitUntil(f.deadline),
                _ => call.role = Role::Landed(id),
            },
            Role::Free | Role::Landed(_) => {}
        }
        self.decide(now, call)
    }

    /// The store read of the owner's flight came back (the record the driver could open).
    pub fn stored(
        &mut self,
        now: u64,
        call: &mut Call,
        read: Result<Option<TokenRecord>, StoreError>,
    ) -> Action {
        let Some(flight) = self.owned(call, now) else {
            return self.want(now, call);
        };
        let value = read.unwrap_or_else(|e| {
            self.store_failed(now, &e);
            None
        });
        let found = value.filter(|rec| {
            let not_refused = self.refused.as_deref() != Some(rec.access_token.as_str());
            // a record "issued" in the future claims more life than its `expires_in` allows
            let not_from_the_future = rec.issued_at_ms <= now + CLOCK_SKEW_MS;
            let phase = self.phase_of(rec, now);
            let wanted = match flight.purpose {
                Purpose::Obtain => phase.usable(),
                // a renewal takes only a fresh token that another instance already renewed
                Purpose::Renew => {
                    phase == Phase::Fresh && flight.replacing.as_deref() != Some(&rec.access_token)
                }
            };
            not_refused && not_from_the_future && wanted
        });
        if let Some(rec) = found {
            self.stats.kv_hits += 1;
            self.record = Some((Arc::new(rec), Source::Store));
            self.renewed();
            self.land(None);
            return self.want(now, call);
        }
        match flight.step {
            Step::Polling { give_up_at, .. } if now >= give_up_at => self.mint(now, call),
            Step::Polling { wait, give_up_at, .. } => {
                let wait = (wait * 2).min(MINT_POLL_MAX_MS);
                self.set_step(
                    now,
                    Step::Polling {
                        at: now + wait,
                        wait,
                        give_up_at,
                    },
                );
                self.advance(now, call)
            }
            _ => self.claim(now, false),
        }
    }

    /// The owner's claim of the minting lock came back: `Some(true)` taken, `Some(false)` held
    /// by another process, `None` when the store cannot lock.
    pub fn claimed(&mut self, now: u64, call: &mut Call, claim: Result<Option<bool>, StoreError>) -> Action {
        let Some(flight) = self.owned(call, now) else {
            return self.want(now, call);
        };
        match claim {
            Ok(Some(true)) => {
                self.flight_mut().locked = true;
                self.mint(now, call)
            }
            Ok(Some(false)) => {
                let give_up_at = now + self.step_bound();
                let at = now + MINT_POLL_MIN_MS;
                self.set_step(
                    now,
                    Step::Polling {
                        at,
                        wait: MINT_POLL_MIN_MS,
                        give_up_at,
                    },
                );
                self.advance(now, call)
            }
            Ok(None) => self.mint(now, call),
            Err(e) => {
                self.store_failed(now, &e);
                match flight.step {
                    // contention is often transient: one more try after a short pause
                    Step::Claiming { retried: false } => {
                        self.set_step(
                            now,
                            Step::PauseClaim {
                                at: now + MINT_POLL_MIN_MS,
                            },
                        );
                        self.advance(now, call)
                    }
                    _ => self.mint(now, call),
                }
            }
        }
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
            // a late answer to a flight declared dead: keep a good token, report to its caller
            call.role = Role::Landed(0);
            return match result {
                Ok(rec) => {
                    let newer = self
                        .record
                        .as_ref()
                        .is_none_or(|(r, _)| r.issued_at_ms < rec.issued_at_ms);
                    self.minted_event(now, &rec);
                    if newer {
                        self.record = Some((Arc::new(rec), Source::Network));
                    }
                    self.want(now, call)
                }
                Err(e) => {
                    self.stats.failures += 1;
                    self.token_error_event(now, &e);
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
                let store = if self.has_store {
                    rec.store_ttl_secs(now).map(|ttl| (Arc::clone(&rec), ttl))
                } else {
                    None
                };
                self.record = Some((rec, Source::Network));
                self.land(None);
                self.save_or_serve(now, call, store, flight.locked)
            }
            Err(e) => {
                self.stats.failures += 1;
                self.token_error_event(now, &e);
                if let Some(at) = self.retry_at_for(now, &flight, &e) {
                    self.set_step(now, Step::PauseRetry { at });
                    return self.advance(now, call);
                }
                self.remember_failure(now, &flight, &e);
                self.land(Some(e));
                self.save_or_serve(now, call, None, flight.locked)
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
            Error::AccessDenied(_) | Error::InvalidRequest(_) | Error::InvalidResponse { .. } => {
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

    fn token_error_event(&mut self, now: u64, error: &Error) {
        let mut e = Event::new(EventKind::TokenError, now);
        e.code = Some(error.code());
        e.status = error.status();
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

    /// The owner's [`Action::Save`] came back (one result per write or delete it made).
    pub fn saved(&mut self, now: u64, call: &mut Call, results: &[Result<(), StoreError>]) -> Action {
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            self.store_failed(now, e);
        }
        self.want(now, call)
    }

    fn save_or_serve(
        &mut self,
        now: u64,
        call: &mut Call,
        record: Option<(Arc<TokenRecord>, u64)>,
        unlock: bool,
    ) -> Action {
        if record.is_some() || unlock {
            return Action::Save { record, unlock };
        }
        self.want(now, call)
    }

    /// What to do for a call that owns no running flight.
    fn decide(&mut self, now: u64, call: &mut Call) -> Action {
        let landed = match call.role {
            Role::Landed(id) => Some(id),
            _ => None,
        };
        let usable = self
            .record
            .clone()
            .filter(|(rec, _)| self.phase_of(rec, now).usable());
        let Some((rec, source)) = usable else {
            // no usable token: the flight this call waited on failed, or start/join one
            if let Some(id) = landed {
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
        self.flights += 1;
        self.flight = Some(Flight {
            id: self.flights,
            purpose,
            step: Step::Start,
            replacing,
            deadline: now + self.step_bound(),
            locked: false,
            attempts: 0,
            mint_started: now,
        });
        self.flights
    }

    /// The owner's next move in its flight.
    fn advance(&mut self, now: u64, call: &mut Call) -> Action {
        let step = self.flight_mut().step;
        match step {
            Step::Start if self.has_store => {
                self.set_step(now, Step::Reading);
                Action::ReadStore
            }
            Step::Start => self.mint(now, call),
            Step::PauseClaim { at } if now >= at => self.claim(now, true),
            Step::PauseRetry { at } if now >= at => self.mint(now, call),
            Step::Polling { at, wait, give_up_at } if now >= at => {
                self.set_step(now, Step::Polling { at, wait, give_up_at });
                Action::ReadStore
            }
            Step::PauseClaim { at } | Step::Polling { at, .. } | Step::PauseRetry { at } => {
                Action::WaitUntil(at)
            }
            // an owner that re-asks while its I/O is under way (it should not): wait it out
            Step::Reading | Step::Claiming { .. } | Step::Minting => {
                Action::WaitUntil(self.flight_mut().deadline)
            }
        }
    }

    fn claim(&mut self, now: u64, retried: bool) -> Action {
        self.set_step(now, Step::Claiming { retried });
        Action::ClaimLock {
            ttl_ms: self.step_bound(),
        }
    }

    /// The one place a token request is asked for: not during a cooldown, a hold or a backoff,
    /// and never past the mint budget. Refused, the flight ends with that error (freeing the
    /// minting lock if it holds it).
    fn mint(&mut self, now: u64, call: &mut Call) -> Action {
        if let Some(e) = self.blocked(now).or_else(|| self.spend_budget(now)) {
            let locked = self.flight_mut().locked;
            self.land(Some(e));
            return self.save_or_serve(now, call, None, locked);
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
            Step::PauseClaim { at } | Step::Polling { at, .. } | Step::PauseRetry { at } => {
                at.saturating_sub(now)
            }
            _ => 0,
        };
        let bound = self.step_bound();
        let f = self.flight_mut();
        f.step = step;
        f.deadline = now + wait + bound;
    }

    /// How long one step's I/O may take before the flight counts as dead — also how long the
    /// minting lock lives, and how long a lock loser polls before it mints after all.
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
