//! What the machine is made with and told outside a flight — its construction, a store call that
//! failed, a deadline, a refusal, the user's invalidation, quotas declared, a kept budget window,
//! the fleet state recalled: each changes state (and may queue events and store operations),
//! none answers with an [`Action`](super::Action). The flight's events, which do, are routed in
//! `mod.rs`.

use super::outbox::Note;
use super::{
    Budget, BudgetWindow, Flights, Gate, Machine, Outage, Outbox, Refusal, RefusalHold, Rng, Shared, Slot,
    StoreError, StoreOp,
};
use crate::error::Error;
use crate::fleet::FleetState;
use crate::lifecycle::Policy;
use crate::quota::Declared;
use crate::record::MIN_STORE_TTL_SECS;

impl Machine {
    /// A machine with `policy`; `jitter` in [-1, 1] shifts this instance's refresh point;
    /// `shared` says what store backs memory (`true`: one that locks). Fails when the policy
    /// is invalid.
    pub fn new(policy: Policy, jitter: f64, shared: impl Into<Shared>) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            policy,
            shared: shared.into(),
            min_ttl_secs: MIN_STORE_TTL_SECS,
            slot: Slot::new(jitter),
            flights: Flights::default(),
            gate: Gate::default(),
            budget: Budget::default(),
            refusals: RefusalHold::default(),
            outage: Outage::default(),
            rng: Rng::seeded(jitter),
            outbox: Outbox::default(),
            store_ops: Vec::new(),
        })
    }

    /// The same machine over a store whose shortest TTL is `secs` (60 s, Workers KV's, unless
    /// told): a token with less life left is kept in memory only.
    #[must_use]
    pub fn with_min_ttl(mut self, secs: u64) -> Self {
        self.min_ttl_secs = secs.max(1);
        self
    }

    /// A store operation failed outside a flight (a [`StoreOp`], say): counted, and an event.
    pub fn store_failed(&mut self, now: u64, error: &StoreError) {
        self.outbox.note(now, Note::StoreError(error));
    }

    /// Counts a stored value that did not open (forged, tampered, foreign): a miss.
    pub fn store_rejected(&mut self) {
        self.outbox.note(0, Note::StoreRejected);
    }

    /// A deadline passed: a flight past its deadline is forgotten as dead, so that its waiters
    /// and later callers start anew. Called by every event; hosts may also call it alone.
    pub fn timeout(&mut self, now: u64) {
        self.flights.expire(now);
    }

    /// The API refused `token`.
    ///
    /// Usually the token is dropped (compare-and-delete: only if it is the one held, here and
    /// in a writable store — a [`StoreOp::DeleteIf`]) and never served or taken back from the
    /// store again. But when the API refuses a token minted moments ago
    /// ([`Policy::fresh_refusal_ms`]) after a replacement for the same reason, minting again
    /// will not help: a hold begins ([`Policy::hold_after`]) during which the token is kept,
    /// its 401 goes back as it is, and nothing is minted for that reason; when the hold ends,
    /// one replacement is tried again.
    pub fn refused(&mut self, now: u64, token: &str) -> Refusal {
        let refusal = self.refusals.judge(now, &self.policy, &mut self.slot, token);
        if refusal != Refusal::Kept && self.shared.writes() {
            self.store_ops.push(StoreOp::DeleteIf {
                token: token.to_owned(),
            });
        }
        refusal
    }

    /// Forgets the token in memory (it is never taken back from the store) and in a writable
    /// store (a [`StoreOp::Delete`]), and this instance's holds: the user says something
    /// changed. The fleet's gate and budget (in the store) stay.
    pub fn invalidate(&mut self, _now: u64) {
        self.slot.forget();
        self.gate.clear();
        self.refusals.clear();
        // the user asks for a new token: one more may be minted alone while the store is down
        // (the mint budget still caps it)
        self.outage = Outage::default();
        if self.shared.writes() {
            self.store_ops.push(StoreOp::Delete);
        }
    }

    /// Takes back a window kept from before a restart: its requests count against the budget as
    /// if this instance had made them (later and duplicate entries are kept in order).
    pub fn restore_budget_window(&mut self, kept: &BudgetWindow) {
        self.budget.restore(kept);
    }

    /// The token endpoint's answer declared quotas (see [`crate::declared`]): the budget keeps
    /// them (the fleet state publishes them), and each that is news is an event.
    pub fn learn(&mut self, now: u64, declared: &[Declared]) {
        for d in self.budget.learn(now, declared) {
            self.outbox.note(now, Note::Quota(&d));
        }
    }

    /// The fleet state read from the store outside a flight (an instance that starts where
    /// the fleet's budget and gate must hold at once): adopted as a flight's read adopts it.
    pub fn recall(&mut self, now: u64, fleet: &FleetState) {
        self.adopt_fleet(now, fleet);
    }
}
